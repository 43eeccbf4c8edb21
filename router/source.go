package router

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// SourceConfig configures a Source.
type SourceConfig struct {
	// RESTConfig reaches the kube-apiserver (read-only access to userapps and usermachines suffices).
	RESTConfig *rest.Config
	// Namespace limits the watch to one namespace; empty watches all.
	Namespace string
	// Builder receives the objects and builds the indexes (required).
	Builder *Builder
	// Table receives each new index (required).
	Table *Table
	// Metrics records index size, conflicts and rebuild time (required).
	Metrics *Metrics
	// Logger receives index problems (host conflicts, unusable statuses) once each.
	Logger logr.Logger
	// RebuildDelay is the quiet time before a rebuild (DefaultRebuildDelay when zero).
	RebuildDelay time.Duration
}

// Source keeps the route index in step with the cluster: an informer cache of UserApps and
// UserMachines (stripped to the fields routing reads), event handlers that feed the Builder, and a
// loop that rebuilds and publishes the index after changes. When the kube-apiserver goes away the
// last index keeps being served; the informers reconnect by themselves.
type Source struct {
	cfg         SourceConfig
	cache       cache.Cache
	synced      []toolscache.InformerSynced
	notify      chan struct{}
	ready       atomic.Bool
	initialized chan struct{}
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
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{flyv1alpha1.GroupVersion})
	mapper.Add(flyv1alpha1.GroupVersion.WithKind("UserApp"), meta.RESTScopeNamespace)
	mapper.Add(flyv1alpha1.GroupVersion.WithKind("UserMachine"), meta.RESTScopeNamespace)
	opts := cache.Options{
		Scheme:                      scheme,
		Mapper:                      mapper,
		ReaderFailOnMissingInformer: true,
		ByObject: map[client.Object]cache.ByObject{
			&flyv1alpha1.UserApp{}:     {Transform: stripUserApp},
			&flyv1alpha1.UserMachine{}: {Transform: stripUserMachine},
		},
	}
	if cfg.Namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{cfg.Namespace: {}}
	}
	c, err := cache.New(cfg.RESTConfig, opts)
	if err != nil {
		return nil, fmt.Errorf("router: creating the cache: %w", err)
	}
	s := newSource(cfg)
	s.cache = c
	for _, kind := range []struct {
		obj     client.Object
		display string
		watch   func(eventInformer) error
	}{{&flyv1alpha1.UserApp{}, "UserApp", s.watchApps}, {&flyv1alpha1.UserMachine{}, "UserMachine", s.watchMachines}} {
		inf, err := c.GetInformer(ctx, kind.obj)
		if err != nil {
			return nil, fmt.Errorf("router: informer for %s: %w", kind.display, err)
		}
		if err := kind.watch(inf); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newSource is a Source without a cache: its handlers can be registered with any informer (the
// benchmarks feed client-go informers in-process) and follow run after their sync.
func newSource(cfg SourceConfig) *Source {
	return &Source{cfg: cfg, notify: make(chan struct{}, 1), initialized: make(chan struct{})}
}

// eventInformer is the part of an informer the Source registers with. controller-runtime's
// cache.Informer and client-go's SharedIndexInformer both have it.
type eventInformer interface {
	AddEventHandler(handler toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error)
}

// watchApps feeds the UserApps of inf to the Builder.
func (s *Source) watchApps(inf eventInformer) error {
	b := s.cfg.Builder
	return s.watch(inf, "UserApp", func(o any) {
		if app, ok := o.(*flyv1alpha1.UserApp); ok {
			b.UpsertApp(app)
		}
	}, b.DeleteApp)
}

// watchMachines feeds the UserMachines of inf to the Builder.
func (s *Source) watchMachines(inf eventInformer) error {
	b := s.cfg.Builder
	return s.watch(inf, "UserMachine", func(o any) {
		if m, ok := o.(*flyv1alpha1.UserMachine); ok {
			b.UpsertMachine(m)
		}
	}, b.DeleteMachine)
}

// watch registers the handler that records every event of inf and asks for a rebuild.
func (s *Source) watch(inf eventInformer, kind string, upsert func(any), forget func(types.NamespacedName)) error {
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { upsert(o); s.changed() },
		UpdateFunc: func(_, o any) { upsert(o); s.changed() },
		DeleteFunc: func(o any) {
			if key, ok := objectKey(o); ok {
				forget(key)
				s.changed()
			}
		},
	})
	if err != nil {
		return fmt.Errorf("router: handler for %s: %w", kind, err)
	}
	s.synced = append(s.synced, reg.HasSynced)
	return nil
}

// Run starts the cache, publishes the first index once every object has been seen, then rebuilds
// after changes until ctx ends. It returns nil when ctx ends, or the cache's error.
func (s *Source) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- s.cache.Start(ctx) }()

	if !toolscache.WaitForCacheSync(ctx.Done(), s.synced...) {
		cancel()
		if err := <-cacheDone; err != nil {
			return fmt.Errorf("router: cache stopped before its first sync: %w", err)
		}
		return nil
	}
	if err := s.follow(ctx, cacheDone); err != nil {
		return err
	}
	return <-cacheDone
}

// follow publishes the first index (the informers have synced), then rebuilds after changes until
// ctx ends (nil) or stopped yields, which is the informers' end (an error).
func (s *Source) follow(ctx context.Context, stopped <-chan error) error {
	ix := s.Rebuild()
	s.ready.Store(true)
	close(s.initialized)
	s.cfg.Logger.Info("Route index ready", "routes", ix.Routes(), "conflicts", ix.Conflicts())

	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	// keySwitch fires when a key rotation's overlap ends: the index then signs with the new keys.
	keySwitch := time.NewTimer(time.Hour)
	defer keySwitch.Stop()
	armKeySwitch := func(ix *Index) {
		keySwitch.Stop()
		if at := ix.KeySwitch(); !at.IsZero() {
			keySwitch.Reset(max(time.Until(at), 0))
		}
	}
	armKeySwitch(ix)
	var lastTook time.Duration
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-stopped:
			return fmt.Errorf("router: cache stopped: %w", err)
		case <-keySwitch.C:
			armKeySwitch(s.Rebuild())
		case <-s.notify:
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

// Ready reports whether the first index after the initial sync has been published. It stays true
// when the apiserver goes away: the router then serves what it knew.
func (s *Source) Ready() bool { return s.ready.Load() }

// Initialized is closed once Ready becomes true.
func (s *Source) Initialized() <-chan struct{} { return s.initialized }

// Rebuild builds an index from what the Builder holds, publishes it and logs new problems.
func (s *Source) Rebuild() *Index {
	return publish(s.cfg.Builder, s.cfg.Table, s.cfg.Metrics, s.cfg.Logger)
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

func (s *Source) changed() {
	select {
	case s.notify <- struct{}{}:
	default: // a rebuild is already due; it will see this change too
	}
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
