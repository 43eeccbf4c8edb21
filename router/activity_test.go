package router

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	toolscache "k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/activity"
	"github.com/hangar-dev/hangar/internal/testenv"
)

// activityEnv is a real apiserver with a namespace for the activity Leases.
type activityEnv struct {
	env *testenv.Env
	n   int
}

func startActivityEnv(t *testing.T) *activityEnv {
	t.Helper()
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	return &activityEnv{env: env}
}

// namespace makes a fresh namespace for one case.
func (e *activityEnv) namespace(t *testing.T) string {
	t.Helper()
	e.n++
	ns := fmt.Sprintf("activity-%d", e.n)
	if err := e.env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// replica is one router replica: its route index, handlers and activity publisher.
type replica struct {
	tr  *testRouter
	pub *activityPublisher
}

func (e *activityEnv) replica(t *testing.T, ns, name string, interval time.Duration, clock *clocktesting.FakeClock, objs ...any) *replica {
	t.Helper()
	tr := newTestRouter(t, func(_ *BuildConfig, h *HandlerConfig) { h.Now = clock.Now })
	rec := newActivityRecorder()
	tr.builder.activity = rec
	tr.set(objs...)
	pub, err := newActivityPublisher(e.env.Config, ActivityConfig{Interval: interval, Namespace: ns, Identity: name, Now: clock.Now}, rec, nil, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pub.factory.Start(ctx.Done())
	if !toolscache.WaitForCacheSync(ctx.Done(), pub.informer.HasSynced) {
		t.Fatal("activity Lease informer did not sync")
	}
	return &replica{tr: tr, pub: pub}
}

// lease reads an activity Lease from the apiserver (nil when there is none).
func (e *activityEnv) lease(t *testing.T, ns string, uid types.UID) *coordinationv1.Lease {
	t.Helper()
	var l coordinationv1.Lease
	err := e.env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: activity.LeaseName(uid)}, &l)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &l
}

// caughtUp waits until every replica's informer holds the Lease as the apiserver has it, so a check
// decides on what the others wrote.
func (e *activityEnv) caughtUp(t *testing.T, ns string, uid types.UID, replicas ...*replica) {
	t.Helper()
	want := ""
	if l := e.lease(t, ns, uid); l != nil {
		want = l.ResourceVersion
	}
	for _, r := range replicas {
		waitFor(t, time.Now().Add(30*time.Second), "the informer to catch up", func() bool {
			l, err := r.pub.lister.Get(activity.LeaseName(uid))
			if want == "" {
				return apierrors.IsNotFound(err)
			}
			return err == nil && l.ResourceVersion == want
		})
	}
}

func withUID(uid types.UID) appOpt { return func(a *flyv1alpha1.UserApp) { a.UID = uid } }

// TestActivityPublishing drives replicas with requests through their handlers while a test clock
// moves in quarter intervals, each replica checking once per step, and counts the Lease writes.
func TestActivityPublishing(t *testing.T) {
	e := startActivityEnv(t)
	const interval = 8 * time.Second
	const uid = types.UID("6a0e4f1c-0000-4000-8000-000000000001")
	objects := func() []any {
		return []any{
			newApp("team", "alice", "fly-alice", hosts("alice.test"), withUID(uid)),
			newMachine("team", "alice-a", "alice", "fly-alice", "m0a", machineHosts("a.alice.test")),
			newMachine("team", "alice-b", "alice", "fly-alice", "m0b", machineHosts("b.alice.test")),
		}
	}
	for _, tc := range []struct {
		name string
		// hosts[i] is where replica i sends its requests; one request per replica per step while
		// the step is below requestSteps.
		hosts        []string
		steps        int
		requestSteps int
		wantWrites   int
		// wantKeys are the keys the Lease ends with, each with the time of its last request.
		wantKeys map[string]int // key → step of the last request
	}{
		{name: "one replica, steady requests: created, then one write per interval",
			hosts: []string{"a.alice.test"}, steps: 13, requestSteps: 13, wantWrites: 4,
			wantKeys: map[string]int{"m0a": 12}},
		{name: "two replicas, steady requests to one machine: still one write per interval",
			hosts: []string{"a.alice.test", "a.alice.test"}, steps: 13, requestSteps: 13, wantWrites: 4,
			wantKeys: map[string]int{"m0a": 12}},
		{name: "three replicas, each alone seeing its requests: one write each per interval, merged",
			hosts: []string{"a.alice.test", "b.alice.test", "alice.test"}, steps: 13, requestSteps: 13, wantWrites: 12,
			wantKeys: map[string]int{"m0a": 12, "m0b": 12, activity.AppWide: 12}},
		{name: "two replicas seeing one machine, a third another: the third writes on its own",
			hosts: []string{"a.alice.test", "a.alice.test", "b.alice.test"}, steps: 13, requestSteps: 13, wantWrites: 8,
			wantKeys: map[string]int{"m0a": 12, "m0b": 12}},
		{name: "requests stop: the last one is published, then nothing",
			hosts: []string{"a.alice.test", "a.alice.test"}, steps: 13, requestSteps: 6, wantWrites: 3,
			wantKeys: map[string]int{"m0a": 5}},
		{name: "no requests: no Lease",
			hosts: []string{"a.alice.test", "b.alice.test"}, steps: 6, requestSteps: 0, wantWrites: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := e.namespace(t)
			clock := clocktesting.NewFakeClock(testNow)
			var replicas []*replica
			for i := range tc.hosts {
				replicas = append(replicas, e.replica(t, ns, fmt.Sprintf("router-%d", i), interval, clock, objects()...))
			}
			writes := 0
			for step := range tc.steps {
				for i, r := range replicas {
					if step < tc.requestSteps {
						// Several requests per step: the slot keeps the newest.
						for range 3 {
							if rec := r.tr.do(request{host: tc.hosts[i]}); rec.Code != ReplayStatus {
								t.Fatalf("request to %s: %d, want a replay", tc.hosts[i], rec.Code)
							}
						}
					}
				}
				for _, r := range replicas {
					counts := r.pub.publish(context.Background())
					writes += counts[publishCreated] + counts[publishUpdated]
					if counts[publishFailed] > 0 || counts[publishConflict] > 0 {
						t.Fatalf("step %d: %v (no failure or conflict expected: the replicas check in turn)", step, counts)
					}
					e.caughtUp(t, ns, uid, replicas...)
				}
				clock.Step(interval / activityChecks)
			}
			if writes != tc.wantWrites {
				t.Errorf("%d Lease writes over %d steps of %s, want %d", writes, tc.steps, interval/activityChecks, tc.wantWrites)
			}
			lease := e.lease(t, ns, uid)
			if tc.wantKeys == nil {
				if lease != nil {
					t.Errorf("a Lease was written without requests: %v", lease.Annotations)
				}
				return
			}
			if lease == nil {
				t.Fatal("no Lease")
			}
			times, err := activity.Of(lease)
			if err != nil {
				t.Fatal(err)
			}
			want := activity.Times{}
			for k, step := range tc.wantKeys {
				want[k] = testNow.Add(time.Duration(step) * interval / activityChecks).UTC()
			}
			if times.Encode() != want.Encode() {
				t.Errorf("Lease times %s, want %s", times.Encode(), want.Encode())
			}
			wantLabels := map[string]string{activity.Label: "true", activity.LabelAppNamespace: "team", activity.LabelAppName: "alice"}
			for k, v := range wantLabels {
				if lease.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, lease.Labels[k], v)
				}
			}
		})
	}
}

// TestActivityConflictSkips: a replica whose informer has not seen another replica's write sends
// the resourceVersion it read; the apiserver refuses it and the replica leaves the Lease alone.
func TestActivityConflictSkips(t *testing.T) {
	e := startActivityEnv(t)
	ns := e.namespace(t)
	const interval = 8 * time.Second
	const uid = types.UID("6a0e4f1c-0000-4000-8000-000000000002")
	clock := clocktesting.NewFakeClock(testNow)
	objs := []any{newApp("team", "bob", "fly-bob", hosts("bob.test"), withUID(uid)), newMachine("team", "bob-m", "bob", "fly-bob", "m0c")}
	first := e.replica(t, ns, "router-0", interval, clock, objs...)
	second := e.replica(t, ns, "router-1", interval, clock, objs...)

	first.tr.do(request{host: "bob.test"})
	if counts := first.pub.publish(context.Background()); counts[publishCreated] != 1 {
		t.Fatalf("first check: %v, want the Lease created", counts)
	}
	e.caughtUp(t, ns, uid, first, second)
	// The second replica's view stops here; the first writes again an interval later.
	stale := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	old, err := second.pub.lister.Get(activity.LeaseName(uid))
	if err != nil {
		t.Fatal(err)
	}
	if err := stale.Add(old.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	second.pub.lister = coordinationlisters.NewLeaseLister(stale).Leases(ns)

	clock.Step(interval)
	first.tr.do(request{host: "bob.test"})
	second.tr.do(request{host: "bob.test"})
	if counts := first.pub.publish(context.Background()); counts[publishUpdated] != 1 {
		t.Fatalf("first replica: %v, want one update", counts)
	}
	written := e.lease(t, ns, uid)
	if counts := second.pub.publish(context.Background()); counts[publishConflict] != 1 {
		t.Fatalf("second replica with a stale view: %v, want one conflict", counts)
	}
	if after := e.lease(t, ns, uid); after.ResourceVersion != written.ResourceVersion {
		t.Errorf("the Lease was written after a conflict: resourceVersion %s, want %s", after.ResourceVersion, written.ResourceVersion)
	}
}
