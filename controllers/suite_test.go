package controllers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyadapter"
	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/internal/testenv"
)

var (
	env       *testenv.Env
	nsCounter atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(testenv.RunTests(m, &env))
}

const (
	testOrg   = "personal"
	testToken = "fo1_test-token-for-hangar-controllers"
	// waitTimeout bounds every wait for convergence; generous because the machine is shared.
	waitTimeout = 60 * time.Second
	// testBaseDomain is the router base domain the managers of these tests check subdomains under.
	testBaseDomain = "apps.test"
)

// harnessOptions tune one test's stack.
type harnessOptions struct {
	driftInterval  time.Duration
	withRateLimits bool
	// profile is the emulator's profile; nil takes testProfile.
	profile *flysim.Profile
	// transitionPoll is the manager's TransitionPoll (200 ms when zero: tests look often).
	transitionPoll time.Duration
	// tenants is how many namespaces besides the harness's own the manager watches (h.tenants),
	// for tests of what one tenant can do to another.
	tenants int
	// interceptor, when set, wraps the manager's client (to inject failures between Fly calls and
	// status writes).
	interceptor *interceptor.Funcs
	// unauthorizedRetry is the manager's UnauthorizedRetry (1 s when zero).
	unauthorizedRetry time.Duration
	// now is the manager's clock for idle timeouts (time.Now when nil).
	now func() time.Time
	// flyRouter, when set, runs the FlyRouter controller with these options.
	flyRouter *controllers.FlyRouterOptions
}

// testProfile is the emulator profile controller tests run under: the realistic one (list lag,
// asynchronous apps, advisory pages, typed config, secrets lag, seconds-long transitions scaled
// down to a tenth) without its random unclear failures, so tests that count Fly calls stay exact.
// Tests of unclear failures set them, or faults, themselves; the crash suite (test/crash) runs the
// whole profile.
func testProfile() flysim.Profile {
	p := flysim.Realistic()
	p.TimeScale = 0.1
	p.UnclearFailures = nil
	return p
}

func profileOr(p *flysim.Profile) flysim.Profile {
	if p != nil {
		return *p
	}
	return testProfile()
}

// harness is one test's stack: a namespace on the shared apiserver, a Fly emulator and a manager
// watching only that namespace.
type harness struct {
	t  *testing.T
	ns string
	// tenants are the other namespaces the manager watches (harnessOptions.tenants).
	tenants   []string
	sim       *flysim.Server
	flyURL    string
	tokenFile string
	root      keys.Root
	logs      *syncBuffer
	opts      harnessOptions
	stop      func()
	// objectGets counts the manager's GETs of single UserApps and UserMachines from the apiserver
	// (its cache's lists and watches are not counted).
	objectGets atomic.Int64
	// secretGets counts the manager's GETs of single Secrets from the apiserver.
	secretGets atomic.Int64
}

// objectGetCounter counts GET requests for one hangar object, as opposed to lists and watches.
type objectGetCounter struct {
	next       http.RoundTripper
	gets       *atomic.Int64
	secretGets *atomic.Int64
}

func (c *objectGetCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && (strings.Contains(req.URL.Path, "/userapps/") || strings.Contains(req.URL.Path, "/usermachines/")) {
		c.gets.Add(1)
	}
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/secrets/") {
		c.secretGets.Add(1)
	}
	return c.next.RoundTrip(req)
}

func newHarness(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	if opts.driftInterval == 0 {
		opts.driftInterval = time.Minute
	}
	if opts.transitionPoll == 0 {
		opts.transitionPoll = 200 * time.Millisecond
	}
	if opts.unauthorizedRetry == 0 {
		opts.unauthorizedRetry = time.Second
	}
	h := &harness{t: t, opts: opts, logs: &syncBuffer{}}
	h.ns = fmt.Sprintf("ctrl-%d", nsCounter.Add(1))
	for i := range opts.tenants {
		h.tenants = append(h.tenants, fmt.Sprintf("%s-t%d", h.ns, i+1))
	}
	for _, ns := range append([]string{h.ns}, h.tenants...) {
		if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	h.sim = flysim.New(flysim.Options{
		Orgs:              []flysim.OrgToken{{Token: testToken, Org: testOrg}, {Token: "fo1_other-org-token", Org: "other-org"}},
		Seed:              nsCounter.Load(),
		DisableRateLimits: !opts.withRateLimits,
		Profile:           profileOr(opts.profile),
	})
	srv := httptest.NewServer(h.sim)
	h.flyURL = srv.URL
	t.Cleanup(func() { srv.Close(); h.sim.Close() })

	h.tokenFile = filepath.Join(t.TempDir(), "fly-token")
	h.writeToken(testToken)
	rootBytes := make([]byte, keys.RootKeySize)
	_, _ = rand.Read(rootBytes)
	root, err := keys.ParseRoot(rootBytes)
	if err != nil {
		t.Fatal(err)
	}
	h.root = root
	h.startManager()
	t.Cleanup(func() { h.stopManager() })
	t.Cleanup(func() {
		if t.Failed() {
			// What the manager did and what Fly saw, for a failure seen only under load.
			lines := strings.Split(h.logs.String(), "\n")
			t.Logf("manager log (last 80 lines):\n%s", strings.Join(lines[max(0, len(lines)-80):], "\n"))
			calls := h.sim.Calls()
			for _, c := range calls[max(0, len(calls)-40):] {
				t.Logf("fly call %s %s %s machine=%s status=%d", c.Time.Format("15:04:05.000"), c.Action, c.App, c.Machine, c.Status)
			}
		}
	})
	return h
}

// cacheOptions are the manager's: its namespace and the tenants', and the activity Leases of its
// namespace (which stands for the manager's own namespace in these tests).
func (h *harness) cacheOptions() cache.Options {
	opts := controllers.ActivityCacheOptions(controllers.CacheOptions(h.ns), h.ns)
	for _, ns := range h.tenants {
		opts.DefaultNamespaces[ns] = cache.Config{}
	}
	return opts
}

// startManager starts a manager for the harness namespace.
func (h *harness) startManager() {
	t := h.t
	zl := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(h.logs), zapcore.DebugLevel))
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &objectGetCounter{next: rt, gets: &h.objectGets, secretGets: &h.secretGets}
	})
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Scheme,
		Logger:                 zapr.NewLogger(zl),
		Client:                 controllers.ClientOptions(),
		Cache:                  h.cacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		NewClient: func(cfg *rest.Config, opts client.Options) (client.Client, error) {
			if h.opts.interceptor == nil {
				return client.New(cfg, opts)
			}
			c, err := client.NewWithWatch(cfg, opts)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, *h.opts.interceptor), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fly, err := flyapi.New(flyapi.Options{BaseURL: h.flyURL, Token: flyapi.FileToken(h.tokenFile)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var flyRouter controllers.FlyRouterOptions
	if h.opts.flyRouter != nil {
		flyRouter = *h.opts.flyRouter
	}
	err = controllers.Setup(mgr, controllers.Dependencies{
		FlyRouter:          flyRouter,
		Fly:                flyadapter.New(fly, flyadapter.Options{}),
		Keys:               h.root,
		CredentialsChanged: flyapi.WatchTokenFile(ctx, h.tokenFile, 50*time.Millisecond),
		Options: controllers.Options{
			DefaultOrg: testOrg, DefaultRegion: "ord", AppNamePrefix: "hangar-",
			DriftInterval: h.opts.driftInterval, UnauthorizedRetry: h.opts.unauthorizedRetry, TransitionPoll: h.opts.transitionPoll,
			KeyRotationOverlap: 3 * time.Second,
			RouterBaseDomain:   testBaseDomain,
			ActivityNamespace:  h.ns,
			Now:                h.opts.now,
		},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	h.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager stopped with: %v", err)
		}
	}
}

func (h *harness) stopManager() {
	if h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

func (h *harness) writeToken(token string) {
	h.t.Helper()
	if err := os.WriteFile(h.tokenFile, []byte(token+"\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// create creates obj in the harness namespace.
func (h *harness) create(obj client.Object) {
	h.t.Helper()
	if obj.GetNamespace() == "" {
		obj.SetNamespace(h.ns)
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		h.t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// update re-reads obj, applies mutate and writes it back, retrying on conflicts.
func (h *harness) update(obj client.Object, mutate func()) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err
		}
		mutate()
		err := env.Client.Update(ctx, obj)
		return err == nil, client.IgnoreNotFound(ignoreConflict(err))
	})
	if err != nil {
		h.t.Fatalf("updating %s: %v", obj.GetName(), err)
	}
}

// eventually polls until check returns "" (success) or the timeout, then fails with the last
// complaint. It waits for convergence; it never asserts on how long that took.
func (h *harness) eventually(what string, check func() string) {
	h.t.Helper()
	h.pollUntil(what, 100*time.Millisecond, waitTimeout, check)
}

// get reads obj fresh from the apiserver.
func (h *harness) get(obj client.Object) {
	h.t.Helper()
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		h.t.Fatalf("reading %s: %v", obj.GetName(), err)
	}
}

// gone waits until obj no longer exists (its finalizer released).
func (h *harness) gone(obj client.Object) {
	h.t.Helper()
	h.eventually(obj.GetName()+" gone", func() string {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
		if !apierrors.IsNotFound(err) {
			return fmt.Sprintf("still there (%v)", err)
		}
		return ""
	})
}

// ready waits until obj's Ready condition is True.
func (h *harness) ready(obj client.Object) {
	h.t.Helper()
	h.condition(obj, flyv1alpha1.ReadyCondition, metav1.ConditionTrue, "")
}

// condition waits until obj has the condition with that status (and reason, when not empty).
func (h *harness) condition(obj client.Object, condType string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	h.t.Helper()
	var found *metav1.Condition
	h.eventually(fmt.Sprintf("%s %s=%s %s", obj.GetName(), condType, status, reason), func() string {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err.Error()
		}
		c := meta.FindStatusCondition(conditionsOf(obj), condType)
		if c == nil {
			return "no condition yet"
		}
		if c.Status != status || (reason != "" && c.Reason != reason) {
			return fmt.Sprintf("%s=%s reason %s: %s", condType, c.Status, c.Reason, c.Message)
		}
		found = c
		return ""
	})
	return found
}

// conditionsOf reads the conditions of any hangar object.
func conditionsOf(obj client.Object) []metav1.Condition {
	if o, ok := obj.(interface{ GetConditions() []metav1.Condition }); ok {
		return o.GetConditions()
	}
	return nil
}

// events lists the Events about the object named name, by reason.
func (h *harness) events(name string) map[string][]string {
	h.t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(h.ns)); err != nil {
		h.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out[e.Reason] = append(out[e.Reason], e.Note)
		}
	}
	return out
}

// eventCount counts the occurrences of Events with reason about the object named name. The event
// recorder folds a repeated Event into a series instead of a new object, so a series counts as its
// count.
func (h *harness) eventCount(name, reason string) int {
	h.t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(h.ns)); err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, e := range list.Items {
		if e.Regarding.Name != name || e.Reason != reason {
			continue
		}
		if e.Series != nil {
			n += int(e.Series.Count)
		} else {
			n++
		}
	}
	return n
}

// writes counts the calls that change something on Fly, for steady-state checks.
func writes(calls []flysim.Call) int {
	n := 0
	for _, c := range calls {
		if c.Method != "GET" {
			n++
		}
	}
	return n
}

// callsOf keeps the calls of one action.
func callsOf(calls []flysim.Call, action string) []flysim.Call {
	var out []flysim.Call
	for _, c := range calls {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

// machineConfig decodes the emulator's stored config of a machine.
func machineConfig(t *testing.T, m flysim.MachineInfo) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(m.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func ignoreConflict(err error) error {
	if err != nil && strings.Contains(err.Error(), "the object has been modified") {
		return nil
	}
	return err
}

// appSecretLabels marks a Secret as shared with the namespace's UserApps.
func appSecretLabels() map[string]string {
	return map[string]string{flyv1alpha1.AppSecretLabel: "true"}
}

// newApp and newMachine build the objects most tests use.
func newApp(name string) *flyv1alpha1.UserApp {
	return &flyv1alpha1.UserApp{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: flyv1alpha1.UserAppSpec{
			AllocatePrivateIP: true,
			Routing:           &flyv1alpha1.AppRouting{Hosts: []string{name + ".example.com"}},
		},
	}
}

func newMachine(name, app string) *flyv1alpha1.UserMachine {
	return &flyv1alpha1.UserMachine{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: flyv1alpha1.UserMachineSpec{
			AppRef: flyv1alpha1.AppReference{Name: app},
			Region: "ams",
			Image:  "registry.fly.io/workspace:v1",
			Guest:  &flyv1alpha1.Guest{CPUKind: flyv1alpha1.CPUKindShared, CPUs: 1, MemoryMB: 512},
			Env:    map[string]string{"OWNER": name},
		},
	}
}

// readyUser creates a UserApp and one UserMachine named after user and waits until the machine is
// Ready and observed started.
func (h *harness) readyUser(user string) (*flyv1alpha1.UserApp, *flyv1alpha1.UserMachine) {
	h.t.Helper()
	app := newApp(user)
	um := newMachine(user+"-ws", user)
	h.create(app)
	h.create(um)
	h.ready(app)
	h.settled(um, "started")
	return app, um
}

// settled waits until um is Ready and its status shows state.
func (h *harness) settled(um *flyv1alpha1.UserMachine, state string) {
	h.t.Helper()
	h.ready(um)
	h.eventually(um.Name+" observed "+state, func() string {
		h.get(um)
		if um.Status.State != state || !meta.IsStatusConditionTrue(um.Status.Conditions, flyv1alpha1.ReadyCondition) {
			return fmt.Sprintf("state %q, conditions %v", um.Status.State, um.Status.Conditions)
		}
		return ""
	})
}

// reconciles is controller-runtime's count of finished passes of a controller.
func reconciles(t *testing.T, controller string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func newJSONRequest(method, url, body, token string) (*http.Request, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}

func findCondition(conds []metav1.Condition, condType string) *metav1.Condition {
	return meta.FindStatusCondition(conds, condType)
}

// eventuallyWithin is eventually with its own timeout, for long convergences (benchmarks); it looks
// less often, so its own reads weigh little on what is measured.
func (h *harness) eventuallyWithin(what string, timeout time.Duration, check func() string) {
	h.t.Helper()
	h.pollUntil(what, 500*time.Millisecond, timeout, check)
}

// pollUntil calls check every interval until it returns "" or timeout passes, then fails with the
// last complaint.
func (h *harness) pollUntil(what string, interval, timeout time.Duration, check func() string) {
	h.t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), interval, timeout, true, func(context.Context) (bool, error) {
		last = check()
		return last == "", nil
	})
	if err != nil {
		h.t.Fatalf("%s: not reached: %s", what, last)
	}
}
