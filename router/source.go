package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// DefaultRebuildDelay gathers the events of a burst (a controller writing a status, a kubectl
// apply of many objects) into one rebuild.
const DefaultRebuildDelay = 50 * time.Millisecond

// While the kube-apiserver cannot be reached the Source asks it whether it answers (GET /readyz)
// every probeEvery at first, then every probeMaxEvery, each attempt bounded by probeTimeout.
const (
	probeEvery    = 250 * time.Millisecond
	probeMaxEvery = 500 * time.Millisecond
	probeTimeout  = 2 * time.Second
)

// SourceConfig configures a Source.
type SourceConfig struct {
	// RESTConfig reaches the kube-apiserver (read-only access to userapps and usermachines suffices).
	RESTConfig *rest.Config
	// Namespace limits the watch to one namespace; empty watches all.
	Namespace string
	// Builder receives the objects and builds the indexes (required).
	Builder *Builder
	// FreshBuilder makes an empty Builder configured like Builder. The Source calls it when the
	// kube-apiserver answers again after being unreachable: it then starts a fresh cache with a
	// fresh Builder (see Run). Nil turns that off, leaving the informers to retry on their own
	// schedule, which after a long outage is up to a minute apart.
	FreshBuilder func() (*Builder, error)
	// Table receives each new index (required).
	Table *Table
	// Metrics records index size, conflicts and rebuild time (required).
	Metrics *Metrics
	// Logger receives index problems (host conflicts, unusable statuses) once each, and the
	// kube-apiserver going away and coming back.
	Logger logr.Logger
	// RebuildDelay is the quiet time before a rebuild (DefaultRebuildDelay when zero).
	RebuildDelay time.Duration
}

// Source keeps the route index in step with the cluster: an informer cache of UserApps and
// UserMachines (stripped to the fields routing reads), event handlers that feed a Builder, and a
// loop that rebuilds and publishes the index after changes. When the kube-apiserver goes away the
// last index keeps being served, and the Source reconnects as soon as it answers again (see Run).
type Source struct {
	cfg SourceConfig
	// feed is the first feed: the cache NewSource made or, in the benchmarks, client-go informers
	// registered through watchApps and watchMachines. A reconnect replaces it (see current).
	*feed
	ready       atomic.Bool
	initialized chan struct{}

	// mu orders publishing and the switch to a new feed: once current is a new feed, the old
	// one's Builder is never published again.
	mu      sync.Mutex
	current *feed

	// Reconnecting; all nil when FreshBuilder is (and in the benchmarks). fresh makes a feed with a
	// fresh cache and Builder; probe asks the apiserver whether it answers; trouble is rung when a
	// request of a cache fails to reach the apiserver or a reflector reports an error.
	fresh   func(context.Context) (*feed, error)
	probe   func(context.Context) error
	trouble chan struct{}
}

// feed is one informer cache: the Builder its handlers fill and the channel they ring. Run starts
// it (stop, done and loaded), and publishes from it once loaded.
type feed struct {
	cache   cache.Cache // nil when the caller runs the informers (benchmarks)
	builder *Builder
	synced  []toolscache.InformerSynced
	notify  chan struct{}

	stop   context.CancelFunc // stops the cache
	done   <-chan error       // the cache's Start returned
	loaded chan struct{}      // closed once every handler has seen the initial list
}

// NewSource sets up the cache and its handlers. Nothing talks to the apiserver before Run: the
// REST mapping of the two kinds is static, so a router can start while the apiserver is away.
func NewSource(ctx context.Context, cfg SourceConfig) (*Source, error) {
	if cfg.RESTConfig == nil || cfg.Builder == nil || cfg.Table == nil || cfg.Metrics == nil {
		return nil, errors.New("router: SourceConfig needs RESTConfig, Builder, Table and Metrics")
	}
	if cfg.RebuildDelay <= 0 {
		cfg.RebuildDelay = DefaultRebuildDelay
	}
	scheme := runtime.NewScheme()
	if err := flyv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	s := newSource(cfg)
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{flyv1alpha1.GroupVersion})
	mapper.Add(flyv1alpha1.GroupVersion.WithKind("UserApp"), meta.RESTScopeNamespace)
	mapper.Add(flyv1alpha1.GroupVersion.WithKind("UserMachine"), meta.RESTScopeNamespace)
	// The caches' requests and their reflectors' errors tell the Source that the apiserver may be
	// away (see watchdog).
	cacheCfg := rest.CopyConfig(cfg.RESTConfig)
	cacheCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &troubleReporter{next: rt, report: s.suspect} })
	opts := cache.Options{
		Scheme:                      scheme,
		Mapper:                      mapper,
		ReaderFailOnMissingInformer: true,
		ByObject: map[client.Object]cache.ByObject{
			&flyv1alpha1.UserApp{}:     {Transform: stripUserApp},
			&flyv1alpha1.UserMachine{}: {Transform: stripUserMachine},
		},
		DefaultWatchErrorHandler: func(ctx context.Context, r *toolscache.Reflector, err error) {
			toolscache.DefaultWatchErrorHandler(ctx, r, err)
			s.suspect()
		},
	}
	if cfg.Namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{cfg.Namespace: {}}
	}
	cacheFeed := func(ctx context.Context, b *Builder) (*feed, error) {
		c, err := cache.New(cacheCfg, opts)
		if err != nil {
			return nil, fmt.Errorf("router: creating the cache: %w", err)
		}
		f := newFeed(b)
		f.cache = c
		for _, kind := range []struct {
			obj     client.Object
			display string
			watch   func(eventInformer) error
		}{{&flyv1alpha1.UserApp{}, "UserApp", f.watchApps}, {&flyv1alpha1.UserMachine{}, "UserMachine", f.watchMachines}} {
			inf, err := c.GetInformer(ctx, kind.obj)
			if err != nil {
				return nil, fmt.Errorf("router: informer for %s: %w", kind.display, err)
			}
			if err := kind.watch(inf); err != nil {
				return nil, err
			}
		}
		return f, nil
	}
	first, err := cacheFeed(ctx, cfg.Builder)
	if err != nil {
		return nil, err
	}
	s.feed, s.current = first, first
	if cfg.FreshBuilder != nil {
		if s.probe, err = readyzProbe(cfg.RESTConfig); err != nil {
			return nil, err
		}
		s.fresh = func(ctx context.Context) (*feed, error) {
			b, err := cfg.FreshBuilder()
			if err != nil {
				return nil, err
			}
			return cacheFeed(ctx, b)
		}
		s.trouble = make(chan struct{}, 1)
	}
	return s, nil
}

// newSource is a Source without a cache: its handlers can be registered with any informer (the
// benchmarks feed client-go informers in-process) and follow run after their sync.
func newSource(cfg SourceConfig) *Source {
	f := newFeed(cfg.Builder)
	return &Source{cfg: cfg, feed: f, current: f, initialized: make(chan struct{})}
}

func newFeed(b *Builder) *feed { return &feed{builder: b, notify: make(chan struct{}, 1)} }

// eventInformer is the part of an informer the Source registers with. controller-runtime's
// cache.Informer and client-go's SharedIndexInformer both have it.
type eventInformer interface {
	AddEventHandler(handler toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error)
}

// watchApps feeds the UserApps of inf to the feed's Builder.
func (f *feed) watchApps(inf eventInformer) error {
	b := f.builder
	return f.watch(inf, "UserApp", func(o any) {
		if app, ok := o.(*flyv1alpha1.UserApp); ok {
			b.UpsertApp(app)
		}
	}, b.DeleteApp)
}

// watchMachines feeds the UserMachines of inf to the feed's Builder.
func (f *feed) watchMachines(inf eventInformer) error {
	b := f.builder
	return f.watch(inf, "UserMachine", func(o any) {
		if m, ok := o.(*flyv1alpha1.UserMachine); ok {
			b.UpsertMachine(m)
		}
	}, b.DeleteMachine)
}

// watch registers the handler that records every event of inf and asks for a rebuild.
func (f *feed) watch(inf eventInformer, kind string, upsert func(any), forget func(types.NamespacedName)) error {
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { upsert(o); f.changed() },
		UpdateFunc: func(_, o any) { upsert(o); f.changed() },
		DeleteFunc: func(o any) {
			if key, ok := objectKey(o); ok {
				forget(key)
				f.changed()
			}
		},
	})
	if err != nil {
		return fmt.Errorf("router: handler for %s: %w", kind, err)
	}
	f.synced = append(f.synced, reg.HasSynced)
	return nil
}

func (f *feed) changed() {
	select {
	case f.notify <- struct{}{}:
	default: // a rebuild is already due; it will see this change too
	}
}

// Run starts the cache, publishes the first index once every object has been seen, then rebuilds
// after changes until ctx ends. It returns nil when ctx ends, or the cache's error.
//
// Reconnecting. client-go's reflectors retry a failed list or watch after a backoff that doubles
// from 0.8 s to 30 s, plus up to as much again as jitter, and is forgotten only after two quiet
// minutes; neither controller-runtime's cache nor client-go's shared informers let it be set. So
// after a long outage the cache would learn of a change up to a minute after the apiserver came
// back. Instead, when a request of the cache fails or a reflector reports an error, the watchdog
// probes the apiserver (GET /readyz, every 250 to 500 ms) until it answers. If it failed first, the
// Source starts a fresh cache, whose informers list and watch at once, with a fresh Builder: the
// new index is built from that cache's full lists alone, so an object deleted while the old cache
// could not see it is gone from it. Once the fresh cache has synced, one step makes it the current
// feed and publishes its index (under mu, so the old feed never publishes after that), then the old
// cache is stopped. Until then, and throughout the outage, the last index keeps being served and
// Ready stays true. For the length of the switch both caches and Builders are held in memory.
func (s *Source) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	var back chan struct{}
	if s.fresh != nil {
		back = make(chan struct{}, 1)
		wg.Go(func() { s.watchdog(ctx, back) })
	}
	s.start(ctx, &wg, s.feed)
	return s.serve(ctx, &wg, s.feed, back)
}

// follow publishes the first index (the informers have synced), then rebuilds after changes until
// ctx ends (nil) or stopped yields, which is the informers' end (an error).
func (s *Source) follow(ctx context.Context, stopped <-chan error) error {
	first := s.feed
	first.done, first.loaded = stopped, make(chan struct{})
	close(first.loaded)
	return s.serve(ctx, nil, first, nil)
}

// start runs f's cache and closes f.loaded once every handler has seen the initial lists.
func (s *Source) start(ctx context.Context, wg *sync.WaitGroup, f *feed) {
	ctx, stop := context.WithCancel(ctx)
	done, loaded := make(chan error, 1), make(chan struct{})
	f.stop, f.done, f.loaded = stop, done, loaded
	wg.Go(func() { done <- f.cache.Start(ctx) })
	wg.Go(func() {
		// toolscache.WaitForCacheSync polls every 100 ms; a reconnect is meant to take less.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if allSynced(f.synced) {
				close(loaded)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
}

func allSynced(synced []toolscache.InformerSynced) bool {
	for _, s := range synced {
		if !s() {
			return false
		}
	}
	return true
}

// serve is the one goroutine that publishes. It publishes first's index once first has loaded,
// then rebuilds after the current feed's changes. When back rings (the apiserver answers again
// after an outage) it starts a fresh feed (replacing one still loading) and switches to it once it
// has loaded. It returns nil when ctx ends, or an error when a cache stops by itself.
func (s *Source) serve(ctx context.Context, wg *sync.WaitGroup, first *feed, back <-chan struct{}) error {
	var cur *feed // the feed published from; nil until first has loaded
	next := first // the feed loading; nil when none is
	var reconnected time.Time

	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	// keySwitch fires when a key rotation's overlap ends: the index then signs with the new keys.
	// Each publish arms it.
	keySwitch := time.NewTimer(time.Hour)
	keySwitch.Stop()
	defer keySwitch.Stop()
	armKeySwitch := func(ix *Index) {
		keySwitch.Stop()
		if at := ix.KeySwitch(); !at.IsZero() {
			keySwitch.Reset(max(time.Until(at), 0))
		}
	}
	var lastTook time.Duration
	for {
		var changed, loaded <-chan struct{}
		var curDone, nextDone <-chan error
		if cur != nil {
			changed, curDone = cur.notify, cur.done
		}
		if next != nil {
			loaded, nextDone = next.loaded, next.done
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-curDone:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("router: cache stopped: %w", err)
		case err := <-nextDone:
			if ctx.Err() != nil {
				return nil
			}
			if cur == nil {
				return fmt.Errorf("router: cache stopped before its first sync: %w", err)
			}
			s.cfg.Logger.Error(err, "Fresh cache stopped before its first sync; keeping the last route index")
			next = nil
		case <-back:
			f, err := s.fresh(ctx)
			if err != nil {
				s.cfg.Logger.Error(err, "Starting a fresh cache; keeping the last route index")
				continue
			}
			if next != nil {
				next.stop()
			}
			next = f
			s.start(ctx, wg, next)
			s.cfg.Metrics.sourceRestarts.Inc()
			reconnected = time.Now()
		case <-loaded:
			ix := s.switchTo(next)
			if cur != nil {
				cur.stop()
			}
			cur, next = next, nil
			armKeySwitch(ix)
			if s.ready.CompareAndSwap(false, true) {
				close(s.initialized)
				s.cfg.Logger.Info("Route index ready", "routes", ix.Routes(), "conflicts", ix.Conflicts())
			} else {
				s.cfg.Logger.Info("Route index rebuilt from a fresh cache", "routes", ix.Routes(), "conflicts", ix.Conflicts(),
					"took", time.Since(reconnected))
			}
		case <-keySwitch.C:
			armKeySwitch(s.Rebuild())
		case <-changed:
			// Wait at least as long as the last rebuild took: under constant churn a big index is
			// then rebuilt at most half the time, and every change still lands within two rebuilds.
			timer.Reset(max(s.cfg.RebuildDelay, lastTook))
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case <-timer.C:
			}
			start := time.Now()
			armKeySwitch(s.Rebuild())
			lastTook = time.Since(start)
		}
	}
}

// switchTo makes f the current feed and publishes its index. From then on only f's Builder is
// published.
func (s *Source) switchTo(f *feed) *Index {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = f
	return publish(f.builder, s.cfg.Table, s.cfg.Metrics, s.cfg.Logger)
}

// suspect tells the watchdog that the apiserver may be away. It never blocks.
func (s *Source) suspect() {
	select {
	case s.trouble <- struct{}{}:
	default:
	}
}

// watchdog waits for trouble, then probes the apiserver until it answers. If it answered only after
// failing, the informers have been backing off and it rings back so that serve starts a fresh
// cache. One that answers at once (an expired watch, a connection reset while the apiserver stayed
// up) needs nothing: the informers retry within a second or two.
func (s *Source) watchdog(ctx context.Context, back chan<- struct{}) {
	log := s.cfg.Logger
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.trouble:
		}
		var since time.Time
		for every := probeEvery; ; every = min(2*every, probeMaxEvery) {
			err := s.probe(ctx)
			if ctx.Err() != nil {
				return
			}
			if answered(err) {
				break
			}
			if since.IsZero() {
				since = time.Now()
				log.Info("Kubernetes API unreachable; serving the last route index until it answers", "error", err.Error())
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
		if !since.IsZero() {
			log.Info("Kubernetes API answers again; starting a fresh cache", "unreachable", time.Since(since).Round(time.Millisecond))
			select {
			case back <- struct{}{}:
			default: // a fresh cache is due already
			}
		}
	}
}

// readyzProbe asks GET /readyz through its own client from cfg (not the caches', whose failures it
// follows), with no retries.
func readyzProbe(cfg *rest.Config) (func(context.Context) error, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(runtime.NewScheme()).WithoutConversion()
	c, err := rest.UnversionedRESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("router: client for the kube-apiserver probe: %w", err)
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		return c.Get().AbsPath("/readyz").MaxRetries(0).Do(ctx).Error()
	}, nil
}

// answered is whether a probe reached a serving apiserver: 200, or a refusal it made itself (401,
// 403, 404, 429: its answers, not an outage). 5xx (not ready) and transport errors are not.
func answered(err error) bool {
	if err == nil {
		return true
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	code := status.Status().Code
	return code > 0 && code < http.StatusInternalServerError
}

// troubleReporter is the caches' transport: it reports a request that got no answer (refused,
// reset, timed out), unless the request was cancelled.
type troubleReporter struct {
	next   http.RoundTripper
	report func()
}

func (t *troubleReporter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil && req.Context().Err() == nil {
		t.report()
	}
	return resp, err
}

// WrappedRoundTripper lets client-go see the transport underneath.
func (t *troubleReporter) WrappedRoundTripper() http.RoundTripper { return t.next }

// Ready reports whether the first index after the initial sync has been published. It stays true
// when the apiserver goes away: the router then serves what it knew.
func (s *Source) Ready() bool { return s.ready.Load() }

// Initialized is closed once Ready becomes true.
func (s *Source) Initialized() <-chan struct{} { return s.initialized }

// Rebuild builds an index from what the current feed's Builder holds (SourceConfig.Builder until a
// reconnect), publishes it and logs new problems.
func (s *Source) Rebuild() *Index {
	s.mu.Lock()
	defer s.mu.Unlock()
	return publish(s.current.builder, s.cfg.Table, s.cfg.Metrics, s.cfg.Logger)
}

func publish(b *Builder, t *Table, m *Metrics, log logr.Logger) *Index {
	start := time.Now()
	ix, problems := b.Build()
	t.Store(ix)
	took := time.Since(start)
	m.observeIndex(ix, took)
	for _, p := range problems {
		log.Info("Route index problem", "kind", p.Kind, "object", p.Object, "host", p.Host, "detail", p.Message)
	}
	log.V(1).Info("Route index published", "routes", ix.Routes(), "conflicts", ix.Conflicts(), "took", took)
	return ix
}

// objectKey is the namespace/name of a deleted object, tombstones included.
func objectKey(o any) (types.NamespacedName, bool) {
	if tomb, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		ns, name, err := toolscache.SplitMetaNamespaceKey(tomb.Key)
		return types.NamespacedName{Namespace: ns, Name: name}, err == nil
	}
	obj, ok := o.(metav1.Object)
	if !ok {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}, true
}

// machineCreatedTrue is the one condition the router reads, shared by every cached UserMachine
// whose MachineCreated is True (cached objects are never modified, so sharing is safe).
var machineCreatedTrue = []metav1.Condition{{
	Type:   flyv1alpha1.MachineCreatedCondition,
	Status: metav1.ConditionTrue,
}}

// stripUserApp is the cache transform of UserApps: it keeps only what routing reads (name,
// namespace, UID, creation and deletion time, spec.routing, status.appName) so a cached UserApp
// costs a few hundred bytes whatever the size of its spec and managedFields.
func stripUserApp(o any) (any, error) {
	app, ok := o.(*flyv1alpha1.UserApp)
	if !ok {
		return o, nil
	}
	return &flyv1alpha1.UserApp{
		ObjectMeta: strippedMeta(&app.ObjectMeta),
		Spec:       flyv1alpha1.UserAppSpec{Routing: app.Spec.Routing},
		Status: flyv1alpha1.UserAppStatus{AppName: app.Status.AppName,
			KeyGeneration: app.Status.KeyGeneration, PreviousKeysValidUntil: app.Status.PreviousKeysValidUntil},
	}, nil
}

// stripUserMachine is the cache transform of UserMachines: name, namespace, UID, creation and
// deletion time, spec.appRef, spec.routing, status.appName, status.machineID and whether
// MachineCreated is True.
func stripUserMachine(o any) (any, error) {
	m, ok := o.(*flyv1alpha1.UserMachine)
	if !ok {
		return o, nil
	}
	out := &flyv1alpha1.UserMachine{
		ObjectMeta: strippedMeta(&m.ObjectMeta),
		Spec:       flyv1alpha1.UserMachineSpec{AppRef: m.Spec.AppRef, Routing: m.Spec.Routing},
		Status:     flyv1alpha1.UserMachineStatus{AppName: m.Status.AppName, MachineID: m.Status.MachineID},
	}
	if meta.IsStatusConditionTrue(m.Status.Conditions, flyv1alpha1.MachineCreatedCondition) {
		out.Status.Conditions = machineCreatedTrue
	}
	return out, nil
}

// strippedMeta keeps the metadata the cache and the router use: name and namespace (the cache's
// key), resourceVersion, creation time and UID (which order host claims, see hostclaim.Decide; a
// UserApp's keys are bound to its UID) and deletion time (an object being deleted releases its
// hosts).
func strippedMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp,
	}
}
