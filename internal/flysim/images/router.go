package images

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-logr/logr"

	"github.com/hangar-dev/hangar/router"
	"github.com/hangar-dev/hangar/router/envconfig"
)

// RouterImage is the image prefix of hangar's router on Fly, as a FlyRouter's spec.image names it.
const RouterImage = "registry.fly.io/hangar-router"

// RouterOptions configure the router entry of the table.
type RouterOptions struct {
	// Prefix is the image prefix; default RouterImage.
	Prefix string
	// Logger receives each router's logs, with the app and machine.
	Logger logr.Logger
}

// Router is the table entry that runs hangar's router: router.New with the Config cmd/router builds
// from the machine's environment (envconfig.FromEnv: the HANGAR_ROUTER_* settings and the
// kubeconfig, root key and token key secrets they name), on loopback ports standing for the
// machine's. It serves once /readyz answers. As on Fly, the machine ID names the router in the
// activity Leases it writes.
//
// Its drain delay is dropped: the proxy simulator stops sending a machine requests the moment it
// leaves started, so the router closes its listeners at once and in-flight requests get the
// shutdown timeout.
func Router(opts RouterOptions) Image {
	if opts.Prefix == "" {
		opts.Prefix = RouterImage
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	return Image{Prefix: opts.Prefix, Run: func(ctx context.Context, m Machine, serving func(map[int]string)) error {
		return runRouter(ctx, m, opts.Logger.WithValues("app", m.App, "machine", m.ID), serving)
	}}
}

func runRouter(ctx context.Context, m Machine, log logr.Logger, serving func(map[int]string)) error {
	cfg, err := envconfig.FromEnv(nil, m.Getenv, log)
	if err != nil {
		return fmt.Errorf("router configuration from the machine's environment: %w", err)
	}
	// Each listener the machine's config asks for (":8080") becomes a loopback port of its own,
	// which then serves that internal port.
	listeners := []struct {
		addr  *string
		bound func(router.Addrs) string
		port  int
	}{
		{addr: &cfg.PublicAddr, bound: func(a router.Addrs) string { return a.Public }},
		{addr: &cfg.ManagementAddr, bound: func(a router.Addrs) string { return a.Management }},
		{addr: &cfg.MetricsAddr, bound: func(a router.Addrs) string { return a.Metrics }},
		{addr: &cfg.HealthAddr, bound: func(a router.Addrs) string { return a.Health }},
	}
	for i, l := range listeners {
		if *l.addr == "" {
			continue
		}
		if listeners[i].port, err = portOf(*l.addr); err != nil {
			return err
		}
		*l.addr = "127.0.0.1:0"
	}
	cfg.DrainDelay = 0
	cfg.Activity.Identity = m.ID
	r, err := router.New(cfg)
	if err != nil {
		return err
	}
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()

	bound := r.Addrs()
	ports := map[int]string{}
	for _, l := range listeners {
		if addr := l.bound(bound); l.port != 0 && addr != "" {
			ports[l.port] = addr
		}
	}
	select {
	case err := <-runDone:
		return errors.Join(errors.New("the router stopped before it was ready"), err)
	case <-waitReady(ctx, bound.Health):
	}
	if ctx.Err() == nil {
		log.Info("Router ready", "ports", ports)
		serving(ports)
	}
	return <-runDone
}

// waitReady polls /readyz on health until it answers 200 or ctx ends; the channel closes then.
func waitReady(ctx context.Context, health string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: time.Second}
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+health+"/readyz", nil)
			if resp, err := client.Do(req); err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return done
}

// portOf is the port of a listen address such as ":8080".
func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return 0, fmt.Errorf("listen address %q: the router on a machine needs a port number", addr)
	}
	return port, nil
}
