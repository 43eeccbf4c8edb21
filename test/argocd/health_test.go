package argocd_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/flysim"
)

const (
	// Both kinds' health checks are this one script (config/argocd/kustomization.yaml).
	appHealthScript     = "../../config/argocd/health/health.lua"
	machineHealthScript = appHealthScript
	testImage           = "registry.fly.io/hangar-sample-workspace:latest"
)

// heldFlyCalls, when set, is called with every Fly call the emulator serves (see main_test.go).
var heldFlyCalls atomic.Pointer[func(flysim.CallPoint)]

// TestHealthChecks drives UserApps and UserMachines into each state with the manager running
// against the Fly emulator, captures each object from the apiserver as Argo CD would see it, and
// runs the health check of config/argocd/health on it.
func TestHealthChecks(t *testing.T) {
	// Every name the objects claim is derived from the namespace, so a rerun claims none of a
	// previous run's.
	ns := newNamespace(t, "argocd-health", false)
	cases := []struct {
		name    string
		capture func(t *testing.T) client.Object
		want    string
		// message, when set, must appear in the health message (in any letter case).
		message string
	}{
		{name: "UserApp Ready", capture: func(t *testing.T) client.Object {
			return waitFor(t, readyApp(t, ns, "ready"), isReady)
		}, want: "Healthy"},
		{name: "UserMachine Ready", capture: func(t *testing.T) client.Object {
			return waitFor(t, createMachine(t, ns, "ready-ws", readyApp(t, ns, "ready2").Name, flyv1alpha1.PowerStateAuto, testImage), isReady)
		}, want: "Healthy"},
		{name: "UserMachine Stopped and Ready", capture: func(t *testing.T) client.Object {
			return waitFor(t, createMachine(t, ns, "stopped-ws", readyApp(t, ns, "stopped").Name, flyv1alpha1.PowerStateStopped, testImage), isReady)
		}, want: "Healthy"},
		{name: "UserMachine Suspended and Ready", capture: func(t *testing.T) client.Object {
			return waitFor(t, createMachine(t, ns, "suspended-ws", readyApp(t, ns, "suspended").Name, flyv1alpha1.PowerStateSuspended, testImage), isReady)
		}, want: "Healthy"},
		{name: "UserApp just created", capture: func(t *testing.T) client.Object {
			return createApp(t, ns, "new", nil)
		}, want: "Progressing"},
		{name: "UserMachine just created", capture: func(t *testing.T) client.Object {
			return createMachine(t, ns, "new-ws", "new", flyv1alpha1.PowerStateAuto, testImage)
		}, want: "Progressing"},
		{name: "UserMachine waiting for its UserApp", capture: func(t *testing.T) client.Object {
			m := createMachine(t, ns, "orphan-ws", "no-such-app", flyv1alpha1.PowerStateAuto, testImage)
			return waitFor(t, m, hasReason(flyv1alpha1.ReconcilingCondition, flyv1alpha1.WaitingForAppReason))
		}, want: "Progressing", message: "no-such-app"},
		{name: "UserMachine with a new generation", capture: func(t *testing.T) client.Object {
			m := waitFor(t, createMachine(t, ns, "bumped-ws", readyApp(t, ns, "bumped").Name, flyv1alpha1.PowerStateAuto, testImage), isReady).(*flyv1alpha1.UserMachine)
			before := m.DeepCopy()
			m.Spec.Image = testImage + "-v2"
			// A merge patch, so that a status write of the manager in between cannot conflict.
			if err := stack.Env.Client.Patch(context.Background(), m, client.MergeFrom(before)); err != nil {
				t.Fatal(err)
			}
			return m // as the apiserver answered the patch: generation 2, conditions of generation 1
		}, want: "Progressing"},
		{name: "UserMachine refused by Fly", capture: func(t *testing.T) client.Object {
			m := createMachine(t, ns, "rejected-ws", readyApp(t, ns, "rejected").Name, flyv1alpha1.PowerStateAuto, "registry.fly.io/Not-Lower-Case:v1")
			return waitFor(t, m, hasReason(flyv1alpha1.StalledCondition, flyv1alpha1.FlyRejectedReason))
		}, want: "Degraded", message: "Not-Lower-Case"},
		{name: "UserApp with a missing Secret", capture: func(t *testing.T) client.Object {
			a := createApp(t, ns, "nosecret", func(a *flyv1alpha1.UserApp) {
				a.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "API_KEY", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: "missing", Key: "k"}}}
			})
			return waitFor(t, a, hasReason(flyv1alpha1.StalledCondition, flyv1alpha1.SecretNotFoundReason))
		}, want: "Degraded", message: "missing"},
		{name: "UserApp whose Fly app name is taken", capture: func(t *testing.T) client.Object {
			named := func(a *flyv1alpha1.UserApp) { a.Spec.AppName = ns + "-shared" }
			waitFor(t, createApp(t, ns, "first", named), isReady)
			return waitFor(t, createApp(t, ns, "second", named), hasReason(flyv1alpha1.StalledCondition, flyv1alpha1.NameTakenReason))
		}, want: "Degraded", message: ns + "-shared"},
		{name: "UserMachine paused with a change waiting", capture: func(t *testing.T) client.Object {
			m := waitFor(t, createMachine(t, ns, "paused-ws", readyApp(t, ns, "paused").Name, flyv1alpha1.PowerStateAuto, testImage), isReady).(*flyv1alpha1.UserMachine)
			before := m.DeepCopy()
			m.Annotations = map[string]string{flyv1alpha1.PausedAnnotation: "true"}
			m.Spec.Image = testImage + "-v2"
			if err := stack.Env.Client.Patch(context.Background(), m, client.MergeFrom(before)); err != nil {
				t.Fatal(err)
			}
			return waitFor(t, m, hasReason(flyv1alpha1.StalledCondition, flyv1alpha1.PausedReason))
		}, want: "Suspended", message: "would update machine"},
		{name: "UserMachine deleted while Fly is slow", capture: func(t *testing.T) client.Object {
			return deletedWhileFlyHolds(t, ns)
		}, want: "Progressing", message: "Deleting"},
		{name: "UserApp deleted before its UserMachines", capture: func(t *testing.T) client.Object {
			app := readyApp(t, ns, "parent")
			machine := waitFor(t, createMachine(t, ns, "child-ws", app.Name, flyv1alpha1.PowerStateAuto, testImage), isReady)
			if err := stack.Env.Client.Delete(context.Background(), app); err != nil {
				t.Fatal(err)
			}
			captured := waitFor(t, app, hasReason(flyv1alpha1.ReconcilingCondition, flyv1alpha1.DeletingReason))
			if err := stack.Env.Client.Delete(context.Background(), machine); err != nil {
				t.Fatal(err)
			}
			return captured
		}, want: "Progressing", message: "1 UserMachine"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.capture(t)
			script := appHealthScript
			if _, ok := obj.(*flyv1alpha1.UserMachine); ok {
				script = machineHealthScript
			}
			got, err := runHealthScript(script, asUnstructured(t, obj))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", got.Status, got.Message)
			if got.Status != tc.want || !strings.Contains(strings.ToLower(got.Message), strings.ToLower(tc.message)) {
				t.Errorf("health = %s %q, want %s with a message containing %q\nconditions: %+v",
					got.Status, got.Message, tc.want, tc.message, conditionsOf(obj))
			}
		})
	}
}

// deletedWhileFlyHolds deletes a Ready UserMachine while the emulator holds its destroy call, and
// captures the object then: deleted, its finalizer still on.
func deletedWhileFlyHolds(t *testing.T, ns string) client.Object {
	app := readyApp(t, ns, "slow")
	machine := waitFor(t, createMachine(t, ns, "slow-ws", app.Name, flyv1alpha1.PowerStateAuto, testImage), isReady).(*flyv1alpha1.UserMachine)
	held, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	hold := func(p flysim.CallPoint) {
		if p.Action == "destroy_machine" && p.Machine == machine.Status.MachineID && !p.Committed && once.CompareAndSwap(false, true) {
			close(held)
			<-release
		}
	}
	heldFlyCalls.Store(&hold)
	t.Cleanup(func() {
		heldFlyCalls.Store(nil)
		select {
		case <-release:
		default:
			close(release)
		}
	})
	if err := stack.Env.Client.Delete(context.Background(), machine); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("the manager never sent the machine's destroy to Fly")
	}
	captured := waitFor(t, machine, func(o client.Object) bool { return o.GetDeletionTimestamp() != nil })
	close(release)
	return captured
}

func readyApp(t *testing.T, ns, name string) *flyv1alpha1.UserApp {
	t.Helper()
	return waitFor(t, createApp(t, ns, name, nil), isReady).(*flyv1alpha1.UserApp)
}

func createApp(t *testing.T, ns, name string, mutate func(*flyv1alpha1.UserApp)) *flyv1alpha1.UserApp {
	t.Helper()
	a := &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if mutate != nil {
		mutate(a)
	}
	if err := stack.Env.Client.Create(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

func createMachine(t *testing.T, ns, name, app string, power flyv1alpha1.PowerState, image string) *flyv1alpha1.UserMachine {
	t.Helper()
	m := &flyv1alpha1.UserMachine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: flyv1alpha1.UserMachineSpec{
		AppRef: flyv1alpha1.AppReference{Name: app}, Region: "ord", Image: image, PowerState: power,
	}}
	if err := stack.Env.Client.Create(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitFor reads obj from the apiserver until done says yes for a pass of its current generation.
func waitFor(t *testing.T, obj client.Object, done func(client.Object) bool) client.Object {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := stack.Env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err
		}
		return done(obj), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; conditions %+v", obj.GetName(), err, conditionsOf(obj))
	}
	return obj
}

type withConditions interface {
	GetConditions() []metav1.Condition
	GetObservedGeneration() int64
}

func conditionsOf(obj client.Object) []metav1.Condition {
	return obj.(withConditions).GetConditions()
}

func current(obj client.Object) bool {
	return obj.(withConditions).GetObservedGeneration() == obj.GetGeneration()
}

func isReady(obj client.Object) bool {
	return hasReason(flyv1alpha1.ReadyCondition, "")(obj)
}

// hasReason says whether conditionType is True (with reason, unless empty) for the object's current
// generation.
func hasReason(conditionType, reason string) func(client.Object) bool {
	return func(obj client.Object) bool {
		for _, c := range conditionsOf(obj) {
			if c.Type == conditionType {
				return current(obj) && c.Status == metav1.ConditionTrue && (reason == "" || c.Reason == reason)
			}
		}
		return false
	}
}

func asUnstructured(t *testing.T, obj client.Object) *unstructured.Unstructured {
	t.Helper()
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: raw}
	gvk, err := stack.Env.Client.GroupVersionKindFor(obj)
	if err != nil {
		t.Fatal(err)
	}
	u.SetGroupVersionKind(gvk)
	return u
}
