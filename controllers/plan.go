package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// A plan runs one pass of the reconcilers' own phases over each UserApp and UserMachine of a set
// of files, against the live cluster and Fly, and reports the Fly writes the pass would make
// instead of making them (recordingFly) and the Kubernetes writes it would make instead of making
// them (planClient). UserApps are planned first, so a machine of an app the files create or change
// plans against the app as its own pass left it: a new app and its machines plan as "create app,
// set secrets, create machine".

// PlanSettings are what a plan needs: the manager's settings and access to Fly and the cluster.
type PlanSettings struct {
	// Client reads the live cluster. The plan writes nothing through it: it asks the apiserver's
	// admission with dry-run requests only.
	Client client.Client
	// Fly is the manager's FlyAPI; only its reads are called.
	Fly FlyAPI
	// Keys is the installation's root key: without it, the plan cannot tell whether an app's
	// secrets are already set.
	Keys    keys.Root
	Options Options
	// Namespace is the namespace of the objects of the files that name none.
	Namespace string
}

// PlanVerdict sums up what the plan would do to one object.
type PlanVerdict string

// The verdicts, one per object: create, update or destroy when the pass would make such a Fly
// write (a create wins over the rest), no changes when it would make none, refused when the
// apiserver or the pass would refuse it, not planned for other kinds.
const (
	VerdictCreate     PlanVerdict = "create"
	VerdictUpdate     PlanVerdict = "update"
	VerdictDestroy    PlanVerdict = "destroy"
	VerdictNoChanges  PlanVerdict = "no changes"
	VerdictRefused    PlanVerdict = "refused"
	VerdictNotPlanned PlanVerdict = "not planned"
)

// Refusal says who would refuse an object and why.
type Refusal struct {
	// By is "apiserver" (admission refused the object) or "hangar" (the pass stalls: a reason of
	// the Ready condition nothing fixes without a change, Fly's refusals among them).
	By      string
	Reason  string
	Message string
}

// ObjectPlan is the plan of one object of the files.
type ObjectPlan struct {
	Kind, Namespace, Name string
	Verdict               PlanVerdict
	// NotPlannedWhy says why an object is not planned.
	NotPlannedWhy string
	// Calls are the Fly writes its pass would make, in order.
	Calls []PlannedCall
	// KubernetesWrites are the writes its pass would make to other objects (a connection Secret).
	KubernetesWrites []string
	Refusal          *Refusal
	// WaitReason and WaitMessage say what the pass would wait for next (Ready's reason and
	// message), when it would neither end Ready nor be refused.
	WaitReason, WaitMessage string
	// Held says the object's writes are held back (paused or ObserveOnly), with the message.
	Held string
}

// hangarKinds are the kinds a plan runs passes for.
var hangarKinds = []string{kindUserApp, kindUserMachine}

// UnknownKindError is an object of hangar's API group of a kind hangar does not have (its other
// kinds, pools and claims, are listed as not planned).
type UnknownKindError struct{ Kind, APIVersion, Name string }

func (e *UnknownKindError) Error() string {
	return fmt.Sprintf("%s %q: kind %s is not one of hangar's API group %s (a plan covers %s)", e.APIVersion, e.Name, e.Kind,
		flyv1alpha1.GroupVersion.Group, strings.Join(hangarKinds, " and "))
}

// Plan plans objs in order: the result has one entry per object, in the same order. It returns an
// error only when the plan cannot be made at all (an object of an unknown hangar kind, the
// cluster or Fly not answering a read every object needs).
func Plan(ctx context.Context, settings PlanSettings, objs []*unstructured.Unstructured) ([]ObjectPlan, error) {
	if settings.Client == nil || settings.Fly == nil || settings.Keys.IsZero() {
		return nil, errors.New("controllers: a plan needs a cluster client, a Fly client and the root key")
	}
	opts := settings.Options.withDefaults()
	baseDomain, err := canonicalBaseDomain(opts.RouterBaseDomain)
	if err != nil {
		return nil, err
	}
	opts.RouterBaseDomain = baseDomain
	pc := newPlanClient(settings.Client)
	if err := indexFields(pc, baseDomain); err != nil {
		return nil, err
	}
	if err := indexClaims(pc, opts); err != nil {
		return nil, err
	}
	fly := newRecordingFly(settings.Fly)
	b := base{client: pc, reader: pc, options: opts}
	// The same guard as the manager's (Setup): a paused or ObserveOnly object plans no write.
	apps := &userAppReconciler{base: b, fly: pauseGuard{fly}, keys: settings.Keys}
	machines := &userMachineReconciler{base: b, fly: pauseGuard{fly}}
	p := &planner{settings: settings, pc: pc, fly: fly,
		appLoop:     &loop[flyv1alpha1.UserApp, *flyv1alpha1.UserApp, *appScope]{base: b, lifecycle: apps.lifecycle()},
		machineLoop: &loop[flyv1alpha1.UserMachine, *flyv1alpha1.UserMachine, *machineScope]{base: b, lifecycle: machines.lifecycle()},
	}

	objs = slices.Clone(objs) // normalised below; the caller's stay as they are
	plans := make([]ObjectPlan, len(objs))
	var order []int
	for i, in := range objs {
		// Through JSON: objects built by kustomize hold Go ints, which unstructured's deep copy
		// refuses.
		raw, err := json.Marshal(in.Object)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", in.GetKind(), in.GetName(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%s %q: %w", in.GetKind(), in.GetName(), err)
		}
		if u.GetNamespace() == "" {
			u.SetNamespace(settings.Namespace)
		}
		objs[i] = u
		plans[i] = ObjectPlan{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
		gvk := u.GroupVersionKind()
		switch {
		case gvk.Group == flyv1alpha1.GroupVersion.Group && slices.Contains(hangarKinds, gvk.Kind):
			order = append(order, i)
		case gvk.Group == flyv1alpha1.GroupVersion.Group && !settings.Client.Scheme().Recognizes(gvk):
			return nil, &UnknownKindError{Kind: gvk.Kind, APIVersion: u.GetAPIVersion(), Name: u.GetName()}
		case gvk.Group == "" && gvk.Kind == "Secret":
			if err := p.addSecret(u); err != nil {
				return nil, err
			}
			plans[i].Verdict, plans[i].NotPlannedWhy = VerdictNotPlanned, "its data is what the plan's UserApps read"
		default:
			plans[i].Verdict, plans[i].NotPlannedWhy = VerdictNotPlanned, "hangar plans UserApps and UserMachines only"
		}
	}
	// UserApps first: their machines plan against them.
	slices.SortStableFunc(order, func(a, b int) int {
		return slices.Index(hangarKinds, objs[a].GetKind()) - slices.Index(hangarKinds, objs[b].GetKind())
	})
	for _, i := range order {
		if err := p.planObject(ctx, objs[i], &plans[i]); err != nil {
			return nil, err
		}
	}
	return plans, nil
}

type planner struct {
	settings    PlanSettings
	pc          *planClient
	fly         *recordingFly
	appLoop     *loop[flyv1alpha1.UserApp, *flyv1alpha1.UserApp, *appScope]
	machineLoop *loop[flyv1alpha1.UserMachine, *flyv1alpha1.UserMachine, *machineScope]
}

// addSecret makes a Secret of the files the one the plan's UserApps read, with its stringData
// folded into data as the apiserver would.
func (p *planner) addSecret(u *unstructured.Unstructured) error {
	var secret corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &secret); err != nil {
		return fmt.Errorf("reading Secret %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	for k, v := range secret.StringData {
		secret.Data[k] = []byte(v)
	}
	secret.StringData = nil
	p.pc.put(&secret)
	return nil
}

// planObject asks admission about u, then runs one pass over the object it would be.
func (p *planner) planObject(ctx context.Context, u *unstructured.Unstructured, plan *ObjectPlan) error {
	admitted, live, refusal, err := p.admit(ctx, u)
	if err != nil {
		return err
	}
	if refusal != nil {
		plan.Verdict, plan.Refusal = VerdictRefused, refusal
		return nil
	}
	if admitted == nil {
		plan.Verdict, plan.NotPlannedWhy = VerdictNotPlanned, "it is not in the cluster: nothing to delete"
		return nil
	}
	var obj object
	switch u.GetKind() {
	case kindUserApp:
		obj = &flyv1alpha1.UserApp{}
	default:
		obj = &flyv1alpha1.UserMachine{}
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(admitted.Object, obj); err != nil {
		return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	p.pc.put(obj)
	calls, writes := p.fly.count(), p.pc.writeCount()
	var passErr error
	switch o := obj.(type) {
	case *flyv1alpha1.UserApp:
		_, passErr = p.appLoop.pass(ctx, o)
	case *flyv1alpha1.UserMachine:
		_, passErr = p.machineLoop.pass(ctx, o)
	}
	p.pc.put(obj)
	plan.Calls = p.fly.since(calls)
	plan.KubernetesWrites = p.pc.writesSince(writes)
	p.describe(ctx, obj, live, plan.Calls)
	p.judge(obj, passErr, plan)
	return nil
}

// admit asks the apiserver, by dry-run, whether it would take u: created when it is not in the
// cluster, else merged over the live object (spec, labels and annotations from the file; status
// and the rest from the cluster). It returns the object as admission made it (defaults applied),
// and the live one. An object of the files carrying a deletionTimestamp stands for the live
// object's deletion: nil when there is none.
func (p *planner) admit(ctx context.Context, u *unstructured.Unstructured) (admitted, live *unstructured.Unstructured, refusal *Refusal, err error) {
	c := p.settings.Client
	live = &unstructured.Unstructured{}
	live.SetGroupVersionKind(u.GroupVersionKind())
	switch err := c.Get(ctx, client.ObjectKeyFromObject(u), live); {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return nil, nil, nil, fmt.Errorf("reading %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	if u.GetDeletionTimestamp() != nil {
		if live == nil {
			return nil, nil, nil, nil
		}
		deleting := live.DeepCopy()
		if deleting.GetDeletionTimestamp() == nil {
			now := metav1.Now()
			deleting.SetDeletionTimestamp(&now)
		}
		return deleting, live, nil, nil
	}
	dryRun := client.NewDryRunClient(c)
	strict := client.FieldValidation(metav1.FieldValidationStrict)
	if live == nil {
		admitted = u.DeepCopy()
		admitted.SetResourceVersion("")
		err = dryRun.Create(ctx, admitted, strict)
	} else {
		admitted = live.DeepCopy()
		admitted.Object["spec"] = u.Object["spec"]
		admitted.SetLabels(u.GetLabels())
		admitted.SetAnnotations(u.GetAnnotations())
		err = dryRun.Update(ctx, admitted, strict)
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) && !apierrors.IsNotFound(err) || apierrors.IsNotFound(err) && live == nil {
		// Refused as the files stand (invalid, forbidden, its namespace missing...): the message
		// is the apiserver's, naming the field and the rule.
		return nil, live, &Refusal{By: "apiserver", Reason: string(apierrors.ReasonForError(err)), Message: err.Error()}, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("asking the apiserver about %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return admitted, live, nil, nil
}

// heldReasons are the Ready reasons of an object whose Fly writes are held back on purpose: not a
// refusal, nothing to fix.
var heldReasons = map[string]bool{flyv1alpha1.PausedReason: true, flyv1alpha1.ObservedReason: true}

// judge reads the pass's outcome from the object's conditions.
func (p *planner) judge(obj object, passErr error, plan *ObjectPlan) {
	ready := meta.FindStatusCondition(obj.GetConditions(), flyv1alpha1.ReadyCondition)
	switch {
	case ready == nil && passErr != nil:
		plan.Refusal = &Refusal{By: "hangar", Reason: flyv1alpha1.ReconcilingReason, Message: passErr.Error()}
	case ready == nil, ready.Status == metav1.ConditionTrue:
	case heldReasons[ready.Reason]:
		plan.Held = ready.Message
	case stalledReasons[ready.Reason] || passErr != nil:
		// Stalled, or a failure the pass could not get past (Fly or the cluster not answering):
		// either way a real pass would not get further now.
		plan.Refusal = &Refusal{By: "hangar", Reason: ready.Reason, Message: ready.Message}
	default:
		plan.WaitReason, plan.WaitMessage = ready.Reason, ready.Message
	}
	switch {
	case plan.Refusal != nil:
		plan.Verdict = VerdictRefused
	case slices.ContainsFunc(plan.Calls, func(c PlannedCall) bool { return c.Kind == CallCreateApp || c.Kind == CallCreateMachine }):
		plan.Verdict = VerdictCreate
	case slices.ContainsFunc(plan.Calls, func(c PlannedCall) bool { return c.Kind == CallDeleteApp || c.Kind == CallDestroyMachine }):
		plan.Verdict = VerdictDestroy
	case len(plan.Calls) > 0:
		plan.Verdict = VerdictUpdate
	default:
		plan.Verdict = VerdictNoChanges
	}
}

// describe fills in the details of the calls that need the object to be told: where each secret's
// value comes from (never the value), and what a machine update changes.
func (p *planner) describe(ctx context.Context, obj object, live *unstructured.Unstructured, calls []PlannedCall) {
	for i := range calls {
		c := &calls[i]
		switch c.Kind {
		case CallSetAppSecrets:
			if app, ok := obj.(*flyv1alpha1.UserApp); ok {
				c.Detail = secretSources(app, c.setSecrets, c.unsetSecrets)
			}
		case CallUpdateMachine:
			if um, ok := obj.(*flyv1alpha1.UserMachine); ok && c.desired != nil {
				c.Detail = p.machineChange(ctx, um, live, *c.desired)
			}
		}
	}
}

// secretSources names each secret set and where its value comes from.
func secretSources(app *flyv1alpha1.UserApp, set, unset []string) string {
	refs := map[string]flyv1alpha1.AppSecret{}
	for _, s := range app.Spec.Secrets {
		refs[s.Name] = s
	}
	parts := make([]string, 0, len(set)+len(unset))
	for _, name := range set {
		switch ref, ok := refs[name]; {
		case ok:
			parts = append(parts, fmt.Sprintf("%s (value from Secret %s/%s key %s)", name, app.Namespace, ref.SecretKeyRef.Name, ref.SecretKeyRef.Key))
		case keys.IsOwnerMarker(name):
			parts = append(parts, name+" (owner marker)")
		default:
			parts = append(parts, name+" (derived key)")
		}
	}
	for _, name := range unset {
		parts = append(parts, "unset "+name)
	}
	return strings.Join(parts, ", ")
}

// machineChange says what an update changes: the differences between the config the live object
// asks for and the one the pass would send, or, when they are the same, that the machine drifted.
func (p *planner) machineChange(ctx context.Context, um *flyv1alpha1.UserMachine, live *unstructured.Unstructured, want DesiredMachine) string {
	if live == nil {
		return "config " + want.Metadata[MetadataConfigHash]
	}
	var old flyv1alpha1.UserMachine
	var liveApp flyv1alpha1.UserApp
	if runtime.DefaultUnstructuredConverter.FromUnstructured(live.Object, &old) != nil ||
		p.settings.Client.Get(ctx, client.ObjectKey{Namespace: um.Namespace, Name: old.Spec.AppRef.Name}, &liveApp) != nil {
		return "config " + want.Metadata[MetadataConfigHash]
	}
	was := desiredMachineFor(&old, &liveApp, p.appLoop.options.DefaultRegion)
	var changes []string
	changed := func(what string, a, b any, show bool) {
		if reflect.DeepEqual(a, b) {
			return
		}
		if show {
			changes = append(changes, fmt.Sprintf("%s %v → %v", what, a, b))
		} else {
			changes = append(changes, what+" changed")
		}
	}
	changed("image", was.Image, want.Image, true)
	changed("region", was.Region, want.Region, true)
	changed("guest", was.Guest, want.Guest, true)
	changed("env", was.Env, want.Env, false)
	changed("services", was.Services, want.Services, false)
	changed("checks", was.Checks, want.Checks, false)
	changed("restart policy", was.Restart, want.Restart, false)
	changed("stop config", was.StopConfig, want.StopConfig, false)
	userMetadata := func(m map[string]string) map[string]string {
		out := maps.Clone(m)
		for _, k := range []string{MetadataUID, MetadataNamespace, MetadataName, MetadataConfigHash} {
			delete(out, k)
		}
		return out
	}
	changed("metadata", userMetadata(was.Metadata), userMetadata(want.Metadata), false)
	if was.MinSecretsVersion != want.MinSecretsVersion {
		to := fmt.Sprint(want.MinSecretsVersion)
		if want.MinSecretsVersion == plannedSecretsVersion {
			to = "(new)"
		}
		changes = append(changes, fmt.Sprintf("app secrets version %d → %s", was.MinSecretsVersion, to))
	}
	if len(changes) == 0 {
		return "restores the config hangar set: the machine was changed outside hangar"
	}
	return strings.Join(changes, ", ")
}
