package router

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/internal/testenv"
	"github.com/hangar-dev/hangar/pkg/replayauth"
)

// TestRouterServesAndDrains runs the assembled router (New, then Run, as cmd/router and the local
// stack do) against a real kube-apiserver and checks, through real sockets: readiness after the
// first sync, health and metrics, a public and a management replay, and that ending Run's context
// turns readiness off, lets an in-flight request finish, and makes Run return nil.
func TestRouterServesAndDrains(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	root := testRoot(t)
	logs := &logRecorder{}
	r, err := New(Config{
		RESTConfig: env.Config, BaseDomain: "apps.test", Root: root,
		PublicAddr: "127.0.0.1:0", ManagementAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0",
		DrainDelay: time.Second, ShutdownTimeout: 20 * time.Second, Logger: logs.logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	addrs := r.Addrs()
	for name, addr := range map[string]string{"public": addrs.Public, "management": addrs.Management, "metrics": addrs.Metrics, "health": addrs.Health} {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
			t.Fatalf("%s listener address %q: want the bound port", name, addr)
		}
		logs.waitFor(t, "Listening", "listener", name, "address", addr)
	}
	if r.Ready() {
		t.Fatal("ready before Run")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runErr error
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		runErr = r.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-stopped })

	waitFor(t, time.Now().Add(60*time.Second), "readiness", func() bool { return get(t, addrs.Health, "/readyz") == http.StatusOK })
	if !r.Ready() {
		t.Fatal("/readyz answers 200 but Ready is false")
	}
	select {
	case <-r.Initialized():
	default:
		t.Fatal("ready but not initialized")
	}
	if get(t, addrs.Health, "/healthz") != http.StatusOK {
		t.Fatal("/healthz is not 200")
	}

	c := env.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenants"}}); err != nil {
		t.Fatal(err)
	}
	app := &flyv1alpha1.UserApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenants", Name: "alice"},
		Spec:       flyv1alpha1.UserAppSpec{Routing: &flyv1alpha1.AppRouting{Subdomain: "alice"}},
	}
	if err := c.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	app.Status.AppName = "alice-app"
	if err := c.Status().Update(ctx, app); err != nil {
		t.Fatal(err)
	}
	m := &flyv1alpha1.UserMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenants", Name: "ws"},
		Spec:       flyv1alpha1.UserMachineSpec{AppRef: flyv1alpha1.AppReference{Name: "alice"}, Image: "registry.fly.io/x:1"},
	}
	if err := c.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	m.Status = flyv1alpha1.UserMachineStatus{AppName: "alice-app", MachineID: aliceID, Conditions: []metav1.Condition{{
		Type: flyv1alpha1.MachineCreatedCondition, Status: metav1.ConditionTrue, Reason: "Created", Message: "created", LastTransitionTime: metav1.Now(),
	}}}
	if err := c.Status().Update(ctx, m); err != nil {
		t.Fatal(err)
	}

	// Public replay, with a state the machine can verify with the key the manager gives it.
	var replay string
	waitFor(t, time.Now().Add(10*time.Second), "alice to be routed", func() bool {
		code, header := ask(t, addrs.Public, "alice.apps.test", nil)
		replay = header.Get(HeaderReplay)
		return code == ReplayStatus
	})
	parsed, err := proxy.ParseReplayHeader(replay)
	if err != nil || parsed.App != "alice-app" || parsed.Instance != aliceID {
		t.Fatalf("replay %q: %+v, %v", replay, parsed, err)
	}
	if err := replayauth.VerifyState(root.ReplayKey(keys.App{FlyApp: "alice-app", Owner: string(app.UID), Generation: 1}), parsed.State, "alice-app", aliceID, time.Now()); err != nil {
		t.Fatalf("the state does not verify: %v", err)
	}
	// A management replay needs the app's token.
	if code, _ := ask(t, addrs.Management, "router.internal", http.Header{TargetHeader: {"tenants/ws"}}); code != http.StatusUnauthorized {
		t.Fatalf("management without token: %d", code)
	}
	code, _ := ask(t, addrs.Management, "router.internal", http.Header{
		TargetHeader: {"tenants/ws"}, "Authorization": {"Bearer " + root.ManagementToken(keys.App{FlyApp: "alice-app", Owner: string(app.UID), Generation: 1})},
	})
	if code != ReplayStatus {
		t.Fatalf("management with token: %d", code)
	}
	if body := getBody(t, addrs.Metrics, "/metrics"); !strings.Contains(body, `hangar_router_requests_total{listener="public",outcome="replayed"}`) ||
		!strings.Contains(body, "hangar_router_index_routes 1") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics lack the router's (or the Go) series:\n%s", body)
	}

	// Graceful drain: a request whose chunked body is still arriving when the context ends must be
	// answered; readiness must go off first; Run must return nil.
	conn, err := net.Dial("tcp", addrs.Public)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: alice.apps.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"); err != nil {
		t.Fatal(err)
	}
	cancel()
	logs.waitFor(t, "Draining: reporting unready before closing the listeners")
	if code := get(t, addrs.Health, "/readyz"); code != http.StatusServiceUnavailable || r.Ready() {
		t.Errorf("/readyz while draining = %d (Ready %v), want 503", code, r.Ready())
	}
	logs.waitFor(t, "Shutting down listeners")
	if _, err := fmt.Fprintf(conn, "0\r\n\r\n"); err != nil {
		t.Fatalf("finishing the in-flight body: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	inflight, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request got no answer: %v", err)
	}
	_ = inflight.Body.Close()
	if inflight.StatusCode != ReplayStatus {
		t.Fatalf("in-flight request answered %d, want a replay", inflight.StatusCode)
	}
	select {
	case <-stopped:
		if runErr != nil {
			t.Fatalf("Run = %v, want nil after a clean drain", runErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	for name, addr := range map[string]string{"public": addrs.Public, "metrics": addrs.Metrics, "health": addrs.Health} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close()
			t.Errorf("the %s listener still accepts after Run returned", name)
		}
	}
}

// offlineConfig is a Config that needs no apiserver until Run.
func offlineConfig(t *testing.T) Config {
	return Config{
		RESTConfig: &rest.Config{Host: "https://127.0.0.1:1"}, Root: testRoot(t), PublicAddr: "127.0.0.1:0", Logger: logr.Discard(),
	}
}

func TestNewChecksConfig(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"no REST config", func(c *Config) { c.RESTConfig = nil }},
		{"no public address", func(c *Config) { c.PublicAddr = "" }},
		{"no root key", func(c *Config) { c.Root = keys.Root{} }},
		{"bad base domain", func(c *Config) { c.BaseDomain = "not a domain" }},
		{"bad replay options", func(c *Config) { c.Replay.Fallback = "elsewhere" }},
		{"negative drain delay", func(c *Config) { c.DrainDelay = -time.Second }},
		{"negative body limit", func(c *Config) { c.MaxBodyBytes = -1 }},
		{"state TTL above the maximum", func(c *Config) { c.StateTTL = MaxStateTTL + time.Second }},
		{"unusable address", func(c *Config) { c.HealthAddr = "127.0.0.1:http-ish" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := offlineConfig(t)
			cfg.ManagementAddr = "127.0.0.1:0"
			tt.change(&cfg)
			if r, err := New(cfg); err == nil {
				t.Fatalf("New accepted the config (addresses %+v)", r.Addrs())
			}
		})
	}
}

// TestNewReleasesPortsOnFailure: a taken port fails New, and the listeners New had bound already
// are closed again.
func TestNewReleasesPortsOnFailure(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	_ = free.Close()

	cfg := offlineConfig(t)
	cfg.PublicAddr, cfg.HealthAddr = freeAddr, taken.Addr().String()
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "for health") {
		t.Fatalf("New with the health port taken = %v, want an error naming the health listener", err)
	}
	again, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("the public port stayed bound after New failed: %v", err)
	}
	_ = again.Close()
}

// TestRouterWithoutOptionalListeners: empty addresses disable the management, metrics and health
// listeners; the handlers exist anyway, and Run with an ended context drains at once.
func TestRouterWithoutOptionalListeners(t *testing.T) {
	registry := prometheus.NewRegistry()
	cfg := offlineConfig(t)
	cfg.Registry = registry
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addrs := r.Addrs()
	if addrs.Public == "" || addrs.Management != "" || addrs.Metrics != "" || addrs.Health != "" {
		t.Fatalf("addresses %+v, want only the public listener", addrs)
	}
	if r.Handler(ListenerPublic) == nil || r.Handler(ListenerManagement) == nil || r.Handler(listenerCount) != nil {
		t.Fatal("Handler: want the public and management handlers, nil for anything else")
	}
	if r.Ready() {
		t.Fatal("ready before Run")
	}
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(families, func(f *dto.MetricFamily) bool { return f.GetName() == "hangar_router_requests_total" }) {
		t.Fatal("the router's metrics are not in Config.Registry")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return for an ended context")
	}
	if r.Ready() {
		t.Error("ready after Run returned")
	}
	if err := r.Run(ctx); err == nil {
		t.Error("a second Run was accepted")
	}
	ln, err := net.Listen("tcp", addrs.Public)
	if err != nil {
		t.Fatalf("the public port stayed bound after Run returned: %v", err)
	}
	_ = ln.Close()
}

// logRecorder keeps the messages and key/value pairs a Router logs.
type logRecorder struct {
	mu      sync.Mutex
	entries []map[string]any
}

func (l *logRecorder) logger() logr.Logger {
	return funcr.NewJSON(func(obj string) {
		var entry map[string]any
		if err := json.Unmarshal([]byte(obj), &entry); err != nil {
			panic(err) // funcr writes JSON
		}
		l.mu.Lock()
		l.entries = append(l.entries, entry)
		l.mu.Unlock()
	}, funcr.Options{})
}

// waitFor waits for an entry with message msg and the given key/value pairs.
func (l *logRecorder) waitFor(t *testing.T, msg string, kv ...string) {
	t.Helper()
	waitFor(t, time.Now().Add(60*time.Second), fmt.Sprintf("a log line %q %v", msg, kv), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return slices.ContainsFunc(l.entries, func(e map[string]any) bool {
			if e["msg"] != msg {
				return false
			}
			for i := 0; i+1 < len(kv); i += 2 {
				if e[kv[i]] != kv[i+1] {
					return false
				}
			}
			return true
		})
	})
}

var testClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// ask sends a GET with the given Host and headers and returns the status and response headers.
func ask(t *testing.T, addr, host string, header http.Header) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode, res.Header
}

func get(t *testing.T, addr, path string) int {
	t.Helper()
	res, err := testClient.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}

func getBody(t *testing.T, addr, path string) string {
	t.Helper()
	res, err := testClient.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return string(b)
}
