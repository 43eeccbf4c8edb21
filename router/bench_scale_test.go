package router

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	fcache "k8s.io/client-go/tools/cache/testing"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// The router at 100 000 routes. The Source is driven in-process, without a kube-apiserver: two
// client-go SharedIndexInformers (what controller-runtime's cache runs) list and watch client-go's
// fake ListerWatcher (tools/cache/testing.FakeControllerSource), with the router's cache
// transforms, and the Source registers on them the same handlers NewSource registers on the
// cache. A change counts from the moment it is written to the fake source, which is the moment an
// apiserver would send it on the watch: the apiserver's own latency is not the router's, and
// writing 100 000 objects to envtest's apiserver would take most of the run.

const (
	// scaleUsers each have a UserApp (a host and a subdomain) and a UserMachine: 100 000 routes.
	scaleUsers = 50_000
	// scaleChurn is the changes per second written in a window of churn.
	scaleChurn = 50
	// scaleRounds each last scaleRound under a steady request rate, with churn and quiet taking
	// turns every scaleWindow: bursts of other work on a shared machine, which last longer than a
	// window, then hit both alike (whole rounds of each, alternated, gave ratios from 0.1 to 13
	// on this machine). Requests due in the first scaleGuard of a quiet window count for neither:
	// the last changes of the churn window are still being built then. That holds while the
	// freshness p99, reported from the same run, stays well under the guard.
	scaleRounds = 9
	scaleRound  = 6 * time.Second
	scaleWindow = 500 * time.Millisecond
	scaleGuard  = 150 * time.Millisecond
	// scaleRate is the request rate throughout: well under what one core serves, so the p99 tells
	// how rebuilds delay requests, not how a saturated server queues them.
	scaleRate = 1000
)

// scaleRig is the router's Source and index fed by fake informers, with the writer's view of each
// user.
type scaleRig struct {
	r        *testRouter
	apps     *fcache.FakeControllerSource
	machines *fcache.FakeControllerSource
	src      *Source
	stop     context.CancelFunc
	done     chan error
	// host and machineID are each user's exact host and machine ID as last written.
	host      []string
	machineID []string
	seq       int
}

func scaleNamespace(i int) string { return fmt.Sprintf("tenant-%06d", i) }
func scaleFlyApp(i int) string    { return fmt.Sprintf("app-%06d", i) }
func scaleSubdomain(i int) string { return fmt.Sprintf("u%06d.apps.example.net", i) }

// scaleApp is user i's UserApp with its exact host as given. Every write is a new object: the fake
// source keeps the pointer it is given and the informer may still hold the previous one.
func scaleApp(i int, host string) *flyv1alpha1.UserApp {
	app := newApp(scaleNamespace(i), "app", scaleFlyApp(i), hosts(host), subdomain(fmt.Sprintf("u%06d", i)))
	app.UID = types.UID(fmt.Sprintf("app-uid-%06d", i))
	return app
}

func scaleMachine(i int, id string) *flyv1alpha1.UserMachine {
	m := newMachine(scaleNamespace(i), "vm", "app", scaleFlyApp(i), id)
	m.UID = types.UID(fmt.Sprintf("vm-uid-%06d", i))
	return m
}

// newScaleRig fills the fake sources with n users, starts the informers and the Source's loop (the
// same follow Run uses after the cache's sync) and waits for the first index.
func newScaleRig(t testing.TB, n int) *scaleRig {
	g := &scaleRig{
		r:    newTestRouter(t, withRealClock()),
		apps: fcache.NewFakeControllerSource(), machines: fcache.NewFakeControllerSource(),
		host: make([]string, n), machineID: make([]string, n),
		done: make(chan error, 1),
	}
	for i := range n {
		g.host[i] = fmt.Sprintf("u%06d.example.com", i)
		g.machineID[i] = fmt.Sprintf("%014x", i)
		g.apps.Add(scaleApp(i, g.host[i]))
		g.machines.Add(scaleMachine(i, g.machineID[i]))
	}
	g.src = newSource(SourceConfig{Builder: g.r.builder, Table: g.r.table, Metrics: g.r.metrics,
		Logger: logr.Discard(), RebuildDelay: DefaultRebuildDelay})
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	for _, inf := range []struct {
		lw        toolscache.ListerWatcher
		obj       kruntime.Object
		transform toolscache.TransformFunc
		watch     func(eventInformer) error
	}{
		{g.apps, &flyv1alpha1.UserApp{}, stripUserApp, g.src.watchApps},
		{g.machines, &flyv1alpha1.UserMachine{}, stripUserMachine, g.src.watchMachines},
	} {
		informer := toolscache.NewSharedIndexInformer(inf.lw, inf.obj, 0,
			toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
		if err := informer.SetTransform(inf.transform); err != nil {
			t.Fatal(err)
		}
		if err := inf.watch(informer); err != nil {
			t.Fatal(err)
		}
		go informer.Run(ctx.Done())
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), g.src.synced...) {
		t.Fatal("the informers never synced")
	}
	go func() { g.done <- g.src.follow(ctx, nil) }()
	<-g.src.Initialized()
	if got := g.r.table.Load().Routes(); got != 2*n {
		t.Fatalf("index has %d routes, want %d", got, 2*n)
	}
	g.warmUp(t)
	return g
}

// warmUp writes one change and waits until it is answered. In this rig the first changes after the
// informers' sync reach the handlers seconds late, while no index is built at all: that is the
// fake source and its informers starting, not the router's freshness.
func (g *scaleRig) warmUp(t testing.TB) {
	g.seq++
	g.machineID[0] = fmt.Sprintf("%014x", 1<<48+g.seq)
	g.machines.Modify(scaleMachine(0, g.machineID[0]))
	for deadline := time.Now().Add(time.Minute); !g.answers(g.host[0], g.machineID[0]); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first change was not routed within a minute")
		}
	}
}

func (g *scaleRig) close(t testing.TB) {
	g.stop()
	if err := <-g.done; err != nil {
		t.Error(err)
	}
	g.apps.Shutdown()
	g.machines.Shutdown()
}

// expectation is a written change and what the public handler answers once it is routed: host
// replays to machine.
type expectation struct {
	user    int
	host    string
	machine string
	written time.Time
}

// write makes one change to a user without a change in flight: most often the manager records a
// replaced Fly machine (a status write), else the user moves their exact host (a spec write).
func (g *scaleRig) write(rng *rand.Rand, busy map[int]bool) expectation {
	i := rng.IntN(len(g.host))
	for busy[i] {
		i = rng.IntN(len(g.host))
	}
	g.seq++
	written := time.Now()
	if rng.IntN(4) == 0 {
		g.host[i] = fmt.Sprintf("h%07d.u%06d.example.com", g.seq, i)
		g.apps.Modify(scaleApp(i, g.host[i]))
	} else {
		g.machineID[i] = fmt.Sprintf("%014x", 1<<48+g.seq)
		g.machines.Modify(scaleMachine(i, g.machineID[i]))
	}
	return expectation{user: i, host: g.host[i], machine: g.machineID[i], written: written}
}

// answers reports whether the public handler replays host to machine.
func (g *scaleRig) answers(host, machine string) bool {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = host
	rec := httptest.NewRecorder()
	g.r.public.ServeHTTP(rec, req)
	return rec.Code == ReplayStatus && strings.Contains(rec.Header().Get(HeaderReplay), "instance="+machine+";")
}

// freshnessWatch looks at every index the Source publishes and tells, for each change written,
// when the public handler first answers with it. It runs through the quiet windows too, so churn
// and quiet carry the same measuring load.
type freshnessWatch struct {
	g       *scaleRig
	mu      sync.Mutex
	pending []expectation
	busy    map[int]bool
	fresh   []time.Duration
	stop    chan struct{}
	done    chan struct{}
}

func (g *scaleRig) watchFreshness() *freshnessWatch {
	w := &freshnessWatch{g: g, busy: map[int]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// run checks the pending changes whenever a new index is published (polled every millisecond,
// which bounds the error of each figure).
func (w *freshnessWatch) run() {
	defer close(w.done)
	var last *Index
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		if ix := w.g.r.table.Load(); ix != last {
			last = ix
			w.check()
		}
	}
}

func (w *freshnessWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	kept := w.pending[:0]
	for _, e := range w.pending {
		if w.g.answers(e.host, e.machine) {
			w.fresh = append(w.fresh, time.Since(e.written))
			delete(w.busy, e.user)
		} else {
			kept = append(kept, e)
		}
	}
	w.pending = kept
}

// churnWindow tells whether a time offset into a round is in a window of churn.
func churnWindow(offset time.Duration) bool { return offset%(2*scaleWindow) < scaleWindow }

// churn writes scaleChurn changes per second on a fixed schedule from start for d, in the windows
// of churn.
func (w *freshnessWatch) churn(rng *rand.Rand, start time.Time, d time.Duration) {
	interval := time.Second / scaleChurn
	for k := range int(d / interval) {
		offset := time.Duration(k) * interval
		if !churnWindow(offset) {
			continue
		}
		time.Sleep(time.Until(start.Add(offset)))
		w.mu.Lock()
		e := w.g.write(rng, w.busy)
		w.busy[e.user] = true
		w.pending = append(w.pending, e)
		w.mu.Unlock()
	}
}

// settle waits until every change written is answered, or 10 s, and returns each change's time
// from write to answer since the last settle. A change still unanswered counts with its age then.
func (w *freshnessWatch) settle(t testing.TB) []time.Duration {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		w.mu.Lock()
		n := len(w.pending)
		w.mu.Unlock()
		if n == 0 {
			break
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.pending {
		t.Logf("the change of user %d was not answered within 10 s", e.user)
		w.fresh = append(w.fresh, time.Since(e.written))
	}
	fresh := w.fresh
	w.pending, w.fresh = nil, nil
	clear(w.busy)
	return fresh
}

func (w *freshnessWatch) close() {
	close(w.stop)
	<-w.done
}

// TestReportRouterScale reports, for `make bench`, the router at 100 000 routes: what one rebuild
// costs, how soon a change is answered under 50 changes per second, the heap per route, and how
// much rebuilds under that churn delay requests. It checks nothing.
func TestReportRouterScale(t *testing.T) {
	skipUnlessBench(t)
	reportScaleHeap(t)
	reportScaleRebuild(t)
	reportScaleChurn(t)
}

// reportScaleChurn runs rounds of churn and quiet windows under a steady request rate over
// loopback HTTP, and reports the freshness p99 and the ratio of the request p99 in churn to that
// in quiet (medians of the rounds).
func reportScaleChurn(t *testing.T) {
	g := newScaleRig(t, scaleUsers)
	defer g.close(t)
	addr, stop := loopback(t, g.r.public)
	defer stop()
	// Subdomains never move, so every request is a replay whatever the churn changes.
	targets := make([]string, scaleUsers)
	for i := range targets {
		targets[i] = scaleSubdomain(i)
	}
	shuffle(targets)
	watch := g.watchFreshness()
	defer watch.close()
	rng := rand.New(rand.NewPCG(12, 5))
	var freshP99, ratios []float64
	var all []time.Duration
	for range scaleRounds {
		start := time.Now().Add(10 * time.Millisecond)
		churned := make(chan struct{})
		go func() { defer close(churned); watch.churn(rng, start, scaleRound) }()
		lat := scheduledLatencies(t, addr, targets, scaleRate, start, scaleRound)
		<-churned
		fresh := watch.settle(t)
		all = append(all, fresh...)
		churn, quiet := splitByWindow(lat, time.Second/scaleRate)
		ratios = append(ratios, float64(percentile(churn, 0.99))/float64(percentile(quiet, 0.99)))
		freshP99 = append(freshP99, float64(percentile(fresh, 0.99)))
		t.Logf("round: request p99 %v in churn, %v in quiet; %d changes, freshness p50 %v p99 %v max %v",
			percentile(churn, 0.99), percentile(quiet, 0.99), len(fresh),
			percentile(fresh, 0.5), percentile(fresh, 0.99), percentile(fresh, 1))
	}
	t.Logf("freshness p99 of all %d changes %v; request p99 ratios %.2f", len(all), percentile(all, 0.99), ratios)
	// Freshness: issue 12's goal, a change answered within a second at 50 changes per second.
	report("router_freshness_p99_ms_100k", median(freshP99)/1e6, "ms", "<=", 1000)
	// Half again, for "not much worse": a change costs the index well under a millisecond per
	// 50 ms batch, but the informers and the collector share the two cores with the requests,
	// whose p99 here is a few milliseconds. (The full rebuild measured 2.3 to 7.8 times.)
	report("router_p99_churn_ratio_100k", median(ratios), "x", "<=", 1.5)
}

// splitByWindow sorts the latencies of requests sent every interval into those due in windows of
// churn and those due in quiet windows after the guard.
func splitByWindow(lat []time.Duration, interval time.Duration) (churn, quiet []time.Duration) {
	for i, l := range lat {
		switch offset := time.Duration(i) * interval; {
		case churnWindow(offset):
			churn = append(churn, l)
		case offset%scaleWindow >= scaleGuard:
			quiet = append(quiet, l)
		}
	}
	return churn, quiet
}

// reportScaleRebuild measures what the Source's rebuild after one change costs at 100 000 routes
// (the Builder gets a replaced machine, then builds), and the first build after the initial sync.
func reportScaleRebuild(t *testing.T) {
	r, _ := scaleWorld(t, scaleUsers)
	rebuild := func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			u := i % scaleUsers
			r.builder.UpsertMachine(newMachine(scaleNamespace(u), "vm", "app", scaleFlyApp(u), fmt.Sprintf("%014x", 1<<48+i)))
			ix, _ := r.builder.Build()
			r.table.Store(ix)
		}
	}
	first := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			fresh := newTestRouter(b, withRealClock())
			for u := range scaleUsers {
				fresh.builder.UpsertApp(newApp(scaleNamespace(u), "app", scaleFlyApp(u), hosts(fmt.Sprintf("u%06d.example.com", u)), subdomain(fmt.Sprintf("u%06d", u))))
				fresh.builder.UpsertMachine(newMachine(scaleNamespace(u), "vm", "app", scaleFlyApp(u), fmt.Sprintf("%014x", u)))
			}
			runtime.GC()
			b.StartTimer()
			fresh.builder.Build()
		}
	}
	var ms, mb, allocs, firstMs, firstMB []float64
	alternate(benchRounds, func() float64 {
		b := testing.Benchmark(rebuild)
		ms = append(ms, float64(b.NsPerOp())/1e6)
		mb = append(mb, float64(b.AllocedBytesPerOp())/1e6)
		allocs = append(allocs, float64(b.AllocsPerOp()))
		return 0
	}, func() float64 {
		b := testing.Benchmark(first)
		firstMs = append(firstMs, float64(b.NsPerOp())/1e6)
		firstMB = append(firstMB, float64(b.AllocedBytesPerOp())/1e6)
		return 0
	})
	t.Logf("rebuild after one change: %v ms, %v MB, %v allocs; first build: %v ms, %v MB", ms, mb, allocs, firstMs, firstMB)
	// A tenth of the 50 ms the Source waits to gather a batch: freshness is then that wait, and
	// 20 batches a second take at most a tenth of a core.
	report("router_rebuild_ms_100k", median(ms), "ms", "<=", 5)
	// At 20 batches a second, 10 MB/s of garbage at most: a collection of the ~220 MB heap no
	// more often than every 20 s or so.
	report("router_rebuild_alloc_mb_100k", median(mb), "MB", "<=", 0.5)
	// A change allocates for what it touches (its group, its hosts, their shards), never per route.
	report("router_rebuild_allocs_100k", median(allocs), "allocs", "<=", 100)
	// Once per start, before /readyz: no longer than the informers' own list of 100 000 objects
	// takes on this machine (seconds).
	report("router_first_build_ms_100k", median(firstMs), "ms", "<=", 5000)
}

// reportScaleHeap reports the heap the router holds per route at 100 000 routes: the cached
// objects as the informers keep them (decoded from the apiserver's JSON, stripped), the Builder's
// state and the index, with every target's replay signed once.
func reportScaleHeap(t *testing.T) {
	r := newTestRouter(t)
	apps, machines := newStore(), newStore()
	appJSON := strings.ReplaceAll(userAppJSON, "\n", "")
	machineJSON := strings.ReplaceAll(userMachineJSON, "\n", "")
	before := heapInUse()
	for i := range scaleUsers {
		sub := fmt.Sprintf("u%06d", i)
		app := cacheLike[flyv1alpha1.UserApp](t, apps, fmt.Sprintf(appJSON, scaleNamespace(i), i, sub), stripUserApp)
		r.builder.UpsertApp(app.(*flyv1alpha1.UserApp))
		m := cacheLike[flyv1alpha1.UserMachine](t, machines, fmt.Sprintf(machineJSON, scaleNamespace(i), i, sub), stripUserMachine)
		r.builder.UpsertMachine(m.(*flyv1alpha1.UserMachine))
	}
	r.publish()
	ix := r.table.Load()
	for i := range scaleUsers {
		for _, h := range []string{fmt.Sprintf("u%06d.example.com", i), scaleSubdomain(i)} {
			tgt, _ := resolveHost(ix, h)
			tgt.replay.values(testNow)
		}
	}
	after := heapInUse()
	routes := ix.Routes()
	perRoute := float64(int64(after)-int64(before)) / float64(routes)
	t.Logf("heap: %d routes, %d B before, %d B after: %.0f B per route (cache, builder, index, signed replays)", routes, before, after, perRoute)
	// 100 000 routes must fit config/router's 512 MiB limit at GOGC=100, which lets the heap
	// grow to twice what is live: 2 x 100 000 x 2560 B = 512 MB.
	report("router_heap_per_route_bytes_100k", perRoute, "B", "<=", 2560)
	runtime.KeepAlive(r)
	runtime.KeepAlive(apps)
	runtime.KeepAlive(machines)
}
