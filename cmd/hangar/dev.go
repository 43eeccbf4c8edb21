package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hangar-dev/hangar/internal/devstack"
	"github.com/hangar-dev/hangar/internal/logging"
	"github.com/hangar-dev/hangar/internal/manifests"
)

// devProfile is the emulator profile `hangar dev` runs by default: fast, like the zero
// devstack.Config the end-to-end tests use, so that `make dev` comes up in seconds with the
// reproducible output the README walks through. --fly-profile realistic runs the same stack against
// Fly's lags, asynchronous apps, transitions of seconds and lost answers (it came up Ready in about
// 20 s when tried, with the manager logging retried "app not found" errors right after app creates).
const devProfile = "fast"

// devConfig is what the dev flags parse into.
type devConfig struct {
	stack      devstack.Config
	samples    string
	namespace  string
	readyAfter time.Duration
	log        logging.Options
}

func parseDevFlags(args []string, stderr io.Writer) (devConfig, error) {
	fs := flag.NewFlagSet("hangar dev", flag.ContinueOnError)
	var cfg devConfig
	var proxyHTTP, proxyManagement string
	var profile profileFlags
	fs.StringVar(&cfg.stack.StateDir, "state-dir", ".hangar", "folder for the kubeconfig, the Fly token and the root key")
	fs.StringVar(&cfg.stack.FlyAPIAddr, "fly-api", "127.0.0.1:4280", "address of the emulated Fly Machines API")
	fs.StringVar(&proxyHTTP, "proxy-http", "127.0.0.1:8080", "address standing for Fly's public port 80")
	fs.StringVar(&proxyManagement, "proxy-management", "127.0.0.1:9090", "address standing for Fly port 9090 (the private management service)")
	fs.StringVar(&cfg.stack.BaseDomain, "base-domain", "localhost", "the router's base domain: <subdomain>.<base domain> reaches a UserApp")
	fs.DurationVar(&cfg.stack.DriftInterval, "drift-interval", 30*time.Second, "the manager's drift interval")
	fs.StringVar(&cfg.samples, "samples", "config/samples", "kustomization (a directory: overlays, name prefixes and patches included) applied once the stack is up; empty applies nothing")
	fs.StringVar(&cfg.namespace, "namespace", "default", "namespace the samples go to")
	fs.DurationVar(&cfg.readyAfter, "ready-timeout", 2*time.Minute, "how long to wait for the samples to become Ready")
	fs.BoolVar(&cfg.stack.RouterOnFly, "router-on-fly", false, "deploy the router as users do on Fly: a FlyRouter object makes the manager create the router app on the emulator, whose machines run the real router with the token the manager mints (docs/flyrouter.md); off runs one router in process")
	fs.StringVar(&cfg.log.Level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&cfg.log.Format, "log-format", "console", "log encoding: console or json")
	profile.bind(fs, devProfile)
	if err := parseFlags(fs, args, stderr); err != nil {
		return cfg, err
	}
	cfg.stack.ProxyListen = map[int]string{80: proxyHTTP, 9090: proxyManagement}
	p, err := profile.resolve()
	if err != nil {
		return cfg, err
	}
	cfg.stack.FlyProfile = p
	return cfg, nil
}

// listenFlag is an address flag of hangar dev with its value, so that a port error names the flag
// to change rather than only an address.
type listenFlag struct{ flag, addr string }

// listenFlags are the addresses `hangar dev` listens on at fixed ports; the apiserver, the router
// and the simulated machines pick free ports themselves.
func (c devConfig) listenFlags() []listenFlag {
	return []listenFlag{
		{"--fly-api", c.stack.FlyAPIAddr},
		{"--proxy-http", c.stack.ProxyListen[80]},
		{"--proxy-management", c.stack.ProxyListen[9090]},
	}
}

// portError is an address flag whose address cannot be listened on.
type portError struct {
	flag, addr string
	// sharedWith is the other flag given the same address, if that is the cause.
	sharedWith string
	err        error
}

func (e *portError) Error() string {
	switch {
	case e.sharedWith != "":
		return fmt.Sprintf("%s %s: the same address as %s; choose another with %s", e.flag, e.addr, e.sharedWith, e.flag)
	case errors.Is(e.err, syscall.EADDRINUSE):
		return fmt.Sprintf("%s %s: address in use; choose another with %s", e.flag, e.addr, e.flag)
	default:
		return fmt.Sprintf("%s %s: %v; choose another with %s", e.flag, e.addr, e.err, e.flag)
	}
}

func (e *portError) Unwrap() error { return e.err }

// checkListenAddrs listens on every address and lets go again before anything starts, so that a
// taken port fails at once, naming its flag, rather than after the apiserver came up. Another
// process may still take a port in the moment between this check and the stack's own listen; that
// rare case fails as before, with the address.
func checkListenAddrs(flags []listenFlag) error {
	for i, f := range flags {
		for _, earlier := range flags[:i] {
			if f.addr == earlier.addr && !strings.HasSuffix(f.addr, ":0") {
				return &portError{flag: f.flag, addr: f.addr, sharedWith: earlier.flag}
			}
		}
	}
	// Every listener is held until all are checked, so two spellings of one address are caught too.
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			_ = ln.Close()
		}
	}()
	for _, f := range flags {
		ln, err := net.Listen("tcp", f.addr)
		if err != nil {
			return &portError{flag: f.flag, addr: f.addr, err: err}
		}
		held = append(held, ln)
	}
	return nil
}

// runDev starts the local stack, applies the samples, prints what to try, and runs until ctx ends.
func runDev(ctx context.Context, args []string, stderr io.Writer) error {
	began := time.Now()
	cfg, err := parseDevFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := checkListenAddrs(cfg.listenFlags()); err != nil {
		return err
	}
	// The samples are built before the stack starts, so a broken kustomization fails at once.
	var samples []*unstructured.Unstructured
	if cfg.samples != "" {
		if samples, err = manifests.ReadKustomization(cfg.samples); err != nil {
			return fmt.Errorf("--samples: %w", err)
		}
	}
	log, flush, err := logging.New(cfg.log)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	defer flush()
	cfg.stack.Logger = log
	ctrl.SetLogger(log)
	klog.SetLogger(log.WithName("client-go"))

	stack, err := devstack.Start(ctx, cfg.stack)
	if err != nil {
		return err
	}
	defer func() {
		log.Info("Stopping the local stack")
		if err := stack.Stop(); err != nil {
			log.Error(err, "Stopping the local stack")
		}
	}()
	if cfg.samples != "" {
		if err := stack.Create(ctx, samples, cfg.namespace); err != nil {
			return fmt.Errorf("applying %s: %w", cfg.samples, err)
		}
		if err := stack.WaitReady(ctx, cfg.namespace, cfg.readyAfter); err != nil {
			return err
		}
	}
	flush()
	fmt.Fprint(os.Stdout, nextSteps(stack, cfg, time.Since(began)))
	<-ctx.Done()
	return nil
}

// nextSteps is the ready line and the commands to try, with this stack's paths and addresses.
func nextSteps(s *devstack.Stack, cfg devConfig, took time.Duration) string {
	kubectl := "kubectl"
	if _, err := os.Stat(filepath.Join("bin", "kubectl")); err == nil {
		kubectl = "./bin/kubectl"
	}
	kubeconfig := s.Kubeconfig
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, s.Kubeconfig); err == nil && !strings.HasPrefix(rel, "..") {
			kubeconfig = rel
		}
	}
	public, management := s.ProxyAddr(80), s.ProxyAddr(9090)
	var b strings.Builder
	fmt.Fprintf(&b, "\nhangar dev: ready in %.1fs\n\n", took.Seconds())
	fmt.Fprintf(&b, "  Fly Machines API (emulated)  %s   token in %s\n", s.FlyURL, filepath.Join(cfg.stack.StateDir, "fly-token"))
	fmt.Fprintf(&b, "  Fly Proxy (simulated)        port 80 -> %s, port 9090 -> %s\n\n", public, management)
	fmt.Fprintf(&b, "Try:\n")
	fmt.Fprintf(&b, "  export KUBECONFIG=%s\n", kubeconfig)
	fmt.Fprintf(&b, "  %s get userapps,usermachines -n %s\n", kubectl, cfg.namespace)
	fmt.Fprintf(&b, "  %s describe usermachine alice-workspace -n %s\n", kubectl, cfg.namespace)
	if cfg.stack.RouterOnFly {
		fmt.Fprintf(&b, "  %s describe flyrouter %s    # the router app on the emulated Fly: rollouts, credentials\n", kubectl, devstack.FlyRouterName)
	}
	fmt.Fprintf(&b, "  curl -s -H 'Host: alice.example.com' http://%s/hello\n", public)
	fmt.Fprintf(&b, "  curl -s -H 'Host: bob.%s' http://%s/hello    # bob's machine is Stopped: the request wakes it\n", cfg.stack.BaseDomain, public)
	fmt.Fprintf(&b, "  TOKEN=$(%s get secret alice-fly-connection -n %s -o jsonpath='{.data.managementToken}' | base64 -d)\n", kubectl, cfg.namespace)
	fmt.Fprintf(&b, "  curl -s -H 'Hangar-Target: %s/alice-workspace' -H \"Authorization: Bearer $TOKEN\" http://%s/status\n\n", cfg.namespace, management)
	fmt.Fprintf(&b, "Ctrl-C stops everything.\n")
	return b.String()
}
