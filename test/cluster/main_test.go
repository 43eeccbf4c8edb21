package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/devstack"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
)

const ns = "cluster"

// The tests share one stack: since an apiserver restart keeps its clients, an outage is undone
// for everyone once the test that caused it starts the apiserver again. They run one at a time.
var (
	stack      *devstack.Stack
	httpClient = &http.Client{Timeout: 10 * time.Second}
	flyHook    hook
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "hangar-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	logger := zap.NewNop()
	if os.Getenv("HANGAR_CLUSTER_LOGS") != "" {
		logger, _ = zap.NewDevelopment()
	}
	// client-go and controller-runtime log every failed watch of an outage; keep them with the rest.
	ctrllog.SetLogger(zapr.NewLogger(logger))
	klog.SetLogger(zapr.NewLogger(logger).WithName("client-go"))
	stack, err = devstack.Start(ctx, devstack.Config{
		StateDir:    dir,
		FlyAPIAddr:  "127.0.0.1:0",
		ProxyListen: map[int]string{80: "127.0.0.1:0"},
		// No drift passes during a test: a periodic pass reads the object from the apiserver and
		// would converge a change even if the manager's watches never came back.
		DriftInterval: time.Hour,
		// The fast Fly: what is under test is the Kubernetes API going away; Fly's own unkindness
		// is the e2e and crash suites' business, and would muddy the router's error count.
		FlyProfile:  flysim.Fast(),
		Autostop:    proxy.AutostopOptions{Disabled: true},
		FlyCallHook: flyHook.call,
		Logger:      zapr.NewLogger(logger),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		return 1
	}
	defer func() {
		if err := stack.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the local stack:", err)
		}
	}()
	if err := stack.Env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// hook lets a test see the emulator's Fly calls as they are served (and hold one).
type hook struct {
	mu sync.Mutex
	fn func(flysim.CallPoint)
}

func (h *hook) call(p flysim.CallPoint) {
	h.mu.Lock()
	fn := h.fn
	h.mu.Unlock()
	if fn != nil {
		fn(p)
	}
}

// set installs fn until the test ends.
func (h *hook) set(t *testing.T, fn func(flysim.CallPoint)) {
	h.mu.Lock()
	h.fn = fn
	h.mu.Unlock()
	t.Cleanup(func() {
		h.mu.Lock()
		h.fn = nil
		h.mu.Unlock()
	})
}

// apiserverDown is set while a test holds the apiserver stopped.
var apiserverDown atomic.Bool

// stopAPIServer stops the apiserver; if the test ends before it calls startAPIServer, the
// apiserver is started again for the next test.
func stopAPIServer(t *testing.T) {
	t.Helper()
	if err := stack.Env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	apiserverDown.Store(true)
	t.Cleanup(func() {
		if apiserverDown.Load() {
			if err := stack.Env.StartAPIServer(); err != nil {
				t.Errorf("starting the apiserver after the test: %v", err)
			}
			apiserverDown.Store(false)
		}
	})
}

func startAPIServer(t *testing.T) {
	t.Helper()
	if err := stack.Env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	apiserverDown.Store(false)
}

var nameCounter atomic.Int64

// uniqueName keeps objects distinct across tests and repeated runs (go test -count).
func uniqueName(base string) string { return fmt.Sprintf("%s-%d", base, nameCounter.Add(1)) }

// user is an end user: a UserApp routed at <name>.example.com and one UserMachine <name>-ws.
type user string

func (u user) host() string    { return string(u) + ".example.com" }
func (u user) machine() string { return string(u) + "-ws" }

func (u user) app() *flyv1alpha1.UserApp {
	return &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: string(u), Namespace: ns}, Spec: flyv1alpha1.UserAppSpec{
		Routing: &flyv1alpha1.AppRouting{Hosts: []string{u.host()}},
	}}
}

func (u user) userMachine() *flyv1alpha1.UserMachine {
	return &flyv1alpha1.UserMachine{ObjectMeta: metav1.ObjectMeta{Name: u.machine(), Namespace: ns}, Spec: flyv1alpha1.UserMachineSpec{
		AppRef: flyv1alpha1.AppReference{Name: string(u)}, Region: "ord", Image: "registry.fly.io/workspace:v1",
	}}
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, obj := range objs {
		if err := stack.Env.Client.Create(context.Background(), obj); err != nil {
			t.Fatalf("creating %s: %v", obj.GetName(), err)
		}
	}
}

// newUser creates u's objects and waits until both are Ready.
func newUser(t *testing.T, u user) (*flyv1alpha1.UserApp, *flyv1alpha1.UserMachine) {
	t.Helper()
	create(t, u.app(), u.userMachine())
	return waitConverged(t, u, 2*time.Minute)
}

// waitConverged waits until u's UserApp and UserMachine are Ready for their current generation
// and the machine in status is u's one machine on Fly, running the image of the spec.
func waitConverged(t *testing.T, u user, timeout time.Duration) (*flyv1alpha1.UserApp, *flyv1alpha1.UserMachine) {
	t.Helper()
	app, um := &flyv1alpha1.UserApp{}, &flyv1alpha1.UserMachine{}
	eventually(t, string(u)+" converged", timeout, func() string {
		ctx := context.Background()
		if err := stack.Env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: string(u)}, app); err != nil {
			return err.Error()
		}
		if err := stack.Env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: u.machine()}, um); err != nil {
			return err.Error()
		}
		if !converged(app.Status.Conditions, app.Generation, app.Status.ObservedGeneration) {
			return fmt.Sprintf("UserApp not Ready at generation %d: %+v", app.Generation, app.Status.Conditions)
		}
		if !converged(um.Status.Conditions, um.Generation, um.Status.ObservedGeneration) {
			return fmt.Sprintf("UserMachine not Ready at generation %d: %+v", um.Generation, um.Status.Conditions)
		}
		machines := stack.Fly.Machines(app.Status.AppName)
		if len(machines) != 1 || machines[0].ID != um.Status.MachineID {
			ids := make([]string, 0, len(machines))
			for _, m := range machines {
				ids = append(ids, m.ID)
			}
			return fmt.Sprintf("Fly app %s has machines %v, status names %q", app.Status.AppName, ids, um.Status.MachineID)
		}
		var config struct {
			Image string `json:"image"`
		}
		if err := json.Unmarshal(machines[0].Config, &config); err != nil {
			return err.Error()
		}
		if config.Image != um.Spec.Image {
			return fmt.Sprintf("Fly machine runs %s, spec says %s", config.Image, um.Spec.Image)
		}
		return ""
	})
	return app, um
}

func converged(conds []metav1.Condition, generation, observed int64) bool {
	return observed == generation && meta.IsStatusConditionTrue(conds, flyv1alpha1.ReadyCondition)
}

// eventually polls check until it returns "" or the timeout passes; the timeout is a generous
// correctness bound, never a performance goal.
func eventually(t *testing.T, what string, timeout time.Duration, check func() string) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		last = check()
		return last == "", nil
	})
	if err != nil {
		t.Fatalf("%s: not reached within %s: %s", what, timeout, last)
	}
}

// errNotRouted is a request that reached no user machine, or the wrong one.
var errNotRouted = errors.New("not routed to the expected machine")

// get sends GET / for host through the simulated Fly Proxy's public port, as a user would, and
// checks that machine answered.
func get(host, machine string) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+stack.ProxyAddr(80)+"/", nil)
	if err != nil {
		return err
	}
	req.Host = host
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var answer usermachine.Answer
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" ||
		json.Unmarshal(raw, &answer) != nil || answer.Machine != machine {
		return fmt.Errorf("%w: %s answered %d %.200s", errNotRouted, host, resp.StatusCode, raw)
	}
	return nil
}
