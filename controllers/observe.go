package controllers

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// ObserveOnly (spec.managementPolicy, Crossplane's term): hangar reads the Fly app or machine an
// object names and reports it, and writes nothing to Fly. Each phase that would write instead
// records that it leaves the work undone (reason Observed), so Ready still summarises every phase
// and `kubectl describe` shows what is and is not managed. As with a pause, the seam refuses any
// write in such a pass too (pauseGuard): a phase that forgot to check cannot write.
//
// Observing is itself a read another tenant must not get, so an app is observed only when it is
// this UserApp's already (its owner marker) or was released to it on Fly by whoever holds the Fly
// token (keys.ReleaseMarker); an app marked by another hangar object, or unmarked, is refused with
// NameTaken before anything about it reaches the status. A machine is observed only in its
// UserApp's app, which passed that check.

// observeOnly reports whether a management policy leaves Fly untouched.
func observeOnly(policy flyv1alpha1.ManagementPolicy) bool {
	return policy == flyv1alpha1.ManagementPolicyObserveOnly
}

// managementPolicyOf is the management policy of a hangar object; Full for kinds without one.
func managementPolicyOf(obj any) flyv1alpha1.ManagementPolicy {
	switch o := obj.(type) {
	case *flyv1alpha1.UserApp:
		return o.Spec.ManagementPolicy
	case *flyv1alpha1.UserMachine:
		return o.Spec.ManagementPolicy
	}
	return flyv1alpha1.ManagementPolicyFull
}

// markObserved sets condType True with reason Observed: the work it stands for is left undone.
func markObserved(obj object, condType, message string) {
	conds := obj.GetConditions()
	markTrue(&conds, obj.GetGeneration(), condType, flyv1alpha1.ObservedReason, message+" (managementPolicy ObserveOnly)")
	obj.SetConditions(conds)
}

// observeApp reads the Fly app spec.appName names, once per drift interval, after proving the
// UserApp may see it.
func (r *userAppReconciler) observeApp(ctx context.Context, s *appScope) error {
	st := &s.app.Status
	if st.AppID != "" && st.AppName == s.flyName && r.untilDriftCheck(s.app) > 0 {
		return nil
	}
	fa, err := r.fly.GetApp(ctx, s.flyName)
	switch {
	case isFlyKind(err, FlyNotFound):
		return waitFor(r.options.DriftInterval, flyv1alpha1.NotFoundReason,
			"Fly app %s does not exist: managementPolicy ObserveOnly only observes an existing app; fix spec.appName, or set managementPolicy Full to create it", s.flyName)
	case isFlyKind(err, FlyForbidden):
		return r.nameTaken(s)
	case err != nil:
		return err
	case s.app.Spec.Org != "" && fa.Org != s.org:
		return r.nameTaken(s)
	}
	owner, err := r.ownershipOf(ctx, s)
	if err != nil {
		return err
	}
	if owner != ownedByUs && owner != released {
		return waitFor(r.options.DriftInterval, flyv1alpha1.NameTakenReason,
			"Fly app %s is not this UserApp's to observe: whoever holds the Fly token releases it to this UserApp by setting the Fly secret %s on it (any value)",
			s.flyName, keys.ReleaseMarker(s.app.Namespace, s.app.Name))
	}
	if st.AppID != fa.ID {
		ctrl.LoggerFrom(ctx).Info("Observing Fly app", "flyApp", fa.Name)
		r.events.normal(s.app, EventObserved, "Observe", "Observing Fly app %s in org %s (managementPolicy ObserveOnly: no writes)", fa.Name, fa.Org)
	}
	r.recordApp(s, fa)
	if fa.Network != "" {
		st.Network = fa.Network
	}
	markObserved(s.app, flyv1alpha1.AppCreatedCondition, fmt.Sprintf("Fly app %s observed in org %s", fa.Name, fa.Org))
	return nil
}

// observeMachine reads the machine spec.machineID names (or the one hangar already runs for the
// object, when the policy changed later), in the UserApp's Fly app.
func (r *userMachineReconciler) observeMachine(ctx context.Context, s *machineScope) error {
	st := &s.um.Status
	id := s.um.Spec.MachineID
	if id == "" {
		id = st.MachineID
	}
	if id == "" {
		return waitFor(0, flyv1alpha1.NotFoundReason,
			"no machine to observe: hangar has not made one for this UserMachine; set managementPolicy Full, or create a UserMachine with spec.machineID")
	}
	if st.MachineID == id && settled(st.State) && r.untilDriftCheck(s.um) > 0 {
		return nil
	}
	m, err := r.fly.GetMachine(ctx, st.AppName, id)
	switch {
	case isFlyKind(err, FlyNotFound) || (err == nil && (m.State == MachineDestroyed || m.State == MachineDestroying)):
		return waitFor(r.options.DriftInterval, flyv1alpha1.NotFoundReason,
			"machine %s does not exist in Fly app %s: fix spec.machineID (managementPolicy ObserveOnly only observes an existing machine)", id, st.AppName)
	case err != nil:
		return err
	}
	if st.MachineID != m.ID {
		r.events.normal(s.um, EventObserved, "Observe", "Observing machine %s (%s) in %s (managementPolicy ObserveOnly: no writes)", m.ID, m.Name, m.Region)
	}
	r.observe(s, m)
	markObserved(s.um, flyv1alpha1.MachineCreatedCondition, fmt.Sprintf("machine %s observed, %s", m.ID, m.State))
	return nil
}

// adoptNamedMachine takes over the existing machine spec.machineID names (managementPolicy Full):
// from then on it is hangar's like one it created, and the config phase brings it to the spec.
func (r *userMachineReconciler) adoptNamedMachine(ctx context.Context, s *machineScope) error {
	id := s.um.Spec.MachineID
	m, err := r.fly.GetMachine(ctx, s.um.Status.AppName, id)
	switch {
	case isFlyKind(err, FlyNotFound) || (err == nil && (m.State == MachineDestroyed || m.State == MachineDestroying)):
		return waitFor(r.options.DriftInterval, flyv1alpha1.NotFoundReason,
			"machine %s named by spec.machineID does not exist in Fly app %s: fix spec.machineID", id, s.um.Status.AppName)
	case err != nil:
		return err
	}
	ctrl.LoggerFrom(ctx).Info("Adopting machine named by spec.machineID", "machine", m.ID)
	r.events.normal(s.um, EventAdopted, "Adopt", "Adopted machine %s (%s) named by spec.machineID", m.ID, m.Name)
	r.observe(s, m)
	markTrue(&s.um.Status.Conditions, s.um.Generation, flyv1alpha1.MachineCreatedCondition, flyv1alpha1.AdoptedReason,
		fmt.Sprintf("machine %s adopted", m.ID))
	return nil
}
