package router

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/activity"
)

// Idle timeouts (docs/idle-timeouts.md) count from the last request the router replayed to a
// machine. Each replica remembers, in memory, when it last replayed to each machine (an atomic
// store on the request path, into a slot the index build gave the target), and publishes that to
// one Lease per UserApp in its own namespace (internal/activity), coalesced with the other
// replicas: a Lease is written only when this replica knows of a request it does not show, and
// only once Interval has passed since anyone last wrote it. Replicas that see the same machines'
// requests (the Fly Proxy spreads a user's requests over them) thus write each app's Lease once per
// Interval between them. A replica whose requests the others do not see (the Lease misses one by a
// whole Interval, or misses the machine) writes at its next check all the same, so no request
// waits more than about Interval + Interval/activityChecks to be published; the price is up to one
// write per such replica per Interval. Two replicas racing for a write both send the
// resourceVersion they read; the loser's conflict is dropped (the winner published).

// DefaultActivityInterval is how often, at most, an app's activity Lease is written.
const DefaultActivityInterval = 30 * time.Second

// activityChecks is how many times per Interval a replica looks for activity to publish: a request
// reaches its Lease at most Interval + Interval/activityChecks after the previous write.
const activityChecks = 4

// activityWriters bounds the Lease writes a replica has in flight.
const activityWriters = 16

// ActivityConfig configures the publishing of activity.
type ActivityConfig struct {
	// Interval bounds the writes to each app's Lease: at most one per Interval across every
	// replica. Zero turns activity off: nothing is recorded or written (idle timeouts then count
	// from a machine's start alone).
	Interval time.Duration
	// Namespace holds the activity Leases (activity.DefaultNamespace when empty); the manager
	// reads them there.
	Namespace string
	// Identity names this replica as the Leases' holderIdentity (the host name when empty).
	Identity string
	// Now tells the time (time.Now when nil).
	Now func() time.Time
}

// activitySlot is when one machine (or one app, for replays with no fixed machine) last got a
// replay from this replica, in Unix seconds. Targets hold a pointer to it, so recording costs one
// load (and a compare-and-swap once a second).
type activitySlot struct{ last atomic.Int64 }

// touch records a replay at now. A nil slot (activity off) records nothing.
func (s *activitySlot) touch(now time.Time) {
	if s == nil {
		return
	}
	sec := now.Unix()
	for {
		old := s.last.Load()
		if old >= sec || s.last.CompareAndSwap(old, sec) {
			return
		}
	}
}

// appActivity is one UserApp's slots.
type appActivity struct {
	key types.NamespacedName
	uid types.UID
	// slots by machine ID, and activity.AppWide; guarded by the recorder's mu.
	slots map[string]*activitySlot
}

// activityRecorder holds the slots of every routed UserApp. The Builder asks it for slots when it
// builds a group; slots outlive index builds, so a rebuild keeps what was recorded.
type activityRecorder struct {
	mu   sync.Mutex
	apps map[types.NamespacedName]*appActivity
}

func newActivityRecorder() *activityRecorder {
	return &activityRecorder{apps: map[types.NamespacedName]*appActivity{}}
}

// app returns the UserApp's activity, fresh when the UserApp is new or was created again (another
// UID). A nil recorder (activity off) returns nil.
func (r *activityRecorder) app(app *flyv1alpha1.UserApp) *appActivity {
	if r == nil {
		return nil
	}
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.apps[key]
	if a == nil || a.uid != app.UID {
		a = &appActivity{key: key, uid: app.UID, slots: map[string]*activitySlot{}}
		r.apps[key] = a
	}
	return a
}

// forget drops a UserApp that is no longer cached; the manager deletes its Lease.
func (r *activityRecorder) forget(key types.NamespacedName) {
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.apps, key)
	r.mu.Unlock()
}

// slot is a's slot for machine (activity.AppWide for the app's own replays with no fixed machine).
func (r *activityRecorder) slot(a *appActivity, machine string) *activitySlot {
	if r == nil || a == nil {
		return nil
	}
	if machine == "" {
		machine = activity.AppWide
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := a.slots[machine]
	if s == nil {
		s = &activitySlot{}
		a.slots[machine] = s
	}
	return s
}

// appSnapshot is what a replica knows of one UserApp's activity at a check.
type appSnapshot struct {
	key   types.NamespacedName
	uid   types.UID
	times map[string]int64 // Unix seconds by slot key; only slots with a request
}

// snapshot copies the activity of every app that had a request.
func (r *activityRecorder) snapshot() []appSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]appSnapshot, 0, len(r.apps))
	for _, a := range r.apps {
		var times map[string]int64
		for k, s := range a.slots {
			if sec := s.last.Load(); sec > 0 {
				if times == nil {
					times = make(map[string]int64, len(a.slots))
				}
				times[k] = sec
			}
		}
		if times != nil {
			out = append(out, appSnapshot{key: a.key, uid: a.uid, times: times})
		}
	}
	return out
}

// publishResult is what one check did with one app's Lease, as the "result" metric label.
type publishResult int

const (
	publishUnchanged publishResult = iota // the Lease already shows every request this replica knows
	publishWaiting                        // written less than Interval ago: the next check publishes
	publishCreated
	publishUpdated
	publishConflict // another replica wrote first
	publishFailed
	publishResultCount
)

var publishResultNames = [publishResultCount]string{
	publishUnchanged: "unchanged", publishWaiting: "waiting", publishCreated: "created",
	publishUpdated: "updated", publishConflict: "conflict", publishFailed: "failed",
}

// activityPublisher writes one replica's activity to the Leases.
type activityPublisher struct {
	cfg      ActivityConfig
	rec      *activityRecorder
	leases   kubernetes.Interface
	factory  informers.SharedInformerFactory
	informer toolscache.SharedIndexInformer
	lister   coordinationlisters.LeaseNamespaceLister
	log      logr.Logger
	// results counts the outcomes of every check of every app (written and not).
	results [publishResultCount]prometheus.Counter
}

// newActivityPublisher prepares the Lease informer and client; nothing talks to the apiserver
// before run. reg may be nil.
func newActivityPublisher(restCfg *rest.Config, cfg ActivityConfig, rec *activityRecorder, reg prometheus.Registerer, log logr.Logger) (*activityPublisher, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = activity.DefaultNamespace
	}
	if cfg.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("router: naming this replica for its activity Leases: %w", err)
		}
		cfg.Identity = host
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("router: client for activity Leases: %w", err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = activity.Selector().String() }))
	leases := factory.Coordination().V1().Leases()
	p := &activityPublisher{
		cfg: cfg, rec: rec, leases: cs, factory: factory, informer: leases.Informer(),
		lister: leases.Lister().Leases(cfg.Namespace), log: log,
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hangar_router_activity_checks_total",
		Help: "Checks of a UserApp's activity Lease by this replica, by result: created and updated are writes; conflict means another replica wrote first.",
	}, []string{"result"})
	for r := range publishResultCount {
		p.results[r] = vec.WithLabelValues(publishResultNames[r])
	}
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			return nil, fmt.Errorf("router: registering activity metrics: %w", err)
		}
	}
	return p, nil
}

// run watches the Leases and publishes activity activityChecks times per Interval until ctx ends.
// Failures are logged, never fatal: routing goes on without publishing.
func (p *activityPublisher) run(ctx context.Context) {
	p.factory.Start(ctx.Done())
	defer p.factory.Shutdown()
	if !toolscache.WaitForCacheSync(ctx.Done(), p.informer.HasSynced) {
		return
	}
	tick := time.NewTicker(p.cfg.Interval / activityChecks)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			counts := p.publish(ctx)
			if n := counts[publishFailed]; n > 0 {
				p.log.Info("Some activity Leases could not be written; retrying at the next check",
					"failed", n, "namespace", p.cfg.Namespace)
			}
		}
	}
}

// publish checks every app with activity once and returns how many got each result.
func (p *activityPublisher) publish(ctx context.Context) [publishResultCount]int {
	now := p.cfg.Now()
	apps := p.rec.snapshot()
	results := make([]publishResult, len(apps))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(activityWriters, len(apps)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(apps); i = int(next.Add(1) - 1) {
				results[i] = p.publishApp(ctx, apps[i], now)
			}
		})
	}
	wg.Wait()
	var counts [publishResultCount]int
	for _, r := range results {
		counts[r]++
		p.results[r].Inc()
	}
	return counts
}

// publishApp writes one app's Lease if it lacks a request this replica knows of and nobody wrote it
// in the last Interval.
func (p *activityPublisher) publishApp(ctx context.Context, app appSnapshot, now time.Time) publishResult {
	name := activity.LeaseName(app.uid)
	lease, err := p.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return p.create(ctx, app, name, now)
	}
	if err != nil {
		return publishFailed
	}
	known, err := activity.Of(lease)
	if err != nil {
		// Not ours to keep: rewritten from what this replica knows.
		known = activity.Times{}
	}
	// newer: this replica knows a request the Lease does not show. behind: the Lease misses one of
	// them by a whole interval (or misses the machine), so the writes of replicas that saw other
	// requests are not holding it back: it goes out now, whoever wrote last.
	newer, behind := false, false
	for k, sec := range app.times {
		at, ok := known[k]
		if !ok || sec > at.Unix() {
			newer = true
			known[k] = time.Unix(sec, 0)
		}
		if !ok || time.Duration(sec-at.Unix())*time.Second >= p.cfg.Interval {
			behind = true
		}
	}
	switch {
	case !newer:
		return publishUnchanged
	case !behind && lease.Spec.RenewTime != nil && now.Sub(lease.Spec.RenewTime.Time) < p.cfg.Interval:
		return publishWaiting
	}
	updated := lease.DeepCopy()
	p.fill(updated, app, known, now)
	_, err = p.leases.CoordinationV1().Leases(p.cfg.Namespace).Update(ctx, updated, metav1.UpdateOptions{})
	switch {
	case err == nil:
		return publishUpdated
	case apierrors.IsConflict(err):
		return publishConflict
	}
	p.log.V(1).Info("Writing an activity Lease failed", "lease", name, "error", err.Error())
	return publishFailed
}

func (p *activityPublisher) create(ctx context.Context, app appSnapshot, name string, now time.Time) publishResult {
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.cfg.Namespace}}
	times := make(activity.Times, len(app.times))
	for k, sec := range app.times {
		times[k] = time.Unix(sec, 0)
	}
	p.fill(lease, app, times, now)
	_, err := p.leases.CoordinationV1().Leases(p.cfg.Namespace).Create(ctx, lease, metav1.CreateOptions{})
	switch {
	case err == nil:
		return publishCreated
	case apierrors.IsAlreadyExists(err):
		return publishConflict
	}
	p.log.V(1).Info("Creating an activity Lease failed", "lease", name, "error", err.Error())
	return publishFailed
}

// fill sets what a write of this replica puts in a Lease. renewTime is when it was written (the
// gate of the next write); the request times are in the annotation.
func (p *activityPublisher) fill(lease *coordinationv1.Lease, app appSnapshot, times activity.Times, now time.Time) {
	if lease.Labels == nil {
		lease.Labels = map[string]string{}
	}
	for k, v := range activity.Labels(app.key.Namespace, app.key.Name) {
		lease.Labels[k] = v
	}
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[activity.Annotation] = times.Encode()
	identity := p.cfg.Identity
	lease.Spec.HolderIdentity = &identity
	renew := metav1.NewMicroTime(now)
	lease.Spec.RenewTime = &renew
}
