package flyadapter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
)

// fakeFly is a scripted Machines API: each route answers with its handler, and every request is
// recorded.
type fakeFly struct {
	t   *testing.T
	mux *http.ServeMux

	mu       sync.Mutex
	requests []flyRequest
}

type flyRequest struct {
	method, path, query, nonce string
	body                       []byte
}

func newFakeFly(t *testing.T) *fakeFly {
	return &fakeFly{t: t, mux: http.NewServeMux()}
}

// answer serves pattern (a ServeMux pattern such as "GET /v1/apps/{app}") with a fixed status and body.
func (f *fakeFly) answer(pattern string, status int, body string) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body) // a failed write fails the client's call
	})
}

func (f *fakeFly) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("reading the request body: %v", err)
	}
	f.mu.Lock()
	f.requests = append(f.requests, flyRequest{
		method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery,
		nonce: r.Header.Get("fly-machine-lease-nonce"), body: body,
	})
	f.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mux.ServeHTTP(w, r)
}

// sent returns the recorded requests as "METHOD path".
func (f *fakeFly) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requestsLocked()
}

// request returns the only recorded request with method and path.
func (f *fakeFly) request(method, path string) flyRequest {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var found []flyRequest
	for _, r := range f.requests {
		if r.method == method && r.path == path {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		f.t.Fatalf("%d requests %s %s, want 1; sent: %v", len(found), method, path, f.requestsLocked())
	}
	return found[0]
}

func (f *fakeFly) requestsLocked() []string {
	var out []string
	for _, r := range f.requests {
		out = append(out, r.method+" "+r.path)
	}
	return out
}

// adapterFor returns an Adapter whose client talks to fly without client-side limits, on a fake
// clock: a client sleep (a Retry-After, a backoff) moves the clock on at once.
func adapterFor(t *testing.T, fly *fakeFly) *Adapter {
	t.Helper()
	srv := httptest.NewServer(fly)
	t.Cleanup(srv.Close)
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	client, err := flyapi.New(flyapi.Options{
		BaseURL: srv.URL,
		Token:   flyapi.StaticToken("test-token"),
		Limiter: flyapi.NewLimiter(flyapi.NoLimits()),
		Now:     clock.Now,
		Sleep:   clock.Sleep,
	})
	if err != nil {
		t.Fatal(err)
	}
	return New(client, Options{})
}

// fakeClock is a clock whose Sleep moves time on at once.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

// flyKind returns the FlyError kind of err, failing when err is not a FlyError.
func flyKind(t *testing.T, err error) controllers.FlyErrorKind {
	t.Helper()
	var fe *controllers.FlyError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a controllers.FlyError", err, err)
	}
	return fe.Kind
}

// unmanagedConfig is a machine config with every part of Fly's config hangar does not manage,
// plus unknown members inside the parts it does.
const unmanagedConfig = `{
  "image": "registry.fly.io/old:v0",
  "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256, "x_guest": 1},
  "services": [{"protocol": "tcp", "internal_port": 8080, "x_service": {"a": [1, 2]},
    "ports": [{"port": 80, "handlers": ["http"],
      "http_options": {"compress": true, "response": {"headers": {"X-Many": ["b", "c"]}}, "replay_cache": [{"path_prefix": "/", "ttl_seconds": 300}]},
      "tls_options": {"alpn": ["h2"], "versions": ["TLSv1.3"]},
      "proxy_proto_options": {"version": "v2"}}]}],
  "init": {"exec": ["/bin/sh"], "tty": true, "swap_size_mb": 0},
  "mounts": [{"volume": "vol_123", "path": "/data", "size_gb": 1, "extend_threshold_percent": 80}],
  "processes": [{"cmd": ["serve"], "env_from": [{"env_var": "ID", "field_ref": "id"}], "secrets": [{"env_var": "S", "name": "s"}]}],
  "files": [{"guest_path": "/etc/a", "raw_value": "aGk=", "mode": 420}, {"guest_path": "/etc/b", "secret_name": "s"}],
  "dns": {"skip_registration": true, "options": [{"name": "ndots", "value": "1"}], "dns_forward_rules": [{"basename": "b", "addr": "a"}]},
  "metrics": {"port": 9091, "path": "/metrics"},
  "statics": [{"guest_path": "/public", "url_prefix": "/static"}],
  "containers": [{"name": "c1", "image": "nginx", "healthchecks": [{"interval": 10, "http": {"port": 80, "headers": [{"name": "a", "values": ["b"]}]}}]}],
  "volumes": [{"name": "v", "temp_dir": {"storage_type": "memory", "size_mb": 64}}],
  "rootfs": {"persist": "restart", "size_gb": 4},
  "cache_drive": {"size_mb": 1024},
  "spot": {"max_price_fraction": 0.5},
  "x_top": {"anything": [null, true]}
}`

// unmanagedMembers are the top-level members of unmanagedConfig that an update must send back
// exactly as read.
var unmanagedMembers = []string{
	"cache_drive", "containers", "dns", "files", "init", "metrics", "mounts", "processes", "rootfs",
	"spot", "statics", "volumes", "x_top",
}

const leaseAnswer = `{"status":"success","data":{"nonce":"5c35f65c9f95","expires_at":1708569778}}`

// TestUpdateMachineKeepsWhatHangarDoesNotManage runs the adapter's update path (lease, get, apply
// the desired machine, update, release) against a scripted API and checks the body it sends.
func TestUpdateMachineKeepsWhatHangarDoesNotManage(t *testing.T) {
	fly := newFakeFly(t)
	fly.answer("POST /v1/apps/app/machines/m1/lease", http.StatusCreated, leaseAnswer)
	fly.answer("GET /v1/apps/app/machines/m1", http.StatusOK, `{"id":"m1","state":"started","version":"v1","config":`+unmanagedConfig+`}`)
	fly.answer("POST /v1/apps/app/machines/m1", http.StatusOK, `{"id":"m1","state":"started","version":"v2","config":{"image":"registry.fly.io/new:v1"}}`)
	fly.answer("DELETE /v1/apps/app/machines/m1/lease", http.StatusOK, `{"status":"success","data":{"ok":true}}`)
	a := adapterFor(t, fly)

	m, err := a.UpdateMachine(context.Background(), "app", "m1", "v1", desired())
	if err != nil {
		t.Fatalf("UpdateMachine: %v", err)
	}
	if m.Version != "v2" {
		t.Errorf("version after update = %q, want v2", m.Version)
	}
	wantSent := []string{
		"POST /v1/apps/app/machines/m1/lease", "GET /v1/apps/app/machines/m1",
		"POST /v1/apps/app/machines/m1", "DELETE /v1/apps/app/machines/m1/lease",
	}
	if diff := cmp.Diff(wantSent, fly.sent()); diff != "" {
		t.Fatalf("requests (-want +got):\n%s", diff)
	}
	update := fly.request("POST", "/v1/apps/app/machines/m1")
	if update.nonce != "5c35f65c9f95" {
		t.Errorf("update sent with lease nonce %q, want the lease's", update.nonce)
	}
	if release := fly.request("DELETE", "/v1/apps/app/machines/m1/lease"); release.nonce != "5c35f65c9f95" {
		t.Errorf("lease released with nonce %q, want the lease's", release.nonce)
	}
	var body struct {
		Config         map[string]json.RawMessage `json:"config"`
		CurrentVersion string                     `json:"current_version"`
	}
	if err := json.Unmarshal(update.body, &body); err != nil {
		t.Fatalf("update body: %v\n%s", err, update.body)
	}
	if body.CurrentVersion != "v1" {
		t.Errorf("current_version = %q, want v1", body.CurrentVersion)
	}

	// What hangar does not manage goes back exactly as read.
	var read map[string]json.RawMessage
	if err := json.Unmarshal([]byte(unmanagedConfig), &read); err != nil {
		t.Fatal(err)
	}
	for _, k := range unmanagedMembers {
		if got, want := compact(t, body.Config[k]), compact(t, read[k]); got != want {
			t.Errorf("config.%s changed by the update\n got %s\nwant %s", k, got, want)
		}
	}
	var services []map[string]json.RawMessage
	if err := json.Unmarshal(body.Config["services"], &services); err != nil || len(services) != 1 {
		t.Fatalf("services sent: %s (%v)", body.Config["services"], err)
	}
	var ports []map[string]json.RawMessage
	if err := json.Unmarshal(services[0]["ports"], &ports); err != nil || len(ports) != 2 {
		t.Fatalf("ports sent: %s (%v)", services[0]["ports"], err)
	}
	var readServices []map[string]json.RawMessage
	if err := json.Unmarshal(read["services"], &readServices); err != nil {
		t.Fatal(err)
	}
	var readPorts []map[string]json.RawMessage
	if err := json.Unmarshal(readServices[0]["ports"], &readPorts); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"http_options", "tls_options", "proxy_proto_options"} {
		if got, want := compact(t, ports[0][k]), compact(t, readPorts[0][k]); got != want {
			t.Errorf("port 80 %s changed by the update\n got %s\nwant %s", k, got, want)
		}
	}
	if got := compact(t, services[0]["x_service"]); got != `{"a":[1,2]}` {
		t.Errorf("service's unknown member = %s", got)
	}
	// And what it manages is the desired machine.
	if got := compact(t, body.Config["image"]); got != `"registry.fly.io/new:v1"` {
		t.Errorf("image sent = %s", got)
	}
	if got := compact(t, body.Config["guest"]); got != `{"cpu_kind":"performance","cpus":2,"memory_mb":4096,"x_guest":1}` {
		t.Errorf("guest sent = %s", got)
	}
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	if raw == nil {
		return "<absent>"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatalf("not JSON: %v: %s", err, raw)
	}
	return buf.String()
}

// TestUpdateMachineReleasesTheLease checks that the lease is released however the update ends,
// even when the reconcile's context is over by then.
func TestUpdateMachineReleasesTheLease(t *testing.T) {
	tests := []struct {
		name     string
		update   func(cancel context.CancelFunc) http.HandlerFunc
		wantKind controllers.FlyErrorKind
	}{
		{
			name: "update refused",
			update: func(context.CancelFunc) http.HandlerFunc {
				return func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(http.StatusConflict)
					_, _ = io.WriteString(w, `{"error":"machine version mismatch"}`) // a failed write fails the client's call
				}
			},
			wantKind: controllers.FlyConflict,
		},
		{
			name: "context ended during the update",
			update: func(cancel context.CancelFunc) http.HandlerFunc {
				return func(w http.ResponseWriter, _ *http.Request) {
					cancel()
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			},
			wantKind: controllers.FlyUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fly := newFakeFly(t)
			fly.answer("POST /v1/apps/app/machines/m1/lease", http.StatusCreated, leaseAnswer)
			fly.answer("GET /v1/apps/app/machines/m1", http.StatusOK, `{"id":"m1","state":"started","version":"v1","config":{"image":"a"}}`)
			fly.mux.HandleFunc("POST /v1/apps/app/machines/m1", tt.update(cancel))
			fly.answer("DELETE /v1/apps/app/machines/m1/lease", http.StatusOK, `{"status":"success","data":{"ok":true}}`)
			a := adapterFor(t, fly)

			_, err := a.UpdateMachine(ctx, "app", "m1", "v1", desired())
			if kind := flyKind(t, err); kind != tt.wantKind {
				t.Errorf("error %v: kind %s, want %s", err, kind, tt.wantKind)
			}
			if release := fly.request("DELETE", "/v1/apps/app/machines/m1/lease"); release.nonce != "5c35f65c9f95" {
				t.Errorf("lease released with nonce %q, want the lease's", release.nonce)
			}
		})
	}
}

// TestUpdateMachineRefusesAnIncompleteConfig: a machine whose host is unreachable reports only a
// partial config, and an update built from it would wipe the rest.
func TestUpdateMachineRefusesAnIncompleteConfig(t *testing.T) {
	fly := newFakeFly(t)
	fly.answer("POST /v1/apps/app/machines/m1/lease", http.StatusCreated, leaseAnswer)
	fly.answer("GET /v1/apps/app/machines/m1", http.StatusOK, `{"id":"m1","version":"v1","host_status":"unreachable","incomplete_config":{"image":"a"}}`)
	fly.answer("DELETE /v1/apps/app/machines/m1/lease", http.StatusOK, `{"status":"success","data":{"ok":true}}`)
	a := adapterFor(t, fly)

	_, err := a.UpdateMachine(context.Background(), "app", "m1", "v1", desired())
	if kind := flyKind(t, err); kind != controllers.FlyUnavailable {
		t.Errorf("error %v: kind %s, want unavailable", err, kind)
	}
	want := []string{"POST /v1/apps/app/machines/m1/lease", "GET /v1/apps/app/machines/m1", "DELETE /v1/apps/app/machines/m1/lease"}
	if diff := cmp.Diff(want, fly.sent()); diff != "" {
		t.Errorf("requests (-want +got): no update may be sent\n%s", diff)
	}
}

func TestCallsNoteThrottling(t *testing.T) {
	tests := []struct {
		name          string
		answers       []int
		wantThrottled bool
	}{
		{"answered at once", []int{http.StatusOK}, false},
		{"after a 429", []int{http.StatusTooManyRequests, http.StatusOK}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fly := newFakeFly(t)
			var mu sync.Mutex
			n := 0
			fly.mux.HandleFunc("GET /v1/apps/app", func(w http.ResponseWriter, _ *http.Request) {
				mu.Lock()
				status := tt.answers[min(n, len(tt.answers)-1)]
				n++
				mu.Unlock()
				if status == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "1")
				}
				w.WriteHeader(status)
				_, _ = io.WriteString(w, `{"id":"a1","name":"app","organization":{"slug":"org"},"network":"net"}`) // a failed write fails the client's call
			})
			a := adapterFor(t, fly)
			ctx, throttled := controllers.WithThrottleNote(context.Background())
			app, err := a.GetApp(ctx, "app")
			if err != nil {
				t.Fatalf("GetApp: %v", err)
			}
			if app != (controllers.FlyApp{Name: "app", ID: "a1", Org: "org", Network: "net"}) {
				t.Errorf("GetApp = %+v", app)
			}
			if got := throttled(); got != tt.wantThrottled {
				t.Errorf("throttled = %v, want %v", got, tt.wantThrottled)
			}
		})
	}
}

// TestDeletesTreatNotFoundAsDone: what is already gone is deleted; a read of it is not found.
func TestDeletesTreatNotFoundAsDone(t *testing.T) {
	fly := newFakeFly(t)
	notFound := `{"error":"not found"}`
	fly.answer("DELETE /v1/apps/gone", http.StatusNotFound, notFound)
	fly.answer("DELETE /v1/apps/app/ip_assignments/{ip}", http.StatusNotFound, notFound)
	fly.answer("DELETE /v1/apps/app/machines/m1", http.StatusNotFound, notFound)
	fly.answer("GET /v1/apps/app/machines/m1", http.StatusNotFound, notFound)
	a := adapterFor(t, fly)
	ctx := context.Background()

	if err := a.DeleteApp(ctx, "gone"); err != nil {
		t.Errorf("DeleteApp of a missing app: %v", err)
	}
	if err := a.ReleasePrivateIP(ctx, "app", "fdaa:0:1::3"); err != nil {
		t.Errorf("ReleasePrivateIP of a missing address: %v", err)
	}
	if err := a.DestroyMachine(ctx, "app", "m1"); err != nil {
		t.Errorf("DestroyMachine of a missing machine: %v", err)
	}
	if _, err := a.GetMachine(ctx, "app", "m1"); flyKind(t, err) != controllers.FlyNotFound {
		t.Errorf("GetMachine of a missing machine: %v, want not found", err)
	}
	if got := fly.request("DELETE", "/v1/apps/gone"); got.query != "force=true" {
		t.Errorf("app deleted with query %q, want force=true", got.query)
	}
	if got := fly.request("DELETE", "/v1/apps/app/machines/m1"); got.query != "force=true" {
		t.Errorf("machine destroyed with query %q, want force=true", got.query)
	}
}

func TestFindMachineSkipsDestroyedMachines(t *testing.T) {
	fly := newFakeFly(t)
	fly.answer("GET /v1/apps/app/machines", http.StatusOK, `[
	  {"id":"m1","state":"started","version":"v1","config":{"metadata":{"hangar.dev/uid":"u"}}},
	  {"id":"m2","state":"destroyed","version":"v1"},
	  {"id":"m3","state":"destroying","version":"v1"},
	  {"id":"m4","state":"stopped","instance_id":"i4"}]`)
	a := adapterFor(t, fly)

	ms, err := a.FindMachine(context.Background(), "app", "hangar.dev/uid", "u")
	if err != nil {
		t.Fatalf("FindMachine: %v", err)
	}
	want := []controllers.FlyMachine{
		{ID: "m1", State: "started", Version: "v1", Metadata: map[string]string{"hangar.dev/uid": "u"}},
		{ID: "m4", State: "stopped", Version: "i4"}, // an old answer without version: its instance ID
	}
	if diff := cmp.Diff(want, ms); diff != "" {
		t.Errorf("FindMachine (-want +got):\n%s", diff)
	}
	query, err := url.ParseQuery(fly.request("GET", "/v1/apps/app/machines").query)
	if err != nil {
		t.Fatal(err)
	}
	if got := query["metadata.hangar.dev/uid"]; !slices.Equal(got, []string{"u"}) {
		t.Errorf("list query %v, want the metadata filter hangar.dev/uid=u", query)
	}
}

// TestEnsurePrivateIP: the app's Flycast address on the network is found by the network Fly
// echoes with it; whether Fly always echoes it is unconfirmed, so an address without one counts as
// the app's when it is its only Flycast address, and when that cannot be told the adapter fails
// instead of allocating a second address on every pass.
func TestEnsurePrivateIP(t *testing.T) {
	tests := []struct {
		name      string
		network   string // default "net"
		listed    string
		wantIP    string
		wantAlloc bool
		wantKind  controllers.FlyErrorKind // checked when wantErr
		wantErr   bool
	}{
		{
			name:   "already on the network",
			listed: `{"ips":[{"ip":"1.2.3.4"},{"ip":"fdaa:0:2::9","network":{"name":"other"}},{"ip":"fdaa:0:1::3","network":{"name":"net"}}]}`,
			wantIP: "fdaa:0:1::3",
		},
		{
			name:      "none on the network",
			listed:    `{"ips":[{"ip":"fdaa:0:2::9","network":{"name":"other"}}]}`,
			wantIP:    "fdaa:0:1::7",
			wantAlloc: true,
		},
		{
			name:      "no addresses at all",
			listed:    `{"ips":[]}`,
			wantIP:    "fdaa:0:1::7",
			wantAlloc: true,
		},
		{
			name:      "only public and egress addresses, which never say a network",
			listed:    `{"ips":[{"ip":"1.2.3.4","network":null},{"ip":"2a09:8280::1"},{"ip":"fdaa:0:1::9","egress":true}]}`,
			wantIP:    "fdaa:0:1::7",
			wantAlloc: true,
		},
		{
			name:   "the only Flycast address, its network not echoed",
			listed: `{"ips":[{"ip":"1.2.3.4","network":null},{"ip":"fdaa:0:1::3","network":null}]}`,
			wantIP: "fdaa:0:1::3",
		},
		{
			name:   "the only Flycast address, network member absent, upper-case hex",
			listed: `{"ips":[{"ip":"FDAA:0:1::3"}]}`,
			wantIP: "FDAA:0:1::3",
		},
		{
			name:     "several Flycast addresses, none echoing a network",
			listed:   `{"ips":[{"ip":"fdaa:0:1::3"},{"ip":"fdaa:0:1::4"}]}`,
			wantErr:  true,
			wantKind: controllers.FlyRejected,
		},
		{
			name:     "several, one on another network, one not echoed",
			listed:   `{"ips":[{"ip":"fdaa:0:2::9","network":{"name":"other"}},{"ip":"fdaa:0:1::3"}]}`,
			wantErr:  true,
			wantKind: controllers.FlyRejected,
		},
		{
			name:   "several, one echoing the network asked for",
			listed: `{"ips":[{"ip":"fdaa:0:1::4"},{"ip":"fdaa:0:1::3","network":{"name":"net"}}]}`,
			wantIP: "fdaa:0:1::3",
		},
		{
			name:    "the default network: \"default\" in the app, \"\" on the address",
			network: "default",
			listed:  `{"ips":[{"ip":"fdaa:0:2::9","network":{"name":"other"}},{"ip":"fdaa:0:1::3","network":{"name":""}}]}`,
			wantIP:  "fdaa:0:1::3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			network := tt.network
			if network == "" {
				network = "net"
			}
			fly := newFakeFly(t)
			fly.answer("GET /v1/apps/app/ip_assignments", http.StatusOK, tt.listed)
			fly.answer("POST /v1/apps/app/ip_assignments", http.StatusOK, `{"ip":"fdaa:0:1::7","network":{"name":"net"}}`)
			a := adapterFor(t, fly)

			ip, err := a.EnsurePrivateIP(context.Background(), "app", network)
			allocated := slices.Contains(fly.sent(), "POST /v1/apps/app/ip_assignments")
			if tt.wantErr {
				if kind := flyKind(t, err); kind != tt.wantKind {
					t.Fatalf("EnsurePrivateIP error %v: kind %s, want %s", err, kind, tt.wantKind)
				}
				if !strings.Contains(err.Error(), "cannot tell") {
					t.Errorf("error %q does not say the address's network cannot be told", err)
				}
				if allocated {
					t.Error("allocated an address although it could not tell whether the app has one")
				}
				return
			}
			if err != nil || ip != tt.wantIP {
				t.Fatalf("EnsurePrivateIP = %q, %v; want %q", ip, err, tt.wantIP)
			}
			if allocated != tt.wantAlloc {
				t.Fatalf("allocated = %v, want %v", allocated, tt.wantAlloc)
			}
			if allocated {
				if body := compact(t, fly.request("POST", "/v1/apps/app/ip_assignments").body); body != `{"type":"private_v6","network":"net"}` {
					t.Errorf("allocation body %s", body)
				}
			}
		})
	}
}

// TestEnsurePrivateIPAllocationUnknown: an allocation whose answer is lost is reported as an
// unknown outcome (the next pass lists first), and is not sent twice.
func TestEnsurePrivateIPAllocationUnknown(t *testing.T) {
	fly := newFakeFly(t)
	fly.answer("GET /v1/apps/app/ip_assignments", http.StatusOK, `{"ips":[]}`)
	fly.answer("POST /v1/apps/app/ip_assignments", http.StatusServiceUnavailable, `{"error":"unavailable"}`)
	a := adapterFor(t, fly)
	_, err := a.EnsurePrivateIP(context.Background(), "app", "net")
	if kind := flyKind(t, err); kind != controllers.FlyUnavailable || !strings.HasPrefix(errMessage(err), "outcome unknown") {
		t.Errorf("error %v: want FlyUnavailable saying the outcome is unknown", err)
	}
	posts := 0
	for _, r := range fly.sent() {
		if r == "POST /v1/apps/app/ip_assignments" {
			posts++
		}
	}
	if posts != 1 {
		t.Errorf("%d allocations sent, want 1", posts)
	}
}

// errMessage is the FlyError's message.
func errMessage(err error) string {
	var fe *controllers.FlyError
	if errors.As(err, &fe) {
		return fe.Message
	}
	return ""
}

func TestSetAppSecrets(t *testing.T) {
	tests := []struct {
		name        string
		unset       []string
		wantVersion int64
		wantBodies  []string
	}{
		{"set only", nil, 4, []string{`{"values":{"A":"x"}}`}},
		{"set and unset in one change", []string{"B", "C"}, 4, []string{`{"values":{"A":"x","B":null,"C":null}}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fly := newFakeFly(t)
			var mu sync.Mutex
			version := 3
			fly.mux.HandleFunc("POST /v1/apps/app/secrets", func(w http.ResponseWriter, _ *http.Request) {
				mu.Lock()
				version++
				v := version
				mu.Unlock()
				if err := json.NewEncoder(w).Encode(map[string]any{"secrets": []any{}, "version": v}); err != nil {
					t.Errorf("answering: %v", err)
				}
			})
			a := adapterFor(t, fly)

			got, err := a.SetAppSecrets(context.Background(), "app", map[string]string{"A": "x"}, tt.unset)
			if err != nil || got != tt.wantVersion {
				t.Fatalf("SetAppSecrets = %d, %v; want version %d", got, err, tt.wantVersion)
			}
			fly.mu.Lock()
			var bodies []string
			for _, r := range fly.requests {
				bodies = append(bodies, compact(t, r.body))
			}
			fly.mu.Unlock()
			if diff := cmp.Diff(tt.wantBodies, bodies); diff != "" {
				t.Errorf("bodies sent (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUpdateMachineRefusesAnotherVersion: the read under the lease must show the version the
// update was planned from. A machine changed since, or a read lagging behind a recent write, is
// refused as a conflict and nothing is written, whether or not Fly would enforce current_version.
func TestUpdateMachineRefusesAnotherVersion(t *testing.T) {
	tests := []struct {
		name        string
		read        string
		fromVersion string
		wantUpdate  bool
	}{
		{"the version planned from", `{"id":"m1","state":"started","version":"v2","config":{"image":"a"}}`, "v2", true},
		{"a read lagging behind (older)", `{"id":"m1","state":"started","version":"v1","config":{"image":"a"}}`, "v2", false},
		{"changed since (newer)", `{"id":"m1","state":"started","version":"v3","config":{"image":"a"}}`, "v2", false},
		{"an old answer naming only the instance ID", `{"id":"m1","state":"started","instance_id":"v2","config":{"image":"a"}}`, "v2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fly := newFakeFly(t)
			fly.answer("POST /v1/apps/app/machines/m1/lease", http.StatusCreated, leaseAnswer)
			fly.answer("GET /v1/apps/app/machines/m1", http.StatusOK, tt.read)
			fly.answer("POST /v1/apps/app/machines/m1", http.StatusOK, `{"id":"m1","state":"started","version":"v9","config":{"image":"b"}}`)
			fly.answer("DELETE /v1/apps/app/machines/m1/lease", http.StatusOK, `{"status":"success","data":{"ok":true}}`)
			a := adapterFor(t, fly)

			m, err := a.UpdateMachine(context.Background(), "app", "m1", tt.fromVersion, desired())
			updated := slices.Contains(fly.sent(), "POST /v1/apps/app/machines/m1")
			if updated != tt.wantUpdate {
				t.Fatalf("update sent = %v, want %v (error %v)", updated, tt.wantUpdate, err)
			}
			if tt.wantUpdate {
				// The machine is the update's own answer, not a read after it.
				if err != nil || m.Version != "v9" {
					t.Errorf("UpdateMachine = %+v, %v; want the update's answer, version v9", m, err)
				}
			} else if kind := flyKind(t, err); kind != controllers.FlyConflict {
				t.Errorf("error %v: kind %s, want conflict", err, kind)
			}
			if release := fly.request("DELETE", "/v1/apps/app/machines/m1/lease"); release.nonce != "5c35f65c9f95" {
				t.Errorf("lease released with nonce %q, want the lease's", release.nonce)
			}
		})
	}
}

// TestUnknownOutcomes: a call with side effects whose answer is a 408, a 5xx or lost is
// FlyUnavailable saying the outcome is unknown, and is sent once; the adapter adds no retry.
func TestUnknownOutcomes(t *testing.T) {
	timeout := `{"error":"deadline_exceeded: request timed out"}`
	tests := []struct {
		name    string
		route   string
		status  int
		call    func(context.Context, *Adapter) error
		unknown bool
	}{
		{"create answered 408 after committing", "POST /v1/apps/app/machines", http.StatusRequestTimeout, func(ctx context.Context, a *Adapter) error {
			_, err := a.CreateMachine(ctx, "app", desired())
			return err
		}, true},
		{"create answered 502", "POST /v1/apps/app/machines", http.StatusBadGateway, func(ctx context.Context, a *Adapter) error {
			_, err := a.CreateMachine(ctx, "app", desired())
			return err
		}, true},
		{"start answered 408", "POST /v1/apps/app/machines/m1/start", http.StatusRequestTimeout, func(ctx context.Context, a *Adapter) error {
			return a.StartMachine(ctx, "app", "m1")
		}, true},
		{"stop answered 500", "POST /v1/apps/app/machines/m1/stop", http.StatusInternalServerError, func(ctx context.Context, a *Adapter) error {
			return a.StopMachine(ctx, "app", "m1")
		}, true},
		{"secrets answered 504", "POST /v1/apps/app/secrets", http.StatusGatewayTimeout, func(ctx context.Context, a *Adapter) error {
			_, err := a.SetAppSecrets(ctx, "app", map[string]string{"A": "x"}, nil)
			return err
		}, true},
		{"app create answered 503", "POST /v1/apps", http.StatusServiceUnavailable, func(ctx context.Context, a *Adapter) error {
			_, err := a.CreateApp(ctx, "org", "app", "net")
			return err
		}, true},
		{"create refused 422: definitely failed", "POST /v1/apps/app/machines", http.StatusUnprocessableEntity, func(ctx context.Context, a *Adapter) error {
			_, err := a.CreateMachine(ctx, "app", desired())
			return err
		}, false},
		{"a read answered 408: unavailable, no effect to be unknown", "GET /v1/apps/app/machines/m1", http.StatusRequestTimeout, func(ctx context.Context, a *Adapter) error {
			_, err := a.GetMachine(ctx, "app", "m1")
			return err
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fly := newFakeFly(t)
			fly.answer(tt.route, tt.status, timeout)
			a := adapterFor(t, fly)
			err := tt.call(context.Background(), a)
			kind := flyKind(t, err)
			if got := strings.HasPrefix(errMessage(err), "outcome unknown"); got != tt.unknown {
				t.Errorf("error %v: says the outcome is unknown = %v, want %v", err, got, tt.unknown)
			}
			if tt.unknown && kind != controllers.FlyUnavailable {
				t.Errorf("error %v: kind %s, want unavailable", err, kind)
			}
			method, _, _ := strings.Cut(tt.route, " ")
			if n := len(fly.sent()); method != http.MethodGet && n != 1 {
				t.Errorf("%d requests %v: a call with side effects is sent once", n, fly.sent())
			}
		})
	}
}

// TestCreateAppWaitsUntilVisible: Fly creates apps asynchronously; the adapter's CreateApp returns
// once the app can be read, and an app that cannot be read in time is FlyUnavailable saying it
// was created (the next pass finds the name taken and adopts it).
func TestCreateAppWaitsUntilVisible(t *testing.T) {
	tests := []struct {
		name     string
		visibleN int // reads answered 404 before the app shows; -1: never
		wantErr  bool
	}{
		{"visible at once", 0, false},
		{"visible after a few reads", 3, false},
		{"never visible", -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fly := newFakeFly(t)
			fly.answer("POST /v1/apps", http.StatusCreated, `{"id":"a1","created_at":1708631799000}`)
			var mu sync.Mutex
			reads := 0
			fly.mux.HandleFunc("GET /v1/apps/app", func(w http.ResponseWriter, _ *http.Request) {
				mu.Lock()
				reads++
				visible := tt.visibleN >= 0 && reads > tt.visibleN
				mu.Unlock()
				if !visible {
					w.WriteHeader(http.StatusNotFound)
					_, _ = io.WriteString(w, `{"error":"app not found"}`) // a failed write fails the client's call
					return
				}
				_, _ = io.WriteString(w, `{"id":"a1","name":"app","organization":{"slug":"org"},"network":"net"}`) // a failed write fails the client's call
			})
			a := adapterFor(t, fly)
			app, err := a.CreateApp(context.Background(), "org", "app", "net")
			if !tt.wantErr {
				if err != nil || app != (controllers.FlyApp{Name: "app", ID: "a1", Org: "org", Network: "net"}) {
					t.Fatalf("CreateApp = %+v, %v", app, err)
				}
				return
			}
			if kind := flyKind(t, err); kind != controllers.FlyUnavailable || !strings.Contains(errMessage(err), "was created") {
				t.Errorf("CreateApp error %v (kind %s): want unavailable, saying the app was created", err, kind)
			}
			if got := fly.request("POST", "/v1/apps"); got.query != "wait=true" {
				t.Errorf("create sent with query %q, want wait=true", got.query)
			}
		})
	}
}
