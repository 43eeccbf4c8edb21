package flysim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test fixtures: two orgs with one token each.
const (
	tokenA = "tok-a-secret"
	tokenB = "tok-b-secret"
	orgA   = "org-a"
	orgB   = "org-b"
)

// quickDelays keep transitions short but observable.
var quickDelays = Delays{
	Create: time.Millisecond, Start: 2 * time.Millisecond, Stop: 2 * time.Millisecond, Suspend: 2 * time.Millisecond,
	Restart: time.Millisecond, Destroy: 2 * time.Millisecond, Update: 2 * time.Millisecond,
}

// harness is an emulator behind a real HTTP server (faults can drop connections) and a client for it.
type harness struct {
	t     testing.TB
	srv   *Server
	http  *httptest.Server
	token string
}

func newHarness(t testing.TB, tweak ...func(*Options)) *harness {
	t.Helper()
	opts := Options{
		Orgs:              []OrgToken{{Token: tokenA, Org: orgA}, {Token: tokenB, Org: orgB}},
		Seed:              1,
		Delays:            quickDelays,
		DisableRateLimits: true,
	}
	for _, f := range tweak {
		f(&opts)
	}
	srv := New(opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return &harness{t: t, srv: srv, http: ts, token: tokenA}
}

// as returns a copy of h that authenticates with token.
func (h *harness) as(token string) *harness {
	c := *h
	c.token = token
	return &c
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; body may be nil, a string or []byte (sent as is) or any value (JSON-encoded).
// headers are name, value pairs.
func (h *harness) do(method, path string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("encoding request body: %v", err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, h.http.URL+path, rd)
	if err != nil {
		h.t.Fatalf("building request: %v", err)
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.http.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("reading %s %s: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// expect checks the status and decodes the JSON body into out (when non-nil).
func (r response) expect(t testing.TB, status int, out any) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("decoding %s: %v", r.body, err)
		}
	}
	return r
}

// expectError checks the status and that the body is Fly's JSON error with exactly msg (when non-empty).
func (r response) expectError(t testing.TB, status int, msg string) errorBody {
	t.Helper()
	var e errorBody
	r.expect(t, status, &e)
	if e.Error == "" {
		t.Fatalf("error body without error text: %s", r.body)
	}
	if msg != "" && e.Error != msg {
		t.Fatalf("error %q, want %q", e.Error, msg)
	}
	return e
}

// wireMachine is the Machine object as a client reads it, with the sheet's field names.
type wireMachine struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	State      string          `json:"state"`
	Region     string          `json:"region"`
	InstanceID string          `json:"instance_id"`
	Version    string          `json:"version"`
	PrivateIP  string          `json:"private_ip"`
	CreatedAt  string          `json:"created_at"`
	UpdatedAt  string          `json:"updated_at"`
	Config     json.RawMessage `json:"config"`
	ImageRef   map[string]any  `json:"image_ref"`
	Events     []struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Status    string `json:"status"`
		Source    string `json:"source"`
		Timestamp int64  `json:"timestamp"`
	} `json:"events"`
	Checks     []map[string]any `json:"checks"`
	HostStatus string           `json:"host_status"`
	Cordoned   bool             `json:"cordoned"`
	Nonce      string           `json:"nonce"`
	Lease      *struct {
		Description string `json:"description"`
		ExpiresAt   int64  `json:"expires_at"`
		Owner       string `json:"owner"`
	} `json:"lease"`
}

func (h *harness) createApp(name string) {
	h.t.Helper()
	h.do("POST", "/v1/apps", map[string]any{"app_name": name, "org_slug": orgOf(h.token)}).expect(h.t, http.StatusCreated, nil)
}

func orgOf(token string) string {
	if token == tokenB {
		return orgB
	}
	return orgA
}

// baseConfig is a small valid machine config.
func baseConfig() map[string]any {
	return map[string]any{"image": "registry.fly.io/demo:v1", "guest": map[string]any{"cpu_kind": "shared", "cpus": 1, "memory_mb": 256}}
}

// createMachine creates a machine in app with body merged over {"config": baseConfig()}.
func (h *harness) createMachine(app string, body map[string]any) wireMachine {
	h.t.Helper()
	req := map[string]any{"config": baseConfig()}
	for k, v := range body {
		req[k] = v
	}
	var m wireMachine
	h.do("POST", "/v1/apps/"+app+"/machines", req).expect(h.t, http.StatusOK, &m)
	return m
}

// waitFor waits through the API until the machine reaches state (any version).
func (h *harness) waitFor(app, id, state string) {
	h.t.Helper()
	path := fmt.Sprintf("/v1/apps/%s/machines/%s/wait?state=%s&timeout=10", app, id, state)
	if state == stateStopped {
		path += "&version=" + h.getMachine(app, id).Version
	}
	h.do("GET", path, nil).expect(h.t, http.StatusOK, nil)
}

// eventually polls cond until it holds, failing after a generous deadline (never a timing assertion).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitSettled waits until the machine has no pending transition and is in state.
func (h *harness) waitSettled(app, id, state string) {
	h.t.Helper()
	eventually(h.t, id+" to settle in "+state, func() bool {
		m, ok := h.srv.Machine(app, id)
		return ok && m.State == state && h.srv.settledNow(app, id)
	})
}

func (h *harness) getMachine(app, id string) wireMachine {
	h.t.Helper()
	var m wireMachine
	h.do("GET", "/v1/apps/"+app+"/machines/"+id, nil).expect(h.t, http.StatusOK, &m)
	return m
}

// startedMachine creates a machine and waits until it is started.
func (h *harness) startedMachine(app string) wireMachine {
	h.t.Helper()
	m := h.createMachine(app, nil)
	h.waitFor(app, m.ID, stateStarted)
	return h.getMachine(app, m.ID)
}

// settledNow reports whether the machine has no pending transition (test-only helper over state).
func (s *Server) settledNow(app, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookupMachine(app, id)
	return err == nil && !m.pending()
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
