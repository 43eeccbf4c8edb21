// Command router runs hangar's fly-replay router: it watches UserApps and UserMachines and answers
// every request on its public and management listeners with a fly-replay to the right user machine.
// It reads the root key from a mounted file, needs only read access to the two kinds, and can run
// in the cluster or, with --kubeconfig, as a Fly app of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/internal/logging"
	"github.com/hangar-dev/hangar/router"
)

// options are the router's command-line settings.
type options struct {
	publicAddr     string
	managementAddr string
	metricsAddr    string
	healthAddr     string
	baseDomain     string
	rootKeyFile    string
	tokenKeyFile   string
	tokenIssuer    string
	tokenMaxTTL    time.Duration
	replayForm     string
	replayTimeout  time.Duration
	replayFallback string
	stateTTL       time.Duration
	retryAfter     time.Duration
	maxBodyBytes   int64
	namespace      string
	kubeconfig     string
	drainDelay     time.Duration
	shutdownTime   time.Duration
	log            logging.Options
}

func (o *options) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.publicAddr, "public-addr", ":8080", "Public listener: the internal port behind the router app's Fly services 80/443")
	fs.StringVar(&o.managementAddr, "management-addr", ":9090", "Management listener (keep it private: Flycast or cluster-internal); empty disables it. Fly matches replays by port, so it must be reached on 9090")
	fs.StringVar(&o.metricsAddr, "metrics-addr", ":8081", "Prometheus /metrics listener; empty disables it")
	fs.StringVar(&o.healthAddr, "health-addr", ":8082", "/healthz and /readyz listener")
	fs.StringVar(&o.baseDomain, "base-domain", "", "Serve <spec.routing.subdomain>.<base domain> for each UserApp; empty turns subdomains off")
	fs.StringVar(&o.rootKeyFile, "root-key-file", "/etc/hangar/root-key/"+keys.RootKeySecretKey, "File holding the 32-byte root key (the mounted root key Secret)")
	fs.StringVar(&o.tokenKeyFile, "public-token-key-file", "", "File holding the coordinator's HS256 key for UserApps with routing.auth Token; without it their requests get 503")
	fs.StringVar(&o.tokenIssuer, "public-token-issuer", "", "When set, public tokens must carry this iss")
	fs.DurationVar(&o.tokenMaxTTL, "public-token-max-ttl", router.DefaultTokenMaxTTL, "Refuse public tokens whose exp is further away than this")
	fs.StringVar(&o.replayForm, "replay-form", "header", "How replays are written: header (fly-replay header) or json (application/vnd.fly.replay+json body); Token apps always get json")
	fs.DurationVar(&o.replayTimeout, "replay-timeout", 0, "fly-replay timeout (how long the Fly Proxy tries the target); 0 leaves it out")
	fs.StringVar(&o.replayFallback, "replay-fallback", "", "fly-replay fallback when the replay fails: force_self or prefer_self; empty leaves it out")
	fs.DurationVar(&o.stateTTL, "state-ttl", router.DefaultStateTTL, "Least lifetime of the signed replay state a user machine verifies")
	fs.DurationVar(&o.retryAfter, "retry-after", router.DefaultRetryAfter, "Retry-After sent with 503 answers")
	fs.Int64Var(&o.maxBodyBytes, "max-body-bytes", router.DefaultMaxBodyBytes, "Largest request body let through (the Fly Proxy cannot replay bodies over 1 MB)")
	fs.StringVar(&o.namespace, "namespace", "", "Watch only this namespace; empty watches all")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for running outside the cluster (default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account)")
	fs.DurationVar(&o.drainDelay, "drain-delay", 5*time.Second, "On SIGTERM, report unready and keep serving this long before closing listeners, so load balancers stop sending first")
	fs.DurationVar(&o.shutdownTime, "shutdown-timeout", 20*time.Second, "How long in-flight requests may take to finish after the listeners close")
	o.log.BindFlags(fs)
}

func (o *options) validate() error {
	if o.publicAddr == "" || o.healthAddr == "" {
		return errors.New("--public-addr and --health-addr are required")
	}
	if _, err := router.ParseForm(o.replayForm); err != nil {
		return fmt.Errorf("--replay-form: %w", err)
	}
	if err := o.replayOptions().Validate(); err != nil {
		return fmt.Errorf("--replay-timeout/--replay-fallback: %w", err)
	}
	if o.stateTTL < 10*time.Second {
		return fmt.Errorf("--state-ttl %s: use at least 10s (a replay to a stopped machine waits for it to start)", o.stateTTL)
	}
	if o.maxBodyBytes <= 0 || o.retryAfter <= 0 || o.tokenMaxTTL <= 0 || o.drainDelay < 0 || o.shutdownTime <= 0 {
		return errors.New("--max-body-bytes, --retry-after, --public-token-max-ttl and --shutdown-timeout must be positive, --drain-delay not negative")
	}
	return nil
}

func (o *options) replayOptions() router.ReplayOptions {
	form, _ := router.ParseForm(o.replayForm)
	return router.ReplayOptions{Form: form, Timeout: o.replayTimeout, Fallback: o.replayFallback}
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
	if err := opts.validate(); err != nil {
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

	if err := serve(ctx, opts, logger); err != nil {
		logger.Error(err, "Router failed")
		return 1
	}
	logger.Info("Router stopped")
	return 0
}

// serve wires the router and runs it until ctx ends, then drains.
func serve(ctx context.Context, opts options, logger logr.Logger) error {
	root, err := keys.ReadRootFile(opts.rootKeyFile)
	if err != nil {
		return err
	}
	var tokens *router.TokenVerifier
	if opts.tokenKeyFile != "" {
		key, err := router.ReadTokenKeyFile(opts.tokenKeyFile)
		if err != nil {
			return err
		}
		tokens, err = router.NewTokenVerifier(key, router.TokenOptions{MaxTTL: opts.tokenMaxTTL, Issuer: opts.tokenIssuer})
		if err != nil {
			return err
		}
	}
	restCfg, err := restConfig(opts.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading the Kubernetes client configuration: %w", err)
	}
	restCfg.UserAgent = "hangar-router"

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := router.NewMetrics(registry)
	builder, err := router.NewBuilder(router.BuildConfig{
		BaseDomain: opts.baseDomain, Root: root, Replay: opts.replayOptions(), StateTTL: opts.stateTTL,
	})
	if err != nil {
		return err
	}
	table := &router.Table{}
	sourceCtx, stopSource := context.WithCancel(context.Background())
	defer stopSource()
	source, err := router.NewSource(sourceCtx, router.SourceConfig{
		RESTConfig: restCfg, Namespace: opts.namespace, Builder: builder, Table: table, Metrics: metrics,
		Logger: logger.WithName("index"),
	})
	if err != nil {
		return err
	}

	var draining atomic.Bool
	handlerCfg := router.HandlerConfig{
		Table: table, Metrics: metrics, Tokens: tokens, RetryAfter: opts.retryAfter, MaxBodyBytes: opts.maxBodyBytes,
	}
	httpLog := log.New(logWriter{logger.WithName("http")}, "", 0)
	servers := []*namedServer{
		{name: "public", traffic: true, srv: router.NewServer(opts.publicAddr, router.NewHandler(router.ListenerPublic, handlerCfg), router.DefaultServerSettings, httpLog)},
		{name: "health", srv: router.NewServer(opts.healthAddr, healthMux(source, &draining), router.DefaultServerSettings, httpLog)},
	}
	if opts.managementAddr != "" {
		servers = append(servers, &namedServer{name: "management", traffic: true,
			srv: router.NewServer(opts.managementAddr, router.NewHandler(router.ListenerManagement, handlerCfg), router.DefaultServerSettings, httpLog)})
	}
	if opts.metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}))
		servers = append(servers, &namedServer{name: "metrics", srv: router.NewServer(opts.metricsAddr, mux, router.DefaultServerSettings, httpLog)})
	}
	// Bind every port before serving any, so a taken port stops start-up at once, and log the
	// bound address (":0" picks a free port).
	for _, s := range servers {
		ln, err := net.Listen("tcp", s.srv.Addr)
		if err != nil {
			closeListeners(servers)
			return fmt.Errorf("listening on %s for %s: %w", s.srv.Addr, s.name, err)
		}
		s.ln = ln
		logger.Info("Listening", "listener", s.name, "address", ln.Addr().String())
	}

	failed := make(chan error, len(servers)+1)
	sourceDone := make(chan struct{})
	go func() {
		defer close(sourceDone)
		if err := source.Run(sourceCtx); err != nil {
			failed <- fmt.Errorf("route index source: %w", err)
		}
	}()
	for _, s := range servers {
		go func() {
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("%s listener: %w", s.name, err)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("Draining: reporting unready before closing the listeners", "delay", opts.drainDelay)
		draining.Store(true)
		select {
		case <-time.After(opts.drainDelay):
		case runErr = <-failed:
		}
	case runErr = <-failed:
		draining.Store(true)
	}

	// The traffic listeners stop accepting and finish what is in flight; then the source, metrics
	// and health stop.
	logger.Info("Shutting down listeners", "timeout", opts.shutdownTime)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), opts.shutdownTime)
	defer cancel()
	shutdownErr := shutdown(shutdownCtx, servers, true)
	stopSource()
	<-sourceDone
	shutdownErr = errors.Join(shutdownErr, shutdown(shutdownCtx, servers, false))
	return errors.Join(runErr, shutdownErr)
}

type namedServer struct {
	name    string
	traffic bool // public or management: drained first
	srv     *http.Server
	ln      net.Listener
}

func shutdown(ctx context.Context, servers []*namedServer, traffic bool) error {
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		if s.traffic != traffic {
			continue
		}
		wg.Go(func() {
			if err := s.srv.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("draining the %s listener: %w", s.name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func closeListeners(servers []*namedServer) {
	for _, s := range servers {
		if s.ln != nil {
			_ = s.ln.Close()
		}
	}
}

// healthMux serves /healthz (the process runs) and /readyz (the first index after the initial
// cache sync is published, and the router is not draining).
func healthMux(source *router.Source, draining *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case draining.Load():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case !source.Ready():
			http.Error(w, "route index not synced yet", http.StatusServiceUnavailable)
		default:
			_, _ = io.WriteString(w, "ok\n")
		}
	})
	return mux
}

// restConfig loads --kubeconfig, else $KUBECONFIG or ~/.kube/config, else the in-cluster config.
func restConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// logWriter turns net/http's log lines (TLS and protocol errors) into structured log entries.
type logWriter struct{ logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}
