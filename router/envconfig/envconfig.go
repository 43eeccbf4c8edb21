// Package envconfig turns the router's flags and environment into a router.Config, as cmd/router and the emulator's router machines read them.
//
// On Fly the router is configured through its machine's environment: the FlyRouter controller sets
// each flag as HANGAR_ROUTER_<FLAG> (dashes as underscores, upper case) and puts the credentials in
// Fly secrets, which --kubeconfig-env, --root-key-env and --public-token-key-env name. A flag given
// on the command line wins over its variable. cmd/router binds these flags beside its logging ones;
// the Fly emulator (internal/flysim/images) calls FromEnv with a simulated machine's environment, so
// both read a machine's settings through the same code.
package envconfig

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/hangar-dev/hangar/internal/activity"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/internal/kubeconfig"
	"github.com/hangar-dev/hangar/router"
)

// Options are the router's settings, one flag each.
type Options struct {
	PublicAddr     string
	ManagementAddr string
	MetricsAddr    string
	HealthAddr     string
	BaseDomain     string
	RootKeyFile    string
	TokenKeyFile   string
	TokenIssuer    string
	TokenMaxTTL    time.Duration
	ReplayForm     string
	ReplayTimeout  time.Duration
	ReplayFallback string
	StateTTL       time.Duration
	RetryAfter     time.Duration
	MaxBodyBytes   int64
	Namespace      string
	Kubeconfig     string
	KubeconfigEnv  string
	RootKeyEnv     string
	TokenKeyEnv    string
	DrainDelay     time.Duration
	ShutdownTime   time.Duration
	ActivityEvery  time.Duration
	ActivityNS     string
}

// BindFlags defines the router's flags on fs, with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.PublicAddr, "public-addr", ":8080", "Public listener: the internal port behind the router app's Fly services 80/443")
	fs.StringVar(&o.ManagementAddr, "management-addr", ":9090", "Management listener (keep it private: Flycast or cluster-internal); empty disables it. Fly matches replays by port, so it must be reached on 9090")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", ":8081", "Prometheus /metrics listener; empty disables it")
	fs.StringVar(&o.HealthAddr, "health-addr", ":8082", "/healthz and /readyz listener")
	fs.StringVar(&o.BaseDomain, "base-domain", "", "Serve <spec.routing.subdomain>.<base domain> for each UserApp; empty turns subdomains off")
	fs.StringVar(&o.RootKeyFile, "root-key-file", "/etc/hangar/root-key/"+keys.RootKeySecretKey, "File holding the 32-byte root key (the mounted root key Secret)")
	fs.StringVar(&o.TokenKeyFile, "public-token-key-file", "", "File holding the coordinator's HS256 key for UserApps with routing.auth Token; without it their requests get 503")
	fs.StringVar(&o.TokenIssuer, "public-token-issuer", "", "When set, public tokens must carry this iss")
	fs.DurationVar(&o.TokenMaxTTL, "public-token-max-ttl", router.DefaultTokenMaxTTL, "Refuse public tokens whose exp is further away than this")
	fs.StringVar(&o.ReplayForm, "replay-form", "header", "How replays are written: header (fly-replay header) or json (application/vnd.fly.replay+json body); Token apps always get json")
	fs.DurationVar(&o.ReplayTimeout, "replay-timeout", 0, "fly-replay timeout (how long the Fly Proxy tries the target); 0 leaves it out")
	fs.StringVar(&o.ReplayFallback, "replay-fallback", "", "fly-replay fallback when the replay fails: force_self or prefer_self; empty leaves it out")
	fs.DurationVar(&o.StateTTL, "state-ttl", router.DefaultStateTTL, "Least lifetime of the signed replay state a user machine verifies")
	fs.DurationVar(&o.RetryAfter, "retry-after", router.DefaultRetryAfter, "Retry-After sent with 503 answers")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", router.DefaultMaxBodyBytes, "Largest request body let through (the Fly Proxy cannot replay bodies over 1 MB)")
	fs.StringVar(&o.Namespace, "namespace", "", "Watch only this namespace; empty watches all")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig for running outside the cluster (default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account)")
	fs.StringVar(&o.KubeconfigEnv, "kubeconfig-env", "", "Environment variable holding a whole kubeconfig (a Fly secret: the FlyRouter controller sets HANGAR_KUBECONFIG); wins over --kubeconfig")
	fs.StringVar(&o.RootKeyEnv, "root-key-env", "", "Environment variable holding the root key, base64 (a Fly secret); wins over --root-key-file")
	fs.StringVar(&o.TokenKeyEnv, "public-token-key-env", "", "Environment variable holding the public token key, base64 (a Fly secret); wins over --public-token-key-file")
	fs.DurationVar(&o.DrainDelay, "drain-delay", 5*time.Second, "On SIGTERM, report unready and keep serving this long before closing listeners, so load balancers stop sending first")
	fs.DurationVar(&o.ShutdownTime, "shutdown-timeout", router.DefaultShutdownTimeout, "How long in-flight requests may take to finish after the listeners close")
	fs.DurationVar(&o.ActivityEvery, "activity-interval", router.DefaultActivityInterval, "Publish when each user machine last got a request (for spec.idle timeouts) to one Lease per UserApp, written at most this often across all replicas; 0 turns it off")
	fs.StringVar(&o.ActivityNS, "activity-namespace", activity.DefaultNamespace, "Namespace of the activity Leases: the manager's (its --activity-namespace); the router's only writes go there")
}

// Validate checks the flags that need no file or variable to be read.
func (o *Options) Validate() error {
	if o.PublicAddr == "" || o.HealthAddr == "" {
		return errors.New("--public-addr and --health-addr are required")
	}
	if _, err := router.ParseForm(o.ReplayForm); err != nil {
		return fmt.Errorf("--replay-form: %w", err)
	}
	if err := o.replayOptions().Validate(); err != nil {
		return fmt.Errorf("--replay-timeout/--replay-fallback: %w", err)
	}
	if o.StateTTL < 10*time.Second {
		return fmt.Errorf("--state-ttl %s: use at least 10s (a replay to a stopped machine waits for it to start)", o.StateTTL)
	}
	if o.StateTTL > router.MaxStateTTL {
		return fmt.Errorf("--state-ttl %s: use at most %s (user machines refuse states that live longer)", o.StateTTL, router.MaxStateTTL)
	}
	if o.ActivityEvery != 0 && o.ActivityEvery < time.Second {
		return fmt.Errorf("--activity-interval %s: use at least 1s, or 0 to turn activity off", o.ActivityEvery)
	}
	if o.ActivityNS == "" && o.ActivityEvery != 0 {
		return errors.New("--activity-namespace is required while --activity-interval is not 0")
	}
	if o.MaxBodyBytes <= 0 || o.RetryAfter <= 0 || o.TokenMaxTTL <= 0 || o.DrainDelay < 0 || o.ShutdownTime <= 0 {
		return errors.New("--max-body-bytes, --retry-after, --public-token-max-ttl and --shutdown-timeout must be positive, --drain-delay not negative")
	}
	return nil
}

func (o *Options) replayOptions() router.ReplayOptions {
	form, _ := router.ParseForm(o.ReplayForm)
	return router.ReplayOptions{Form: form, Timeout: o.ReplayTimeout, Fallback: o.ReplayFallback}
}

// Config reads the keys and the Kubernetes client configuration (from files, or from the variables
// getenv reads) and turns the flags into the router's Config. Registry is left nil: the caller
// chooses what /metrics serves besides the router's own metrics.
func (o *Options) Config(getenv func(string) string, logger logr.Logger) (router.Config, error) {
	root, err := o.root(getenv)
	if err != nil {
		return router.Config{}, err
	}
	var tokens *router.TokenVerifier
	if o.TokenKeyFile != "" || o.TokenKeyEnv != "" {
		key, err := o.tokenKey(getenv)
		if err != nil {
			return router.Config{}, err
		}
		tokens, err = router.NewTokenVerifier(key, router.TokenOptions{MaxTTL: o.TokenMaxTTL, Issuer: o.TokenIssuer})
		if err != nil {
			return router.Config{}, err
		}
	}
	restCfg, err := o.restConfig(getenv)
	if err != nil {
		return router.Config{}, fmt.Errorf("loading the Kubernetes client configuration: %w", err)
	}
	restCfg.UserAgent = "hangar-router"
	return router.Config{
		RESTConfig:      restCfg,
		Namespace:       o.Namespace,
		BaseDomain:      o.BaseDomain,
		Root:            root,
		Replay:          o.replayOptions(),
		StateTTL:        o.StateTTL,
		Tokens:          tokens,
		RetryAfter:      o.RetryAfter,
		MaxBodyBytes:    o.MaxBodyBytes,
		PublicAddr:      o.PublicAddr,
		ManagementAddr:  o.ManagementAddr,
		MetricsAddr:     o.MetricsAddr,
		HealthAddr:      o.HealthAddr,
		DrainDelay:      o.DrainDelay,
		ShutdownTimeout: o.ShutdownTime,
		// Leases name their last writer by host name: the pod's name in a cluster, the machine's ID
		// on Fly.
		Activity: router.ActivityConfig{Interval: o.ActivityEvery, Namespace: o.ActivityNS},
		Logger:   logger,
	}, nil
}

// FromEnv builds the router's Config as cmd/router does when started with args on a machine whose
// environment getenv reads: flags, then HANGAR_ROUTER_<FLAG> for those not given, then the files
// and variables they name. Logging flags are cmd/router's and are not read here.
func FromEnv(args []string, getenv func(string) string, logger logr.Logger) (router.Config, error) {
	var o Options
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return router.Config{}, err
	}
	if err := ApplyEnv(fs, getenv); err != nil {
		return router.Config{}, err
	}
	if err := o.Validate(); err != nil {
		return router.Config{}, err
	}
	return o.Config(getenv, logger)
}

// root reads the root key from --root-key-env, else --root-key-file.
func (o *Options) root(getenv func(string) string) (keys.Root, error) {
	if o.RootKeyEnv != "" {
		return rootFromEnv(getenv, o.RootKeyEnv)
	}
	return keys.ReadRootFile(o.RootKeyFile)
}

// tokenKey reads the public token key from --public-token-key-env, else --public-token-key-file.
func (o *Options) tokenKey(getenv func(string) string) ([]byte, error) {
	if o.TokenKeyEnv != "" {
		return tokenKeyFromEnv(getenv, o.TokenKeyEnv)
	}
	return router.ReadTokenKeyFile(o.TokenKeyFile)
}

// restConfig reads the kubeconfig from --kubeconfig-env, else as kubeconfig.Load finds it.
func (o *Options) restConfig(getenv func(string) string) (*rest.Config, error) {
	if o.KubeconfigEnv != "" {
		return kubeconfigFromEnv(getenv, o.KubeconfigEnv)
	}
	return kubeconfig.Load(o.Kubeconfig)
}
