// Command router runs hangar's fly-replay router: it watches UserApps and UserMachines and answers
// every request on its public and management listeners with a fly-replay to the right user machine.
// It reads the root key from a mounted file, needs only read access to the two kinds (and writes
// activity Leases in its own namespace, for idle timeouts), and can run in the cluster or, with
// --kubeconfig, as a Fly app of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hangar-dev/hangar/internal/logging"
	"github.com/hangar-dev/hangar/internal/version"
	"github.com/hangar-dev/hangar/router"
	"github.com/hangar-dev/hangar/router/envconfig"
)

// options are the router's command-line settings: the router's own (envconfig) and logging.
type options struct {
	envconfig.Options
	log logging.Options
}

func (o *options) bindFlags(fs *flag.FlagSet) {
	o.BindFlags(fs)
	o.log.BindFlags(fs)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

func flagSet(opts *options) *flag.FlagSet {
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	opts.bindFlags(fs)
	return fs
}

// run parses args, serves until ctx ends (SIGTERM) and returns the exit code: 0 after a clean
// drain, 1 when the router could not start or failed, 2 for bad flags.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	var opts options
	fs := flagSet(&opts)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := envconfig.ApplyEnv(fs, osGetenv); err != nil {
		_, _ = fmt.Fprintln(stderr, "router:", err)
		return 2
	}
	if err := opts.Validate(); err != nil {
		_, _ = fmt.Fprintln(stderr, "router:", err)
		return 2
	}
	logger, flush, err := logging.New(opts.log)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "router:", err)
		return 2
	}
	defer flush()
	ctrllog.SetLogger(logger)
	klog.SetLogger(logger.WithName("client-go"))

	info := version.Get()
	logger.Info("Starting router", "version", info.Version, "commit", info.Commit, "buildDate", info.Date)
	if err := serve(ctx, opts, logger); err != nil {
		logger.Error(err, "Router failed")
		return 1
	}
	logger.Info("Router stopped")
	return 0
}

// serve builds the router from the flags and runs it until ctx ends, then drains.
func serve(ctx context.Context, opts options, logger logr.Logger) error {
	cfg, err := opts.routerConfig(logger)
	if err != nil {
		return err
	}
	r, err := router.New(cfg)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// routerConfig reads the key files, the variables and the Kubernetes client configuration and
// turns the flags into the router's Config.
func (o *options) routerConfig(logger logr.Logger) (router.Config, error) {
	cfg, err := o.Config(osGetenv, logger)
	if err != nil {
		return router.Config{}, err
	}
	cfg.Registry = metricsRegistry()
	return cfg, nil
}

// metricsRegistry is what the router's /metrics serves: the router's own metrics (router.New adds
// them), Go and process metrics, and hangar_build_info.
func metricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), version.NewCollector())
	return reg
}

// osGetenv is the process environment, replaced in tests.
var osGetenv = os.Getenv
