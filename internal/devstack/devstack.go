// Package devstack runs hangar's whole local stack in one process: a real kube-apiserver and etcd
// with the CRDs, the Fly emulator (Machines API, Fly Proxy simulator, simulated user machines), the
// manager and the router. `hangar dev` and the end-to-end tests start it; it is not for production.
//
// The router runs as the emulator's "router app", so a request to the proxy's port 80 or 9090
// reaches the router first and is replayed from there, as on Fly. By default its machine is
// registered as an external machine whose internal ports 8080 (public) and 9090 (management) are
// the in-process router's listeners. With Config.RouterOnFly the router is deployed as users deploy
// it: the manager runs the FlyRouter controller, a FlyRouter makes the router app on the emulator,
// and the emulator runs the real router on its machines (flysim/images) with the env and secrets the
// manager set, reaching this apiserver with the token the manager minted.
package devstack

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/internal/testenv"
)

// Names the stack uses on the emulator and in the cluster.
const (
	Org             = "personal"
	RouterApp       = "hangar-router"
	SystemNamespace = "hangar-system"
	RootKeySecret   = "hangar-root-key"
)

// Config sets the stack's addresses and behaviour. Zero values take the defaults of `hangar dev`.
type Config struct {
	// StateDir receives kubeconfig, the Fly token and the root key (default ".hangar").
	StateDir string
	// FlyAPIAddr is where the emulated Machines API listens (default 127.0.0.1:4280).
	FlyAPIAddr string
	// ProxyListen maps Fly public ports to local addresses (default 80 → 127.0.0.1:8080 and
	// 9090 → 127.0.0.1:9090).
	ProxyListen map[int]string
	// BaseDomain is the router's base domain for subdomain routing (default "localhost", so
	// alice.localhost reaches the UserApp with subdomain alice).
	BaseDomain string
	// DriftInterval of the manager (default 30 s, short so out-of-band changes show quickly).
	DriftInterval time.Duration
	// Autostop configures the proxy's autostop loop (default: every 30 s, after 2 min idle).
	Autostop proxy.AutostopOptions
	// FlyProfile is how far the emulated Fly departs from a fast, healthy one (flysim.Profile): the
	// zero value is flysim.Fast(); flysim.Realistic() adds Fly's lags, asynchronous apps, transitions
	// of seconds and lost answers. (`hangar dev` picks it with --fly-profile.)
	FlyProfile flysim.Profile
	// FlyCallHook, when set, is the emulator's Options.CallHook: tests use it to hold a Fly call
	// while they change the world around it (stop the apiserver, say).
	FlyCallHook func(flysim.CallPoint)
	// ActivityInterval is how often, at most, the router writes a UserApp's activity Lease, which
	// spec.idle timeouts count from (default 10 s).
	ActivityInterval time.Duration
	// RouterOnFly deploys the router with a FlyRouter onto the emulator, whose machines run the
	// real router, instead of running one router in process (see the package documentation).
	RouterOnFly bool
	// FlyRouter tunes the RouterOnFly path.
	FlyRouter FlyRouterConfig
	// Logger receives every component's logs, each under its own name.
	Logger logr.Logger
}

func (c Config) withDefaults() Config {
	if c.StateDir == "" {
		c.StateDir = ".hangar"
	}
	if c.FlyAPIAddr == "" {
		c.FlyAPIAddr = "127.0.0.1:4280"
	}
	if len(c.ProxyListen) == 0 {
		c.ProxyListen = map[int]string{80: "127.0.0.1:8080", 9090: "127.0.0.1:9090"}
	}
	if c.BaseDomain == "" {
		c.BaseDomain = "localhost"
	}
	if c.DriftInterval == 0 {
		c.DriftInterval = 30 * time.Second
	}
	if c.Autostop.Interval == 0 {
		c.Autostop.Interval = 30 * time.Second
	}
	if c.Autostop.IdleAfter == 0 {
		c.Autostop.IdleAfter = 2 * time.Minute
	}
	if c.ActivityInterval == 0 {
		c.ActivityInterval = 10 * time.Second
	}
	if c.Logger.GetSink() == nil {
		c.Logger = logr.Discard()
	}
	c.FlyRouter = c.FlyRouter.withDefaults()
	return c
}

// Stack is a running local stack.
type Stack struct {
	cfg Config
	// Env is the kube-apiserver + etcd.
	Env *testenv.Env
	// Fly is the emulator; FlyURL its Machines API and FlyToken the token it accepts.
	Fly      *flysim.Server
	FlyURL   string
	FlyToken string
	// Machines runs the simulated user machines; Proxy the Fly Proxy simulator.
	Machines *usermachine.Machines
	Proxy    *proxy.Proxy
	// Root is the installation's root key (in the cluster's root key Secret and in StateDir).
	Root keys.Root
	// Kubeconfig is the path of an administrator kubeconfig for this apiserver.
	Kubeconfig string

	router *routerProcess
	stops  []func() error
}

// Start brings the stack up. On error everything already started is stopped again.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	s := &Stack{cfg: cfg.withDefaults()}
	if err := s.start(ctx); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

func (s *Stack) start(ctx context.Context) error {
	var err error
	log := s.cfg.Logger
	if err := os.MkdirAll(s.cfg.StateDir, 0o700); err != nil {
		return err
	}

	log.Info("Starting kube-apiserver and etcd")
	if s.Env, err = testenv.Start(); err != nil {
		return err
	}
	s.stops = append(s.stops, s.Env.Stop)
	if err := s.writeKubeconfig(); err != nil {
		return err
	}
	if err := s.startFly(); err != nil {
		return err
	}
	if err := s.ensureRootKey(ctx); err != nil {
		return err
	}
	if s.cfg.RouterOnFly {
		s.startRouterImages()
		if err := s.installRouterRBAC(ctx); err != nil {
			return err
		}
	} else if err := s.startRouter(ctx); err != nil {
		return err
	}
	if err := s.startProxy(ctx); err != nil {
		return err
	}
	if err := s.startManager(ctx); err != nil {
		return err
	}
	if s.cfg.RouterOnFly {
		return s.deployFlyRouter(ctx)
	}
	return nil
}

// Stop stops every component, the last started first.
func (s *Stack) Stop() error {
	var errs []error
	for i := len(s.stops) - 1; i >= 0; i-- {
		errs = append(errs, s.stops[i]())
	}
	s.stops = nil
	return errors.Join(errs...)
}

// ProxyAddr is the local address standing for Fly public port publicPort.
func (s *Stack) ProxyAddr(publicPort int) string { return s.Proxy.Addr(publicPort) }

// writeKubeconfig writes an administrator kubeconfig into the state folder.
func (s *Stack) writeKubeconfig() error {
	path, err := filepath.Abs(filepath.Join(s.cfg.StateDir, "kubeconfig"))
	if err != nil {
		return err
	}
	s.Kubeconfig = path
	return s.Env.WriteKubeconfig(path)
}

// startFly starts the emulated Machines API (with Fly's published rate limits) and the simulated
// user machines. Cross-network replays are on for the org: the router lives on the default
// network and every user app on an isolated one, which is what the org setting allows on Fly.
func (s *Stack) startFly() error {
	s.FlyToken = "fo1_dev_" + randomHex(16)
	seed := time.Now().UnixNano()
	// The machines' health checks probe them (the router's /readyz), so a rollout that waits for
	// checks waits for the new router to serve, as on Fly.
	checks := usermachine.NewChecks()
	s.Fly = flysim.New(flysim.Options{
		Orgs:     []flysim.OrgToken{{Token: s.FlyToken, Org: Org}},
		Seed:     seed,
		Logger:   s.cfg.Logger.WithName("flysim"),
		Profile:  s.cfg.FlyProfile,
		CallHook: s.cfg.FlyCallHook,
		Checks:   checks,
	})
	s.cfg.Logger.Info("Fly emulator", "profile", cmp.Or(s.cfg.FlyProfile.Name, "fast"), "seed", seed)
	s.Fly.SetCrossNetworkReplays(Org, true)
	ln, err := net.Listen("tcp", s.cfg.FlyAPIAddr)
	if err != nil {
		s.Fly.Close()
		return fmt.Errorf("listening for the Fly API on %s: %w", s.cfg.FlyAPIAddr, err)
	}
	srv := &http.Server{Handler: s.Fly, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.FlyURL = "http://" + ln.Addr().String()
	s.stops = append(s.stops, func() error {
		s.Fly.Close()
		return srv.Close()
	})
	s.Machines = usermachine.Start(s.Fly, usermachine.Options{Logger: s.cfg.Logger.WithName("machines"), Checks: checks})
	s.stops = append(s.stops, s.Machines.Close)
	return os.WriteFile(filepath.Join(s.cfg.StateDir, "fly-token"), []byte(s.FlyToken+"\n"), 0o600)
}

// ensureRootKey creates the root key Secret (as the manager would) and keeps a copy in the state
// folder for the router, which reads it from a file as it does from a mounted Secret.
func (s *Stack) ensureRootKey(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}}
	if err := s.Env.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	root, err := controllers.EnsureRootKey(ctx, s.Env.Client, types.NamespacedName{Namespace: SystemNamespace, Name: RootKeySecret})
	if err != nil {
		return err
	}
	s.Root = root
	var secret corev1.Secret
	if err := s.Env.Client.Get(ctx, types.NamespacedName{Namespace: SystemNamespace, Name: RootKeySecret}, &secret); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.cfg.StateDir, keys.RootKeySecretKey), secret.Data[keys.RootKeySecretKey], 0o600)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
