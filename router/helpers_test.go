package router

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/internal/keys"
)

var (
	testRootBytes = bytes.Repeat([]byte{0x5a}, keys.RootKeySize)
	// testNow is a fixed clock: signatures, buckets and token expiries are deterministic.
	testNow   = time.Unix(1_800_000_000, 0)
	testEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func testRoot(t testing.TB) keys.Root {
	t.Helper()
	r, err := keys.ParseRoot(testRootBytes)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// appOpt and machineOpt tweak the test objects.
type appOpt func(*flyv1alpha1.UserApp)
type machineOpt func(*flyv1alpha1.UserMachine)

func newApp(ns, name, flyApp string, opts ...appOpt) *flyv1alpha1.UserApp {
	app := &flyv1alpha1.UserApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(testEpoch)},
		Spec:       flyv1alpha1.UserAppSpec{Routing: &flyv1alpha1.AppRouting{}},
		Status:     flyv1alpha1.UserAppStatus{AppName: flyApp},
	}
	for _, o := range opts {
		o(app)
	}
	return app
}

func hosts(h ...string) appOpt { return func(a *flyv1alpha1.UserApp) { a.Spec.Routing.Hosts = h } }
func subdomain(s string) appOpt {
	return func(a *flyv1alpha1.UserApp) { a.Spec.Routing.Subdomain = s }
}
func tokenAuth() appOpt {
	return func(a *flyv1alpha1.UserApp) { a.Spec.Routing.Auth = flyv1alpha1.RoutingAuthToken }
}
func appCreated(d time.Duration) appOpt {
	return func(a *flyv1alpha1.UserApp) { a.CreationTimestamp = metav1.NewTime(testEpoch.Add(d)) }
}
func appDeleting() appOpt {
	return func(a *flyv1alpha1.UserApp) { now := metav1.NewTime(testEpoch); a.DeletionTimestamp = &now }
}

// newMachine is a routable machine (MachineCreated True, ID and app name in status) of UserApp app.
func newMachine(ns, name, app, flyApp, id string, opts ...machineOpt) *flyv1alpha1.UserMachine {
	m := &flyv1alpha1.UserMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(testEpoch)},
		Spec:       flyv1alpha1.UserMachineSpec{AppRef: flyv1alpha1.AppReference{Name: app}, Image: "img"},
		Status: flyv1alpha1.UserMachineStatus{
			AppName:   flyApp,
			MachineID: id,
			Conditions: []metav1.Condition{{
				Type: flyv1alpha1.MachineCreatedCondition, Status: metav1.ConditionTrue, Reason: flyv1alpha1.CreatedReason,
			}},
		},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

func machineHosts(h ...string) machineOpt {
	return func(m *flyv1alpha1.UserMachine) { m.Spec.Routing = &flyv1alpha1.MachineRouting{Hosts: h} }
}
func machineCreated(d time.Duration) machineOpt {
	return func(m *flyv1alpha1.UserMachine) { m.CreationTimestamp = metav1.NewTime(testEpoch.Add(d)) }
}
func notCreated() machineOpt {
	return func(m *flyv1alpha1.UserMachine) { m.Status.Conditions[0].Status = metav1.ConditionFalse }
}
func machineDeleting() machineOpt {
	return func(m *flyv1alpha1.UserMachine) { now := metav1.NewTime(testEpoch); m.DeletionTimestamp = &now }
}

// testRouter is a router without a cluster: objects go straight into the Builder.
type testRouter struct {
	t          testing.TB
	builder    *Builder
	table      *Table
	metrics    *Metrics
	public     http.Handler
	management http.Handler
	root       keys.Root
	problems   []Problem
}

type routerOpt func(*BuildConfig, *HandlerConfig)

func withForm(f Form) routerOpt { return func(b *BuildConfig, _ *HandlerConfig) { b.Replay.Form = f } }
func withTokens(v *TokenVerifier) routerOpt {
	return func(_ *BuildConfig, h *HandlerConfig) { h.Tokens = v }
}
func withRealClock() routerOpt { return func(_ *BuildConfig, h *HandlerConfig) { h.Now = nil } }
func withReplayOptions(timeout time.Duration, fallback string) routerOpt {
	return func(b *BuildConfig, _ *HandlerConfig) { b.Replay.Timeout, b.Replay.Fallback = timeout, fallback }
}

func newTestRouter(t testing.TB, opts ...routerOpt) *testRouter {
	t.Helper()
	root := testRoot(t)
	bc := BuildConfig{BaseDomain: "Apps.Example.NET.", Root: root}
	table := &Table{}
	metrics := NewMetrics(nil)
	hc := HandlerConfig{Table: table, Metrics: metrics, Now: func() time.Time { return testNow }}
	for _, o := range opts {
		o(&bc, &hc)
	}
	b, err := NewBuilder(bc)
	if err != nil {
		t.Fatal(err)
	}
	return &testRouter{
		t: t, builder: b, table: table, metrics: metrics, root: root,
		public:     NewHandler(ListenerPublic, hc),
		management: NewHandler(ListenerManagement, hc),
	}
}

// set records objects and publishes a new index.
func (r *testRouter) set(objs ...any) *testRouter {
	for _, o := range objs {
		switch o := o.(type) {
		case *flyv1alpha1.UserApp:
			r.builder.UpsertApp(o)
		case *flyv1alpha1.UserMachine:
			r.builder.UpsertMachine(o)
		default:
			r.t.Fatalf("unexpected object %T", o)
		}
	}
	return r.publish()
}

func (r *testRouter) publish() *testRouter {
	ix, problems := r.builder.Build()
	r.table.Store(ix)
	r.problems = problems
	return r
}

// request describes one test request.
type request struct {
	method string
	host   string
	header http.Header
	body   io.Reader
	length int64 // Content-Length; -1 sends the body chunked
	mgmt   bool
}

func (r *testRouter) do(req request) *httptest.ResponseRecorder {
	r.t.Helper()
	method := req.method
	if method == "" {
		method = http.MethodGet
	}
	hr := httptest.NewRequest(method, "/some/path?q=1", req.body)
	hr.Host = req.host
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if req.body != nil {
		hr.ContentLength = req.length
	}
	rec := httptest.NewRecorder()
	h := r.public
	if req.mgmt {
		h = r.management
	}
	h.ServeHTTP(rec, hr)
	return rec
}

// replayOf reads the replay of a response in either form, with the Fly Proxy simulator's grammar
// (internal/flysim/proxy), not the router's own: a mistake the router's writer made would otherwise
// be read back just as wrongly.
func replayOf(t testing.TB, rec *httptest.ResponseRecorder) proxy.Replay {
	t.Helper()
	if rec.Code != ReplayStatus {
		t.Fatalf("status = %d (%q), want the replay status %d", rec.Code, rec.Body.String(), ReplayStatus)
	}
	return readReplay(t, rec.Header(), rec.Body.Bytes())
}

// readReplay reads a replaying answer's header and body as the Fly Proxy does: the JSON form when
// the body has the replay media type, else the fly-replay header and an empty body.
func readReplay(t testing.TB, header http.Header, body []byte) proxy.Replay {
	t.Helper()
	if header.Get("Content-Type") == proxy.ReplayJSONType {
		r, err := proxy.ParseReplayJSON(body)
		if err != nil {
			t.Fatalf("JSON replay %q: %v", body, err)
		}
		return r
	}
	if len(body) != 0 {
		t.Fatalf("header-form replay has a body %q", body)
	}
	r, err := proxy.ParseReplayHeader(header.Get(proxy.HeaderReplay))
	if err != nil {
		t.Fatalf("fly-replay %q: %v", header.Get(proxy.HeaderReplay), err)
	}
	return r
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func bearer(tok string) string { return "Bearer " + tok }

// counterValue reads a counter or gauge (prometheus' testutil needs a module hangar does not require).
func counterValue(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("metric %v is neither a counter nor a gauge", c.Desc())
	return 0
}
