package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/internal/testenv"
	"github.com/hangar-dev/hangar/pkg/replayauth"
	"github.com/hangar-dev/hangar/router"
)

// runAsRouter makes the test binary act as the router binary, so the process test can send it a
// real SIGTERM.
const runAsRouter = "HANGAR_TEST_RUN_ROUTER_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsRouter) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestFlagValidation(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"--help"}, 0},
		{"unknown flag", []string{"--nope"}, 2},
		{"bad replay form", []string{"--replay-form=xml"}, 2},
		{"bad fallback", []string{"--replay-fallback=elsewhere"}, 2},
		{"negative timeout", []string{"--replay-timeout=-1s"}, 2},
		{"short state TTL", []string{"--state-ttl=1s"}, 2},
		{"long state TTL", []string{"--state-ttl=9m"}, 2},
		{"no public address", []string{"--public-addr="}, 2},
		{"bad log level", []string{"--log-level=loud"}, 2},
		{"activity interval under a second", []string{"--activity-interval=500ms"}, 2},
		{"activity without a namespace", []string{"--activity-namespace="}, 2},
		{"missing root key", []string{"--root-key-file=" + filepath.Join(dir, "missing"), "--log-level=error"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := run(context.Background(), tt.args, &stderr); got != tt.want {
				t.Fatalf("run(%v) = %d, want %d; stderr: %s", tt.args, got, tt.want, stderr.String())
			}
		})
	}
}

// TestRouterConfig: the flags and the files they name become the router's Config, and a file that
// cannot be read is the error.
func TestRouterConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootKey := keys.GenerateRootKey()
	rootKeyFile := write("root.key", rootKey)
	tokenKeyFile := write("token.key", []byte(strings.Repeat("k", 32)+"\n"))
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://192.0.2.1:6443"}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c"}
	kc.CurrentContext = "c"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	flags := func(extra ...string) []string {
		return append([]string{
			"--kubeconfig=" + kubeconfig, "--root-key-file=" + rootKeyFile, "--public-token-key-file=" + tokenKeyFile,
			"--base-domain=apps.test", "--namespace=tenants", "--replay-form=json", "--replay-timeout=1500ms",
			"--replay-fallback=prefer_self", "--state-ttl=2m", "--retry-after=7s", "--max-body-bytes=1000",
			"--public-addr=:1", "--management-addr=", "--metrics-addr=:3", "--health-addr=:4",
			"--drain-delay=2s", "--shutdown-timeout=9s", "--activity-interval=45s", "--activity-namespace=hangar",
		}, extra...)
	}
	configFor := func(args []string) (router.Config, error) {
		var opts options
		if err := flagSet(&opts).Parse(args); err != nil {
			t.Fatal(err)
		}
		return opts.routerConfig(logr.Discard())
	}

	cfg, err := configFor(flags())
	if err != nil {
		t.Fatal(err)
	}
	root, err := keys.ParseRoot(rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RESTConfig.Host != "https://192.0.2.1:6443" || cfg.RESTConfig.UserAgent != "hangar-router" {
		t.Errorf("REST config host %q, user agent %q", cfg.RESTConfig.Host, cfg.RESTConfig.UserAgent)
	}
	if cfg.Root.ManagementToken(keys.App{FlyApp: "a", Generation: 1}) != root.ManagementToken(keys.App{FlyApp: "a", Generation: 1}) {
		t.Error("Config.Root is not the key of --root-key-file")
	}
	if cfg.Tokens == nil {
		t.Error("no token verifier with --public-token-key-file")
	}
	want := router.Config{
		Namespace: "tenants", BaseDomain: "apps.test",
		Replay:   router.ReplayOptions{Form: router.FormJSON, Timeout: 1500 * time.Millisecond, Fallback: router.FallbackPreferSelf},
		StateTTL: 2 * time.Minute, RetryAfter: 7 * time.Second, MaxBodyBytes: 1000,
		PublicAddr: ":1", MetricsAddr: ":3", HealthAddr: ":4", DrainDelay: 2 * time.Second, ShutdownTimeout: 9 * time.Second,
		Activity: router.ActivityConfig{Interval: 45 * time.Second, Namespace: "hangar"},
	}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreFields(router.Config{}, "RESTConfig", "Root", "Tokens", "Logger", "Registry")); diff != "" {
		t.Errorf("Config (-want +got):\n%s", diff)
	}
	// The registry /metrics serves carries the build identity beside the router's own metrics.
	if families, err := cfg.Registry.Gather(); err != nil || !slices.ContainsFunc(families, func(f *dto.MetricFamily) bool {
		return f.GetName() == "hangar_build_info"
	}) {
		t.Errorf("the metrics registry serves no hangar_build_info (gather error %v)", err)
	}
	if cfg, err := configFor(flags("--public-token-key-file=")); err != nil || cfg.Tokens != nil {
		t.Errorf("without --public-token-key-file: tokens %v, %v; want none", cfg.Tokens, err)
	}

	missing := filepath.Join(dir, "missing")
	for _, tt := range []struct{ flag, inError string }{
		{"--root-key-file=", "root key"},
		{"--public-token-key-file=", "missing"},
		{"--kubeconfig=", "Kubernetes client configuration"},
	} {
		_, err := configFor(flags(tt.flag + missing))
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), tt.inError) {
			t.Errorf("%s<missing file>: %v, want a not-exist error mentioning %q", tt.flag, err, tt.inError)
		}
	}
}

// TestRouterProcess starts the router binary against a real kube-apiserver and checks, through
// real sockets, that the flags reach the router: JSON logs naming every listener, readiness, a
// replay for <subdomain>.<--base-domain> whose state verifies with the key of --root-key-file, a
// management replay, metrics, and that SIGTERM turns readiness off (--drain-delay) and exits 0.
// Serving and draining themselves are the router package's (TestRouterServesAndDrains).
func TestRouterProcess(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	dir := t.TempDir()
	kubeconfig := writeKubeconfig(t, env, dir)
	rootKey := keys.GenerateRootKey()
	rootKeyFile := filepath.Join(dir, keys.RootKeySecretKey)
	if err := os.WriteFile(rootKeyFile, rootKey, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0],
		"--kubeconfig="+kubeconfig, "--root-key-file="+rootKeyFile, "--base-domain=apps.test",
		"--public-addr=127.0.0.1:0", "--management-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0",
		"--health-addr=127.0.0.1:0", "--drain-delay=1s", "--shutdown-timeout=20s")
	cmd.Env = append(os.Environ(), runAsRouter+"=1")
	// Through a pipe of our own rather than StdoutPipe, so Wait does not close it before the last
	// lines ("Router stopped") are read.
	output, outputW := io.Pipe()
	cmd.Stdout, cmd.Stderr = outputW, outputW
	logs := &logLines{t: t, addrs: map[string]string{}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go logs.read(output)
	go func() {
		err := cmd.Wait()
		_ = outputW.Close()
		exited <- err
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})

	public := logs.waitAddr("public")
	mgmt := logs.waitAddr("management")
	health := logs.waitAddr("health")
	metricsAddr := logs.waitAddr("metrics")
	eventually(t, 60*time.Second, "readiness", func() bool { return get(t, health, "/readyz") == http.StatusOK })

	ctx := context.Background()
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
	m.Status = flyv1alpha1.UserMachineStatus{AppName: "alice-app", MachineID: "a1a1a1a1a1a1a1", Conditions: []metav1.Condition{{
		Type: flyv1alpha1.MachineCreatedCondition, Status: metav1.ConditionTrue, Reason: "Created", Message: "created", LastTransitionTime: metav1.Now(),
	}}}
	if err := c.Status().Update(ctx, m); err != nil {
		t.Fatal(err)
	}

	// Public replay, with a state the machine can verify with the key the manager gives it.
	root, err := keys.ParseRoot(rootKey)
	if err != nil {
		t.Fatal(err)
	}
	var replay string
	eventually(t, 10*time.Second, "alice to be routed", func() bool {
		code, header := do(t, public, "alice.apps.test", nil)
		replay = header.Get(router.HeaderReplay)
		return code == router.ReplayStatus
	})
	parsed, err := proxy.ParseReplayHeader(replay)
	if err != nil || parsed.App != "alice-app" || parsed.Instance != "a1a1a1a1a1a1a1" {
		t.Fatalf("replay %q: %+v, %v", replay, parsed, err)
	}
	if err := replayauth.VerifyState(root.ReplayKey(keys.App{FlyApp: "alice-app", Owner: string(app.UID), Generation: 1}), parsed.State, "alice-app", "a1a1a1a1a1a1a1", time.Now()); err != nil {
		t.Fatalf("the state does not verify: %v", err)
	}
	code, _ := do(t, mgmt, "router.internal", http.Header{
		router.TargetHeader: {"tenants/ws"}, "Authorization": {"Bearer " + root.ManagementToken(keys.App{FlyApp: "alice-app", Owner: string(app.UID), Generation: 1})},
	})
	if code != router.ReplayStatus {
		t.Fatalf("management with token: %d", code)
	}
	if body := getBody(t, metricsAddr, "/metrics"); !strings.Contains(body, `hangar_router_requests_total{listener="public",outcome="replayed"}`) {
		t.Fatalf("metrics lack the router's series:\n%s", body)
	}

	// SIGTERM: readiness goes off for the drain delay, then the process exits 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs.waitMessage("Draining: reporting unready before closing the listeners")
	if code := get(t, health, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining = %d, want 503", code)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("router exited with %v, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("router did not exit after SIGTERM")
	}
	logs.waitMessage("Router stopped")
}

func writeKubeconfig(t *testing.T, env *testenv.Env, dir string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData, Token: env.Config.BearerToken}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	cfg.CurrentContext = "envtest"
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// logLines reads the router's log, requires every line to be a JSON object, and records the
// listener addresses and messages.
type logLines struct {
	t        *testing.T
	mu       sync.Mutex
	addrs    map[string]string
	messages []string
	changed  chan struct{}
	once     sync.Once
}

func (l *logLines) signal() chan struct{} {
	l.once.Do(func() { l.changed = make(chan struct{}, 1) })
	return l.changed
}

func (l *logLines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var entry map[string]any
		if err := json.Unmarshal(line, &entry); err != nil {
			l.t.Errorf("log line is not JSON: %s", line)
			continue
		}
		msg, _ := entry["msg"].(string)
		l.mu.Lock()
		l.messages = append(l.messages, msg)
		if msg == "Listening" {
			l.addrs[entry["listener"].(string)] = entry["address"].(string)
		}
		l.mu.Unlock()
		select {
		case l.signal() <- struct{}{}:
		default:
		}
	}
}

func (l *logLines) waitFor(what string, found func() bool) {
	l.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		l.mu.Lock()
		ok := found()
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-l.signal():
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			l.t.Fatalf("no log line for %s; got %q", what, l.messages)
		}
	}
}

func (l *logLines) waitAddr(listener string) string {
	l.t.Helper()
	l.waitFor("the "+listener+" listener", func() bool { return l.addrs[listener] != "" })
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addrs[listener]
}

func (l *logLines) waitMessage(msg string) {
	l.t.Helper()
	l.waitFor(msg, func() bool { return slices.Contains(l.messages, msg) })
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// do sends a GET with the given Host and headers and returns the status and response headers.
func do(t *testing.T, addr, host string, header http.Header) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode, res.Header
}

func get(t *testing.T, addr, path string) int {
	t.Helper()
	res, err := client.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}

func getBody(t *testing.T, addr, path string) string {
	t.Helper()
	res, err := client.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
