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
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hangar-dev/hangar/internal/activity"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/internal/kubeconfig"
	"github.com/hangar-dev/hangar/internal/logging"
	"github.com/hangar-dev/hangar/internal/version"
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
	kubeconfigEnv  string
	rootKeyEnv     string
	tokenKeyEnv    string
	drainDelay     time.Duration
	shutdownTime   time.Duration
	activityEvery  time.Duration
	activityNS     string
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
	fs.StringVar(&o.kubeconfigEnv, "kubeconfig-env", "", "Environment variable holding a whole kubeconfig (a Fly secret: the FlyRouter controller sets HANGAR_KUBECONFIG); wins over --kubeconfig")
	fs.StringVar(&o.rootKeyEnv, "root-key-env", "", "Environment variable holding the root key, base64 (a Fly secret); wins over --root-key-file")
	fs.StringVar(&o.tokenKeyEnv, "public-token-key-env", "", "Environment variable holding the public token key, base64 (a Fly secret); wins over --public-token-key-file")
	fs.DurationVar(&o.drainDelay, "drain-delay", 5*time.Second, "On SIGTERM, report unready and keep serving this long before closing listeners, so load balancers stop sending first")
	fs.DurationVar(&o.shutdownTime, "shutdown-timeout", router.DefaultShutdownTimeout, "How long in-flight requests may take to finish after the listeners close")
	fs.DurationVar(&o.activityEvery, "activity-interval", router.DefaultActivityInterval, "Publish when each user machine last got a request (for spec.idle timeouts) to one Lease per UserApp, written at most this often across all replicas; 0 turns it off")
	fs.StringVar(&o.activityNS, "activity-namespace", activity.DefaultNamespace, "Namespace of the activity Leases: the manager's (its --activity-namespace); the router's only writes go there")
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
	if o.stateTTL > router.MaxStateTTL {
		return fmt.Errorf("--state-ttl %s: use at most %s (user machines refuse states that live longer)", o.stateTTL, router.MaxStateTTL)
	}
	if o.activityEvery != 0 && o.activityEvery < time.Second {
		return fmt.Errorf("--activity-interval %s: use at least 1s, or 0 to turn activity off", o.activityEvery)
	}
	if o.activityNS == "" && o.activityEvery != 0 {
		return errors.New("--activity-namespace is required while --activity-interval is not 0")
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
	if err := applyEnv(fs, osGetenv); err != nil {
		_, _ = fmt.Fprintln(stderr, "router:", err)
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

// routerConfig reads the key files and the Kubernetes client configuration and turns the flags
// into the router's Config.
func (o *options) routerConfig(logger logr.Logger) (router.Config, error) {
	root, err := o.root()
	if err != nil {
		return router.Config{}, err
	}
	var tokens *router.TokenVerifier
	if o.tokenKeyFile != "" || o.tokenKeyEnv != "" {
		key, err := o.tokenKey()
		if err != nil {
			return router.Config{}, err
		}
		tokens, err = router.NewTokenVerifier(key, router.TokenOptions{MaxTTL: o.tokenMaxTTL, Issuer: o.tokenIssuer})
		if err != nil {
			return router.Config{}, err
		}
	}
	restCfg, err := o.restConfig()
	if err != nil {
		return router.Config{}, fmt.Errorf("loading the Kubernetes client configuration: %w", err)
	}
	restCfg.UserAgent = "hangar-router"
	return router.Config{
		RESTConfig:      restCfg,
		Namespace:       o.namespace,
		BaseDomain:      o.baseDomain,
		Root:            root,
		Replay:          o.replayOptions(),
		StateTTL:        o.stateTTL,
		Tokens:          tokens,
		RetryAfter:      o.retryAfter,
		MaxBodyBytes:    o.maxBodyBytes,
		PublicAddr:      o.publicAddr,
		ManagementAddr:  o.managementAddr,
		MetricsAddr:     o.metricsAddr,
		HealthAddr:      o.healthAddr,
		DrainDelay:      o.drainDelay,
		ShutdownTimeout: o.shutdownTime,
		// Leases name their last writer by host name: the pod's name in a cluster.
		Activity: router.ActivityConfig{Interval: o.activityEvery, Namespace: o.activityNS},
		Logger:   logger,
		Registry: metricsRegistry(),
	}, nil
}

// metricsRegistry is what the router's /metrics serves: the router's own metrics (router.New adds
// them), Go and process metrics, and hangar_build_info.
func metricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), version.NewCollector())
	return reg
}

// root reads the root key from --root-key-env, else --root-key-file.
func (o *options) root() (keys.Root, error) {
	if o.rootKeyEnv != "" {
		return rootFromEnv(osGetenv, o.rootKeyEnv)
	}
	return keys.ReadRootFile(o.rootKeyFile)
}

// tokenKey reads the public token key from --public-token-key-env, else --public-token-key-file.
func (o *options) tokenKey() ([]byte, error) {
	if o.tokenKeyEnv != "" {
		return tokenKeyFromEnv(osGetenv, o.tokenKeyEnv)
	}
	return router.ReadTokenKeyFile(o.tokenKeyFile)
}

// restConfig reads the kubeconfig from --kubeconfig-env, else as kubeconfig.Load finds it.
func (o *options) restConfig() (*rest.Config, error) {
	if o.kubeconfigEnv != "" {
		return kubeconfigFromEnv(osGetenv, o.kubeconfigEnv)
	}
	return kubeconfig.Load(o.kubeconfig)
}
