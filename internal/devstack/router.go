package devstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hangar-dev/hangar/internal/activity"
	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/router"
)

// Internal ports of the router app's machine, behind its Fly services (80/443 → 8080, 9090 → 9090),
// as in config/router.
const (
	routerPublicPort     = 8080
	routerManagementPort = 9090
)

// routerProcess is the in-process router: the bound addresses of its public and management
// listeners.
type routerProcess struct {
	public, management string
}

// startRouter runs the router as cmd/router does (router.New, then Run until the stack stops) on
// loopback ports of its own, and makes it the machine of the emulator's router app, so the proxy
// sends every inbound request to it first.
func (s *Stack) startRouter(ctx context.Context) error {
	log := s.cfg.Logger.WithName("router")
	const loopback = "127.0.0.1:0"
	// The activity Leases live in the namespace hangar is installed in, which a fresh apiserver
	// lacks.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: activity.DefaultNamespace}}
	if err := s.Env.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s for the activity Leases: %w", ns.Name, err)
	}
	r, err := router.New(router.Config{
		RESTConfig: s.Env.Config, BaseDomain: s.cfg.BaseDomain, Root: s.Root,
		PublicAddr: loopback, ManagementAddr: loopback, MetricsAddr: loopback, HealthAddr: loopback,
		ShutdownTimeout: 5 * time.Second, Logger: log,
		Activity: router.ActivityConfig{Interval: s.cfg.ActivityInterval, Namespace: activity.DefaultNamespace, Identity: "router-dev"},
	})
	if err != nil {
		return err
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	var runErr error
	go func() {
		defer close(runDone)
		if runErr = r.Run(runCtx); runErr != nil {
			log.Error(runErr, "Router failed")
		}
	}()
	s.stops = append(s.stops, func() error {
		stopRun()
		<-runDone
		return runErr
	})
	addrs := r.Addrs()
	s.router = &routerProcess{public: addrs.Public, management: addrs.Management}
	select {
	case <-r.Initialized():
	case <-runDone:
		return errors.Join(errors.New("the router stopped before its route index was ready"), runErr)
	case <-ctx.Done():
		return ctx.Err()
	}
	log.Info("Router serving", "public", s.router.public, "management", s.router.management)
	return s.registerRouterApp(ctx)
}

// registerRouterApp creates the router app, its public addresses and its machine on the emulator,
// through the Machines API as an operator would, and registers the in-process router as that machine.
// It copes with the realistic profile as a careful operator's script must: the app is readable only
// a moment after its create, and the machine create may commit without an answer.
func (s *Stack) registerRouterApp(ctx context.Context) error {
	fly, err := flyapi.New(flyapi.Options{BaseURL: s.FlyURL, Token: flyapi.StaticToken(s.FlyToken), UserAgent: "hangar-dev"})
	if err != nil {
		return err
	}
	if _, err := fly.CreateApp(ctx, Org, RouterApp, ""); err != nil {
		return fmt.Errorf("creating the router app on the emulator: %w", err)
	}
	if err := waitForApp(ctx, fly, RouterApp); err != nil {
		return err
	}
	// Apps created through the API have no public address, and the Fly Proxy routes inbound traffic
	// only to an app that has one: `fly ips allocate-v6` and `fly ips allocate-v4 --shared`.
	for _, typ := range []string{flyapi.IPTypeV6, flyapi.IPTypeSharedV4} {
		if _, err := fly.AssignIP(ctx, RouterApp, flyapi.AssignIPRequest{Type: typ}); err != nil {
			return fmt.Errorf("allocating a %s address for the router app: %w", typ, err)
		}
	}
	machine, err := createRouterMachine(ctx, fly)
	if err != nil {
		return err
	}
	if _, err := fly.WaitMachine(ctx, RouterApp, machine.ID, flyapi.WaitOptions{States: []string{flyapi.StateStarted}, Version: machine.Version, Timeout: time.Minute}); err != nil {
		return fmt.Errorf("waiting for the router machine: %w", err)
	}
	return s.Machines.RegisterExternal(RouterApp, machine.ID, map[int]string{
		routerPublicPort: s.router.public, routerManagementPort: s.router.management,
	})
}

// waitForApp polls the app until it is readable, for up to a minute, as fly-go's WaitForApp does
// after a create (§2: an app is not readable at once).
func waitForApp(ctx context.Context, fly *flyapi.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, err := fly.GetApp(ctx, name)
		if err == nil || !flyapi.IsNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the router app to be readable: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// routerRole marks the router machine, so that a create whose answer was lost can be found again.
const routerRole = "hangar.dev/role"

// createRouterMachine creates the router's machine. A create is never sent twice blindly: when its
// answer is unclear (a 408, a 5xx, a lost connection) it may have committed, so the machine is looked
// for by its metadata, through the list's lag, before another create.
func createRouterMachine(ctx context.Context, fly *flyapi.Client) (*flyapi.Machine, error) {
	autostart := true
	req := flyapi.CreateMachineRequest{
		Name:   "router-1",
		Region: flysim.DefaultRegion,
		Config: flyapi.MachineConfig{
			Image:    "ghcr.io/hangar-dev/hangar:dev",
			Metadata: map[string]string{routerRole: "router"},
			Services: []flyapi.MachineService{
				{Protocol: "tcp", InternalPort: routerPublicPort, Autostart: &autostart, Autostop: flyapi.AutostopOff, Ports: []flyapi.MachinePort{
					{Port: 80, Handlers: []string{"http"}}, {Port: 443, Handlers: []string{"tls", "http"}},
				}},
				{Protocol: "tcp", InternalPort: routerManagementPort, Autostart: &autostart, Autostop: flyapi.AutostopOff, Ports: []flyapi.MachinePort{
					{Port: 9090, Handlers: []string{"http"}},
				}},
			},
		},
	}
	const attempts = 3
	var err error
	for range attempts {
		var m *flyapi.Machine
		if m, err = fly.CreateMachine(ctx, RouterApp, req); err == nil {
			return m, nil
		}
		if !flyapi.IsUnavailable(err) && !flyapi.IsWaitTimeout(err) {
			return nil, fmt.Errorf("creating the router machine on the emulator: %w", err)
		}
		if m, found := findRouterMachine(ctx, fly); found {
			return m, nil
		}
	}
	return nil, fmt.Errorf("creating the router machine on the emulator (%d unclear answers): %w", attempts, err)
}

// findRouterMachine looks for the router machine in the app's list for a few seconds: the list may
// lag behind a create.
func findRouterMachine(ctx context.Context, fly *flyapi.Client) (*flyapi.Machine, bool) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ms, err := fly.ListMachines(ctx, RouterApp, flyapi.ListMachinesOptions{Metadata: map[string]string{routerRole: "router"}})
		if err == nil && len(ms) > 0 {
			return &ms[0], true
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil, false
}

// startProxy starts the Fly Proxy simulator on the configured public ports.
func (s *Stack) startProxy(context.Context) error {
	p, err := proxy.Start(s.Fly, s.Machines, proxy.Options{
		Listen: s.cfg.ProxyListen, EntryApp: RouterApp, Autostop: s.cfg.Autostop, Logger: s.cfg.Logger.WithName("proxy"),
	})
	if err != nil {
		return err
	}
	s.Proxy = p
	s.stops = append(s.stops, func() error {
		if err := p.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nil
}
