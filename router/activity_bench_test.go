package router

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// BenchmarkHandlerWithActivity is BenchmarkHandler with activity on: every replay also records the
// request in its machine's slot (compare the two for the cost of recording).
func BenchmarkHandlerWithActivity(b *testing.B) {
	r := newTestRouter(b, withRealClock())
	r.builder.activity = newActivityRecorder()
	hostList := make([]string, 0, 2000)
	for i := range 1000 {
		ns := fmt.Sprintf("tenant-%06d", i)
		flyApp := fmt.Sprintf("app-%06d", i)
		host := fmt.Sprintf("u%06d.example.com", i)
		r.builder.UpsertApp(newApp(ns, "app", flyApp, hosts(host), subdomain(fmt.Sprintf("u%06d", i)),
			withUID(types.UID(fmt.Sprintf("uid-%06d", i)))))
		r.builder.UpsertMachine(newMachine(ns, "vm", "app", flyApp, fmt.Sprintf("%014x", i)))
		hostList = append(hostList, host, fmt.Sprintf("u%06d.apps.example.net", i))
	}
	r.publish()
	handlerBench(r.public, requestsFor(hostList))(b)
	if got := len(r.builder.activity.snapshot()); got != 1000 {
		b.Fatalf("%d apps with activity, want 1000", got)
	}
}

// TestReportActivityWrites measures the API writes the activity Leases cost: activeApps UserApps
// with steady traffic on every one of activityReplicas replicas (requests stamped into the
// recorders directly, as the handler does), publishing with their real loops against a real
// apiserver. It prints the writes per second and per app per interval, against the baseline of one
// write per app per replica per interval (every replica writing what it saw).
func TestReportActivityWrites(t *testing.T) {
	skipUnlessBench(t)
	const (
		activeApps       = 10_000
		activityReplicas = 3
		interval         = 10 * time.Second
		measured         = 3 // intervals
	)
	e := startActivityEnv(t)
	ns := e.namespace(t)
	cfg := rest.CopyConfig(e.env.Config)
	cfg.QPS, cfg.Burst = -1, 0 // as kubeconfig.Load: the apiserver's fairness limits, not the client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var pubs []*activityPublisher
	var wg sync.WaitGroup
	for r := range activityReplicas {
		rec := newActivityRecorder()
		slots := make([]*activitySlot, activeApps)
		for i := range activeApps {
			app := &flyv1alpha1.UserApp{}
			app.Namespace, app.Name = fmt.Sprintf("tenant-%05d", i), "app"
			app.UID = types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
			slots[i] = rec.slot(rec.app(app), fmt.Sprintf("%014x", i))
		}
		pub, err := newActivityPublisher(cfg, ActivityConfig{Interval: interval, Namespace: ns, Identity: fmt.Sprintf("router-%d", r)}, rec, nil, logr.Discard())
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, pub)
		wg.Go(func() { pub.run(ctx) })
		wg.Go(func() { // steady traffic: every app gets a request on every replica every 100 ms
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-tick.C:
					for _, s := range slots {
						s.touch(now)
					}
				}
			}
		})
	}
	writes := func() float64 {
		n := 0.0
		for _, p := range pubs {
			n += counterValue(t, p.results[publishCreated]) + counterValue(t, p.results[publishUpdated])
		}
		return n
	}
	// Warm-up: every Lease created, then one more interval so the writes are in their steady rhythm.
	waitFor(t, time.Now().Add(3*time.Minute), "every activity Lease to exist", func() bool {
		created := 0.0
		for _, p := range pubs {
			created += counterValue(t, p.results[publishCreated])
		}
		return created >= activeApps
	})
	time.Sleep(interval)
	before, start := writes(), time.Now()
	time.Sleep(measured * interval)
	n, elapsed := writes()-before, time.Since(start)
	cancel()
	wg.Wait()

	perSecond := n / elapsed.Seconds()
	perAppInterval := n / activeApps / (elapsed.Seconds() / interval.Seconds())
	report("activity_lease_writes_per_s_10k_apps_3_replicas", perSecond, "writes/s", "<=", activeApps/interval.Seconds())
	report("activity_lease_writes_per_app_per_interval", perAppInterval, "writes", "<=", 1)
	report("activity_lease_writes_vs_every_replica_writing", perAppInterval/activityReplicas, "ratio", "<=", 1.0/activityReplicas)
}
