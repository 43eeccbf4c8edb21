package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// UserMachineReconciler makes a Fly machine match each UserMachine: created exactly once, updated
// when its config changes or drifts, kept in the power state the spec asks for, destroyed on delete.
type UserMachineReconciler struct {
	Client client.Client
	// APIReader reads from the apiserver directly. The object a pass acts on, and the UserApp a
	// machine depends on, are read through it: a cached copy can lag behind the status the previous
	// pass wrote, and acting on it would repeat Fly calls (a second secrets version, a needless
	// machine update).
	APIReader client.Reader
	Fly       FlyAPI
	Events    events.EventRecorder
	Options   Options
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// machineScope is what one pass over a UserMachine works on.
type machineScope struct {
	um  *flyv1alpha1.UserMachine
	app *flyv1alpha1.UserApp
	// desired is the machine the spec asks for (set once the app is known).
	desired DesiredMachine
	// machine is the machine as read from Fly in this pass; nil when the pass did not read it
	// (steady state: the status is recent enough).
	machine *FlyMachine
	// created is true when this pass created the machine.
	created bool
	// recordedVersion is the machine version the status held when the pass began: a different
	// version read from Fly means someone else updated the machine.
	recordedVersion string
}

type machinePhase struct {
	condition string
	run       func(context.Context, *machineScope) error
}

// Reconcile runs one pass: finalizer, then delete or the ordered phases, then one status write.
func (r *UserMachineReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	um := &flyv1alpha1.UserMachine{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, um); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if um.DeletionTimestamp.IsZero() && controllerutil.AddFinalizer(um, Finalizer) {
		// Persisted before any Fly call, so no machine can be created without a finalizer.
		if err := r.Client.Update(ctx, um); err != nil {
			return ctrl.Result{}, err
		}
	}

	ctx, throttled := WithThrottleNote(ctx)
	before := um.DeepCopy()
	defer func() {
		changed := !equality.Semantic.DeepEqual(before.Status, um.Status)
		retErr = kerrors.NewAggregate([]error{retErr, writeStatus(ctx, r.Client, before, um, changed)})
	}()
	s := &machineScope{um: um, recordedVersion: um.Status.Version}
	if !um.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	return r.reconcileNormal(ctx, s, throttled)
}

func (r *UserMachineReconciler) reconcileNormal(ctx context.Context, s *machineScope, throttled func() bool) (ctrl.Result, error) {
	um := s.um
	phases := []machinePhase{
		{flyv1alpha1.AppReadyCondition, r.waitForApp},
		{flyv1alpha1.MachineCreatedCondition, r.ensureMachine},
		{flyv1alpha1.ConfigSyncedCondition, r.syncConfig},
		{flyv1alpha1.PowerStateSyncedCondition, r.syncPowerState},
	}
	wasReady := isTrue(um.Status.Conditions, flyv1alpha1.ReadyCondition)
	oldReason := readyReason(um.Status.Conditions)

	oc := outcome{label: "ready"}
	for _, p := range phases {
		if err := p.run(ctx, s); err != nil {
			oc = outcomeOf(err, r.Options)
			markFalse(&um.Status.Conditions, um.Generation, p.condition, oc.reason, oc.message)
			break
		}
	}
	summarizeReady(&um.Status.Conditions, um.Generation, flyv1alpha1.AppReadyCondition, flyv1alpha1.MachineCreatedCondition,
		flyv1alpha1.ConfigSyncedCondition, flyv1alpha1.PowerStateSyncedCondition)
	newReason := readyReason(um.Status.Conditions)
	eventer{r.Events}.failureEvent(um, oldReason, newReason, oc.message)
	if throttled() && newReason != flyv1alpha1.ThrottledReason {
		// The pass got through, but Fly's rate limits slowed it: say so once, without marking the
		// object as failing.
		eventer{r.Events}.warning(um, EventThrottled, "Reconcile", "Fly rate limits slowed this change (the client waited or Fly answered 429)")
		oc.label = "throttled"
	}
	reconcileOutcomes.WithLabelValues(kindUserMachine, oc.label).Inc()
	if oc.err != nil || oc.reason != "" {
		return oc.result, oc.err
	}

	if !wasReady && um.Status.ObservedGeneration == 0 {
		timeToReady.WithLabelValues(kindUserMachine).Observe(r.now().Sub(um.CreationTimestamp.Time).Seconds())
	}
	um.Status.ObservedGeneration = um.Generation
	next := r.untilDriftCheck(um)
	if !settled(um.Status.State) {
		// Under powerState Auto a transition is not waited on; still, look again soon.
		next = min(next, r.Options.TransitionPoll)
	}
	return ctrl.Result{RequeueAfter: max(next, time.Millisecond)}, nil
}

func (r *UserMachineReconciler) now() time.Time { return nowFrom(r.Now) }

func (r *UserMachineReconciler) untilDriftCheck(um *flyv1alpha1.UserMachine) time.Duration {
	return r.Options.untilDriftCheck(um.Status.LastObservedTime, um.UID, r.now())
}

// SetupWithManager registers the controller and its watches.
func (r *UserMachineReconciler) SetupWithManager(mgr ctrl.Manager) error {
	registerMetrics()
	r.Options = r.Options.withDefaults()
	return ctrl.NewControllerManagedBy(mgr).
		For(&flyv1alpha1.UserMachine{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// A UserApp's changes (ready, new secrets version, deletion) concern its machines.
		Watches(&flyv1alpha1.UserApp{}, handler.EnqueueRequestsFromMapFunc(r.machinesOfApp)).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles,
			RateLimiter:             failureBackoff(),
		}).
		Named("usermachine").
		Complete(r)
}

// machinesOfApp maps a UserApp to its UserMachines.
func (r *UserMachineReconciler) machinesOfApp(ctx context.Context, obj client.Object) []ctrl.Request {
	var machines flyv1alpha1.UserMachineList
	if err := r.Client.List(ctx, &machines, client.InNamespace(obj.GetNamespace()),
		client.MatchingFields{indexMachineAppRef: obj.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing the UserMachines of a UserApp", "userApp", obj.GetName())
		return nil
	}
	reqs := make([]ctrl.Request, 0, len(machines.Items))
	for _, m := range machines.Items {
		reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&m)})
	}
	return reqs
}
