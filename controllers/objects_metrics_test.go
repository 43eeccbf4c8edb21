package controllers_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
)

// objectSeries is one hangar_objects series: its labels.
type objectSeries struct{ kind, ready, reason, stalled string }

// TestObjectsCollector counts the objects of each state from a real manager's cache, restricted as
// a shard's is: objects outside the shard are not counted, and a replica that is not the leader
// reports nothing.
func TestObjectsCollector(t *testing.T) {
	ctx := context.Background()
	ns := "objects-metrics"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	shard := map[string]string{"shard": "a"}
	now := metav1.Now()
	conditions := func(ready metav1.ConditionStatus, reason string, stalled bool) []metav1.Condition {
		s := metav1.ConditionFalse
		if stalled {
			s = metav1.ConditionTrue
		}
		return []metav1.Condition{
			{Type: flyv1alpha1.ReadyCondition, Status: ready, Reason: reason, Message: reason, LastTransitionTime: now},
			{Type: flyv1alpha1.StalledCondition, Status: s, Reason: reason, Message: reason, LastTransitionTime: now},
		}
	}
	apps := []struct {
		name       string
		labels     map[string]string
		conditions []metav1.Condition
	}{
		{"ready-1", shard, conditions(metav1.ConditionTrue, flyv1alpha1.ReadyReason, false)},
		{"ready-2", shard, conditions(metav1.ConditionTrue, flyv1alpha1.ReadyReason, false)},
		{"stalled", shard, conditions(metav1.ConditionFalse, flyv1alpha1.SecretNotFoundReason, true)},
		{"new", shard, nil},
		{"other-shard", map[string]string{"shard": "b"}, conditions(metav1.ConditionTrue, flyv1alpha1.ReadyReason, false)},
	}
	for _, a := range apps {
		app := &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: ns, Labels: a.labels}}
		if err := env.Client.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
		if a.conditions != nil {
			app.Status.Conditions = a.conditions
			if err := env.Client.Status().Update(ctx, app); err != nil {
				t.Fatal(err)
			}
		}
	}
	machine := &flyv1alpha1.UserMachine{
		ObjectMeta: metav1.ObjectMeta{Name: "waiting", Namespace: ns, Labels: shard},
		Spec:       flyv1alpha1.UserMachineSpec{AppRef: flyv1alpha1.AppReference{Name: "stalled"}, Image: "registry.fly.io/workspace:v1"},
	}
	if err := env.Client.Create(ctx, machine); err != nil {
		t.Fatal(err)
	}
	machine.Status.Conditions = conditions(metav1.ConditionFalse, flyv1alpha1.WaitingForAppReason, false)
	if err := env.Client.Status().Update(ctx, machine); err != nil {
		t.Fatal(err)
	}

	// A standby: another holder has the manager's lease for an hour, so it never leads.
	const leaseName = "objects-metrics-standby"
	if err := env.Client.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: leaseName, Namespace: ns},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("the-leader"), LeaseDurationSeconds: ptr.To[int32](3600),
			AcquireTime: &metav1.MicroTime{Time: now.Time}, RenewTime: &metav1.MicroTime{Time: now.Time}},
	}); err != nil {
		t.Fatal(err)
	}
	standby := startManager(t, ctrl.Options{LeaderElection: true, LeaderElectionID: leaseName, LeaderElectionNamespace: ns},
		ns, labels.SelectorFromSet(shard))
	leader := startManager(t, ctrl.Options{}, ns, labels.SelectorFromSet(shard))

	want := map[objectSeries]float64{
		{"UserApp", "True", "Ready", "false"}:              2,
		{"UserApp", "False", "SecretNotFound", "true"}:     1,
		{"UserApp", "Unknown", "", "false"}:                1,
		{"UserMachine", "False", "WaitingForApp", "false"}: 1,
	}
	var got map[objectSeries]float64
	// The cache sees the status updates a moment after the apiserver took them.
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		got = gatherObjects(t, controllers.NewObjectsCollector(leader))
		return cmp.Equal(got, want), nil
	})
	if err != nil {
		t.Errorf("hangar_objects (-want +got):\n%s", cmp.Diff(want, got))
	}
	if got := gatherObjects(t, controllers.NewObjectsCollector(standby)); len(got) != 0 {
		t.Errorf("a standby reported %v, want nothing", got)
	}
}

// startManager starts a manager caching ns's objects that shard selects, with no controllers, until
// the test ends.
func startManager(t *testing.T, opts ctrl.Options, ns string, shard labels.Selector) ctrl.Manager {
	t.Helper()
	opts.Scheme = env.Scheme
	opts.Cache = controllers.ShardCacheOptions(ns, shard)
	opts.Metrics = metricsserver.Options{BindAddress: "0"}
	opts.HealthProbeBindAddress = "0"
	mgr, err := ctrl.NewManager(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return mgr
}

// gatherObjects registers collector alone and reads its series back.
func gatherObjects(t *testing.T, collector prometheus.Collector) map[objectSeries]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collector)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[objectSeries]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[objectSeries{l["kind"], l["ready"], l["reason"], l["stalled"]}] = m.GetGauge().GetValue()
		}
	}
	return got
}
