// Package e2e tests hangar end to end on the local stack started in-process (internal/devstack): a
// real kube-apiserver, the Fly emulator with its proxy and simulated user machines, the manager and
// the router. Requests go through the simulated Fly Proxy exactly as a user's would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/devstack"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
)

const ns = "e2e"

var (
	stack      *devstack.Stack
	httpClient = &http.Client{Timeout: 30 * time.Second}
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx := context.Background()
	var err error
	var stop func()
	stack, stop, err = startStack(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		return 1
	}
	defer stop()
	for _, u := range []user{{name: "alice", power: flyv1alpha1.PowerStateAuto}, {name: "bob", power: flyv1alpha1.PowerStateAuto}} {
		if err := u.create(ctx, stack); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := stack.WaitReady(ctx, ns, 2*time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startStack starts a local stack on free ports with the e2e namespace created; options change its
// Config. stop stops it and removes its state folder.
func startStack(ctx context.Context, options ...func(*devstack.Config)) (*devstack.Stack, func(), error) {
	dir, err := os.MkdirTemp("", "hangar-e2e-")
	if err != nil {
		return nil, nil, err
	}
	logger := zap.NewNop()
	if os.Getenv("HANGAR_E2E_LOGS") != "" {
		logger, _ = zap.NewDevelopment()
	}
	cfg := devstack.Config{
		StateDir:      dir,
		FlyAPIAddr:    "127.0.0.1:0",
		ProxyListen:   map[int]string{80: "127.0.0.1:0", 9090: "127.0.0.1:0"},
		DriftInterval: 5 * time.Second,
		FlyProfile:    e2eProfile(),
		Autostop:      proxy.AutostopOptions{Disabled: true},
		Logger:        zapr.NewLogger(logger),
	}
	for _, option := range options {
		option(&cfg)
	}
	s, err := devstack.Start(ctx, cfg)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() {
		if err := s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the local stack:", err)
		}
		_ = os.RemoveAll(dir)
	}
	if err := s.Env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}

// e2eProfile is the emulated Fly the suite runs against: the realistic profile (list lag, unclear
// failures, asynchronous apps, typed config, secrets lag, a public IP needed on the entry app) with
// its transitions at a fifth of their length, so a wake still takes a few hundred milliseconds.
func e2eProfile() flysim.Profile {
	p := flysim.Realistic()
	p.TimeScale = 0.2
	return p
}

// user is one end user: a Secret, a UserApp routed at <name>.example.com and one UserMachine.
type user struct {
	name  string
	power flyv1alpha1.PowerState
}

func (u user) host() string    { return u.name + ".example.com" }
func (u user) machine() string { return u.name + "-ws" }

func (u user) create(ctx context.Context, s *devstack.Stack) error {
	c := s.Env.Client
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: u.name + "-creds", Namespace: ns, Labels: map[string]string{flyv1alpha1.AppSecretLabel: "true"}}, StringData: map[string]string{"key": "v1"}},
		&flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: u.name, Namespace: ns}, Spec: flyv1alpha1.UserAppSpec{
			Secrets: []flyv1alpha1.AppSecret{{Name: "UPSTREAM_KEY", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: u.name + "-creds", Key: "key"}}},
			Routing: &flyv1alpha1.AppRouting{Hosts: []string{u.host()}},
		}},
		&flyv1alpha1.UserMachine{ObjectMeta: metav1.ObjectMeta{Name: u.machine(), Namespace: ns}, Spec: flyv1alpha1.UserMachineSpec{
			AppRef: flyv1alpha1.AppReference{Name: u.name}, Region: "ord", Image: "registry.fly.io/workspace:v1", PowerState: u.power,
		}},
	}
	for _, obj := range objs {
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %s: %w", obj.GetName(), err)
		}
	}
	return nil
}

// request sends a request through the simulated Fly Proxy's public port (80) or management port
// (9090) and returns the status, the body and, when a user machine answered, its answer.
func request(t *testing.T, port int, method, host, path string, body []byte, header http.Header) (int, string, *usermachine.Answer) {
	t.Helper()
	return requestTo(t, stack, port, method, host, path, body, header)
}

// requestTo is request on a given stack.
func requestTo(t *testing.T, s *devstack.Stack, port int, method, host, path string, body []byte, header http.Header) (int, string, *usermachine.Answer) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.ProxyAddr(port)+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") != "application/json" {
		return resp.StatusCode, string(raw), nil
	}
	var answer usermachine.Answer
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatalf("user machine answer: %v: %s", err, raw)
	}
	return resp.StatusCode, string(raw), &answer
}

// status reads a user's objects.
func status(t *testing.T, name string) (*flyv1alpha1.UserApp, *flyv1alpha1.UserMachine) {
	t.Helper()
	app := &flyv1alpha1.UserApp{}
	um := &flyv1alpha1.UserMachine{}
	c := stack.Env.Client
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, app); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name + "-ws"}, um); err != nil {
		t.Fatal(err)
	}
	return app, um
}

// eventually polls check until it returns "" or the timeout passes; it never asserts on time.
func eventually(t *testing.T, what string, timeout time.Duration, check func() string) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		last = check()
		return last == "", nil
	})
	if err != nil {
		t.Fatalf("%s: not reached: %s", what, last)
	}
}

func TestPublicRequestsReachTheUsersOwnMachine(t *testing.T) {
	for _, name := range []string{"alice", "bob"} {
		t.Run(name, func(t *testing.T) {
			app, um := status(t, name)
			code, body, answer := request(t, 80, "GET", name+".example.com", "/workspace?x=1", nil, nil)
			if code != http.StatusOK || answer == nil {
				t.Fatalf("%d %s", code, body)
			}
			if answer.App != app.Status.AppName || answer.Machine != um.Status.MachineID || answer.Path != "/workspace" {
				t.Fatalf("answered by %s/%s for %s, want %s/%s", answer.App, answer.Machine, answer.Path, app.Status.AppName, um.Status.MachineID)
			}
			// The service is told by its internal port: Fly's typed config may drop services[].name
			// (docs/fly-api.md §6), as the realistic profile does.
			if !answer.ReplayStateVerified || answer.Service.InternalPort != flyv1alpha1.PublicInternalPort {
				t.Fatalf("replay state verified %v (%s), service %+v", answer.ReplayStateVerified, answer.ReplayStateError, answer.Service)
			}
		})
	}
}

func TestUnknownHostIs404(t *testing.T) {
	code, body, answer := request(t, 80, "GET", "nobody.example.com", "/", nil, nil)
	if code != http.StatusNotFound || answer != nil {
		t.Fatalf("%d %s", code, body)
	}
}

func TestManagementCallsNeedTheAppsToken(t *testing.T) {
	app, um := status(t, "alice")
	var conn corev1.Secret
	if err := stack.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: app.Status.ConnectionSecretName}, &conn); err != nil {
		t.Fatal(err)
	}
	token := string(conn.Data[controllers.ConnectionManagementToken])
	target := http.Header{"Hangar-Target": {ns + "/alice-ws"}}

	withToken := target.Clone()
	withToken.Set("Authorization", "Bearer "+token)
	code, body, answer := request(t, 9090, "POST", "mgmt.internal", "/exec", []byte(`{"cmd":"ls"}`), withToken)
	if code != http.StatusOK || answer == nil || answer.Machine != um.Status.MachineID ||
		answer.Service.InternalPort != flyv1alpha1.ManagementPort || !answer.ManagementTokenMatched || !answer.ReplayStateVerified {
		t.Fatalf("with the right token: %d %s", code, body)
	}

	bob, _ := status(t, "bob")
	var bobConn corev1.Secret
	if err := stack.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: bob.Status.ConnectionSecretName}, &bobConn); err != nil {
		t.Fatal(err)
	}
	for name, auth := range map[string]string{
		"missing":           "",
		"wrong":             "Bearer not-the-token",
		"another app's":     "Bearer " + string(bobConn.Data[controllers.ConnectionManagementToken]),
		"right, other form": "Basic " + token,
	} {
		h := target.Clone()
		if auth != "" {
			h.Set("Authorization", auth)
		}
		code, body, answer := request(t, 9090, "GET", "mgmt.internal", "/status", nil, h)
		if code != http.StatusUnauthorized || answer != nil {
			t.Errorf("%s token: %d %s, want 401 from the router", name, code, body)
		}
	}
}

func TestStoppedMachineIsWokenByARequest(t *testing.T) {
	carol := user{name: uniqueName("carol"), power: flyv1alpha1.PowerStateStopped}
	if err := carol.create(context.Background(), stack); err != nil {
		t.Fatal(err)
	}
	eventually(t, "carol's machine stopped and Ready", time.Minute, func() string {
		_, um := status(t, carol.name)
		if um.Status.State != "stopped" || !isReady(um.Status.Conditions) {
			return "state " + um.Status.State
		}
		return ""
	})
	_, um := status(t, carol.name)
	code, body, answer := request(t, 80, "GET", carol.host(), "/", nil, nil)
	if code != http.StatusOK || answer == nil || answer.Machine != um.Status.MachineID {
		t.Fatalf("%d %s", code, body)
	}
}

func TestBodiesOverOneMegabyteAre413(t *testing.T) {
	code, body, answer := request(t, 80, "POST", "alice.example.com", "/upload", make([]byte, 2<<20), nil)
	if code != http.StatusRequestEntityTooLarge || answer != nil {
		t.Fatalf("%d %s", code, body)
	}
}

func TestRotatedSecretReachesTheMachine(t *testing.T) {
	app, _ := status(t, "bob")
	before := app.Status.SecretsVersion
	var secret corev1.Secret
	key := client.ObjectKey{Namespace: ns, Name: "bob-creds"}
	if err := stack.Env.Client.Get(context.Background(), key, &secret); err != nil {
		t.Fatal(err)
	}
	rotated := uniqueName("rotated")
	secret.Data["key"] = []byte(rotated)
	if err := stack.Env.Client.Update(context.Background(), &secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob's machine serving with the new secrets version", time.Minute, func() string {
		app, _ := status(t, "bob")
		values, flyVersion := stack.Fly.Secrets(app.Status.AppName)
		if app.Status.SecretsVersion <= before || values["UPSTREAM_KEY"] != rotated {
			return fmt.Sprintf("secrets version %d (was %d)", app.Status.SecretsVersion, before)
		}
		code, _, answer := request(t, 80, "GET", "bob.example.com", "/", nil, nil)
		if code != http.StatusOK || answer == nil || answer.SecretsVersion != flyVersion {
			return fmt.Sprintf("machine answers %d with secrets version %v, Fly is at %d", code, answer, flyVersion)
		}
		return ""
	})
}

func TestDeletedUserAppIsGoneEverywhere(t *testing.T) {
	dave := user{name: uniqueName("dave"), power: flyv1alpha1.PowerStateAuto}
	if err := dave.create(context.Background(), stack); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dave Ready and routed", time.Minute, func() string {
		code, body, _ := request(t, 80, "GET", dave.host(), "/", nil, nil)
		if code != http.StatusOK {
			return fmt.Sprintf("%d %s", code, body)
		}
		return ""
	})
	app, um := status(t, dave.name)
	for _, obj := range []client.Object{um, app} {
		if err := stack.Env.Client.Delete(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "dave's host answers 404 and his Fly app is gone", time.Minute, func() string {
		err := stack.Env.Client.Get(context.Background(), client.ObjectKeyFromObject(app), &flyv1alpha1.UserApp{})
		if !apierrors.IsNotFound(err) {
			return "UserApp still there"
		}
		if code, body, _ := request(t, 80, "GET", dave.host(), "/", nil, nil); code != http.StatusNotFound {
			return fmt.Sprintf("host answers %d %s", code, body)
		}
		if info, ok := stack.Fly.App(app.Status.AppName); ok && !info.Deleted {
			return "Fly app still exists"
		}
		return ""
	})
}

// TestRouterKeepsAnsweringWhileTheAPIServerIsDown stops the kube-apiserver for 10 s, on a stack of
// its own (the outage cannot be undone for the other tests' clients).
func TestRouterKeepsAnsweringWhileTheAPIServerIsDown(t *testing.T) {
	ctx := context.Background()
	s, stop, err := startStack(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	erin := user{name: uniqueName("erin"), power: flyv1alpha1.PowerStateAuto}
	if err := erin.create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(ctx, ns, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	um := &flyv1alpha1.UserMachine{}
	if err := s.Env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: erin.machine()}, um); err != nil {
		t.Fatal(err)
	}
	if err := s.Env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	requests := 0
	for time.Now().Before(deadline) {
		code, body, answer := requestTo(t, s, 80, "GET", erin.host(), "/", nil, nil)
		if code != http.StatusOK || answer == nil || answer.Machine != um.Status.MachineID {
			t.Fatalf("with the apiserver down, request %d got %d %s", requests, code, body)
		}
		requests++
		time.Sleep(500 * time.Millisecond)
	}
	if requests < 10 {
		t.Fatalf("only %d requests in the 10 s outage", requests)
	}
}

var nameCounter atomic.Int64

// uniqueName makes test objects distinct across repeated runs (go test -count).
func uniqueName(base string) string { return fmt.Sprintf("%s-%d", base, nameCounter.Add(1)) }

func isReady(conds []metav1.Condition) bool {
	for _, c := range conds {
		if c.Type == flyv1alpha1.ReadyCondition {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}
