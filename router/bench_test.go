package router

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks. `make bench` runs the TestReport... tests (HANGAR_BENCH=1) and keeps their
// `BENCH <name> <value> <unit> target <op> <value>` lines. Every figure with a baseline is measured
// against it in the same run, alternating rounds, and reported as the median of the rounds. They
// are numbers, not assertions: nothing here fails on a slow machine.

const benchRounds = 5

func skipUnlessBench(t *testing.T) {
	t.Helper()
	if os.Getenv("HANGAR_BENCH") != "1" {
		t.Skip("benchmark: set HANGAR_BENCH=1 (make bench)")
	}
}

func report(name string, value float64, unit, op string, target float64) {
	fmt.Printf("BENCH %s %s %s target %s %s\n", name, trim(value), unit, op, trim(target))
}

func trim(v float64) string {
	switch {
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func percentile(xs []time.Duration, p float64) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// alternate runs each measurement once per round, in turn, so drift in the machine's load hits all
// of them alike, and returns each one's results.
func alternate(rounds int, measure ...func() float64) [][]float64 {
	out := make([][]float64, len(measure))
	for range rounds {
		for i, m := range measure {
			out[i] = append(out[i], m())
		}
	}
	return out
}

// scaleWorld builds a router (on the real clock) with n UserApps, each with one machine, one host
// and one subdomain (2n routes), and returns it with the hosts.
func scaleWorld(t testing.TB, n int) (*testRouter, []string) {
	r := newTestRouter(t, withRealClock())
	hostList := make([]string, 0, 2*n)
	for i := range n {
		ns := fmt.Sprintf("tenant-%06d", i)
		flyApp := fmt.Sprintf("app-%06d", i)
		host := fmt.Sprintf("u%06d.example.com", i)
		r.builder.UpsertApp(newApp(ns, "app", flyApp, hosts(host), subdomain(fmt.Sprintf("u%06d", i))))
		r.builder.UpsertMachine(newMachine(ns, "vm", "app", flyApp, fmt.Sprintf("%014x", i)))
		hostList = append(hostList, host, fmt.Sprintf("u%06d.apps.example.net", i))
	}
	r.publish()
	if got := r.table.Load().Routes(); got != 2*n {
		t.Fatalf("index has %d routes, want %d", got, 2*n)
	}
	return r, hostList
}

// baselineHandler is the bare net/http handler the router is compared with: it writes a constant
// fly-replay header and the same status, nothing else.
func baselineHandler(replay string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(HeaderReplay, replay)
		w.WriteHeader(ReplayStatus)
	})
}

// requestsFor prebuilds one request per host (port included, as the Fly Proxy sends it).
func requestsFor(hostList []string) []*http.Request {
	reqs := make([]*http.Request, len(hostList))
	for i, h := range hostList {
		req, _ := http.NewRequest(http.MethodGet, "http://"+h+":8080/", nil)
		reqs[i] = req
	}
	rand.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	return reqs
}

func handlerBench(h http.Handler, reqs []*http.Request) func(b *testing.B) {
	return func(b *testing.B) {
		w := &reusableWriter{h: http.Header{}}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			w.reset()
			h.ServeHTTP(w, reqs[i%len(reqs)])
		}
		if w.code != ReplayStatus {
			b.Fatalf("status %d", w.code)
		}
	}
}

func sampleReplay(r *testRouter, host string) string {
	rec := r.do(request{host: host})
	return rec.Header().Get(HeaderReplay)
}

// BenchmarkHandler is the router's public handler answering a replay (index of 2 000 routes).
func BenchmarkHandler(b *testing.B) {
	r, hostList := scaleWorld(b, 1000)
	handlerBench(r.public, requestsFor(hostList))(b)
}

// BenchmarkBaselineHandler is the bare handler writing a constant fly-replay header.
func BenchmarkBaselineHandler(b *testing.B) {
	r, hostList := scaleWorld(b, 1000)
	handlerBench(baselineHandler(sampleReplay(r, hostList[0])), requestsFor(hostList))(b)
}

// BenchmarkLookup is the hot path alone: canonical host → target → ready-made replay value.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{50, 50_000} {
		b.Run(fmt.Sprintf("routes=%d", 2*n), func(b *testing.B) {
			r, hostList := scaleWorld(b, n)
			ix := r.table.Load()
			for _, h := range hostList { // sign every target's bucket first: that is not lookup
				t, _ := resolveHost(ix, h)
				t.replay.values(time.Now())
			}
			now := time.Now()
			b.ReportAllocs()
			var sink *replayValues
			for i := 0; b.Loop(); i++ {
				t, _ := resolveHost(ix, hostList[i%len(hostList)])
				sink = t.replay.values(now)
			}
			_ = sink
		})
	}
}

// BenchmarkNormalizeHost is the slow path taken by hosts that are not canonical.
func BenchmarkNormalizeHost(b *testing.B) {
	for _, h := range []string{"Alice.Example.com:443", "bücher.example.com"} {
		b.Run(h, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizeHost(h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestReportHandlerCost reports, for `make bench`, the in-process cost of the router's handler
// against the bare handler. It checks nothing.
func TestReportHandlerCost(t *testing.T) {
	skipUnlessBench(t)
	r, hostList := scaleWorld(t, 1000)
	reqs := requestsFor(hostList)
	routerBench := handlerBench(r.public, reqs)
	baseBench := handlerBench(baselineHandler(sampleReplay(r, hostList[0])), reqs)
	var routerAllocs, baseAllocs []float64
	res := alternate(benchRounds,
		func() float64 {
			b := testing.Benchmark(routerBench)
			routerAllocs = append(routerAllocs, float64(b.AllocsPerOp()))
			return float64(b.NsPerOp())
		},
		func() float64 {
			b := testing.Benchmark(baseBench)
			baseAllocs = append(baseAllocs, float64(b.AllocsPerOp()))
			return float64(b.NsPerOp())
		})
	routerNs, baseNs := median(res[0]), median(res[1])
	t.Logf("handler: router %.0f ns/op, baseline %.0f ns/op; allocs router %v baseline %v", routerNs, baseNs, routerAllocs, baseAllocs)
	report("router_handler_ns_ratio", routerNs/baseNs, "x", "<=", 1.15)
	report("router_handler_allocs_per_op", median(routerAllocs), "allocs", "<=", 0)
}

// TestReportIndexScale reports, for `make bench`, request latency (p99 over loopback HTTP) with 100
// and with 100 000 routes in the index. It checks nothing. Each round sends requests one after
// another on one kept-alive connection, so the p99 is the cost of a request and not the jitter of
// a load generator's timers (which, on two shared cores, varies by more than the index could). The
// in-process lookup alone is BenchmarkLookup.
func TestReportIndexScale(t *testing.T) {
	skipUnlessBench(t)
	small, smallHosts := scaleWorld(t, 50)
	large, largeHosts := scaleWorld(t, 50_000)
	smallAddr, stopSmall := loopback(t, small.public)
	defer stopSmall()
	largeAddr, stopLarge := loopback(t, large.public)
	defer stopLarge()
	shuffle(smallHosts)
	shuffle(largeHosts)
	const perRound = 20_000
	res := alternate(benchRounds,
		func() float64 { return float64(sequentialP99(t, smallAddr, smallHosts, perRound)) },
		func() float64 { return float64(sequentialP99(t, largeAddr, largeHosts, perRound)) })
	smallP99, largeP99 := median(res[0]), median(res[1])
	t.Logf("sequential p99: 100 routes %v, 100 000 routes %v", time.Duration(smallP99), time.Duration(largeP99))
	report("router_index_p99_ratio_100k_vs_100", largeP99/smallP99, "x", "<=", 1.1)
}

// sequentialP99 sends n requests one at a time over one connection and returns the p99 round trip.
func sequentialP99(t *testing.T, addr string, hostList []string, n int) time.Duration {
	c := loadClient()
	defer c.CloseIdleConnections()
	lat := make([]time.Duration, n)
	for i := range lat {
		start := time.Now()
		if err := send(c, addr, hostList[i%len(hostList)]); err != nil {
			t.Fatal(err)
		}
		lat[i] = time.Since(start)
	}
	return percentile(lat, 0.99)
}

func shuffle(s []string) { rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] }) }

// loopback runs h on a real loopback listener with the router's server settings.
func loopback(t *testing.T, h http.Handler) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer("", h, DefaultServerSettings, nil)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }
}

const loadWorkers = 16

func loadClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: loadWorkers, MaxIdleConnsPerHost: loadWorkers, DisableCompression: true,
	}}
}

func send(c *http.Client, addr, host string) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return err
	}
	req.Host = host
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if res.StatusCode != ReplayStatus {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}

// maxRate drives addr with loadWorkers closed-loop workers for d and returns requests per second.
func maxRate(t *testing.T, addr string, hostList []string, d time.Duration) float64 {
	c := loadClient()
	defer c.CloseIdleConnections()
	var done atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range loadWorkers {
		wg.Go(func() {
			for i := w; time.Now().Before(stop); i += loadWorkers {
				if err := send(c, addr, hostList[i%len(hostList)]); err != nil {
					t.Error(err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / d.Seconds()
}

// latencyAt sends rate requests per second for d on a fixed schedule and returns the p99 of the
// time from each request's scheduled start to its answer (so a stall delays every request due
// during it: no coordinated omission).
func latencyAt(t *testing.T, addr string, hostList []string, rate float64, d time.Duration) time.Duration {
	return percentile(scheduledLatencies(t, addr, hostList, rate, time.Now().Add(10*time.Millisecond), d), 0.99)
}

// scheduledLatencies sends rate requests per second for d from start on, request i due at
// start + i/rate, and returns each one's time from its due time to its answer.
func scheduledLatencies(t *testing.T, addr string, hostList []string, rate float64, start time.Time, d time.Duration) []time.Duration {
	c := loadClient()
	defer c.CloseIdleConnections()
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 * loadWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				due := start.Add(time.Duration(i) * interval)
				time.Sleep(time.Until(due))
				if err := send(c, addr, hostList[i%len(hostList)]); err != nil {
					t.Error(err)
					return
				}
				lat[i] = time.Since(due)
			}
		})
	}
	wg.Wait()
	return lat
}

// TestReportLoopback reports, for `make bench`, throughput and tail latency over loopback HTTP,
// router against the bare handler with the same server settings. It checks nothing.
func TestReportLoopback(t *testing.T) {
	skipUnlessBench(t)
	r, hostList := scaleWorld(t, 1000)
	routerAddr, stopRouter := loopback(t, r.public)
	defer stopRouter()
	baseAddr, stopBase := loopback(t, baselineHandler(sampleReplay(r, hostList[0])))
	defer stopBase()
	shuffle(hostList)

	const d = time.Second
	rates := alternate(benchRounds,
		func() float64 { return maxRate(t, routerAddr, hostList, d) },
		func() float64 { return maxRate(t, baseAddr, hostList, d) })
	routerRate, baseRate := median(rates[0]), median(rates[1])
	t.Logf("max rate: router %.0f req/s, baseline %.0f req/s", routerRate, baseRate)
	report("router_loopback_throughput_ratio", routerRate/baseRate, "x", ">=", 0.90)

	half := baseRate / 2
	p99s := alternate(benchRounds,
		func() float64 { return float64(latencyAt(t, routerAddr, hostList, half, d)) },
		func() float64 { return float64(latencyAt(t, baseAddr, hostList, half, d)) })
	routerP99, baseP99 := median(p99s[0]), median(p99s[1])
	t.Logf("p99 at %.0f req/s: router %v, baseline %v", half, time.Duration(routerP99), time.Duration(baseP99))
	report("router_loopback_p99_half_load_us", routerP99/1e3, "us", "<=", baseP99/1e3+100)
}

// BenchmarkRebuild is the index update after one change (a replaced machine) at 100 000 routes
// (50 000 UserApps and UserMachines): one group rebuilt, its hosts decided again, the shards they
// touch copied.
func BenchmarkRebuild(b *testing.B) {
	r, _ := scaleWorld(b, 50_000)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		u := i % 50_000
		r.builder.UpsertMachine(newMachine(fmt.Sprintf("tenant-%06d", u), "vm", "app", fmt.Sprintf("app-%06d", u), fmt.Sprintf("%014x", 1<<48+i)))
		ix, _ := r.builder.Build()
		r.table.Store(ix)
	}
}

// BenchmarkFirstBuild is the first build after the initial sync at 100 000 routes: every group.
func BenchmarkFirstBuild(b *testing.B) {
	r, _ := scaleWorld(b, 50_000)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		r.builder.markAllDirty()
		r.builder.built = newBuilt()
		b.StartTimer()
		ix, _ := r.builder.Build()
		r.table.Store(ix)
	}
}
