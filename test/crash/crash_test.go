package crash_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/testenv/managerproc"
)

const (
	token = "fo1_crash-suite-token"
	// convergeTimeout bounds each wait for convergence: a killed update leaves its lease held
	// for up to its TTL, so it must exceed that by far.
	convergeTimeout = time.Minute
)

// scenario is one kind of work a point interrupts: setup builds and converges the world before
// the kill is armed; step is the change the kill interrupts.
type scenario struct {
	name string
	// noFlyWork marks a step that makes no Fly call (deletionPolicy Orphan): its kill comes on a
	// timer.
	noFlyWork bool
	setup     func(w *world, rng *rand.Rand) error
	step      func(w *world, rng *rand.Rand) error
}

// scenarios spread the points over every kind of Fly work the manager does.
var scenarios = []scenario{
	{name: "app-create", step: func(w *world, _ *rand.Rand) error {
		return w.create(w.newUser("u", 1, flyv1alpha1.PowerStateAuto, false))
	}},
	{name: "machine-create",
		setup: func(w *world, _ *rand.Rand) error {
			return w.create(w.newUser("u", 0, flyv1alpha1.PowerStateAuto, false))
		},
		step: func(w *world, _ *rand.Rand) error {
			u := w.users[0]
			if err := w.addMachine(u); err != nil {
				return err
			}
			return w.addMachine(u)
		}},
	{name: "update-under-lease",
		setup: func(w *world, _ *rand.Rand) error {
			return w.create(w.newUser("u", 1, flyv1alpha1.PowerStateAuto, false))
		},
		step: func(w *world, _ *rand.Rand) error {
			return w.updateMachines(w.users[0], imageV2, w.users[0].power)
		}},
	{name: "secrets-rotate",
		setup: func(w *world, _ *rand.Rand) error {
			return w.create(w.newUser("u", 1, flyv1alpha1.PowerStateAuto, false))
		},
		step: func(w *world, _ *rand.Rand) error { return w.rotateSecret(w.users[0], "s2") }},
	{name: "power",
		setup: func(w *world, rng *rand.Rand) error {
			powers := []flyv1alpha1.PowerState{flyv1alpha1.PowerStateStarted, flyv1alpha1.PowerStateStopped, flyv1alpha1.PowerStateSuspended}
			return w.create(w.newUser("u", 1, powers[rng.IntN(len(powers))], false))
		},
		step: func(w *world, rng *rand.Rand) error {
			u := w.users[0]
			next := map[flyv1alpha1.PowerState][]flyv1alpha1.PowerState{
				flyv1alpha1.PowerStateStarted:   {flyv1alpha1.PowerStateStopped, flyv1alpha1.PowerStateSuspended},
				flyv1alpha1.PowerStateStopped:   {flyv1alpha1.PowerStateStarted, flyv1alpha1.PowerStateSuspended},
				flyv1alpha1.PowerStateSuspended: {flyv1alpha1.PowerStateStarted, flyv1alpha1.PowerStateStopped},
			}[u.power]
			return w.updateMachines(u, u.image, next[rng.IntN(len(next))])
		}},
	{name: "delete",
		setup: func(w *world, _ *rand.Rand) error {
			return w.create(w.newUser("u", 2, flyv1alpha1.PowerStateAuto, false))
		},
		step: func(w *world, _ *rand.Rand) error { return w.delete(w.users[0]) }},
	{name: "orphan", noFlyWork: true,
		setup: func(w *world, _ *rand.Rand) error {
			return w.create(w.newUser("u", 1, flyv1alpha1.PowerStateAuto, true))
		},
		step: func(w *world, _ *rand.Rand) error { return w.delete(w.users[0]) }},
	{name: "create-then-delete", step: func(w *world, rng *rand.Rand) error {
		u := w.newUser("u", 1, flyv1alpha1.PowerStateAuto, false)
		if err := w.create(u); err != nil {
			return err
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		return w.delete(u)
	}},
}

// killPlan says when a point kills the manager: with the afterCalls-th Fly call of the step, while
// the call is served (the answer never arrives) or a few milliseconds after its answer (the
// manager is acting on it); or after delay into the step, whichever comes first.
type killPlan struct {
	afterCalls int // 0: the timer alone
	answered   bool
	delay      time.Duration
}

// drawPlan draws a point's kill: most come with one of the step's first Fly calls; the rest, and
// every kill of a step that makes no Fly call (Orphan), come on a short timer that lands between
// calls, in the manager's Kubernetes reads and writes.
func drawPlan(rng *rand.Rand, flyWork bool) killPlan {
	if flyWork && rng.IntN(10) < 7 {
		return killPlan{afterCalls: 1 + rng.IntN(6), answered: rng.IntN(2) == 0, delay: 10 * time.Second}
	}
	return killPlan{delay: time.Duration(rng.IntN(400)) * time.Millisecond}
}

// result is what one point measured.
type result struct {
	point      int
	scenario   string
	killedAt   string // the Fly action the kill came with, or "timer"
	converge   time.Duration
	converged  bool
	violations []violation
	flyCalls   int
	machines   int
}

// settings are the run's knobs, from the environment.
type settings struct {
	seed   uint64
	points int
	lanes  int
	only   int // replay this point alone; -1 runs them all
	report bool
}

func readSettings(t *testing.T) settings {
	s := settings{seed: uint64(time.Now().UnixNano()), points: 100, lanes: 4, only: -1, report: os.Getenv("HANGAR_CHAOS") != ""}
	for name, dst := range map[string]*int{"HANGAR_CRASH_POINTS": &s.points, "HANGAR_CRASH_POINT": &s.only, "HANGAR_CRASH_LANES": &s.lanes} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s=%q: %v", name, v, err)
			}
			*dst = n
		}
	}
	if v := os.Getenv("HANGAR_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("HANGAR_CRASH_SEED=%q: %v", v, err)
		}
		s.seed = n
	}
	return s
}

// TestCrashPoints kills the manager at seeded random points spread over every scenario, restarts
// it, and checks the promises after each. Points run on HANGAR_CRASH_LANES lanes at once (4 by
// default: a point mostly waits), each with its own namespace, emulator and manager process, so
// each can be replayed alone.
func TestCrashPoints(t *testing.T) {
	set := readSettings(t)
	t.Logf("crash run: seed %d, %d points (replay one with HANGAR_CRASH_SEED=%d HANGAR_CRASH_POINT=<n>)", set.seed, set.points, set.seed)
	var (
		mu      sync.Mutex
		results []result
	)
	points := make(chan int, set.points)
	for i := range set.points {
		if set.only < 0 || i == set.only {
			points <- i
		}
	}
	close(points)
	var lanes sync.WaitGroup
	for range set.lanes {
		lanes.Go(func() {
			for i := range points {
				sc := scenarios[i%len(scenarios)]
				t.Run(fmt.Sprintf("%04d-%s", i, sc.name), func(t *testing.T) {
					r := runPoint(t, set.seed, i, sc)
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
					if !r.converged || len(r.violations) > 0 {
						t.Errorf("point %d (%s, killed at %s) failed; replay it alone with HANGAR_CRASH_SEED=%d HANGAR_CRASH_POINT=%d",
							i, sc.name, r.killedAt, set.seed, i)
					}
				})
			}
		})
	}
	lanes.Wait()
	summarize(t, set, results)
}

// runPoint builds one point's world, kills the manager once during its step, restarts it and
// checks the world once it has converged.
func runPoint(t *testing.T, seed uint64, index int, sc scenario) result {
	rng := rand.New(rand.NewPCG(seed, uint64(index)))
	plan := drawPlan(rng, !sc.noFlyWork)
	res := result{point: index, scenario: sc.name, killedAt: "timer"}
	ctx := context.Background()
	ns := fmt.Sprintf("crash-%d", index)
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	k := &killer{plan: plan}
	sim := flysim.New(emulatorOptions(int64(rng.Uint64()>>1), k.onCall))
	for _, action := range flysim.Actions {
		// Besides the profile's own unclear failures: 5% of every call fails with a 503.
		sim.SetFault(action, flysim.Fault{ErrorRate: 0.05, Status: 503})
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	tokenFile := filepath.Join(t.TempDir(), "fly-token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	// One log for the point: the run killed and the run restarted after it.
	logs := managerproc.NewTail(200)
	args := []string{
		"--kubeconfig", kubeconfig, "--namespace", ns, "--fly-api-url", srv.URL, "--fly-token-file", tokenFile,
		"--root-key-secret", ns + "/hangar-root-key", "--default-org", org, "--default-region", "ord",
		"--app-name-prefix", appPrefix, "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--drift-interval", "30s", "--fly-consistency-window", "3s", "--transition-poll", "100ms",
		"--fly-lease-ttl", leaseTTL.String(),
		"--log-format", "console",
	}
	start := func() {
		t.Helper()
		p, err := manager.Start(managerproc.Config{Args: args, Logs: logs})
		if err != nil {
			t.Fatal(err)
		}
		k.setProcess(p)
	}
	start()
	defer func() {
		if p := k.process(); p != nil && !p.Exited() {
			// Only a manager that will not stop is this suite's concern, not how it ended: one
			// restarted moments ago may not handle SIGTERM yet and ends by the signal.
			if err := p.Stop(managerproc.StopTimeout); errors.Is(err, managerproc.ErrNotStopped) {
				t.Error(err)
			}
		}
		if t.Failed() || os.Getenv("HANGAR_CRASH_LOGS") != "" {
			t.Logf("manager log (last lines):\n%s", logs)
			t.Logf("Fly calls (last 60):\n%s", callLog(sim.Calls(), 60))
		}
	}()

	w := &world{ctx: ctx, c: env.Client, ns: ns, sim: sim}
	if sc.setup != nil {
		began := time.Now()
		if err := sc.setup(w, rng); err != nil {
			t.Fatal(err)
		}
		if msg := w.waitConverged(convergeTimeout); msg != "" {
			t.Fatalf("setup did not converge: %s", msg)
		}
		t.Logf("setup converged in %s", time.Since(began).Round(time.Millisecond))
	}

	k.arm()
	if err := sc.step(w, rng); err != nil {
		t.Fatal(err)
	}
	res.killedAt = k.waitKill()
	start()

	began := time.Now()
	msg := w.waitConverged(convergeTimeout)
	res.converge, res.converged = time.Since(began), msg == ""
	t.Logf("killed at %s; converged %v after the restart in %s", res.killedAt, res.converged, res.converge.Round(time.Millisecond))
	if !res.converged {
		t.Errorf("not converged %s after the restart: %s", convergeTimeout, msg)
		return res
	}
	res.violations = w.violations()
	for _, v := range res.violations {
		t.Errorf("%s: %s", v.kind, v.detail)
	}
	res.flyCalls = len(sim.Calls())
	for _, u := range w.users {
		res.machines += len(u.machines)
	}
	return res
}

// killer kills the point's manager process once, as its plan says.
type killer struct {
	plan killPlan

	mu     sync.Mutex
	proc   *managerproc.Process
	armed  bool
	calls  int
	killed chan string
}

func (k *killer) setProcess(p *managerproc.Process) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.proc = p
}

func (k *killer) process() *managerproc.Process {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.proc
}

// arm starts counting the step's Fly calls.
func (k *killer) arm() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.armed, k.calls, k.killed = true, 0, make(chan string, 1)
}

// onCall is the emulator's call hook: it kills the manager with the plan's call.
func (k *killer) onCall(c flysim.CallPoint) {
	if !c.Committed {
		return
	}
	k.mu.Lock()
	if !k.armed {
		k.mu.Unlock()
		return
	}
	k.calls++
	if k.plan.afterCalls == 0 || k.calls < k.plan.afterCalls {
		k.mu.Unlock()
		return
	}
	k.mu.Unlock()
	if !k.plan.answered {
		// While the call is served: the manager never sees the answer.
		k.kill(c.Action)
		return
	}
	go func() {
		time.Sleep(time.Duration(c.Seq%20) * time.Millisecond)
		k.kill(c.Action + " (answered)")
	}()
}

// kill kills the process once; later calls do nothing.
func (k *killer) kill(at string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.armed {
		return
	}
	k.armed = false
	k.proc.Kill()
	k.killed <- at
}

// waitKill waits for the plan's kill, killing on the timer when no call brought it.
func (k *killer) waitKill() string {
	k.mu.Lock()
	killed := k.killed
	k.mu.Unlock()
	select {
	case at := <-killed:
		return at
	case <-time.After(k.plan.delay):
		k.kill("timer")
		return <-killed
	}
}

// summarize reports the run and, for make chaos, prints its BENCH lines.
func summarize(t *testing.T, set settings, results []result) {
	var duplicates, orphans, other, stuck, calls, machines int
	var converge []float64
	byKill := map[string]int{}
	for _, r := range results {
		if !r.converged {
			stuck++
			continue
		}
		converge = append(converge, r.converge.Seconds())
		calls += r.flyCalls
		machines += r.machines
		byKill[r.killedAt]++
		for _, v := range r.violations {
			switch v.kind {
			case "duplicate":
				duplicates++
			case "orphan":
				orphans++
			default:
				other++
			}
		}
	}
	slices.Sort(converge)
	p50, p99 := quantile(converge, 0.5), quantile(converge, 0.99)
	t.Logf("crash run: seed %d: %d points, %d duplicates, %d orphans, %d other violations, %d not converged; converge after restart p50 %.2fs p99 %.2fs; kills by call: %v",
		set.seed, len(results), duplicates, orphans, other, stuck, p50, p99, byKill)
	if !set.report {
		return
	}
	perMachine := 0.0
	if machines > 0 {
		perMachine = float64(calls) / float64(machines)
	}
	fmt.Printf("BENCH crash_points %d points target >= 1000\n", len(results))
	fmt.Printf("BENCH crash_duplicate_machines %d machines target == 0\n", duplicates)
	fmt.Printf("BENCH crash_orphans %d resources target == 0\n", orphans)
	fmt.Printf("BENCH crash_other_violations %d findings target == 0\n", other)
	fmt.Printf("BENCH crash_not_converged %d points target == 0\n", stuck)
	fmt.Printf("BENCH crash_converge_p50 %.2f s target <= 10\n", p50)
	fmt.Printf("BENCH crash_converge_p99 %.2f s target <= 40\n", p99)
	fmt.Printf("BENCH crash_fly_calls_per_machine %.1f calls target <= 30\n", perMachine)
}

// callLog formats the last n calls of the emulator's call log, one a line.
func callLog(calls []flysim.Call, n int) string {
	var b strings.Builder
	for _, c := range calls[max(0, len(calls)-n):] {
		fmt.Fprintf(&b, "%s %-16s %-28s machine=%s status=%d faulted=%v\n", c.Time.Format("15:04:05.000"), c.Action, c.App, c.Machine, c.Status, c.Faulted)
	}
	return b.String()
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}
