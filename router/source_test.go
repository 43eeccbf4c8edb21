package router

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"syscall"
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
// created there are routed within a second, deleted ones stop being routed, and the last index keeps
// answering while the router cannot reach the apiserver and while the apiserver is down. When it
// comes back the Source reconnects through a fresh cache, well before the informers' own retry.
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
	link := &cuttableLink{}
	cfg.Wrap(link.wrap)
	src, err := NewSource(ctx, SourceConfig{
		RESTConfig: cfg, Builder: r.builder, Table: r.table, Metrics: r.metrics,
		FreshBuilder: func() (*Builder, error) {
			return NewBuilder(BuildConfig{BaseDomain: "Apps.Example.NET.", Root: r.root})
		},
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
	deleteUser(ctx, t, c, "alice")
	waitFor(t, time.Now().Add(10*time.Second), "alice to be forgotten", func() bool {
		return r.do(request{host: "alice.example.com"}).Code == http.StatusNotFound
	})

	// The router cut off from the apiserver (its requests fail, its open watches break and lose
	// what they carry): carol's delete does not reach it, and the index it keeps serving still
	// routes her. The informers retry with their backoff meanwhile.
	createUser(ctx, t, c, "bob", "bob-app", "b1b1b1b1b1b1b1")
	createUser(ctx, t, c, "carol", "carol-app", "c1c1c1c1c1c1c1")
	for _, u := range []string{"bob", "carol"} {
		waitFor(t, time.Now().Add(10*time.Second), u+" to be routed", func() bool {
			return r.do(request{host: u + ".example.com"}).Code == ReplayStatus
		})
	}
	link.cut.Store(true)
	deleteUser(ctx, t, c, "carol")
	time.Sleep(time.Second)
	if got := r.do(request{host: "carol.example.com"}).Code; got != ReplayStatus {
		t.Fatalf("carol answered %d with the router cut off: the test's cut did not hide her delete", got)
	}

	// Then the apiserver goes away as well: known hosts keep being answered, readiness holds.
	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	link.cut.Store(false)
	for i := range 50 {
		if got := r.do(request{host: "bob.example.com"}); got.Code != ReplayStatus {
			t.Fatalf("check %d with the apiserver down: bob answered %d", i, got.Code)
		}
		if !src.Ready() {
			t.Fatal("the source went unready while the apiserver is down")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Back: a user created and one deleted right after the restart are routed and forgotten
	// within reconnectBound, and so is carol, whose delete the old cache never saw: the new index
	// comes from a fresh cache's full lists. Without the reconnect, the informers' backoff (by now
	// 12 s or more since their first failure, plus jitter) would decide when, and carol would
	// stay until their relist; the restart count tells the two apart whatever the jitter drew.
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	deleteUser(ctx, t, c, "bob")
	createUser(ctx, t, c, "dave", "dave-app", "d1d1d1d1d1d1d1")
	written = time.Now()
	const reconnectBound = 5 * time.Second
	waitFor(t, written.Add(reconnectBound), "dave to be routed after the restart", func() bool {
		return r.do(request{host: "dave.example.com"}).Code == ReplayStatus
	})
	t.Logf("dave routed %s after his write, right after the restart", time.Since(written).Round(time.Millisecond))
	waitFor(t, written.Add(reconnectBound), "bob and carol to be forgotten after the restart", func() bool {
		return r.do(request{host: "bob.example.com"}).Code == http.StatusNotFound &&
			r.do(request{host: "carol.example.com"}).Code == http.StatusNotFound
	})
	if got := counterValue(t, r.metrics.sourceRestarts); got != 1 {
		t.Errorf("hangar_router_source_restarts_total = %v after one outage, want 1", got)
	}
	if !src.Ready() {
		t.Error("the source is not ready after the restart")
	}
}

// cuttableLink stands between a client and the apiserver. While cut, requests fail as if refused
// and every response body (an informer's open watch) fails its next read, dropping what it read.
type cuttableLink struct{ cut atomic.Bool }

var errLinkCut = fmt.Errorf("test link cut: %w", syscall.ECONNREFUSED)

func (l *cuttableLink) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if l.cut.Load() {
			return nil, errLinkCut
		}
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body = &cuttableBody{ReadCloser: resp.Body, link: l}
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

type cuttableBody struct {
	io.ReadCloser
	link *cuttableLink
}

// Read checks the link after reading: bytes that arrived once it was cut are lost.
func (b *cuttableBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.link.cut.Load() {
		return 0, errLinkCut
	}
	return n, err
}

// deleteUser deletes what createUser created.
func deleteUser(ctx context.Context, t *testing.T, c client.Client, name string) {
	t.Helper()
	if err := c.Delete(ctx, &flyv1alpha1.UserMachine{ObjectMeta: metav1.ObjectMeta{Namespace: "tenants", Name: name}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Namespace: "tenants", Name: name}}); err != nil {
		t.Fatal(err)
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
