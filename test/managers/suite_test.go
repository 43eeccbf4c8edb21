package managers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/testenv/managerproc"
)

const (
	org       = "personal"
	appPrefix = "hangar-"
	image     = "registry.fly.io/workspace:v1"
	imageV2   = "registry.fly.io/workspace:v2"
	// leaseTTL is the managers' --fly-lease-ttl: how long a machine stays leased by a manager
	// that died mid-update.
	leaseTTL = 3 * time.Second
	// pollEvery is how often the tests look at the Lease and the objects.
	pollEvery = 25 * time.Millisecond
)

// Each manager of a test holds its own token for the same org; the emulator names the caller of
// each call (flysim.CallerOf) without revealing the token.
var (
	tokens  = []string{"fo1_managers-one", "fo1_managers-two"}
	callers = []string{flysim.CallerOf(0, org), flysim.CallerOf(1, org)}
)

// suite is one test's namespace, Fly emulator and managers.
type suite struct {
	t     *testing.T
	ctx   context.Context
	ns    string
	sim   *flysim.Server
	fly   string // the emulator's URL
	dir   string
	hooks hookSlot
}

// suites numbers the suites of a run, so each has a namespace of its own (go test -count=n).
var suites atomic.Int32

// newSuite makes the test's namespace (name, numbered) and Fly emulator.
func newSuite(t *testing.T, name string) *suite {
	t.Helper()
	ns := fmt.Sprintf("%s-%d", name, suites.Add(1))
	s := &suite{t: t, ctx: context.Background(), ns: ns, dir: t.TempDir()}
	if err := env.Client.Create(s.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	s.sim = flysim.New(flysim.Options{
		Orgs:     []flysim.OrgToken{{Token: tokens[0], Org: org}, {Token: tokens[1], Org: org}},
		Seed:     1,
		CallHook: s.hooks.call,
	})
	srv := httptest.NewServer(s.sim)
	s.fly = srv.URL
	t.Cleanup(func() { srv.Close(); s.sim.Close() })
	return s
}

// timings are a shard's leader election settings.
type timings struct{ lease, renew, retry time.Duration }

// managerArgs are the flags of manager i (its token is tokens[i]) with leader election on the
// Lease electionID in the test's namespace.
func (s *suite) managerArgs(i int, electionID string, lt timings, extra ...string) []string {
	s.t.Helper()
	tokenFile := filepath.Join(s.dir, fmt.Sprintf("token-%d", i))
	if err := os.WriteFile(tokenFile, []byte(tokens[i]), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return append([]string{
		"--kubeconfig", kubeconfig, "--namespace", s.ns, "--fly-api-url", s.fly, "--fly-token-file", tokenFile,
		"--root-key-secret", s.ns + "/hangar-root-key", "--default-org", org, "--default-region", "ord",
		"--app-name-prefix", appPrefix, "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--transition-poll", "100ms", "--fly-lease-ttl", leaseTTL.String(), "--log-format", "console",
		"--leader-elect", "--leader-election-namespace", s.ns, "--leader-election-id", electionID,
		"--leader-election-lease-duration", lt.lease.String(),
		"--leader-election-renew-deadline", lt.renew.String(),
		"--leader-election-retry-period", lt.retry.String(),
	}, extra...)
}

// holder is the identity holding the Lease electionID ("" when it is free or does not exist).
func (s *suite) holder(electionID string) string {
	var lease coordinationv1.Lease
	if err := env.Client.Get(s.ctx, client.ObjectKey{Namespace: s.ns, Name: electionID}, &lease); err != nil {
		if !apierrors.IsNotFound(err) {
			s.t.Logf("reading Lease %s: %v", electionID, err)
		}
		return ""
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// waitHolder polls the Lease until ok accepts its holder, and returns the holder and when it was
// seen.
func (s *suite) waitHolder(electionID string, timeout time.Duration, ok func(string) bool) (string, time.Time, error) {
	var (
		holder string
		at     time.Time
	)
	err := wait.PollUntilContextTimeout(s.ctx, pollEvery, timeout, true, func(context.Context) (bool, error) {
		holder, at = s.holder(electionID), time.Now()
		return ok(holder), nil
	})
	return holder, at, err
}

// standing waits until a manager that is not the leader has started trying to take the Lease, so
// a takeover measured from now is not a process start.
func standing(t *testing.T, p *managerproc.Process) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), pollEvery, time.Minute, true, func(context.Context) (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("manager %s exited: %w", p.Name(), p.Err())
		}
		return p.Logs().Contains("Attempting to acquire leader lease"), nil
	})
	if err != nil {
		t.Fatalf("manager %s never stood for election: %v", p.Name(), err)
	}
}

// hookSlot holds the emulator's call hook of the moment; the emulator is built before the hook's
// plan is known.
type hookSlot struct {
	mu sync.Mutex
	fn func(flysim.CallPoint)
}

func (h *hookSlot) set(fn func(flysim.CallPoint)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fn = fn
}

func (h *hookSlot) call(p flysim.CallPoint) {
	h.mu.Lock()
	fn := h.fn
	h.mu.Unlock()
	if fn != nil {
		fn(p)
	}
}

// user is one end user's UserApp and UserMachines.
type user struct {
	name     string
	machines []string
	labels   map[string]string // on the app, and on the machines unless machineLabels is set
	// machineLabels, when set, label the machines instead.
	machineLabels map[string]string
}

func (u *user) flyApp(ns string) string { return flyv1alpha1.DefaultFlyAppName(appPrefix, ns, u.name) }

func newUser(name string, machines int, labels map[string]string) *user {
	u := &user{name: name, labels: labels}
	for i := range machines {
		u.machines = append(u.machines, fmt.Sprintf("%s-ws%d", name, i))
	}
	return u
}

// create writes the user's UserApp and UserMachines.
func (s *suite) create(u *user) {
	s.t.Helper()
	s.createApp(u)
	s.createMachines(u)
}

func (s *suite) createApp(u *user) {
	s.t.Helper()
	app := &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: u.name, Namespace: s.ns, Labels: u.labels},
		Spec: flyv1alpha1.UserAppSpec{AllocatePrivateIP: true}}
	if err := env.Client.Create(s.ctx, app); err != nil {
		s.t.Fatalf("creating UserApp %s: %v", u.name, err)
	}
}

func (s *suite) createMachines(u *user) {
	s.t.Helper()
	labels := u.labels
	if u.machineLabels != nil {
		labels = u.machineLabels
	}
	for _, name := range u.machines {
		um := &flyv1alpha1.UserMachine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns, Labels: labels},
			Spec: flyv1alpha1.UserMachineSpec{AppRef: flyv1alpha1.AppReference{Name: u.name}, Region: "ord", Image: image}}
		if err := env.Client.Create(s.ctx, um); err != nil {
			s.t.Fatalf("creating UserMachine %s: %v", name, err)
		}
	}
}

// setImage sets image on every UserMachine of the user.
func (s *suite) setImage(u *user, image string) {
	s.t.Helper()
	for _, name := range u.machines {
		um := &flyv1alpha1.UserMachine{}
		err := wait.PollUntilContextTimeout(s.ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: name}, um); err != nil {
				return false, err
			}
			um.Spec.Image = image
			err := env.Client.Update(ctx, um)
			return err == nil, ignoreConflict(err)
		})
		if err != nil {
			s.t.Fatalf("updating UserMachine %s: %v", name, err)
		}
	}
}

// waitConverged waits until the users' objects are Ready for their generation and each UserMachine
// has exactly one live Fly machine, the one its status names, running the image its spec names.
func (s *suite) waitConverged(timeout time.Duration, users ...*user) {
	s.t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(s.ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		last = s.notConverged(users)
		return last == "", nil
	})
	if err != nil {
		s.t.Fatalf("not converged after %s: %s", timeout, last)
	}
}

func (s *suite) notConverged(users []*user) string {
	for _, u := range users {
		app := &flyv1alpha1.UserApp{}
		if err := env.Client.Get(s.ctx, client.ObjectKey{Namespace: s.ns, Name: u.name}, app); err != nil {
			return err.Error()
		}
		if msg := notReady(app, app.Status.Conditions, app.Status.ObservedGeneration); msg != "" {
			return msg
		}
		for _, name := range u.machines {
			um := &flyv1alpha1.UserMachine{}
			if err := env.Client.Get(s.ctx, client.ObjectKey{Namespace: s.ns, Name: name}, um); err != nil {
				return err.Error()
			}
			if msg := notReady(um, um.Status.Conditions, um.Status.ObservedGeneration); msg != "" {
				return msg
			}
			var live []flysim.MachineInfo
			for _, m := range s.sim.Machines(app.Status.AppName) {
				if m.Metadata[controllers.MetadataUID] == string(um.UID) && m.State != "destroyed" && m.State != "destroying" {
					live = append(live, m)
				}
			}
			if len(live) != 1 || live[0].ID != um.Status.MachineID {
				return fmt.Sprintf("UserMachine %s: %d Fly machines, status names %q", name, len(live), um.Status.MachineID)
			}
			if got := imageOf(live[0]); got != um.Spec.Image {
				return fmt.Sprintf("UserMachine %s: Fly machine %s runs %s, spec asks for %s", name, live[0].ID, got, um.Spec.Image)
			}
		}
	}
	return ""
}

// imageOf is the image in the machine's stored config.
func imageOf(m flysim.MachineInfo) string {
	var cfg struct {
		Image string `json:"image"`
	}
	if err := json.Unmarshal(m.Config, &cfg); err != nil {
		return "unreadable config: " + err.Error()
	}
	return cfg.Image
}

func notReady(obj client.Object, conds []metav1.Condition, observed int64) string {
	c := meta.FindStatusCondition(conds, flyv1alpha1.ReadyCondition)
	switch {
	case c == nil:
		return obj.GetName() + " has no Ready condition"
	case c.Status != metav1.ConditionTrue:
		return fmt.Sprintf("%s Ready=%s %s: %s", obj.GetName(), c.Status, c.Reason, c.Message)
	case observed != obj.GetGeneration():
		return fmt.Sprintf("%s observed generation %d of %d", obj.GetName(), observed, obj.GetGeneration())
	}
	return ""
}

// isWrite reports whether a Fly action changes something (everything but reads and waits).
func isWrite(action string) bool {
	return action != "" && !strings.HasPrefix(action, "get_") && !strings.HasPrefix(action, "list_") && action != "wait_machine"
}

// flyCall is one authenticated call of the emulator's call log.
type flyCall struct {
	at     time.Time
	action string
	write  bool
	object string // "machine <app>/<id>", or "app <app>" for a call about the app
	caller string
	status int
}

// calls returns the emulator's authenticated calls, oldest first.
func (s *suite) calls() []flyCall {
	var out []flyCall
	for _, c := range s.sim.Calls() {
		if c.Caller == "" {
			continue
		}
		object := "app " + c.App
		if c.Machine != "" {
			object = "machine " + c.App + "/" + c.Machine
		}
		out = append(out, flyCall{at: c.Time, action: c.Action, write: isWrite(c.Action), object: object, caller: c.Caller, status: c.Status})
	}
	slices.SortStableFunc(out, func(a, b flyCall) int { return a.at.Compare(b.at) })
	return out
}

func (c flyCall) String() string {
	return fmt.Sprintf("%s %s %s by %s", c.at.Format("15:04:05.000"), c.action, c.object, c.caller)
}
