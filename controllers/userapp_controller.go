package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// Finalizer holds UserApps and UserMachines until their Fly resources are removed (or orphaned).
const Finalizer = "fly.hangar.dev/finalizer"

// UserAppReconciler makes a Fly app match each UserApp: the app in its org and network, its
// secrets, its Flycast address and the connection Secret the platform's coordinator reads.
type UserAppReconciler struct {
	// Client reads UserApps and UserMachines from the cache and Secrets from the API (see
	// ClientOptions), so Secret data is never cached.
	Client client.Client
	// APIReader reads from the apiserver directly. The object a pass acts on, and the UserApp a
	// machine depends on, are read through it: a cached copy can lag behind the status the previous
	// pass wrote, and acting on it would repeat Fly calls (a second secrets version, a needless
	// machine update).
	APIReader client.Reader
	Fly       FlyAPI
	Keys      keys.Root
	Events    events.EventRecorder
	Options   Options
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// appScope is what one pass over a UserApp works on.
type appScope struct {
	app *flyv1alpha1.UserApp
	// flyName, org and network are the Fly app's, after defaulting.
	flyName, org, network string
	// derivedName is true when flyName is the name hangar derives itself: an app of that name in
	// the same org is provably one hangar created.
	derivedName bool
}

// appPhase is one step of a pass, owning one condition. A phase sets its condition True when done;
// when it returns an error the pass stops and the condition says why.
type appPhase struct {
	condition string
	run       func(context.Context, *appScope) error
}

// Reconcile runs one pass: finalizer, then delete or the ordered phases, then one status write.
func (r *UserAppReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	app := &flyv1alpha1.UserApp{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, app); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if app.DeletionTimestamp.IsZero() && controllerutil.AddFinalizer(app, Finalizer) {
		// Persisted before any Fly call, so nothing created on Fly can outlive the object unseen.
		if err := r.Client.Update(ctx, app); err != nil {
			return ctrl.Result{}, err
		}
	}

	ctx, throttled := WithThrottleNote(ctx)
	before := app.DeepCopy()
	defer func() {
		changed := !equality.Semantic.DeepEqual(before.Status, app.Status)
		retErr = kerrors.NewAggregate([]error{retErr, writeStatus(ctx, r.Client, before, app, changed)})
	}()
	if !app.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, r.scopeFor(app))
	}
	return r.reconcileNormal(ctx, r.scopeFor(app), throttled)
}

func (r *UserAppReconciler) reconcileNormal(ctx context.Context, s *appScope, throttled func() bool) (ctrl.Result, error) {
	app := s.app
	phases := []appPhase{
		{flyv1alpha1.AppCreatedCondition, r.ensureApp},
		{flyv1alpha1.SecretsSyncedCondition, r.syncSecrets},
		{flyv1alpha1.PrivateIPReadyCondition, r.ensurePrivateIP},
		{flyv1alpha1.ConnectionSecretReadyCondition, r.writeConnectionSecret},
	}
	wasReady := isTrue(app.Status.Conditions, flyv1alpha1.ReadyCondition)
	oldReason := readyReason(app.Status.Conditions)

	oc := outcome{label: "ready"}
	for _, p := range phases {
		if err := p.run(ctx, s); err != nil {
			oc = outcomeOf(err, r.Options)
			markFalse(&app.Status.Conditions, app.Generation, p.condition, oc.reason, oc.message)
			break
		}
	}
	summarizeReady(&app.Status.Conditions, app.Generation, flyv1alpha1.AppCreatedCondition,
		flyv1alpha1.SecretsSyncedCondition, flyv1alpha1.PrivateIPReadyCondition, flyv1alpha1.ConnectionSecretReadyCondition)
	newReason := readyReason(app.Status.Conditions)
	eventer{r.Events}.failureEvent(app, oldReason, newReason, oc.message)
	if throttled() && newReason != flyv1alpha1.ThrottledReason {
		// The pass got through, but Fly's rate limits slowed it: say so once, without marking the
		// object as failing.
		eventer{r.Events}.warning(app, EventThrottled, "Reconcile", "Fly rate limits slowed this change (the client waited or Fly answered 429)")
		oc.label = "throttled"
	}
	reconcileOutcomes.WithLabelValues(kindUserApp, oc.label).Inc()
	if oc.err != nil || oc.result.RequeueAfter > 0 || oc.reason != "" {
		return oc.result, oc.err
	}

	if !wasReady && app.Status.ObservedGeneration == 0 {
		timeToReady.WithLabelValues(kindUserApp).Observe(r.now().Sub(app.CreationTimestamp.Time).Seconds())
	}
	app.Status.ObservedGeneration = app.Generation
	// Come back when the app is due for its drift check.
	untilDrift := r.Options.untilDriftCheck(app.Status.LastObservedTime, app.UID, r.now())
	return ctrl.Result{RequeueAfter: max(untilDrift, time.Millisecond)}, nil
}

func (r *UserAppReconciler) scopeFor(app *flyv1alpha1.UserApp) *appScope {
	derived := flyv1alpha1.DefaultFlyAppName(r.Options.AppNamePrefix, app.Namespace, app.Name)
	s := &appScope{app: app, flyName: app.Spec.AppName, org: app.Spec.Org, network: app.Spec.Network}
	switch {
	case s.flyName != "":
	case app.Status.AppName != "":
		// Keep the name in use even if the manager's prefix changed since.
		s.flyName = app.Status.AppName
	default:
		s.flyName = derived
	}
	s.derivedName = app.Spec.AppName == "" && s.flyName == derived
	if s.org == "" {
		s.org = r.Options.DefaultOrg
	}
	if s.network == "" {
		s.network = flyv1alpha1.IsolatedNetworkName(s.flyName)
	}
	return s
}

func (r *UserAppReconciler) now() time.Time { return nowFrom(r.Now) }

// driftDue reports whether the app should be read back from Fly now.
func (r *UserAppReconciler) driftDue(app *flyv1alpha1.UserApp) bool {
	return r.Options.untilDriftCheck(app.Status.LastObservedTime, app.UID, r.now()) <= 0
}

// Index names for the cache's field indexers.
const (
	indexMachineAppRef = "spec.appRef.name"
	indexAppSecretRefs = "spec.secrets.secretKeyRef.name"
)

// SetupWithManager registers the controller and its watches; the indexes it uses are registered by
// Setup.
func (r *UserAppReconciler) SetupWithManager(mgr ctrl.Manager) error {
	registerMetrics()
	r.Options = r.Options.withDefaults()
	return ctrl.NewControllerManagedBy(mgr).
		For(&flyv1alpha1.UserApp{}, builder.WithPredicates(
			// Status writes (our own) do not trigger a pass; spec and annotation (adopt) changes do.
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Only metadata of Secrets is cached: the connection Secret we own, and the Secrets named in
		// spec.secrets (whose data is read from the API when needed).
		Owns(&corev1.Secret{}, builder.OnlyMetadata).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.appsReferencingSecret)).
		// A UserApp being deleted waits for its UserMachines to go.
		Watches(&flyv1alpha1.UserMachine{}, handler.EnqueueRequestsFromMapFunc(appOfMachine),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc:  func(event.CreateEvent) bool { return false },
				UpdateFunc:  func(event.UpdateEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles,
			RateLimiter:             failureBackoff(),
		}).
		Named("userapp").
		Complete(r)
}

// appsReferencingSecret maps a Secret to the UserApps that take a value from it.
func (r *UserAppReconciler) appsReferencingSecret(ctx context.Context, obj client.Object) []ctrl.Request {
	var apps flyv1alpha1.UserAppList
	if err := r.Client.List(ctx, &apps, client.InNamespace(obj.GetNamespace()),
		client.MatchingFields{indexAppSecretRefs: obj.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing UserApps that reference a Secret", "secret", obj.GetName())
		return nil
	}
	reqs := make([]ctrl.Request, 0, len(apps.Items))
	for _, app := range apps.Items {
		reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&app)})
	}
	return reqs
}

// appOfMachine maps a UserMachine to its UserApp.
func appOfMachine(_ context.Context, obj client.Object) []ctrl.Request {
	um, ok := obj.(*flyv1alpha1.UserMachine)
	if !ok {
		return nil
	}
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: um.Namespace, Name: um.Spec.AppRef.Name}}}
}
