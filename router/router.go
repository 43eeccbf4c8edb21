package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"

	"github.com/hangar-dev/hangar/internal/keys"
)

// DefaultShutdownTimeout is how long in-flight requests may take to finish once the listeners close.
const DefaultShutdownTimeout = 20 * time.Second

// Config is everything a Router needs. cmd/router fills it from its flags; the local stack
// (internal/devstack) fills it with loopback ":0" addresses.
type Config struct {
	// RESTConfig reaches the kube-apiserver; read access to userapps and usermachines suffices
	// (required).
	RESTConfig *rest.Config
	// Namespace limits the watch to one namespace; empty watches all.
	Namespace string

	// BaseDomain serves <spec.routing.subdomain>.<BaseDomain>; empty turns subdomain routing off.
	BaseDomain string
	// Root derives each app's replay key and management token (required).
	Root keys.Root
	// Replay holds the installation-wide replay options.
	Replay ReplayOptions
	// StateTTL is the least lifetime of a replay state (DefaultStateTTL when zero, at most
	// MaxStateTTL).
	StateTTL time.Duration

	// Tokens verifies the public tokens of UserApps with routing.auth Token; nil answers their
	// requests 503 (the router has no key to check them with).
	Tokens *TokenVerifier
	// RetryAfter goes with 503 answers (DefaultRetryAfter when zero).
	RetryAfter time.Duration
	// MaxBodyBytes bounds request bodies (DefaultMaxBodyBytes when zero).
	MaxBodyBytes int64

	// PublicAddr is the public listener: the internal port behind the router app's Fly services
	// 80/443 (required). ":0" picks a free port; Addrs tells which.
	PublicAddr string
	// ManagementAddr is the management listener (Fly service 9090, keep it private); empty
	// disables it.
	ManagementAddr string
	// MetricsAddr serves /metrics; empty disables it.
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz; empty disables it.
	HealthAddr string

	// DrainDelay is how long Run keeps serving, reporting unready, after its context ends and
	// before it closes the traffic listeners, so load balancers stop sending first. Zero closes
	// them at once.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the time in-flight requests get once the listeners close
	// (DefaultShutdownTimeout when zero).
	ShutdownTimeout time.Duration

	// Activity publishes when each user machine last got a request, for the manager's idle
	// timeouts (zero Interval: off).
	Activity ActivityConfig

	// Logger receives the router's logs: listeners, drain, route index problems (under "index")
	// and net/http's own complaints (under "http"). Unset discards them.
	Logger logr.Logger
	// Registry receives the router's metrics and is what /metrics serves. Nil gives the Router a
	// registry of its own, with the Go and process collectors added.
	Registry *prometheus.Registry
}

// Addrs are the addresses a Router's listeners are bound to; a disabled listener's is empty.
type Addrs struct {
	Public, Management, Metrics, Health string
}

// Router is the assembled router: the route index source, the handlers of the public and
// management listeners, metrics and health endpoints, and the drain sequence that stops them.
type Router struct {
	log      logr.Logger
	source   *Source
	handlers [listenerCount]http.Handler
	servers  []*server
	addrs    Addrs
	drain    time.Duration
	shutdown time.Duration
	// activity publishes activity to the Leases; nil when off.
	activity *activityPublisher

	running  atomic.Bool
	draining atomic.Bool
}

// server is one of the Router's listeners.
type server struct {
	name    string // public, management, metrics or health: the "listener" key of log lines
	traffic bool   // public or management: drained first
	srv     *http.Server
	ln      net.Listener
}

// New checks cfg, wires the router and binds every listener, so a taken port fails New and the
// bound addresses are known (Addrs) before Run. Nothing talks to the kube-apiserver before Run.
// Run releases the listeners when it returns.
func New(cfg Config) (*Router, error) {
	switch {
	case cfg.RESTConfig == nil:
		return nil, errors.New("router: Config.RESTConfig is required")
	case cfg.PublicAddr == "":
		return nil, errors.New("router: Config.PublicAddr is required")
	case cfg.StateTTL < 0 || cfg.RetryAfter < 0 || cfg.MaxBodyBytes < 0 || cfg.DrainDelay < 0 || cfg.ShutdownTimeout < 0:
		return nil, errors.New("router: Config durations and MaxBodyBytes cannot be negative")
	case cfg.Activity.Interval < 0 || (cfg.Activity.Interval > 0 && cfg.Activity.Interval < time.Second):
		return nil, fmt.Errorf("router: Config.Activity.Interval %s: use at least 1s, or 0 to turn activity off", cfg.Activity.Interval)
	case cfg.StateTTL > MaxStateTTL:
		return nil, fmt.Errorf("router: Config.StateTTL %s is above %s: user machines would refuse the states (pkg/replayauth bounds their lifetime)", cfg.StateTTL, MaxStateTTL)
	}
	logger := cfg.Logger
	if logger.GetSink() == nil {
		logger = logr.Discard()
	}
	registry := cfg.Registry
	if registry == nil {
		registry = prometheus.NewRegistry()
		registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}

	buildCfg := BuildConfig{BaseDomain: cfg.BaseDomain, Root: cfg.Root, Replay: cfg.Replay, StateTTL: cfg.StateTTL}
	var recorder *activityRecorder
	var publisher *activityPublisher
	if cfg.Activity.Interval > 0 {
		recorder = newActivityRecorder()
		var err error
		if publisher, err = newActivityPublisher(cfg.RESTConfig, cfg.Activity, recorder, registry, logger.WithName("activity")); err != nil {
			return nil, err
		}
	}
	newBuilder := func() (*Builder, error) {
		b, err := NewBuilder(buildCfg)
		if err != nil {
			return nil, err
		}
		b.activity = recorder // shared by every Builder: slots outlive a reconnect
		return b, nil
	}
	builder, err := newBuilder()
	if err != nil {
		return nil, err
	}
	table := &Table{}
	metrics := NewMetrics(registry)
	// The context only bounds waiting for informers of a started cache; this one starts in Run.
	source, err := NewSource(context.Background(), SourceConfig{
		RESTConfig: cfg.RESTConfig, Namespace: cfg.Namespace, Builder: builder, Table: table, Metrics: metrics,
		// After an outage the Source rebuilds from a fresh cache into a fresh Builder.
		FreshBuilder: newBuilder,
		Logger:       logger.WithName("index"),
	})
	if err != nil {
		return nil, err
	}
	r := &Router{log: logger, source: source, drain: cfg.DrainDelay, shutdown: cfg.ShutdownTimeout, activity: publisher}
	handlerCfg := HandlerConfig{
		Table: table, Metrics: metrics, Tokens: cfg.Tokens, RetryAfter: cfg.RetryAfter, MaxBodyBytes: cfg.MaxBodyBytes,
	}
	for l := range listenerCount {
		r.handlers[l] = NewHandler(l, handlerCfg)
	}

	httpLog := log.New(logWriter{logger.WithName("http")}, "", 0)
	add := func(name, addr string, traffic bool, h http.Handler) {
		if addr != "" {
			r.servers = append(r.servers, &server{name: name, traffic: traffic, srv: NewServer(addr, h, DefaultServerSettings, httpLog)})
		}
	}
	add("public", cfg.PublicAddr, true, r.handlers[ListenerPublic])
	add("management", cfg.ManagementAddr, true, r.handlers[ListenerManagement])
	add("metrics", cfg.MetricsAddr, false, metricsMux(registry))
	add("health", cfg.HealthAddr, false, r.healthMux())
	if err := r.listen(); err != nil {
		return nil, err
	}
	return r, nil
}

// listen binds every listener before any serves, and logs each bound address.
func (r *Router) listen() error {
	for _, s := range r.servers {
		ln, err := net.Listen("tcp", s.srv.Addr)
		if err != nil {
			for _, bound := range r.servers {
				if bound.ln != nil {
					_ = bound.ln.Close()
				}
			}
			return fmt.Errorf("router: listening on %s for %s: %w", s.srv.Addr, s.name, err)
		}
		s.ln = ln
		addr := ln.Addr().String()
		switch s.name {
		case "public":
			r.addrs.Public = addr
		case "management":
			r.addrs.Management = addr
		case "metrics":
			r.addrs.Metrics = addr
		case "health":
			r.addrs.Health = addr
		}
		r.log.Info("Listening", "listener", s.name, "address", addr)
	}
	return nil
}

// Addrs returns the bound addresses of the listeners.
func (r *Router) Addrs() Addrs { return r.addrs }

// Handler returns the handler of listener l (public or management), for serving it elsewhere. It
// answers from the same index as the Router's own listeners, so it is only useful while Run runs.
func (r *Router) Handler(l Listener) http.Handler {
	if l < 0 || l >= listenerCount {
		return nil
	}
	return r.handlers[l]
}

// Ready reports what /readyz reports: the first index after the initial cache sync is published
// and the router is not draining.
func (r *Router) Ready() bool { return !r.draining.Load() && r.source.Ready() }

// Initialized is closed once the first index after the initial cache sync is published.
func (r *Router) Initialized() <-chan struct{} { return r.source.Initialized() }

// Run serves until ctx ends or a listener or the route index source fails, then drains: it
// reports unready for the drain delay (unless something failed), shuts the traffic listeners
// (in-flight requests get the shutdown timeout), stops the source and the activity publisher, then
// the metrics and health listeners. It returns nil after a clean drain. Run may be called once.
func (r *Router) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("router: Run called twice")
	}
	sourceCtx, stopSource := context.WithCancel(context.Background())
	defer stopSource()
	failed := make(chan error, len(r.servers)+1)
	sourceDone := make(chan struct{})
	go func() {
		defer close(sourceDone)
		if err := r.source.Run(sourceCtx); err != nil {
			failed <- fmt.Errorf("route index source: %w", err)
		}
	}()
	activityDone := make(chan struct{})
	go func() {
		defer close(activityDone)
		if r.activity != nil {
			r.activity.run(sourceCtx)
		}
	}()
	for _, s := range r.servers {
		go func() {
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("%s listener: %w", s.name, err)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
		// Unready first, so whoever reads the log line sees /readyz fail.
		r.draining.Store(true)
		r.log.Info("Draining: reporting unready before closing the listeners", "delay", r.drain)
		select {
		case <-time.After(r.drain):
		case runErr = <-failed:
		}
	case runErr = <-failed:
		r.draining.Store(true)
	}

	// The traffic listeners stop accepting and finish what is in flight; then the source, metrics
	// and health stop.
	r.log.Info("Shutting down listeners", "timeout", r.shutdown)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), r.shutdown)
	defer cancel()
	shutdownErr := r.shutdownServers(shutdownCtx, true)
	stopSource()
	<-sourceDone
	<-activityDone
	shutdownErr = errors.Join(shutdownErr, r.shutdownServers(shutdownCtx, false))
	return errors.Join(runErr, shutdownErr)
}

// shutdownServers shuts the traffic listeners, or the others, in parallel.
func (r *Router) shutdownServers(ctx context.Context, traffic bool) error {
	var wg sync.WaitGroup
	errs := make([]error, len(r.servers))
	for i, s := range r.servers {
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

// healthMux serves /healthz (the process runs) and /readyz (Ready).
func (r *Router) healthMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case r.draining.Load():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case !r.source.Ready():
			http.Error(w, "route index not synced yet", http.StatusServiceUnavailable)
		default:
			_, _ = io.WriteString(w, "ok\n")
		}
	})
	return mux
}

// metricsMux serves registry on /metrics.
func metricsMux(registry *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}))
	return mux
}
