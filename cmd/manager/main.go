// Command manager runs hangar's controllers: it reconciles UserApps and UserMachines into Fly apps
// and machines.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyadapter"
	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/hostclaim"
	"github.com/hangar-dev/hangar/internal/kubeconfig"
	"github.com/hangar-dev/hangar/internal/logging"
	"github.com/hangar-dev/hangar/internal/version"
)

// options are the manager's command-line settings.
type options struct {
	metricsAddr   string
	secureMetrics bool
	probeAddr     string
	leaderElect   bool
	leaderElectNS string
	fleet         fleetOptions
	enableHTTP2   bool
	log           logging.Options

	kubeconfig    string
	namespace     string
	flyAPIURL     string
	flyTokenFile  string
	rootKeySecret string
	flyRouters    bool
	controllers   controllers.Options
	adapter       flyadapter.Options
}

func (o *options) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint (:8443 for HTTPS, :8080 for HTTP, 0 to disable)")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS with Kubernetes authentication and authorization")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader so only one manager replica reconciles at a time")
	fs.StringVar(&o.leaderElectNS, "leader-election-namespace", "", "Namespace of the leader election lease (default: the pod's namespace)")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false, "Allow HTTP/2 on the metrics server (off because of the HTTP/2 rapid reset CVEs)")
	o.log.BindFlags(fs)
	o.fleet.bindFlags(fs)

	fs.StringVar(&o.namespace, "namespace", "", "Reconcile only the UserApps and UserMachines of this namespace; empty reconciles all")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for running outside the cluster (default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account)")
	fs.StringVar(&o.flyAPIURL, "fly-api-url", flyapi.DefaultBaseURL, "Fly Machines API URL (http://_api.internal:4280 inside Fly's network; the emulator's URL locally)")
	fs.StringVar(&o.flyTokenFile, "fly-token-file", "", "File holding the Fly API token, re-read when it changes (default: the FLY_API_TOKEN environment variable)")
	fs.StringVar(&o.rootKeySecret, "root-key-secret", "hangar-system/hangar-root-key", "Secret (namespace/name) holding the root key per-app keys are derived from; created when missing")
	fs.BoolVar(&o.flyRouters, "flyrouters", false, "Run the FlyRouter controller, which deploys the router onto Fly (docs/flyrouter.md); the router's ServiceAccount, its token key Secret and CA ConfigMap are in the namespace of --root-key-secret")
	fs.StringVar(&o.controllers.DefaultOrg, "default-org", "personal", "Fly org of UserApps that do not set spec.org")
	fs.StringVar(&o.controllers.DefaultRegion, "default-region", "ord", "Fly region of UserMachines that do not set spec.region")
	fs.StringVar(&o.controllers.AppNamePrefix, "app-name-prefix", "hangar-", "Prefix of the Fly app names derived for UserApps without spec.appName")
	fs.DurationVar(&o.controllers.DriftInterval, "drift-interval", controllers.DefaultDriftInterval, "How often each settled object is read back from Fly to correct drift (jittered by ±10%)")
	fs.IntVar(&o.controllers.MaxConcurrentReconciles, "max-concurrent-reconciles", controllers.DefaultConcurrency, "Parallel reconciles per kind")
	fs.DurationVar(&o.controllers.ConsistencyWindow, "fly-consistency-window", controllers.DefaultConsistencyWindow, "How long Fly's lists may lag behind its writes: a create whose answer was lost is looked for this long before it is sent again")
	fs.DurationVar(&o.adapter.LeaseTTL, "fly-lease-ttl", flyadapter.DefaultLeaseTTL, "Lifetime of the lease an update holds on a machine: if the manager dies mid-update, the machine stays locked this long")
	fs.DurationVar(&o.controllers.KeyRotationOverlap, "key-rotation-overlap", controllers.DefaultKeyRotationOverlap, "How long an app's previous keys stay valid after a rotation (the fly.hangar.dev/rotate-keys annotation): machines are updated and the coordinator reads the new management token meanwhile")
	fs.DurationVar(&o.controllers.TransitionPoll, "transition-poll", controllers.DefaultTransitionPoll, "How soon a machine in a transition (starting, stopping...) or a pending create is looked at again")
	fs.StringVar(&o.controllers.ActivityNamespace, "activity-namespace", "", "Namespace of the routers' activity Leases, which spec.idle timeouts count from (the router's --activity-namespace; default: the namespace of --root-key-secret)")
	fs.StringVar(&o.controllers.RouterBaseDomain, "router-base-domain", "", "Must equal the router's --base-domain: UserApp subdomains claim <subdomain>.<this domain> when hosts are checked for conflicts; empty: subdomains claim nothing")
}

// appNamePrefix keeps derived app names within Fly's rules and leaves room for namespace and name.
var appNamePrefix = regexp.MustCompile(`^[a-z0-9][-a-z0-9]{0,19}$`)

// validate checks the flags that can be checked before anything starts.
func (o *options) validate() error {
	if o.flyTokenFile == "" && os.Getenv("FLY_API_TOKEN") == "" {
		return errors.New("no Fly API token: set --fly-token-file or FLY_API_TOKEN")
	}
	keyNamespace, _, ok := strings.Cut(o.rootKeySecret, "/")
	if !ok {
		return fmt.Errorf("--root-key-secret %q: use namespace/name", o.rootKeySecret)
	}
	if o.controllers.ActivityNamespace == "" {
		// The manager's own namespace, where the router runs too.
		o.controllers.ActivityNamespace = keyNamespace
	}
	if p := o.controllers.AppNamePrefix; p != "" && !appNamePrefix.MatchString(p) {
		return fmt.Errorf("--app-name-prefix %q: use at most 20 lowercase letters, digits and dashes, starting with a letter or digit", p)
	}
	if o.controllers.DriftInterval < time.Second {
		return fmt.Errorf("--drift-interval %s: use at least 1s", o.controllers.DriftInterval)
	}
	if o.controllers.ConsistencyWindow <= 0 || o.controllers.TransitionPoll <= 0 || o.controllers.KeyRotationOverlap <= 0 {
		return errors.New("--fly-consistency-window, --transition-poll and --key-rotation-overlap must be positive")
	}
	if o.adapter.LeaseTTL < time.Second {
		return fmt.Errorf("--fly-lease-ttl %s: use at least 1s (Fly counts leases in whole seconds)", o.adapter.LeaseTTL)
	}
	if d := o.controllers.RouterBaseDomain; d != "" {
		if _, err := hostclaim.Normalize(d); err != nil {
			return fmt.Errorf("--router-base-domain %q: not a DNS name", d)
		}
	}
	shard, err := o.fleet.validate(o.leaderElect)
	o.controllers.Shard = shard
	return err
}

// tokenSource reads the token file on every call (the client checks whether it changed), so a
// rotated token is used without a restart.
func (o *options) tokenSource() flyapi.TokenSource {
	if o.flyTokenFile != "" {
		return flyapi.FileToken(o.flyTokenFile)
	}
	return flyapi.StaticToken(os.Getenv("FLY_API_TOKEN"))
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(2)
	}
	log, flush, err := logging.New(opts.log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(2)
	}
	// The process-wide loggers are set here, not in run: client-go and controller-runtime read
	// them from every goroutine.
	ctrl.SetLogger(log)
	klog.SetLogger(log)
	err = run(ctrl.SetupSignalHandler(), opts, log)
	flush()
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

// parseFlags reads and checks the command line.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opts options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts.bindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	return opts, opts.validate()
}

// run runs the manager until ctx ends (SIGTERM), then returns after a clean stop.
func run(ctx context.Context, opts options, log logr.Logger) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := flyv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}

	var tlsOpts []func(*tls.Config)
	if !opts.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   opts.metricsAddr,
		SecureServing: opts.secureMetrics,
		TLSOpts:       tlsOpts,
	}
	if opts.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	cfg, err := kubeconfig.Load(opts.kubeconfig)
	if err != nil {
		return fmt.Errorf("finding the cluster: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controllers.ActivityCacheOptions(controllers.ShardCacheOptions(opts.namespace, opts.controllers.Shard), opts.controllers.ActivityNamespace),
		Logger:                  log,
		Client:                  controllers.ClientOptions(),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  opts.probeAddr,
		LeaderElection:          opts.leaderElect,
		LeaderElectionID:        opts.fleet.electionID,
		LeaderElectionNamespace: opts.leaderElectNS,
		LeaseDuration:           &opts.fleet.leaseDuration,
		RenewDeadline:           &opts.fleet.renewDeadline,
		RetryPeriod:             &opts.fleet.retryPeriod,
		// The lease is released on SIGTERM so a standby takes over at once, not after the lease
		// duration. controller-runtime releases it only once every controller has stopped (passes
		// in flight finish first, for up to its 30 s graceful shutdown timeout), so the old leader
		// makes no Fly call after the new one starts. A
		// leader that cannot renew stops at the renew deadline and exits, before the lease expires
		// for the standbys; a killed one just stops.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := setupControllers(ctx, mgr, cfg, &opts); err != nil {
		return err
	}
	// Served with controller-runtime's and the controllers' metrics; unregistered when run returns,
	// so a process may run the manager again (tests do).
	for _, c := range []prometheus.Collector{version.NewCollector(), controllers.NewObjectsCollector(mgr)} {
		if err := ctrlmetrics.Registry.Register(c); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		defer ctrlmetrics.Registry.Unregister(c)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}

	info := version.Get()
	log.Info("Starting manager", "version", info.Version, "commit", info.Commit, "buildDate", info.Date)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	log.Info("Manager stopped")
	return nil
}

// tokenFilePoll is how often the manager looks at --fly-token-file for a rotated token: a stat.
const tokenFilePoll = time.Second

// setupControllers loads (or creates) the root key and wires the controllers to Fly; ctx is the
// manager's lifetime.
func setupControllers(ctx context.Context, mgr ctrl.Manager, cfg *rest.Config, opts *options) error {
	direct, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	ns, name, _ := strings.Cut(opts.rootKeySecret, "/")
	keyCtx, cancel := context.WithTimeout(ctrl.LoggerInto(ctx, mgr.GetLogger()), 30*time.Second)
	defer cancel()
	root, err := controllers.EnsureRootKey(keyCtx, direct, types.NamespacedName{Namespace: ns, Name: name})
	if err != nil {
		return err
	}
	fly, err := flyapi.New(flyapi.Options{
		BaseURL:   opts.flyAPIURL,
		Token:     opts.tokenSource(),
		UserAgent: "hangar-manager",
		Metrics:   ctrlmetrics.Registry,
	})
	if err != nil {
		return err
	}
	deps := controllers.Dependencies{Fly: flyadapter.New(fly, opts.adapter), Keys: root, Options: opts.controllers}
	if opts.flyRouters {
		deps.FlyRouter = controllers.FlyRouterOptions{Namespace: ns, RootKeySecret: types.NamespacedName{Namespace: ns, Name: name}}
	}
	if opts.flyTokenFile != "" {
		// A rotated token (a Secret volume update) sends the objects Fly refused with the old one
		// round at once, not at their next retry.
		deps.CredentialsChanged = flyapi.WatchTokenFile(ctx, opts.flyTokenFile, tokenFilePoll)
	}
	return controllers.Setup(mgr, deps)
}
