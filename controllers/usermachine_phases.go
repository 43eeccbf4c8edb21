package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// waitForApp stops the pass until the machine's UserApp has its Fly app and secrets; the UserApp
// watch brings the machine back when that changes.
func (r *userMachineReconciler) waitForApp(ctx context.Context, s *machineScope) error {
	um := s.um
	app := &flyv1alpha1.UserApp{}
	err := r.get(ctx, client.ObjectKey{Namespace: um.Namespace, Name: um.Spec.AppRef.Name}, app)
	if apierrors.IsNotFound(err) {
		return waitFor(0, flyv1alpha1.WaitingForAppReason, "UserApp %q does not exist: create it or fix spec.appRef.name", um.Spec.AppRef.Name)
	}
	if err != nil {
		return err
	}
	switch {
	case !r.options.inShard(app):
		// Another manager owns the app: acting on its Fly app from here would split one user over
		// two managers (the app's finalizer does not see this machine, for one). The app's labels
		// changing brings the machine back through the UserApp watch.
		return waitFor(0, flyv1alpha1.WaitingForAppReason,
			"UserApp %q is not in this manager's shard (label selector %q): give a user's UserApp and UserMachines the same shard labels",
			app.Name, r.options.Shard.String())
	case !app.DeletionTimestamp.IsZero():
		return waitFor(0, flyv1alpha1.WaitingForAppReason, "UserApp %q is being deleted", app.Name)
	case app.Status.AppName == "" || !isTrue(app.Status.Conditions, flyv1alpha1.AppCreatedCondition):
		return waitFor(0, flyv1alpha1.WaitingForAppReason, "UserApp %q has no Fly app yet", app.Name)
	case !isTrue(app.Status.Conditions, flyv1alpha1.SecretsSyncedCondition):
		return waitFor(0, flyv1alpha1.WaitingForAppReason, "UserApp %q has not set its Fly secrets yet", app.Name)
	case observeOnly(app.Spec.ManagementPolicy) && !observeOnly(um.Spec.ManagementPolicy):
		return waitFor(0, flyv1alpha1.WaitingForAppReason,
			"UserApp %q is ObserveOnly: hangar makes and changes no machine in an app it only observes; give this UserMachine managementPolicy ObserveOnly and spec.machineID, or the UserApp managementPolicy Full",
			app.Name)
	}
	s.app = app
	s.desired = desiredMachineFor(um, app, r.options.DefaultRegion)
	um.Status.AppName = app.Status.AppName
	markTrue(&um.Status.Conditions, um.Generation, flyv1alpha1.AppReadyCondition, flyv1alpha1.ReadyReason,
		fmt.Sprintf("Fly app %s is ready", app.Status.AppName))
	return nil
}

// needsRead reports whether this pass must read the machine from Fly. In steady state (the last
// read is recent, the machine settled, config and power state as asked) it does not: a quiet fleet
// costs one read per machine per drift interval and no writes.
func (r *userMachineReconciler) needsRead(s *machineScope) bool {
	st := &s.um.Status
	return st.LastObservedTime == nil ||
		r.untilDriftCheck(s.um) <= 0 ||
		!settled(st.State) ||
		st.ConfigHash != s.desired.Metadata[MetadataConfigHash] ||
		!powerSatisfied(s.um.Spec.PowerState, st.State)
}

// ensureMachine finds the machine (by the ID in status, else by the object's UID in Fly metadata)
// or creates it with a deterministic name, so a create whose answer was lost is adopted on the next
// pass instead of duplicated. A machine destroyed outside hangar is created again.
func (r *userMachineReconciler) ensureMachine(ctx context.Context, s *machineScope) error {
	st := &s.um.Status
	switch {
	case observeOnly(s.um.Spec.ManagementPolicy):
		return r.observeMachine(ctx, s)
	case st.MachineID == "" && s.um.Spec.MachineID != "":
		return r.adoptNamedMachine(ctx, s)
	}
	if st.MachineID != "" {
		if !r.needsRead(s) {
			r.markMachineKnown(s)
			return nil
		}
		if m, ok := r.waits.take(s.um.UID, st.Version); ok {
			// A wait on Fly just saw the transition end: as good as a read.
			r.observe(s, m)
			r.markMachineKnown(s)
			return nil
		}
		m, err := r.fly.GetMachine(ctx, st.AppName, st.MachineID)
		switch {
		case err == nil && m.State != MachineDestroyed && m.State != MachineDestroying:
			r.observe(s, m)
			r.markMachineKnown(s)
			return nil
		case err != nil && !isFlyKind(err, FlyNotFound):
			return err
		}
		ctrl.LoggerFrom(ctx).Info("Machine destroyed outside hangar; creating it again", "machine", st.MachineID)
		driftCorrections.WithLabelValues(kindUserMachine, "recreated").Inc()
		r.events.normal(s.um, EventDriftCorrected, "Create", "Machine %s was destroyed outside hangar; creating it again", st.MachineID)
		st.MachineID, st.Version, st.State = "", "", ""
	}

	found, err := r.fly.FindMachine(ctx, st.AppName, MetadataUID, string(s.um.UID))
	if err != nil {
		return err
	}
	if len(found) > 0 {
		return r.adoptMachines(ctx, s, found)
	}
	if wait := r.options.untilConsistent(st.CreateRequestedTime, time.Now()); wait > 0 {
		// A create of ours may have been made without its answer reaching us, and Fly's list can
		// lag behind it: look again until the window has passed, never create a second machine.
		return waitFor(min(wait, r.options.TransitionPoll), flyv1alpha1.CreatePendingReason,
			"the machine create sent at %s is not listed yet; looking for it again before creating another",
			st.CreateRequestedTime.UTC().Format(time.RFC3339))
	}

	// Recorded before the call: if the answer is lost (a 408, a dropped connection, this process
	// dying), the next pass knows a machine may exist that the list does not show yet.
	now := metav1.Now()
	st.CreateRequestedTime = &now
	if err := persistStatus(ctx); err != nil {
		return err
	}
	ctrl.LoggerFrom(ctx).Info("Creating machine", "name", s.desired.Name, "region", s.desired.Region, "image", s.desired.Image)
	m, err := r.fly.CreateMachine(ctx, st.AppName, s.desired)
	if isFlyKind(err, FlyNameTaken) {
		// Our deterministic name is taken, yet no machine carries our UID in the list: the list lags
		// behind a create of ours whose answer was lost. Look again until it shows.
		return waitFor(r.options.TransitionPoll, flyv1alpha1.CreatePendingReason,
			"machine %q exists in Fly app %s but is not listed yet; looking for it again", s.desired.Name, st.AppName)
	}
	if refusedOutright(err) {
		// Nothing was created: the next attempt need not wait for one to show in the list.
		st.CreateRequestedTime = nil
	}
	if err != nil {
		return err
	}
	r.events.normal(s.um, EventCreated, "Create", "Created machine %s (%s) in %s", m.ID, m.Name, m.Region)
	s.created = true
	r.observe(s, m)
	st.ConfigHash = s.desired.Metadata[MetadataConfigHash]
	markTrue(&st.Conditions, s.um.Generation, flyv1alpha1.MachineCreatedCondition, flyv1alpha1.CreatedReason,
		fmt.Sprintf("machine %s created", m.ID))
	return nil
}

// adoptMachines takes over the machine carrying this object's UID, created by a pass whose answer
// was lost. Should there be several (a create retried before its first attempt showed), the first
// by ID is kept and the others destroyed, so exactly one machine serves the object.
func (r *userMachineReconciler) adoptMachines(ctx context.Context, s *machineScope, found []FlyMachine) error {
	st := &s.um.Status
	slices.SortFunc(found, func(a, b FlyMachine) int { return strings.Compare(a.ID, b.ID) })
	m := found[0]
	for _, extra := range found[1:] {
		ctrl.LoggerFrom(ctx).Info("Destroying a duplicate machine", "machine", extra.ID, "kept", m.ID)
		if err := r.fly.DestroyMachine(ctx, st.AppName, extra.ID); err != nil {
			return err
		}
		r.events.warning(s.um, EventDuplicateDestroyed, "Delete", "Destroyed machine %s, a duplicate of %s carrying this object's UID", extra.ID, m.ID)
	}
	ctrl.LoggerFrom(ctx).Info("Adopting machine found by its metadata", "machine", m.ID)
	r.events.normal(s.um, EventAdopted, "Adopt", "Adopted machine %s (%s) found by its hangar.dev/uid metadata", m.ID, m.Name)
	r.observe(s, m)
	markTrue(&st.Conditions, s.um.Generation, flyv1alpha1.MachineCreatedCondition, flyv1alpha1.AdoptedReason,
		fmt.Sprintf("machine %s adopted", m.ID))
	return nil
}

// markMachineKnown sets MachineCreated True for the machine found by its recorded ID.
func (r *userMachineReconciler) markMachineKnown(s *machineScope) {
	markKnown(&s.um.Status.Conditions, s.um.Generation, flyv1alpha1.MachineCreatedCondition,
		fmt.Sprintf("machine %s exists", s.um.Status.MachineID))
}

// syncConfig updates the machine when the desired config (which covers the app's secrets version)
// differs from the one applied, or when the machine's version changed outside hangar.
func (r *userMachineReconciler) syncConfig(ctx context.Context, s *machineScope) (err error) {
	st := &s.um.Status
	if observeOnly(s.um.Spec.ManagementPolicy) {
		markObserved(s.um, flyv1alpha1.ConfigSyncedCondition, fmt.Sprintf("config left as it is (version %s)", st.Version))
		return nil
	}
	want := s.desired.Metadata[MetadataConfigHash]
	applied, drifted := st.ConfigHash, false
	if s.machine != nil && !s.created {
		applied = s.machine.Metadata[MetadataConfigHash]
		drifted = s.recordedVersion != "" && s.machine.Version != s.recordedVersion
	}
	if drifted {
		// Until the drift is corrected, status keeps the version hangar knew. Recording the drifted
		// one (the read just did) on a pass that waits or fails would make the next pass take it for
		// hangar's own, and the outside change would stay.
		defer func() {
			if err != nil {
				st.Version = s.recordedVersion
			}
		}()
	}
	if s.created || (!drifted && applied == want) {
		st.ConfigHash = applied
		markTrue(&st.Conditions, s.um.Generation, flyv1alpha1.ConfigSyncedCondition, flyv1alpha1.ReadyReason,
			fmt.Sprintf("config %s applied (version %s)", applied, st.Version))
		return nil
	}
	if s.machine == nil || !settled(s.machine.State) {
		return waitFor(r.options.TransitionPoll, flyv1alpha1.UpdatingReason, "machine is %s; it is updated once it settles", st.State)
	}

	ctrl.LoggerFrom(ctx).Info("Updating machine", "machine", st.MachineID, "fromVersion", s.machine.Version, "drifted", drifted)
	m, err := r.fly.UpdateMachine(ctx, st.AppName, st.MachineID, s.machine.Version, s.desired)
	if err != nil {
		return err
	}
	if drifted && st.ConfigHash == want {
		driftCorrections.WithLabelValues(kindUserMachine, "config").Inc()
		r.events.normal(s.um, EventDriftCorrected, "Update", "Machine %s was changed outside hangar (version %s); restored config %s",
			m.ID, s.machine.Version, want)
	} else {
		r.events.normal(s.um, EventUpdated, "Update", "Updated machine %s to config %s (version %s)", m.ID, want, m.Version)
	}
	r.observe(s, m)
	st.ConfigHash = want
	markTrue(&st.Conditions, s.um.Generation, flyv1alpha1.ConfigSyncedCondition, flyv1alpha1.ReadyReason,
		fmt.Sprintf("config %s applied (version %s)", want, m.Version))
	return nil
}

// syncPowerState keeps the machine started, stopped or suspended as spec.powerState asks. Under
// Auto it never acts: the Fly Proxy's autostart and autostop own the machine's power.
func (r *userMachineReconciler) syncPowerState(ctx context.Context, s *machineScope) error {
	st := &s.um.Status
	want := s.um.Spec.PowerState
	switch {
	case observeOnly(s.um.Spec.ManagementPolicy):
		markObserved(s.um, flyv1alpha1.PowerStateSyncedCondition, "machine is "+st.State+"; power left to whoever runs it")
		return nil
	case s.created:
		return waitFor(r.transitionPoll(s, st.State), flyv1alpha1.PowerTransitionReason, "machine %s is launching", st.MachineID)
	case want == flyv1alpha1.PowerStateAuto || want == "":
		markTrue(&st.Conditions, s.um.Generation, flyv1alpha1.PowerStateSyncedCondition, flyv1alpha1.ReadyReason,
			"powerState Auto: the Fly Proxy starts and stops the machine")
		return nil
	case !settled(st.State):
		return waitFor(r.transitionPoll(s, st.State), flyv1alpha1.PowerTransitionReason, "machine is %s", st.State)
	case powerSatisfied(want, st.State):
		markTrue(&st.Conditions, s.um.Generation, flyv1alpha1.PowerStateSyncedCondition, flyv1alpha1.ReadyReason,
			fmt.Sprintf("machine is %s as powerState %s asks", st.State, want))
		return nil
	}

	// The machine left the asked-for state on its own (the proxy woke it, someone stopped it) when
	// the condition said it was in sync for this generation.
	synced := meta.FindStatusCondition(st.Conditions, flyv1alpha1.PowerStateSyncedCondition)
	outOfBand := synced != nil && synced.Status == metav1.ConditionTrue && synced.ObservedGeneration == s.um.Generation
	action, event, transient := powerActionFor(want, st.State)
	ctrl.LoggerFrom(ctx).Info("Changing machine power state", "machine", st.MachineID, "from", st.State, "action", action)
	var err error
	switch action {
	case "start":
		err = r.fly.StartMachine(ctx, st.AppName, st.MachineID)
	case "stop":
		err = r.fly.StopMachine(ctx, st.AppName, st.MachineID)
	case "suspend":
		err = r.fly.SuspendMachine(ctx, st.AppName, st.MachineID)
	}
	if isFlyKind(err, FlyPrecondition) {
		return waitFor(r.options.TransitionPoll, flyv1alpha1.PowerTransitionReason, "machine is %s; retrying %s", st.State, action)
	}
	if err != nil {
		return err
	}
	if outOfBand {
		driftCorrections.WithLabelValues(kindUserMachine, "power").Inc()
		r.events.normal(s.um, EventDriftCorrected, action, "Machine %s was %s outside hangar; powerState %s: %s it",
			st.MachineID, st.State, want, transient)
	} else {
		r.events.normal(s.um, event, action, "Machine %s: %s (was %s)", st.MachineID, transient, st.State)
	}
	st.State = transient
	return waitFor(r.transitionPoll(s, transient), flyv1alpha1.PowerTransitionReason, "machine %s is %s", st.MachineID, transient)
}

// powerSatisfied reports whether a machine in state meets powerState want. A machine created
// without launching counts as stopped.
func powerSatisfied(want flyv1alpha1.PowerState, state string) bool {
	switch want {
	case flyv1alpha1.PowerStateStarted:
		return state == MachineStarted
	case flyv1alpha1.PowerStateStopped:
		return state == MachineStopped || state == MachineCreated
	case flyv1alpha1.PowerStateSuspended:
		return state == MachineSuspended
	default:
		return true
	}
}

// powerActionFor is the Fly action that moves a settled machine toward want, the Event reason for
// it and the transient state it enters. A machine to be suspended that is not running is started
// first: Fly suspends only started machines.
func powerActionFor(want flyv1alpha1.PowerState, state string) (action, event, transient string) {
	switch {
	case want == flyv1alpha1.PowerStateStopped:
		return "stop", EventStopped, MachineStopping
	case want == flyv1alpha1.PowerStateSuspended && state == MachineStarted:
		return "suspend", EventSuspended, MachineSuspending
	default:
		return "start", EventStarted, MachineStarting
	}
}

// observe records what Fly said of the machine.
func (r *userMachineReconciler) observe(s *machineScope, m FlyMachine) {
	s.machine = &m
	st := &s.um.Status
	st.MachineID, st.MachineName, st.Version = m.ID, m.Name, m.Version
	st.Region, st.PrivateIP, st.State = m.Region, m.PrivateIP, m.State
	// The machine is known by its ID from now on: no create of ours is pending.
	st.CreateRequestedTime = nil
	now := metav1.Now()
	st.LastObservedTime = &now
}

// finalize destroys the machine (policy Delete, the default, possibly inherited from the UserApp)
// or leaves it (Orphan). A machine that is already gone, or whose app is gone, counts as destroyed.
func (r *userMachineReconciler) finalize(ctx context.Context, s *machineScope) error {
	um := s.um
	app := &flyv1alpha1.UserApp{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: um.Namespace, Name: um.Spec.AppRef.Name}, app); err != nil {
		if !apierrors.IsNotFound(err) {
			return err
		}
		app = nil
	}
	st := &um.Status
	if observeOnly(um.Spec.ManagementPolicy) {
		if st.MachineID != "" {
			r.events.normal(um, EventOrphaned, "Delete", "Left machine %s in place (managementPolicy ObserveOnly)", st.MachineID)
		}
		return nil
	}
	if um.Spec.EffectiveDeletionPolicy(app) == flyv1alpha1.DeletionPolicyDelete && st.AppName != "" {
		if wait := r.options.untilConsistent(st.CreateRequestedTime, time.Now()); wait > 0 {
			// A machine whose create answer was lost may not be listed yet; destroying only what
			// the list shows now could leave it behind.
			return waitFor(min(wait, r.options.TransitionPoll), flyv1alpha1.DeletingReason,
				"a machine create sent at %s may not be listed yet; waiting before destroying what exists",
				st.CreateRequestedTime.UTC().Format(time.RFC3339))
		}
		return r.destroyMachines(ctx, s)
	}
	if st.MachineID != "" {
		r.events.normal(um, EventOrphaned, "Delete", "Left machine %s in place (deletionPolicy Orphan)", st.MachineID)
	}
	return nil
}

// destroyMachines destroys the recorded machine and any other machine carrying this object's UID
// (one created by a pass whose answer was lost).
func (r *userMachineReconciler) destroyMachines(ctx context.Context, s *machineScope) error {
	st := &s.um.Status
	ids := map[string]bool{}
	if st.MachineID != "" {
		ids[st.MachineID] = true
	}
	found, err := r.fly.FindMachine(ctx, st.AppName, MetadataUID, string(s.um.UID))
	if err != nil && !isFlyKind(err, FlyNotFound) {
		return err
	}
	for _, m := range found {
		ids[m.ID] = true
	}
	for id := range ids {
		ctrl.LoggerFrom(ctx).Info("Destroying machine", "machine", id)
		if err := r.fly.DestroyMachine(ctx, st.AppName, id); err != nil {
			return err
		}
		r.events.normal(s.um, EventDeleted, "Delete", "Destroyed machine %s", id)
	}
	return nil
}
