package router

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/testenv"
)

// TestSourceFollowsTheCluster runs the router's cache against a real kube-apiserver: objects
// created there are routed within a second, deleted ones stop being routed, and while the
// apiserver is down the last index keeps answering. (Reconnection after a restart is not checked
// here: envtest's restarted apiserver gets new certificates, so no existing client can reach it.)
func TestSourceFollowsTheCluster(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	r := newTestRouter(t)
	// kube-apiserver stops only once its open watches end; a short client-side timeout ends the
	// informers' watches every few seconds (they resume from their resourceVersion), so
	// StopAPIServer does not wait out envtest's 20 s stop timeout. Production keeps the default.
	cfg := rest.CopyConfig(env.Config)
	cfg.Timeout = 3 * time.Second
	src, err := NewSource(ctx, SourceConfig{
		RESTConfig: cfg, Builder: r.builder, Table: r.table, Metrics: r.metrics,
		Logger: logr.Discard(), RebuildDelay: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- src.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Source.Run: %v", err)
		}
	})
	select {
	case <-src.Initialized():
	case <-time.After(60 * time.Second):
		t.Fatal("the source never published its first index")
	}
	if r.do(request{host: "alice.example.com"}).Code != http.StatusNotFound {
		t.Fatal("an empty cluster routes alice")
	}

	c := env.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenants"}}); err != nil {
		t.Fatal(err)
	}

	// Create → routed within 1 s of the last write.
	createUser(ctx, t, c, "alice", "alice-app", "a1a1a1a1a1a1a1")
	written := time.Now()
	waitFor(t, written.Add(time.Second), "alice to be routed within 1s", func() bool {
		return r.do(request{host: "alice.example.com"}).Code == ReplayStatus
	})
	if got := replayOf(t, r.do(request{host: "alice.example.com"})); got.App != "alice-app" || got.Instance != "a1a1a1a1a1a1a1" {
		t.Fatalf("alice replays to %+v", got)
	}

	// The cache holds stripped objects only.
	var cached flyv1alpha1.UserMachine
	if err := src.cache.Get(ctx, client.ObjectKey{Namespace: "tenants", Name: "alice"}, &cached); err != nil {
		t.Fatal(err)
	}
	if len(cached.ManagedFields) != 0 || cached.Spec.Image != "" || len(cached.Status.Conditions) != 1 || cached.Status.MachineID == "" ||
		cached.UID == "" { // the UID orders host claims
		t.Errorf("cached UserMachine not stripped to what routing reads: %+v", cached)
	}

	// Delete → 404.
	if err := c.Delete(ctx, &flyv1alpha1.UserMachine{ObjectMeta: metav1.ObjectMeta{Namespace: "tenants", Name: "alice"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Namespace: "tenants", Name: "alice"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Now().Add(10*time.Second), "alice to be forgotten", func() bool {
		return r.do(request{host: "alice.example.com"}).Code == http.StatusNotFound
	})

	// Apiserver away → known hosts keep being answered, readiness holds.
	createUser(ctx, t, c, "bob", "bob-app", "b1b1b1b1b1b1b1")
	waitFor(t, time.Now().Add(10*time.Second), "bob to be routed", func() bool {
		return r.do(request{host: "bob.example.com"}).Code == ReplayStatus
	})
	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if got := r.do(request{host: "bob.example.com"}); got.Code != ReplayStatus {
			t.Fatalf("check %d with the apiserver down: bob answered %d", i, got.Code)
		}
		if !src.Ready() {
			t.Fatal("the source went unready while the apiserver is down")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createUser creates a UserApp with host <name>.example.com and one UserMachine, both with the
// status the manager would write.
func createUser(ctx context.Context, t *testing.T, c client.Client, name, flyApp, machineID string) {
	t.Helper()
	app := &flyv1alpha1.UserApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenants", Name: name},
		Spec: flyv1alpha1.UserAppSpec{Routing: &flyv1alpha1.AppRouting{
			Hosts: []string{name + ".example.com"},
		}},
	}
	if err := c.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	app.Status.AppName = flyApp
	if err := c.Status().Update(ctx, app); err != nil {
		t.Fatal(err)
	}
	m := &flyv1alpha1.UserMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenants", Name: name},
		Spec:       flyv1alpha1.UserMachineSpec{AppRef: flyv1alpha1.AppReference{Name: name}, Image: "registry.fly.io/x:1"},
	}
	if err := c.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	m.Status = flyv1alpha1.UserMachineStatus{
		AppName:   flyApp,
		MachineID: machineID,
		Conditions: []metav1.Condition{{
			Type: flyv1alpha1.MachineCreatedCondition, Status: metav1.ConditionTrue, Reason: flyv1alpha1.CreatedReason,
			Message: "created", LastTransitionTime: metav1.Now(),
		}},
	}
	if err := c.Status().Update(ctx, m); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, deadline time.Time, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
