package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
)

// TestSharedLoop drives the reconcile loop every kind shares through scripted phases on a real
// apiserver: what a failing phase leaves on the object, when Ready, Events, metrics and
// observedGeneration change, that an unchanged status is not written, and the finalize step.
func TestSharedLoop(t *testing.T) {
	ctx := context.Background()
	ns := fmt.Sprintf("loop-%d", nsCounter.Add(1))
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	app := &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: "scripted", Namespace: ns}}
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}

	// The second phase fails with whatever the step says; the others succeed.
	var failSecond, failFinalize error
	var thirdRuns int
	throttle := false
	done := func(cond string) func(context.Context, *flyv1alpha1.UserApp) error {
		return func(ctx context.Context, a *flyv1alpha1.UserApp) error {
			if cond == "Third" {
				thirdRuns++
			}
			if throttle {
				controllers.NoteThrottled(ctx)
			}
			meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{Type: cond, Status: metav1.ConditionTrue, Reason: "Ready", Message: cond + " done"})
			return nil
		}
	}
	phases := []controllers.ScriptedPhase{
		{Condition: "First", Run: done("First")},
		{Condition: "Second", Run: func(ctx context.Context, a *flyv1alpha1.UserApp) error {
			if failSecond != nil {
				return failSecond
			}
			return done("Second")(ctx, a)
		}},
		{Condition: "Third", Run: done("Third")},
	}
	recorder := events.NewFakeRecorder(10)
	var statusWrites int
	direct, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	counting := interceptor.NewClient(direct, interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			statusWrites++
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	loop := controllers.NewScriptedLoop(counting, recorder, phases, func(*flyv1alpha1.UserApp) error { return failFinalize })
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(app)}
	pass := func() (ctrl.Result, error) {
		t.Helper()
		res, err := loop.Reconcile(ctx, req)
		if getErr := env.Client.Get(ctx, req.NamespacedName, app); getErr != nil && !apierrors.IsNotFound(getErr) {
			t.Fatal(getErr)
		}
		return res, err
	}
	condition := func(condType string) *metav1.Condition {
		return meta.FindStatusCondition(app.Status.Conditions, condType)
	}
	expectEvents := func(step string, want ...string) {
		t.Helper()
		var got []string
		for len(recorder.Events) > 0 {
			got = append(got, <-recorder.Events)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: events %q, want %q", step, got, want)
		}
	}
	outcomes := func() map[string]float64 { return outcomeCounts(t, "ScriptedUserApp") }
	// expectProgress checks the kstatus conditions, which carry Ready's reason.
	expectProgress := func(step string, reconciling, stalled metav1.ConditionStatus, reason string) {
		t.Helper()
		for condType, want := range map[string]metav1.ConditionStatus{
			flyv1alpha1.ReconcilingCondition: reconciling, flyv1alpha1.StalledCondition: stalled,
		} {
			if c := condition(condType); c == nil || c.Status != want || c.Reason != reason || c.ObservedGeneration != app.Generation {
				t.Errorf("%s: %s = %+v, want %s with reason %s for generation %d", step, condType, c, want, reason, app.Generation)
			}
		}
	}

	// A phase waits: the pass stops there, its condition and Ready say why, nothing is an error.
	failSecond = controllers.WaitFor(5*time.Second, flyv1alpha1.WaitingForAppReason, "waiting for %s", "the app")
	res, err := pass()
	if err != nil || res.RequeueAfter != 5*time.Second {
		t.Fatalf("waiting pass = %+v, %v; want RequeueAfter 5s and no error", res, err)
	}
	if c := condition("Second"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != flyv1alpha1.WaitingForAppReason || c.Message != "waiting for the app" {
		t.Errorf("Second = %+v", c)
	}
	if c := condition(flyv1alpha1.ReadyCondition); c == nil || c.Status != metav1.ConditionFalse || c.Reason != flyv1alpha1.WaitingForAppReason || c.Message != "waiting for the app" {
		t.Errorf("Ready = %+v", c)
	}
	if c := condition("First"); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("First = %+v, want True", c)
	}
	if condition("Third") != nil || thirdRuns != 0 {
		t.Errorf("the phase after the failing one ran (%d) or has a condition", thirdRuns)
	}
	if app.Status.ObservedGeneration != app.Generation || !controllerutil.ContainsFinalizer(app, controllers.Finalizer) {
		t.Errorf("observedGeneration %d (want %d: every pass records it), finalizers %v", app.Status.ObservedGeneration, app.Generation, app.Finalizers)
	}
	expectProgress("waiting", metav1.ConditionTrue, metav1.ConditionFalse, flyv1alpha1.WaitingForAppReason)
	expectEvents("waiting")

	// Fly refuses: the error is returned for backoff, and one Warning tells people, once.
	failSecond = &controllers.FlyError{Kind: controllers.FlyRejected, Message: "bad image"}
	before := outcomes()["rejected"]
	for range 2 {
		if _, err := pass(); err == nil || err.Error() != failSecond.Error() {
			t.Fatalf("rejected pass returned %v, want %v for backoff", err, failSecond)
		}
	}
	if c := condition(flyv1alpha1.ReadyCondition); c.Reason != flyv1alpha1.FlyRejectedReason || c.Message != "Fly refused the request: bad image" {
		t.Errorf("Ready = %+v", c)
	}
	expectEvents("rejected twice", "Warning FlyRejected Fly refused the request: bad image")
	expectProgress("rejected", metav1.ConditionFalse, metav1.ConditionTrue, flyv1alpha1.FlyRejectedReason)
	if got := outcomes()["rejected"] - before; got != 2 {
		t.Errorf("rejected outcomes counted %v, want 2", got)
	}

	// Every phase succeeds: Ready, observedGeneration, and the next pass at the kind's interval.
	failSecond = nil
	res, err = pass()
	if err != nil || res.RequeueAfter != time.Minute {
		t.Fatalf("ready pass = %+v, %v", res, err)
	}
	if c := condition(flyv1alpha1.ReadyCondition); c.Status != metav1.ConditionTrue || thirdRuns != 1 {
		t.Errorf("Ready = %+v, Third ran %d times", c, thirdRuns)
	}
	if c := condition(flyv1alpha1.ReadyCondition); c.Message != "scripted "+app.Name+" ready" {
		t.Errorf("Ready message %q, want the kind's ready message", c.Message)
	}
	expectProgress("ready", metav1.ConditionFalse, metav1.ConditionFalse, flyv1alpha1.ReadyReason)
	expectEvents("ready", "Normal Recovered Ready again after FlyRejected")

	// A pass that changes nothing writes nothing.
	writes := statusWrites
	if _, err := pass(); err != nil {
		t.Fatal(err)
	}
	if statusWrites != writes {
		t.Errorf("an unchanged pass wrote the status %d times", statusWrites-writes)
	}

	// A pass slowed by rate limits stays Ready and says so once per pass.
	throttle = true
	before = outcomes()["throttled"]
	if _, err := pass(); err != nil {
		t.Fatal(err)
	}
	throttle = false
	if c := condition(flyv1alpha1.ReadyCondition); c.Status != metav1.ConditionTrue {
		t.Errorf("throttled pass: Ready = %+v", c)
	}
	expectEvents("throttled", "Warning Throttled Fly rate limits slowed this change (the client waited or Fly answered 429)")
	if got := outcomes()["throttled"] - before; got != 1 {
		t.Errorf("throttled outcomes counted %v, want 1", got)
	}

	// Deletion: a failing finalize step keeps the finalizer and shows on Ready; a successful one
	// releases it.
	if err := env.Client.Delete(ctx, app); err != nil {
		t.Fatal(err)
	}
	failFinalize = &controllers.FlyError{Kind: controllers.FlyUnavailable, Message: "503"}
	if _, err := pass(); err == nil {
		t.Fatal("failing finalize returned no error")
	}
	if c := condition(flyv1alpha1.ReadyCondition); c.Reason != flyv1alpha1.FlyUnavailableReason || c.Message != "deleting: fly: unavailable: 503" || !controllerutil.ContainsFinalizer(app, controllers.Finalizer) {
		t.Errorf("after a failed finalize: Ready %+v, finalizers %v", c, app.Finalizers)
	}
	failFinalize = nil
	if _, err := pass(); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, req.NamespacedName, &flyv1alpha1.UserApp{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after finalize the object is still there (%v)", err)
	}
}

// outcomeCounts reads hangar_reconcile_outcomes_total of one kind, by outcome.
func outcomeCounts(t *testing.T, kind string) map[string]float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "hangar_reconcile_outcomes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind {
				out[labels["outcome"]] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}
