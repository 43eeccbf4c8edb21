package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// object is a hangar kind as the shared reconcile loop sees it: a Kubernetes object whose status
// holds conditions and an observed generation (the accessors are in api/v1alpha1/conditions.go).
type object interface {
	client.Object
	GetConditions() []metav1.Condition
	SetConditions([]metav1.Condition)
	GetObservedGeneration() int64
	SetObservedGeneration(int64)
}

// phase is one step of a pass over an object of scope S. It owns one condition and sets it True
// when its work is done; when it returns an error the pass stops there, and the loop marks the
// condition False with the reason and message of the error's class (see outcomeOf).
type phase[S any] struct {
	condition string
	run       func(context.Context, S) error
}

// lifecycle is everything a kind declares; the loop does the rest (see docs/architecture.md, "Adding
// a kind").
type lifecycle[T object, S any] struct {
	// kind names the kind in metrics ("UserApp").
	kind string
	// scope is what one pass over obj works on.
	scope func(obj T) S
	// phases run in order while the object is not being deleted; Ready summarises their conditions.
	phases []phase[S]
	// finalize removes the object's Fly resources (or leaves them, per its deletion policy) once the
	// object is being deleted. When it returns nil the loop releases the finalizer; its errors are
	// classified like a phase's and shown on Ready.
	finalize func(context.Context, S) error
	// nextPass is how long after a pass whose phases all succeeded the object is looked at again.
	nextPass func(S) time.Duration
	// readyMessage says what runs, for the message of a True Ready condition.
	readyMessage func(S) string
}

// base is what every reconciler shares: how it reads and writes Kubernetes objects, how it tells
// people what happened, and the manager-wide options.
type base struct {
	// client reads hangar's kinds from the cache and Secrets from the API (see ClientOptions), so
	// Secret data is never cached. It makes every write.
	client client.Client
	// reader reads from the apiserver directly: the object a pass acts on, and the UserApp a
	// machine depends on, are read through it whenever the cached copy may lag behind the status
	// the previous pass wrote (see knownVersions and base.get).
	reader client.Reader
	// known lets a pass take the cached copy of an object instead of reading the apiserver when the
	// cache holds the newest version the manager has seen (nil: always read the apiserver).
	known   *knownVersions
	events  eventer
	options Options
	// unauthorized remembers the objects waiting for new Fly credentials (nil: nothing reports
	// credential changes).
	unauthorized *unauthorizedObjects
}

// loop is the reconciler of one kind: get → finalizer → one deferred status write → finalize, or
// the kind's phases followed by the Ready summary, Events, metrics and observedGeneration. O is the
// API struct and T its pointer, so the loop can make empty objects to read into.
type loop[O any, T interface {
	*O
	object
}, S any] struct {
	base
	lifecycle[T, S]
}

// setupKind registers the loop of one kind with mgr. Passes run on spec and annotation changes of
// the kind's objects (not on the loop's own status writes) and on whatever watch adds; every kind
// shares the failure backoff and the concurrency limit.
func setupKind[O any, T interface {
	*O
	object
}, S any](mgr ctrl.Manager, b base, lc lifecycle[T, S], watch func(*builder.Builder) *builder.Builder) error {
	return watch(b.unauthorized.watch(ctrl.NewControllerManagedBy(mgr).
		For(T(new(O)), builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: b.options.MaxConcurrentReconciles,
			RateLimiter:             failureBackoff(),
		}).
		Named(controllerName(lc.kind)))).
		Complete(&loop[O, T, S]{base: b, lifecycle: lc})
}

// Reconcile runs one pass over the object req names.
func (l *loop[O, T, S]) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := T(new(O))
	if err := l.get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			l.unauthorized.note(req.NamespacedName, false)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !l.options.inShard(obj) {
		// Another shard's object, enqueued by a watch that is not sharded (the UserApp's owned
		// Secrets): its own manager reconciles it.
		return ctrl.Result{}, nil
	}
	return l.pass(ctx, obj)
}

// pass runs one pass over obj as read. Every Kubernetes write goes through l.client, so a plan
// (plan.go) runs the same pass over an object from a file with a client that writes nothing.
func (l *loop[O, T, S]) pass(ctx context.Context, obj T) (result ctrl.Result, retErr error) {
	deleting := !obj.GetDeletionTimestamp().IsZero()
	if !deleting && controllerutil.AddFinalizer(obj, Finalizer) {
		// Persisted before any Fly call, so nothing created on Fly can outlive the object unseen.
		if err := l.client.Update(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
		l.known.record(obj)
	}

	ctx, throttled := WithThrottleNote(ctx)
	switch {
	case paused(obj):
		ctx = withPaused(ctx)
	case observeOnly(managementPolicyOf(obj)):
		ctx = withObserveOnly(ctx)
	}
	before := obj.DeepCopyObject().(T)
	ctx = context.WithValue(ctx, checkpointKey{}, checkpoint(func(ctx context.Context) error {
		if err := l.writeStatus(ctx, before, obj); err != nil {
			return err
		}
		before = obj.DeepCopyObject().(T)
		return nil
	}))
	defer func() {
		retErr = kerrors.NewAggregate([]error{retErr, l.writeStatus(ctx, before, obj)})
	}()
	markPaused(obj)
	s := l.scope(obj)
	if deleting {
		result, retErr = l.reconcileDelete(ctx, obj, s)
	} else {
		result, retErr = l.reconcileNormal(ctx, obj, s, throttled)
	}
	// Every pass, failed or not, says which generation its conditions describe: kstatus readers
	// (Flux, kpt, Argo CD's health checks) trust Reconciling and Stalled only for that generation.
	obj.SetObservedGeneration(obj.GetGeneration())
	l.unauthorized.note(client.ObjectKeyFromObject(obj), readyReason(obj.GetConditions()) == flyv1alpha1.UnauthorizedReason)
	return result, retErr
}

// reconcileNormal runs the phases in order until one fails, then summarises Ready from their
// conditions, announces what changed and says when to come back.
func (l *loop[O, T, S]) reconcileNormal(ctx context.Context, obj T, s S, throttled func() bool) (ctrl.Result, error) {
	wasReady := meta.FindStatusCondition(obj.GetConditions(), flyv1alpha1.ReadyCondition)
	oldReason := readyReason(obj.GetConditions())

	oc := outcome{label: "ready"}
	for _, p := range l.phases {
		if err := p.run(ctx, s); err != nil {
			oc = outcomeOf(err, l.options)
			setConditions(obj, func(conds *[]metav1.Condition, gen int64) {
				markFalse(conds, gen, p.condition, oc.reason, oc.message)
			})
			break
		}
	}
	setConditions(obj, func(conds *[]metav1.Condition, gen int64) {
		summarizeReady(conds, gen, l.readyMessage(s), l.conditionTypes()...)
		summarizeProgress(conds, gen)
	})
	newReason := readyReason(obj.GetConditions())
	l.events.failureEvent(obj, oldReason, newReason, oc.message)
	l.events.recoveryEvent(obj, oldReason, newReason)
	if throttled() && newReason != flyv1alpha1.ThrottledReason {
		// The pass got through, but Fly's rate limits slowed it: say so once, without marking the
		// object as failing.
		l.events.warning(obj, EventThrottled, "Reconcile", "Fly rate limits slowed this change (the client waited or Fly answered 429)")
		oc.label = "throttled"
	}
	reconcileOutcomes.WithLabelValues(l.kind, oc.label).Inc()
	if oc.failed() {
		return oc.result, oc.err
	}

	if wasReady == nil || wasReady.Status != metav1.ConditionTrue {
		// Not Ready since its creation, or since Ready last turned False.
		since := obj.GetCreationTimestamp().Time
		if wasReady != nil {
			since = wasReady.LastTransitionTime.Time
		}
		timeToReady.WithLabelValues(l.kind).Observe(time.Since(since).Seconds())
	}
	return ctrl.Result{RequeueAfter: max(l.nextPass(s), time.Millisecond)}, nil
}

// reconcileDelete runs the kind's finalize step and, once it succeeds, releases the finalizer.
func (l *loop[O, T, S]) reconcileDelete(ctx context.Context, obj T, s S) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return ctrl.Result{}, nil
	}
	if err := l.finalize(ctx, s); err != nil {
		oc := outcomeOf(err, l.options)
		setConditions(obj, func(conds *[]metav1.Condition, gen int64) {
			markFalse(conds, gen, flyv1alpha1.ReadyCondition, oc.reason, "deleting: "+oc.message)
			summarizeProgress(conds, gen)
		})
		return oc.result, oc.err
	}
	controllerutil.RemoveFinalizer(obj, Finalizer)
	if err := l.client.Update(ctx, obj); err != nil {
		return ctrl.Result{}, err
	}
	l.known.record(obj)
	return ctrl.Result{}, nil
}

// conditionTypes are the conditions of the kind's phases, in order: the parts Ready summarises.
func (l *loop[O, T, S]) conditionTypes() []string {
	types := make([]string, len(l.phases))
	for i, p := range l.phases {
		types[i] = p.condition
	}
	return types
}

// setConditions edits obj's conditions in place through fn, for obj's current generation.
func setConditions(obj object, fn func(conds *[]metav1.Condition, generation int64)) {
	conds := obj.GetConditions()
	fn(&conds, obj.GetGeneration())
	obj.SetConditions(conds)
}

// requestsByIndex maps obj to the objects of list's kind in its namespace whose field index holds
// obj's name: the watch mappers of every kind use it.
func requestsByIndex(ctx context.Context, c client.Reader, list client.ObjectList, index string, obj client.Object) []ctrl.Request {
	if err := c.List(ctx, list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{index: obj.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing objects by index", "index", index, "name", obj.GetName())
		return nil
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Reading a list", "index", index)
		return nil
	}
	reqs := make([]ctrl.Request, 0, len(items))
	for _, item := range items {
		if o, ok := item.(client.Object); ok {
			reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(o)})
		}
	}
	return reqs
}

// checkpoint writes the status of the object a pass works on as it stands.
type checkpoint func(context.Context) error

type checkpointKey struct{}

// persistStatus writes the pass's status now, ahead of the pass's one write at its end. A phase
// calls it only to record an intent before a Fly call whose answer can be lost (a create): if the
// process dies during the call, the next pass still knows the call may have been made.
func persistStatus(ctx context.Context) error {
	save, ok := ctx.Value(checkpointKey{}).(checkpoint)
	if !ok {
		return errors.New("persistStatus called outside a reconcile pass")
	}
	return save(ctx)
}

// writeStatus patches obj's status from before: once per pass, only when the status changed, and
// without failing for an object deleted in this pass.
func (b base) writeStatus(ctx context.Context, before, obj client.Object) error {
	data, err := client.MergeFrom(before).Data(obj)
	if err != nil {
		return fmt.Errorf("computing the status patch: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("reading the status patch: %w", err)
	}
	if _, changed := fields["status"]; !changed {
		return nil
	}
	err = b.client.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, data))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		b.known.record(obj)
	}
	return err
}
