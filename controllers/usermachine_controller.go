package controllers

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// The UserMachine controller's rights, generated into config/rbac/role.yaml by `make manifests`.
//
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=usermachines,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=usermachines/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=usermachines/finalizers,verbs=update

// kindUserMachine names the kind in metrics.
const kindUserMachine = "UserMachine"

// userMachineReconciler makes a Fly machine match each UserMachine: created exactly once, updated
// when its config changes or drifts, kept in the power state the spec asks for, destroyed on delete.
type userMachineReconciler struct {
	base
	fly FlyAPI
	// waits learn the end of transitions from Fly instead of polling (nil: always poll).
	waits *transitionWaits
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

// lifecycle declares the UserMachine's phases, each owning the condition it names.
func (r *userMachineReconciler) lifecycle() lifecycle[*flyv1alpha1.UserMachine, *machineScope] {
	return lifecycle[*flyv1alpha1.UserMachine, *machineScope]{
		kind: kindUserMachine,
		scope: func(um *flyv1alpha1.UserMachine) *machineScope {
			return &machineScope{um: um, recordedVersion: um.Status.Version}
		},
		phases: []phase[*machineScope]{
			{flyv1alpha1.AppReadyCondition, r.waitForApp},
			{flyv1alpha1.MachineCreatedCondition, r.ensureMachine},
			{flyv1alpha1.ConfigSyncedCondition, r.syncConfig},
			{flyv1alpha1.PowerStateSyncedCondition, r.syncPowerState},
			{flyv1alpha1.PowerStateSyncedCondition, r.idle},     // idle.go: spec.idle under powerState Auto
			{flyv1alpha1.HostsAcceptedCondition, r.acceptHosts}, // last: a host conflict never holds up Fly work (hosts.go)
		},
		finalize:     r.finalize,
		nextPass:     r.nextPass,
		readyMessage: machineReadyMessage,
	}
}

// machineReadyMessage says what a Ready UserMachine runs on Fly.
func machineReadyMessage(s *machineScope) string {
	st := &s.um.Status
	return fmt.Sprintf("machine %s %s in %s, image %s", st.MachineID, st.State, st.Region, s.um.Spec.Image)
}

// nextPass comes back at the drift check, or sooner while the machine is in a transition or at its
// idle deadline.
func (r *userMachineReconciler) nextPass(s *machineScope) time.Duration {
	next := min(r.untilDriftCheck(s.um), r.idleDeadline(s))
	if !settled(s.um.Status.State) {
		// Under powerState Auto a transition does not hold Ready up; still, look again once it ends.
		next = min(next, r.transitionPoll(s, s.um.Status.State))
	}
	return next
}

// transitionPoll is when to look again at a machine in state, a transition: when a wait on Fly
// will wake the object at the transition's end, only past the wait in case the wake-up is lost;
// otherwise at the next poll.
func (r *userMachineReconciler) transitionPoll(s *machineScope, state string) time.Duration {
	if r.waits.start(s.um, s.machine, state) {
		return r.waits.fallback()
	}
	return r.options.TransitionPoll
}

// untilDriftCheck is how long until the machine is due to be read back from Fly (0 or less: now).
func (r *userMachineReconciler) untilDriftCheck(um *flyv1alpha1.UserMachine) time.Duration {
	return r.options.untilDriftCheck(um.Status.LastObservedTime, um.UID, time.Now())
}

// setupWithManager registers the controller and its watches.
func (r *userMachineReconciler) setupWithManager(mgr ctrl.Manager) error {
	return setupKind(mgr, r.base, r.lifecycle(), func(b *builder.Builder) *builder.Builder {
		b = r.watchHostClaims(b, func() client.ObjectList { return &flyv1alpha1.UserMachineList{} }, indexMachineHosts)
		b = r.waits.watch(b)
		// A UserApp's changes (ready, new secrets version, deletion) concern its machines.
		return b.Watches(&flyv1alpha1.UserApp{}, handler.EnqueueRequestsFromMapFunc(r.machinesOfApp),
			builder.WithPredicates(appChangeConcernsMachines()))
	})
}

// machinesOfApp maps a UserApp to its UserMachines.
func (r *userMachineReconciler) machinesOfApp(ctx context.Context, app client.Object) []ctrl.Request {
	return requestsByIndex(ctx, r.client, &flyv1alpha1.UserMachineList{}, indexMachineAppRef, app)
}

// appChangeConcernsMachines passes the UserApp updates its machines act on: its spec, deletion,
// annotations, the Fly app, secrets version and keys in its status, and any condition turning True
// or False. Other status writes (a new message while Fly throttles the app, a drift check's time)
// would send every machine of the app round for nothing: at 2 000 machines they were most passes.
func appChangeConcernsMachines() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			old, okOld := e.ObjectOld.(*flyv1alpha1.UserApp)
			updated, okNew := e.ObjectNew.(*flyv1alpha1.UserApp)
			if !okOld || !okNew {
				return true
			}
			return old.Generation != updated.Generation ||
				old.DeletionTimestamp.IsZero() != updated.DeletionTimestamp.IsZero() ||
				!maps.Equal(old.Annotations, updated.Annotations) ||
				machineFacingStatus(&old.Status) != machineFacingStatus(&updated.Status)
		},
	}
}

// machineFacingStatus is the part of a UserApp's status its machines read, as a comparable string.
func machineFacingStatus(st *flyv1alpha1.UserAppStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%d|%d", st.AppName, st.Network, st.SecretsVersion, st.KeyGeneration)
	if t := st.PreviousKeysValidUntil; t != nil {
		b.WriteString("|" + t.UTC().Format(time.RFC3339))
	}
	for _, c := range st.Conditions {
		fmt.Fprintf(&b, "|%s=%s", c.Type, c.Status)
	}
	return b.String()
}
