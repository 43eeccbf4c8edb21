package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/devstack"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/images"
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
)

// TestRouterDeployedOnFly runs the deployment users run: the manager deploys the router app onto
// the emulator through a FlyRouter, the emulator's machines run the real router with the env and
// secrets the manager set, and a user's request goes through the Fly Proxy to that router, which
// reads the apiserver with the token the manager minted and replays to the user's machine. A
// client loop runs through a token renewal and an image upgrade, both rolled machine by machine,
// and must see no failed request; deleting the FlyRouter deletes the app and revokes the token.
func TestRouterDeployedOnFly(t *testing.T) {
	ctx := context.Background()
	v1, v2 := images.RouterImage+":v1", images.RouterImage+":v2"
	s, stop, err := startStack(ctx, func(c *devstack.Config) {
		c.RouterOnFly = true
		c.FlyRouter = devstack.FlyRouterConfig{
			Image:   v1,
			Regions: []flyv1alpha1.RouterRegion{{Region: "ord", Machines: 1}, {Region: "ams", Machines: 1}},
			// The shortest lifetime the apiserver grants, renewed long before it ends.
			TokenLifetime: 10 * time.Minute, RenewAfter: 20 * time.Second, DrainDelay: time.Second,
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	erin := user{name: "erin", power: flyv1alpha1.PowerStateAuto}
	if err := erin.create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(ctx, ns, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	machineID := userMachineID(t, s, erin)
	fr := flyRouter(t, s)
	app := fr.Status.AppName

	// Deployed: the request is replayed by a machine of the router app, with the minted token.
	token := routerToken(t, s, app)
	if ok, who := tokenReview(t, s, token); !ok || who != "system:serviceaccount:"+devstack.SystemNamespace+":"+flyv1alpha1.DefaultRouterServiceAccount {
		t.Fatalf("the router app's token authenticates: %v, as %q; want the router's ServiceAccount", ok, who)
	}
	first := liveMachines(s, app)
	loop := startRequestLoop(s, erin, machineID)
	defer loop.stop()
	eventually(t, "a request replayed by the router on Fly", 30*time.Second, func() string {
		if seen := loop.routersSeen(); !slices.ContainsFunc(seen, func(id string) bool { return first[id] }) {
			return fmt.Sprintf("requests replayed by %v, not by the router app's machines %v (%d ok, %d failed)", seen, slices.Collect(maps.Keys(first)), loop.ok.Load(), loop.failed.Load())
		}
		return ""
	})

	t.Run("renew the token", func(t *testing.T) {
		before := fr.Status.SecretsVersion
		eventually(t, "a renewed token rolled out", 90*time.Second, func() string {
			fr := flyRouter(t, s)
			if fr.Status.SecretsVersion <= before {
				return fmt.Sprintf("secrets version %d, was %d", fr.Status.SecretsVersion, before)
			}
			return rolledOut(s, fr, first, "")
		})
		if other := routerToken(t, s, app); other == token {
			t.Error("the renewal set the same token")
		}
		loop.expectNoFailures(t, first)
	})

	t.Run("upgrade the image", func(t *testing.T) {
		before := liveMachines(s, app)
		fr := flyRouter(t, s)
		fr.Spec.Image = v2
		if err := s.Env.Client.Update(ctx, fr); err != nil {
			t.Fatal(err)
		}
		eventually(t, "image v2 rolled out", 90*time.Second, func() string {
			fr := flyRouter(t, s)
			if fr.Status.Image != v2 {
				return "status.image " + fr.Status.Image
			}
			return rolledOut(s, fr, before, v2)
		})
		loop.expectNoFailures(t, before)
	})

	t.Run("delete", func(t *testing.T) {
		loop.stop()
		token := routerToken(t, s, app)
		if err := s.Env.Client.Delete(ctx, flyRouter(t, s)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the FlyRouter and its Fly app gone", time.Minute, func() string {
			err := s.Env.Client.Get(ctx, client.ObjectKey{Name: devstack.FlyRouterName}, &flyv1alpha1.FlyRouter{})
			if !apierrors.IsNotFound(err) {
				return fmt.Sprintf("FlyRouter still there (%v)", err)
			}
			if info, ok := s.Fly.App(app); ok && !info.Deleted {
				return "Fly app " + app + " still there"
			}
			return ""
		})
		if ok, _ := tokenReview(t, s, token); ok {
			t.Error("the router's token still authenticates after the FlyRouter was deleted")
		}
		if code, body, _ := requestTo(t, s, 80, "GET", erin.host(), "/", nil, nil); code == http.StatusOK {
			t.Errorf("a request still reaches a router: %d %s", code, body)
		}
	})
}

func flyRouter(t *testing.T, s *devstack.Stack) *flyv1alpha1.FlyRouter {
	t.Helper()
	var fr flyv1alpha1.FlyRouter
	if err := s.Env.Client.Get(context.Background(), client.ObjectKey{Name: devstack.FlyRouterName}, &fr); err != nil {
		t.Fatal(err)
	}
	return &fr
}

func userMachineID(t *testing.T, s *devstack.Stack, u user) string {
	t.Helper()
	var um flyv1alpha1.UserMachine
	if err := s.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: u.machine()}, &um); err != nil {
		t.Fatal(err)
	}
	return um.Status.MachineID
}

// liveMachines are the IDs of the app's machines that are not destroyed.
func liveMachines(s *devstack.Stack, app string) map[string]bool {
	out := map[string]bool{}
	for _, m := range s.Fly.Machines(app) {
		if m.State != flysim.StateDestroyed && m.State != flysim.StateDestroying {
			out[m.ID] = true
		}
	}
	return out
}

// rolledOut says what is missing before fr is Ready with none of the old machines left and every
// machine booted with the current secrets version (and image, when given).
func rolledOut(s *devstack.Stack, fr *flyv1alpha1.FlyRouter, old map[string]bool, image string) string {
	if !isReady(fr.Status.Conditions) || fr.Status.ObservedGeneration != fr.Generation {
		return "FlyRouter not Ready"
	}
	for _, m := range s.Fly.Machines(fr.Status.AppName) {
		var cfg struct{ Image string }
		_ = json.Unmarshal(m.Config, &cfg)
		switch {
		case m.State == flysim.StateDestroyed || m.State == flysim.StateDestroying:
		case old[m.ID]:
			return "old machine " + m.ID + " still " + m.State
		case m.SecretsVersion < uint64(fr.Status.SecretsVersion):
			return fmt.Sprintf("machine %s booted with secrets version %d, want %d", m.ID, m.SecretsVersion, fr.Status.SecretsVersion)
		case image != "" && cfg.Image != image:
			return fmt.Sprintf("machine %s runs %s", m.ID, cfg.Image)
		}
	}
	return ""
}

// routerToken reads the token out of the kubeconfig the router app's machines boot with.
func routerToken(t *testing.T, s *devstack.Stack, app string) string {
	t.Helper()
	secrets, _ := s.Fly.Secrets(app)
	cfg, err := clientcmd.Load([]byte(secrets[controllers.RouterSecretKubeconfig]))
	if err != nil {
		t.Fatalf("the router app's %s: %v", controllers.RouterSecretKubeconfig, err)
	}
	return cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo].Token
}

// tokenReview asks the apiserver whether token is valid, and as whom.
func tokenReview(t *testing.T, s *devstack.Stack, token string) (bool, string) {
	t.Helper()
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	if err := s.Env.Client.Create(context.Background(), review); err != nil {
		t.Fatal(err)
	}
	return review.Status.Authenticated, review.Status.User.Username
}

// requestLoop sends a user's requests through the proxy from four clients until stopped, counting
// those not answered by the user's machine with a verified replay state, and which router machine
// replayed each (fly-replay-src instance).
type requestLoop struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	routers    map[string]int
	done       chan struct{}
	wg         sync.WaitGroup
	stopOnce   sync.Once
}

func startRequestLoop(s *devstack.Stack, u user, machineID string) *requestLoop {
	l := &requestLoop{routers: map[string]int{}, done: make(chan struct{})}
	for range 4 {
		l.wg.Go(func() {
			for {
				select {
				case <-l.done:
					return
				default:
				}
				router, err := l.once(s, u, machineID)
				l.mu.Lock()
				if err != nil {
					l.failed.Add(1)
					if len(l.failures) < 10 {
						l.failures = append(l.failures, time.Now().Format("15:04:05.000")+" "+err.Error())
					}
				} else {
					l.ok.Add(1)
					l.routers[router]++
				}
				l.mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	return l
}

// once sends one request and returns the router machine that replayed it.
func (l *requestLoop) once(s *devstack.Stack, u user, machineID string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.ProxyAddr(80)+"/loop", nil)
	if err != nil {
		return "", err
	}
	req.Host = u.host()
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var a usermachine.Answer
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &a) != nil {
		return "", fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if a.Machine != machineID || !a.ReplayStateVerified {
		return "", fmt.Errorf("answered by %s (want %s), replay state verified %v: %s", a.Machine, machineID, a.ReplayStateVerified, a.ReplayStateError)
	}
	for _, field := range strings.Split(strings.Join(a.Headers["Fly-Replay-Src"], ";"), ";") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(field), "instance="); ok {
			return id, nil
		}
	}
	return "", fmt.Errorf("no fly-replay-src instance in %v", a.Headers)
}

func (l *requestLoop) routersSeen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(maps.Keys(l.routers))
}

// expectNoFailures fails the test if any request failed so far, and if no request was replayed by
// a machine other than the old ones (so the new machines served).
func (l *requestLoop) expectNoFailures(t *testing.T, old map[string]bool) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d requests failed; first: %v", l.failed.Load(), l.failed.Load()+l.ok.Load(), l.failures)
	}
	if !slices.ContainsFunc(slices.Collect(maps.Keys(l.routers)), func(id string) bool { return !old[id] }) {
		t.Errorf("no request replayed by a new router machine: %v", l.routers)
	}
	t.Logf("%d requests answered so far, by router machine: %v", l.ok.Load(), l.routers)
}

func (l *requestLoop) stop() {
	l.stopOnce.Do(func() {
		close(l.done)
		l.wg.Wait()
	})
}
