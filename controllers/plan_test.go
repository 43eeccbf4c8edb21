package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyadapter"
	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/flysim"
)

// flyWrite is a Fly write as both a plan and the emulator's call log can name it.
type flyWrite struct{ action, app, machine string }

// plannedAction is the emulator's action name for each planned call kind.
var plannedAction = map[controllers.PlannedCallKind]string{
	controllers.CallCreateApp: "create_app", controllers.CallDeleteApp: "delete_app",
	controllers.CallSetAppSecrets: "set_secrets", controllers.CallEnsurePrivateIP: "assign_ip",
	controllers.CallReleasePrivateIP: "delete_ip", controllers.CallCreateMachine: "create_machine",
	controllers.CallUpdateMachine: "update_machine", controllers.CallStartMachine: "start_machine",
	controllers.CallStopMachine: "stop_machine", controllers.CallSuspendMachine: "suspend_machine",
	controllers.CallDestroyMachine: "destroy_machine",
}

// carriedOutWrites are the writes of the call log Fly carried out (2xx), in the plan's terms: a
// created machine is PlannedMachineID. Leases, taken and released inside an update, are part of
// that update.
func carriedOutWrites(calls []flysim.Call) map[flyWrite]int {
	out := map[flyWrite]int{}
	for _, c := range calls {
		if !slices.Contains(slices.Collect(maps.Values(plannedAction)), c.Action) || c.Status < 200 || c.Status > 299 {
			continue
		}
		m := c.Machine
		if c.Action == "create_machine" {
			m = controllers.PlannedMachineID
		}
		out[flyWrite{c.Action, c.App, m}]++
	}
	return out
}

func plannedWrites(plans []controllers.ObjectPlan) map[flyWrite]int {
	out := map[flyWrite]int{}
	for _, p := range plans {
		for _, c := range p.Calls {
			out[flyWrite{plannedAction[c.Kind], c.App, c.Machine}]++
		}
	}
	return out
}

func toUnstructured(t *testing.T, obj client.Object) *unstructured.Unstructured {
	t.Helper()
	gvk, err := env.Client.GroupVersionKindFor(obj)
	if err != nil {
		t.Fatal(err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u
}

// resourceVersions are the versions of every object a plan could write in ns.
func resourceVersions(t *testing.T, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, list := range []client.ObjectList{&flyv1alpha1.UserAppList{}, &flyv1alpha1.UserMachineList{}, &corev1.SecretList{}} {
		if err := env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		items, _ := metaItems(list)
		for _, o := range items {
			out[fmt.Sprintf("%T/%s", o, o.GetName())] = o.GetResourceVersion()
		}
	}
	return out
}

func metaItems(list client.ObjectList) ([]client.Object, error) {
	var out []client.Object
	switch l := list.(type) {
	case *flyv1alpha1.UserAppList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *flyv1alpha1.UserMachineList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *corev1.SecretList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	}
	return out, nil
}

// TestPlanEqualsTheWritesOfARealRun plans a set of objects against a cluster and Fly with users
// already running, checks the plan wrote nothing to either, then applies the same objects, lets the
// manager converge against the same emulator, and compares the plan's Fly writes with those Fly
// carried out: equal as multisets of (call, app, machine).
func TestPlanEqualsTheWritesOfARealRun(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()

	// Running users: bob (whose machine gets a new image) and carol (whose app secret changes).
	_, bobWS := h.readyUser("bob")
	carolSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "carol-secrets", Labels: appSecretLabels()},
		StringData: map[string]string{"token": "first"}}
	h.create(carolSecret)
	carol := planApp(h, "carol")
	carol.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "API_TOKEN",
		SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: "carol-secrets", Key: "token"}}}
	carolWS := newMachine("carol-ws", "carol")
	h.create(carol)
	h.create(carolWS)
	h.ready(carol)
	h.settled(carolWS, "started")
	h.get(bobWS)
	h.get(carolWS)
	bobVersion, carolVersion := bobWS.Status.Version, carolWS.Status.Version

	// A Fly app name another org holds.
	other, err := flyapi.New(flyapi.Options{BaseURL: h.flyURL, Token: flyapi.StaticToken("fo1_other-org-token")})
	if err != nil {
		t.Fatal(err)
	}
	taken := h.ns + "-taken"
	if _, err := other.CreateApp(ctx, "other-org", taken, ""); err != nil {
		t.Fatal(err)
	}
	h.stopManager()

	// The files: a new user, bob's new image, carol's new secret value, a taken name, a spec
	// admission refuses.
	alice, aliceWS, aliceWS2 := planApp(h, "alice"), newMachine("alice-ws", "alice"), newMachine("alice-ws2", "alice")
	newBobWS := newMachine("bob-ws", "bob")
	newBobWS.Spec.Image = "registry.fly.io/workspace:v2"
	newCarolSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "carol-secrets", Labels: appSecretLabels()},
		StringData: map[string]string{"token": "second"}}
	dave := planApp(h, "dave")
	dave.Spec.AppName = taken
	eve := planApp(h, "eve")
	eve.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "lower_case", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: "x", Key: "y"}}}
	files := []client.Object{alice, aliceWS, aliceWS2, newBobWS, newCarolSecret, carol, carolWS, dave, eve}
	var objs []*unstructured.Unstructured
	for _, o := range files {
		c := o.DeepCopyObject().(client.Object)
		c.SetNamespace("") // the plan's Namespace setting places them
		c.SetResourceVersion("")
		c.SetUID("")
		objs = append(objs, toUnstructured(t, c))
	}

	fly, err := flyapi.New(flyapi.Options{BaseURL: h.flyURL, Token: flyapi.StaticToken(testToken)})
	if err != nil {
		t.Fatal(err)
	}
	versionsBefore := resourceVersions(t, h.ns)
	h.sim.ResetCalls()
	plans, err := controllers.Plan(ctx, controllers.PlanSettings{
		Client: env.Client, Fly: flyadapter.New(fly, flyadapter.Options{}), Keys: h.root, Namespace: h.ns,
		Options: controllers.Options{DefaultOrg: testOrg, DefaultRegion: "ord", AppNamePrefix: "hangar-", RouterBaseDomain: testBaseDomain},
	}, objs)
	if err != nil {
		t.Fatal(err)
	}
	if n := writes(h.sim.Calls()); n != 0 {
		t.Errorf("the plan made %d Fly writes, want none", n)
	}
	if after := resourceVersions(t, h.ns); !maps.Equal(after, versionsBefore) {
		t.Errorf("the plan changed the cluster:\nbefore %v\nafter  %v", versionsBefore, after)
	}

	byName := map[string]controllers.ObjectPlan{}
	for _, p := range plans {
		byName[p.Kind+"/"+p.Name] = p
	}
	for _, tc := range []struct {
		object  string
		verdict controllers.PlanVerdict
		detail  string // in a call's detail or the refusal
	}{
		{"UserApp/alice", controllers.VerdictCreate, "(derived key)"},
		{"UserMachine/alice-ws", controllers.VerdictCreate, "image registry.fly.io/workspace:v1"},
		{"UserMachine/alice-ws2", controllers.VerdictCreate, "alice-ws2"},
		{"UserMachine/bob-ws", controllers.VerdictUpdate, "image registry.fly.io/workspace:v1 → registry.fly.io/workspace:v2"},
		{"Secret/carol-secrets", controllers.VerdictNotPlanned, ""},
		{"UserApp/carol", controllers.VerdictUpdate, "API_TOKEN (value from Secret " + h.ns + "/carol-secrets key token)"},
		{"UserMachine/carol-ws", controllers.VerdictUpdate, "app secrets version"},
		{"UserApp/dave", controllers.VerdictRefused, flyv1alpha1.NameTakenReason},
		{"UserApp/eve", controllers.VerdictRefused, "upper-case environment variable name"},
	} {
		p, ok := byName[tc.object]
		if !ok {
			t.Errorf("%s: not in the plan", tc.object)
			continue
		}
		if p.Verdict != tc.verdict {
			t.Errorf("%s: verdict %q, want %q (plan %+v)", tc.object, p.Verdict, tc.verdict, p)
		}
		text := ""
		for _, c := range p.Calls {
			text += c.Detail + "\n"
		}
		if p.Refusal != nil {
			text += p.Refusal.Reason + ": " + p.Refusal.Message
		}
		if !strings.Contains(text, tc.detail) {
			t.Errorf("%s: %q does not say %q", tc.object, text, tc.detail)
		}
		if strings.Contains(text, "second") || strings.Contains(text, "first") {
			t.Errorf("%s: the plan shows a secret value: %q", tc.object, text)
		}
	}

	// Apply the files as they are, and let the manager converge against the same Fly.
	h.sim.ResetCalls()
	for _, u := range objs {
		live := u.DeepCopy()
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: u.GetName()}, live)
		applied := u.DeepCopy()
		applied.SetNamespace(h.ns)
		if err == nil {
			applied = live
			applied.Object["spec"] = u.Object["spec"]
			if u.GetKind() == "Secret" {
				applied.Object["stringData"] = u.Object["stringData"]
			}
			err = env.Client.Update(ctx, applied)
		} else {
			err = env.Client.Create(ctx, applied)
		}
		if refused := u.GetName() == "eve"; (err != nil) != refused {
			t.Fatalf("applying %s %s: %v (the plan said refused: %v)", u.GetKind(), u.GetName(), err, refused)
		}
	}
	h.startManager()
	for _, o := range []client.Object{alice, aliceWS, aliceWS2} {
		o.SetNamespace(h.ns)
		h.ready(o)
	}
	for _, m := range []struct {
		um  *flyv1alpha1.UserMachine
		was string
	}{{bobWS, bobVersion}, {carolWS, carolVersion}} {
		h.eventually(m.um.Name+" updated", func() string {
			h.get(m.um)
			if m.um.Status.Version == m.was || !isReadyAtGeneration(m.um) {
				return fmt.Sprintf("version %s, conditions %v", m.um.Status.Version, m.um.Status.Conditions)
			}
			return ""
		})
	}
	dave.SetNamespace(h.ns)
	h.condition(dave, flyv1alpha1.StalledCondition, metav1.ConditionTrue, flyv1alpha1.NameTakenReason)

	if got, want := carriedOutWrites(h.sim.Calls()), plannedWrites(plans); !maps.Equal(got, want) {
		t.Errorf("Fly carried out other writes than planned:\ncarried out %v\nplanned     %v", got, want)
	}
}

func isReadyAtGeneration(um *flyv1alpha1.UserMachine) bool {
	c := findCondition(um.Status.Conditions, flyv1alpha1.ReadyCondition)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == um.Generation
}

// TestPlanNamesAnUnknownKindOfHangarsGroup: a kind of hangar's group hangar does not have (a typo)
// fails the plan, naming it; hangar's other kinds and other groups' kinds are listed as not planned.
func TestPlanNamesAnUnknownKindOfHangarsGroup(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.stopManager()
	fly, err := flyapi.New(flyapi.Options{BaseURL: h.flyURL, Token: flyapi.StaticToken(testToken)})
	if err != nil {
		t.Fatal(err)
	}
	settings := controllers.PlanSettings{Client: env.Client, Fly: flyadapter.New(fly, flyadapter.Options{}), Keys: h.root, Namespace: h.ns}
	object := func(apiVersion, kind string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetName("x")
		return u
	}
	_, err = controllers.Plan(context.Background(), settings, []*unstructured.Unstructured{object("fly.hangar.dev/v1alpha1", "UserAp")})
	var unknown *controllers.UnknownKindError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), "kind UserAp is not one of hangar's") {
		t.Errorf("plan of kind UserAp: %v, want an UnknownKindError naming it", err)
	}
	plans, err := controllers.Plan(context.Background(), settings, []*unstructured.Unstructured{
		object("v1", "ConfigMap"), object("fly.hangar.dev/v1alpha1", "UserAppPool")})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plans {
		if p.Verdict != controllers.VerdictNotPlanned {
			t.Errorf("%s: verdict %q, want not planned", p.Kind, p.Verdict)
		}
	}
}

// planApp is newApp with a host of this test's namespace: the suite's other tests leave UserApps of
// the same names behind, whose older claims would own <name>.example.com.
func planApp(h *harness, name string) *flyv1alpha1.UserApp {
	app := newApp(name)
	app.Spec.Routing.Hosts = []string{name + "." + h.ns + ".example.com"}
	return app
}
