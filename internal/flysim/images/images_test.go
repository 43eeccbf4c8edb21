package images_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
	"github.com/hangar-dev/hangar/internal/flysim/images"
	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
)

// greeter is a small real program: an HTTP server on a loopback port that answers with its
// machine, version and two variables of its environment (one from the config's env, one a secret).
// It says it serves only after a delay, so requests sent before must wait in the proxy.
type greeter struct {
	starts, stops atomic.Int32
	mu            sync.Mutex
	running       map[string]bool // machine ID → running
}

type greeting struct {
	Machine, Version, Greeting, Secret string
}

func (g *greeter) run(ctx context.Context, m images.Machine, serving func(map[int]string)) error {
	g.starts.Add(1)
	g.setRunning(m.ID, true)
	defer func() { g.setRunning(m.ID, false); g.stops.Add(1) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(greeting{Machine: m.ID, Version: m.Version, Greeting: m.Getenv("GREETING"), Secret: m.Getenv("SECRET")})
	})}
	go func() { _ = srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case <-time.After(100 * time.Millisecond):
		serving(map[int]string{8080: ln.Addr().String(), 9090: ln.Addr().String()})
		<-ctx.Done()
	}
	return srv.Shutdown(context.Background())
}

func (g *greeter) setRunning(id string, on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running[id] = on
}

func (g *greeter) isRunning(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running[id]
}

type fixture struct {
	*flysimtest.Client
	srv     *flysim.Server
	proxy   *proxy.Proxy
	greeter *greeter
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := flysim.New(flysim.Options{Orgs: []flysim.OrgToken{{Token: flysimtest.TokenA, Org: flysimtest.OrgA}}, Seed: 1, DisableRateLimits: true})
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv, greeter: &greeter{running: map[string]bool{}}, Client: flysimtest.Serve(t, srv, func(app, id string) (string, bool, bool) {
		m, _, ok := srv.SnapshotMachine(app, id)
		return m.State, m.Pending, ok
	})}
	machines := usermachine.Start(srv, usermachine.Options{})
	t.Cleanup(func() { _ = machines.Close() })
	runner := images.Start(srv, machines, images.Options{Images: []images.Image{{Prefix: "example.test/greeter", Run: f.greeter.run}}})
	t.Cleanup(func() { _ = runner.Close() })
	p, err := proxy.Start(srv, machines, proxy.Options{Listen: map[int]string{80: "127.0.0.1:0"}, EntryApp: "entry", Autostop: proxy.AutostopOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	f.proxy = p
	f.CreateApp("entry")
	f.WaitApp("entry")
	f.Do("POST", "/v1/apps/entry/secrets", map[string]any{"values": map[string]any{"SECRET": "s1", "GREETING": "from a secret"}}).Expect(t, http.StatusOK, nil)
	return f
}

func (f *fixture) machine(image string, env map[string]any) string {
	cfg := flysimtest.ConfigWith(flysimtest.BlueprintServices(true, "off", 0))
	cfg["image"] = image
	cfg["env"] = env
	return f.CreateMachine("entry", map[string]any{"config": cfg}).ID
}

// get sends a request through the proxy and decodes the answer.
func (f *fixture) get(t *testing.T, into any) {
	t.Helper()
	resp, err := http.Get("http://" + f.proxy.Addr(80) + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
}

// A machine of the program's image runs the program with its env and boot secrets, behind the
// proxy, from its start to its stop; an update runs it again with the new version's env.
func TestProgramFollowsItsMachine(t *testing.T) {
	f := newFixture(t)
	id := f.machine("example.test/greeter:v1", map[string]any{"GREETING": "hello", "OTHER": "x"})

	// Sent at once: the proxy waits until the program says it serves.
	var g greeting
	f.get(t, &g)
	m := f.GetMachine("entry", id)
	if g != (greeting{Machine: id, Version: m.Version, Greeting: "from a secret", Secret: "s1"}) {
		t.Errorf("answer %+v: want machine %s version %s with the secrets (a secret wins over env of its name)", g, id, m.Version)
	}

	// An update runs the program of the new version, with its config's env.
	f.Do("POST", "/v1/apps/entry/secrets", map[string]any{"values": map[string]any{"SECRET": "s2"}}).Expect(t, http.StatusOK, nil)
	cfg := flysimtest.ConfigWith(flysimtest.BlueprintServices(true, "off", 0))
	cfg["image"] = "example.test/greeter@sha256:0000000000000000000000000000000000000000000000000000000000000000"
	f.Do("POST", "/v1/apps/entry/machines/"+id, map[string]any{"config": cfg}).Expect(t, http.StatusOK, nil)
	f.WaitSettled("entry", id, flysim.StateStarted)
	flysimtest.Eventually(t, "the updated program to answer", func() bool {
		f.get(t, &g)
		return g.Version == f.GetMachine("entry", id).Version
	})
	if g.Secret != "s2" || g.Greeting != "from a secret" {
		t.Errorf("after the update: %+v, want the secrets of the new version", g)
	}

	// Stopped, the program ends; a request wakes the machine (autostart) and the program again.
	f.Stop("entry", id)
	flysimtest.Eventually(t, "the program to stop with its machine", func() bool { return !f.greeter.isRunning(id) })
	starts := f.greeter.starts.Load()
	f.get(t, &g)
	if g.Machine != id || f.greeter.starts.Load() != starts+1 {
		t.Errorf("after a stop: answer %+v, %d starts (was %d): want the program started again by the proxy's autostart", g, f.greeter.starts.Load(), starts)
	}

	f.Do("DELETE", "/v1/apps/entry/machines/"+id+"?force=true", nil).Expect(t, http.StatusOK, nil)
	flysimtest.Eventually(t, "the program to stop when its machine is destroyed", func() bool { return !f.greeter.isRunning(id) })
	if f.greeter.starts.Load() != f.greeter.stops.Load() {
		t.Errorf("%d starts, %d stops", f.greeter.starts.Load(), f.greeter.stops.Load())
	}
}

// Only images the table names run a program; others are simulated user machines.
func TestImagePrefixMatching(t *testing.T) {
	for _, tc := range []struct {
		image   string
		program bool
	}{
		{"example.test/greeter", true},
		{"example.test/greeter:v2", true},
		{"example.test/greeter@sha256:0000000000000000000000000000000000000000000000000000000000000000", true},
		{"example.test/greeter-other:v1", false},
		{"example.test/greeterv1", false},
		{"registry.fly.io/demo:v1", false},
	} {
		t.Run(tc.image, func(t *testing.T) {
			f := newFixture(t)
			id := f.machine(tc.image, nil)
			var a usermachine.Answer // the simulated machine's answer; the program's has no App
			f.get(t, &a)
			if got := a.App == ""; got != tc.program {
				t.Errorf("image %s answered by the program: %v, want %v (answer %+v)", tc.image, got, tc.program, a)
			}
			if f.greeter.isRunning(id) != tc.program {
				t.Errorf("program running for %s: %v", tc.image, !tc.program)
			}
		})
	}
}
