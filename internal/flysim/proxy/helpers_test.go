package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
)

// sourceFlyProxy is the source of the machine events the Fly Proxy causes (§4.1).
const sourceFlyProxy = "fly-proxy"

// fixture is an emulator with simulated user machines, a proxy on ephemeral ports, and a fake
// router: an httptest handler registered as the external machine of the entry app "router".
type fixture struct {
	*flysimtest.Client
	t        testing.TB
	srv      *flysim.Server
	machines *usermachine.Machines
	proxy    *Proxy
	router   *fakeRouter
	routerID string
	clock    *flysimtest.Clock
}

type fixtureOptions struct {
	server func(*flysim.Options)
	proxy  func(*Options)
}

// newServer is an emulator for flysimtest's two orgs with quick transitions, and a client for it.
func newServer(t testing.TB, tweak func(*flysim.Options)) (*flysim.Server, *flysimtest.Client) {
	t.Helper()
	opts := flysim.Options{
		Orgs: []flysim.OrgToken{{Token: flysimtest.TokenA, Org: flysimtest.OrgA}, {Token: flysimtest.TokenB, Org: flysimtest.OrgB}},
		Seed: 1,
		Delays: flysim.Delays{
			Create: time.Millisecond, Start: 2 * time.Millisecond, Stop: 2 * time.Millisecond, Suspend: 2 * time.Millisecond,
			Restart: time.Millisecond, Destroy: 2 * time.Millisecond, Update: 2 * time.Millisecond,
		},
		DisableRateLimits: true,
	}
	if tweak != nil {
		tweak(&opts)
	}
	srv := flysim.New(opts)
	t.Cleanup(srv.Close) // after the HTTP server's close, registered by Serve
	return srv, flysimtest.Serve(t, srv, func(app, id string) (string, bool, bool) {
		m, _, ok := srv.SnapshotMachine(app, id)
		return m.State, m.Pending, ok
	})
}

func newFixture(t *testing.T, fo fixtureOptions) *fixture {
	t.Helper()
	srv, client := newServer(t, fo.server)
	f := &fixture{Client: client, t: t, srv: srv, router: &fakeRouter{}, clock: flysimtest.NewClock()}
	f.CreateApp("router")
	f.WaitApp("router")
	if srv.Profile().RequirePublicIP {
		// As an operator would (fly ips allocate-v6): API-created apps have no public address.
		f.Do("POST", "/v1/apps/router/ip_assignments", map[string]any{"type": "v6"}).Expect(t, http.StatusOK, nil)
	}
	// The router's services ask for autostop: the proxy must still leave an external machine alone.
	router := f.CreateMachine("router", map[string]any{"config": flysimtest.ConfigWith(flysimtest.BlueprintServices(true, "stop", 0))})
	f.WaitFor("router", router.ID, flysim.StateStarted)
	f.routerID = router.ID

	f.machines = usermachine.Start(srv, usermachine.Options{})
	t.Cleanup(func() { _ = f.machines.Close() })
	public := httptest.NewServer(f.router.handler(80))
	management := httptest.NewServer(f.router.handler(9090))
	t.Cleanup(public.Close)
	t.Cleanup(management.Close)
	if err := f.machines.RegisterExternal("router", router.ID, map[int]string{
		8080: public.Listener.Addr().String(), 9090: management.Listener.Addr().String(),
	}); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Listen:   map[int]string{80: "127.0.0.1:0", 9090: "127.0.0.1:0"},
		EntryApp: "router",
		Autostop: AutostopOptions{Disabled: true, IdleAfter: time.Minute},
		Now:      f.clock.Now,
	}
	if fo.proxy != nil {
		fo.proxy(&opts)
	}
	p, err := Start(srv, f.machines, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	f.proxy = p
	return f
}

// newRealisticFixture is a fixture whose Server runs the realistic profile shrunk by scale, without
// the behaviours that would make the fixture's own setup calls fail (unclear failures) or its machines
// boot without the app's keys (secrets lag); tweak changes the profile further.
func newRealisticFixture(t *testing.T, scale float64, tweak func(*flysim.Profile)) *fixture {
	t.Helper()
	p := flysim.Realistic()
	p.TimeScale = scale
	p.UnclearFailures = nil
	p.SecretsLag = flysim.Dist{}
	if tweak != nil {
		tweak(&p)
	}
	return newFixture(t, fixtureOptions{server: func(o *flysim.Options) { o.Profile = p }})
}

// reply is an answer through the proxy.
type reply struct{ flysimtest.Response }

// send sends a request to the proxy's public port; headers are name, value pairs.
func (f *fixture) send(port int, method, path string, body []byte, headers ...string) reply {
	f.t.Helper()
	req, err := http.NewRequest(method, "http://"+f.proxy.Addr(port)+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return reply{flysimtest.Response{Status: resp.StatusCode, Header: resp.Header, Body: data}}
}

// answer decodes a simulated machine's answer, failing unless the status is 200.
func (r reply) answer(t testing.TB) usermachine.Answer {
	t.Helper()
	var a usermachine.Answer
	r.Expect(t, http.StatusOK, &a)
	if a.Machine == "" {
		t.Fatalf("not a machine answer: %s", r.Body)
	}
	return a
}

// expectProxyError checks the status and that the proxy's body mentions want.
func (r reply) expectProxyError(t testing.TB, status int, want string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if !strings.HasPrefix(string(r.Body), "flysim proxy: ") || !strings.Contains(string(r.Body), want) {
		t.Fatalf("body %q does not mention %q", r.Body, want)
	}
}

// fakeRouter stands for the router process. answer decides each response (default: 200 "router").
type fakeRouter struct {
	mu     sync.Mutex
	answer func(w http.ResponseWriter, r *http.Request)
	seen   []seenRequest
}

type seenRequest struct {
	port   int
	header http.Header
	path   string
}

func (fr *fakeRouter) handler(port int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr.mu.Lock()
		fr.seen = append(fr.seen, seenRequest{port: port, header: r.Header.Clone(), path: r.URL.RequestURI()})
		answer := fr.answer
		fr.mu.Unlock()
		if answer == nil {
			_, _ = io.WriteString(w, "router")
			return
		}
		answer(w, r)
	})
}

func (fr *fakeRouter) set(answer func(w http.ResponseWriter, r *http.Request)) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	fr.answer = answer
}

func (fr *fakeRouter) requests() []seenRequest {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return append([]seenRequest(nil), fr.seen...)
}

// replayWith answers every request with the header form of value (409, as hangar's router does).
func replayWith(value string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(HeaderReplay, value)
		w.WriteHeader(http.StatusConflict)
	}
}

// replayJSONWith answers with the JSON form of r.
func replayJSONWith(r Replay) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ReplayJSONType)
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write(r.JSON())
	}
}

// fallbackAware replays with value unless the request is a fallback, which it answers 200 with the
// fly-replay-failed header it received.
func fallbackAware(value string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if failed := r.Header.Get(headerReplayFailed); failed != "" {
			_ = json.NewEncoder(w).Encode(map[string]string{"fallback": failed})
			return
		}
		replayWith(value)(w, r)
	}
}
