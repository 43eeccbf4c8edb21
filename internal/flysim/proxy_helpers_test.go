package flysim

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

	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/pkg/replayauth"
)

// testRoot derives every app's replay key and management token, as hangar's manager would.
var testRoot = func() keys.Root {
	r, err := keys.ParseRoot(bytes.Repeat([]byte{7}, keys.RootKeySize))
	if err != nil {
		panic(err)
	}
	return r
}()

// proxyFixture is an emulator with simulated user machines, a proxy on ephemeral ports, and a fake
// router: an httptest handler registered as the external machine of the entry app "router".
type proxyFixture struct {
	*harness
	machines *UserMachines
	proxy    *Proxy
	router   *fakeRouter
	routerID string
	clock    *fakeClock
}

type fixtureOptions struct {
	server func(*Options)
	proxy  func(*ProxyOptions)
}

func newProxyFixture(t *testing.T, fo fixtureOptions) *proxyFixture {
	t.Helper()
	var tweaks []func(*Options)
	if fo.server != nil {
		tweaks = append(tweaks, fo.server)
	}
	h := newHarness(t, tweaks...)
	f := &proxyFixture{harness: h, router: &fakeRouter{}, clock: newFakeClock()}
	h.createApp("router")
	// The router's services ask for autostop: the proxy must still leave an external machine alone.
	router := h.createMachine("router", map[string]any{"config": configWith(blueprintServices(true, "stop", 0))})
	h.waitFor("router", router.ID, stateStarted)
	f.routerID = router.ID

	f.machines = StartUserMachines(h.srv, UserMachinesOptions{})
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
	opts := ProxyOptions{
		Listen:   map[int]string{80: "127.0.0.1:0", 9090: "127.0.0.1:0"},
		EntryApp: "router",
		Autostop: AutostopOptions{Disabled: true, IdleAfter: time.Minute},
		Now:      f.clock.Now,
	}
	if fo.proxy != nil {
		fo.proxy(&opts)
	}
	p, err := StartProxy(h.srv, f.machines, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	f.proxy = p
	return f
}

// blueprintServices are the blueprint's management (9090→9090) and public (8080→80) http services.
func blueprintServices(autostart bool, autostop any, minRunning int) []any {
	svc := func(name string, internal, public int) map[string]any {
		return map[string]any{
			"name": name, "protocol": "tcp", "internal_port": internal, "autostart": autostart, "autostop": autostop,
			"min_machines_running": minRunning,
			"ports":                []any{map[string]any{"port": public, "handlers": []any{"http"}}},
		}
	}
	return []any{svc("management", 9090, 9090), svc("public", 8080, 80)}
}

func configWith(services []any) map[string]any {
	cfg := baseConfig()
	cfg["services"] = services
	return cfg
}

// userApp creates an app (on network, "" for the org default) with hangar's two secrets.
func (f *proxyFixture) userApp(name, network string) {
	f.t.Helper()
	f.do("POST", "/v1/apps", map[string]any{"app_name": name, "org_slug": orgOf(f.token), "network": network}).
		expect(f.t, http.StatusCreated, nil)
	f.do("POST", "/v1/apps/"+name+"/secrets", map[string]any{"values": map[string]any{
		keys.ReplayKeySecret:       keys.EncodeReplayKey(testRoot.ReplayKey(name)),
		keys.ManagementTokenSecret: testRoot.ManagementToken(name),
	}}).expect(f.t, http.StatusOK, nil)
}

// userMachine creates a machine with services and waits until its listeners are up.
func (f *proxyFixture) userMachine(app string, services []any) string {
	f.t.Helper()
	m := f.createMachine(app, map[string]any{"config": configWith(services)})
	f.waitFor(app, m.ID, stateStarted)
	f.waitListening(app, m.ID)
	return m.ID
}

func (f *proxyFixture) waitListening(app, id string) {
	f.t.Helper()
	eventually(f.t, id+" listening", func() bool { return len(f.machines.Endpoints(app, id)) > 0 })
}

// stop stops a machine through the API and waits until it is stopped.
func (f *proxyFixture) stop(app, id string) {
	f.t.Helper()
	f.do("POST", "/v1/apps/"+app+"/machines/"+id+"/stop", nil).expect(f.t, http.StatusOK, nil)
	f.waitSettled(app, id, stateStopped)
}

// signedState signs a replay state for a machine of app, valid for a minute of real time.
func signedState(app, machine string) string {
	return replayauth.Sign(testRoot.ReplayKey(app), app, machine, time.Now().Add(time.Minute))
}

// send sends a request to the proxy's public port; headers are name, value pairs.
func (f *proxyFixture) send(port int, method, path string, body []byte, headers ...string) response {
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
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// answer decodes a simulated machine's answer, failing unless the status is 200.
func (r response) answer(t testing.TB) UserMachineAnswer {
	t.Helper()
	var a UserMachineAnswer
	r.expect(t, http.StatusOK, &a)
	if a.Machine == "" {
		t.Fatalf("not a machine answer: %s", r.body)
	}
	return a
}

// expectProxyError checks the status and that the proxy's body mentions want.
func (r response) expectProxyError(t testing.TB, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if !strings.HasPrefix(string(r.body), "flysim proxy: ") || !strings.Contains(string(r.body), want) {
		t.Fatalf("body %q does not mention %q", r.body, want)
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
