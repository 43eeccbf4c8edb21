package controllers

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/activity"
)

// Idle timeouts (docs/idle-timeouts.md): a UserMachine with spec.idle is stopped or suspended once
// it has gone spec.idle.timeout without a request. Its idle time counts from the latest of:
//   - the last request the routers replayed to it (or to its app with no fixed machine), from the
//     UserApp's activity Lease (internal/activity), read from the manager's cache;
//   - its last start, from Fly's event log (a machine the Fly Proxy just woke is not stopped at
//     once because its request has not been published yet);
//   - the manager's last idle action (status.idleActionTime).
//
// Passes come at the idle deadline (idleDeadline), never on a Lease write: at the deadline the pass
// reads the Lease again and acts or looks again later. The Fly call goes through the FlyAPI seam,
// so a paused or ObserveOnly machine is never touched.

// EventIdle is the reason of the Event that says the manager stopped or suspended a machine that had
// no request for spec.idle.timeout.
const EventIdle = "Idle"

// activityReadTimeout bounds the first read of the activity Leases, which waits for the cache's
// Lease informer to sync: without RBAC on Leases it never would.
const activityReadTimeout = 10 * time.Second

// idle stops or suspends the machine once it has been idle past spec.idle.timeout. It runs after
// syncPowerState and shares its condition: under powerState Auto that one only says the Fly Proxy
// owns the power; this one says Idle while the machine sleeps because of it.
func (r *userMachineReconciler) idle(ctx context.Context, s *machineScope) error {
	policy := s.um.Spec.Idle
	if policy == nil || s.app == nil || observeOnly(s.um.Spec.ManagementPolicy) {
		return nil // an observed machine's power is not hangar's (syncPowerState said so)
	}
	st := &s.um.Status
	times, err := r.activityOf(ctx, s.app.UID)
	if err != nil {
		return err
	}
	if last := times.LastFor(st.MachineID); !last.IsZero() && (st.LastActivityTime == nil || last.After(st.LastActivityTime.Time)) {
		t := metav1.NewTime(last)
		st.LastActivityTime = &t
	}
	now := r.options.Now()
	if now.Before(idleSince(s).Add(policy.Timeout.Duration)) {
		r.markIdleAsleep(s)
		return nil
	}
	if !r.mayBeStarted(s) {
		r.markIdleAsleep(s)
		return nil
	}
	if s.machine == nil || s.machine.StartedAt.IsZero() {
		// The deadline passed on what the status says: look at the machine itself (its state, and
		// a start since the status was written).
		m, err := r.fly.GetMachine(ctx, st.AppName, st.MachineID)
		if err != nil {
			return err
		}
		r.observe(s, m)
		if now.Before(idleSince(s).Add(policy.Timeout.Duration)) || st.State != MachineStarted {
			r.markIdleAsleep(s)
			return nil
		}
	}
	if st.State != MachineStarted {
		r.markIdleAsleep(s)
		return nil
	}

	action, transient, call := "stop", MachineStopping, r.fly.StopMachine
	if policy.Action == flyv1alpha1.IdleActionSuspend {
		action, transient, call = "suspend", MachineSuspending, r.fly.SuspendMachine
	}
	ctrl.LoggerFrom(ctx).Info("Machine idle; acting", "machine", st.MachineID, "action", action, "timeout", policy.Timeout.Duration)
	err = call(ctx, st.AppName, st.MachineID)
	if isFlyKind(err, FlyPrecondition) {
		return waitFor(r.options.TransitionPoll, flyv1alpha1.PowerTransitionReason, "machine is %s; retrying %s", st.State, action)
	}
	if err != nil {
		return err
	}
	r.events.normal(s.um, EventIdle, action, "Machine %s %s: no request for %s (spec.idle.timeout)", st.MachineID, pastTense(action), policy.Timeout.Duration)
	at := metav1.NewTime(now)
	st.IdleActionTime = &at
	st.State = transient
	r.markIdleAsleep(s)
	return nil
}

// idleSince is when the machine's idle time started, from what this pass knows.
func idleSince(s *machineScope) time.Time {
	st := &s.um.Status
	var since time.Time
	for _, t := range []*metav1.Time{st.LastActivityTime, st.IdleActionTime} {
		if t != nil && t.After(since) {
			since = t.Time
		}
	}
	if s.machine != nil && s.machine.StartedAt.After(since) {
		since = s.machine.StartedAt
	}
	return since
}

// mayBeStarted: the machine is started as far as the status knows, or a request reached it since
// the manager last looked (the Fly Proxy starts a stopped machine for its request).
func (r *userMachineReconciler) mayBeStarted(s *machineScope) bool {
	st := &s.um.Status
	switch st.State {
	case MachineStarted, MachineStarting, MachineCreated:
		return true
	}
	return st.LastActivityTime != nil && (st.LastObservedTime == nil || st.LastActivityTime.After(st.LastObservedTime.Time))
}

// markIdleAsleep says Idle on PowerStateSynced while the machine is stopped or suspended by the
// manager's last idle action, with no request since.
func (r *userMachineReconciler) markIdleAsleep(s *machineScope) {
	st := &s.um.Status
	asleep := st.State == MachineStopped || st.State == MachineStopping || st.State == MachineSuspended || st.State == MachineSuspending
	if !asleep || st.IdleActionTime == nil || (st.LastActivityTime != nil && st.LastActivityTime.After(st.IdleActionTime.Time)) {
		return
	}
	markTrue(&st.Conditions, s.um.Generation, flyv1alpha1.PowerStateSyncedCondition, flyv1alpha1.IdleReason,
		fmt.Sprintf("machine %s %s at %s after %s without a request; the next request wakes it",
			st.MachineID, st.State, st.IdleActionTime.UTC().Format(time.RFC3339), s.um.Spec.Idle.Timeout.Duration))
}

func pastTense(action string) string {
	if action == "suspend" {
		return "suspended"
	}
	return "stopped"
}

// idleDeadline is how long until the machine's next idle check: its idle deadline while it may be
// running, else one timeout (to notice a request that woke it). A machine without spec.idle has
// none (the longest duration). nextPass takes the minimum of this and its other reasons.
func (r *userMachineReconciler) idleDeadline(s *machineScope) time.Duration {
	policy := s.um.Spec.Idle
	if policy == nil || observeOnly(s.um.Spec.ManagementPolicy) {
		return time.Duration(1<<63 - 1)
	}
	if !r.mayBeStarted(s) {
		return policy.Timeout.Duration
	}
	// A second past the deadline: times are stored to the second.
	return max(time.Second, idleSince(s).Add(policy.Timeout.Duration+time.Second).Sub(r.options.Now()))
}

// activityOf reads the activity of the UserApp with uid from the manager's cache (none when its
// Lease does not exist yet).
func (r *userMachineReconciler) activityOf(ctx context.Context, uid types.UID) (activity.Times, error) {
	ctx, cancel := context.WithTimeout(ctx, activityReadTimeout)
	defer cancel()
	var lease coordinationv1.Lease
	key := client.ObjectKey{Namespace: r.options.ActivityNamespace, Name: activity.LeaseName(uid)}
	if err := r.client.Get(ctx, key, &lease); err != nil {
		if apierrors.IsNotFound(err) {
			return activity.Times{}, nil
		}
		return nil, fmt.Errorf("reading activity Lease %s (the manager needs get, list and watch on leases in %s): %w", key, key.Namespace, err)
	}
	times, err := activity.Of(&lease)
	if err != nil {
		// A Lease someone else wrote badly: the routers rewrite it at their next write.
		ctrl.LoggerFrom(ctx).Info("Ignoring an unreadable activity Lease", "lease", key.String(), "error", err.Error())
		return activity.Times{}, nil
	}
	return times, nil
}

// ActivityCacheOptions adds the routers' activity Leases of namespace (activity.DefaultNamespace
// when empty), and only those, to a manager's cache options; Options.ActivityNamespace must name the
// same namespace.
func ActivityCacheOptions(opts cache.Options, namespace string) cache.Options {
	if namespace == "" {
		namespace = activity.DefaultNamespace
	}
	if opts.ByObject == nil {
		opts.ByObject = map[client.Object]cache.ByObject{}
	}
	opts.ByObject[&coordinationv1.Lease{}] = cache.ByObject{
		Namespaces: map[string]cache.Config{namespace: {}},
		Label:      activity.Selector(),
	}
	return opts
}

// DeleteActivityLease deletes the activity Lease of the UserApp with uid from namespace (the
// routers' and Options.ActivityNamespace), once the UserApp is gone: the routers only create and
// update Leases. The UserApp's finalize step calls it; a Lease already gone is fine.
func DeleteActivityLease(ctx context.Context, c client.Client, namespace string, uid types.UID) error {
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: activity.LeaseName(uid)}}
	if err := c.Delete(ctx, lease); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting activity Lease %s/%s: %w", namespace, lease.Name, err)
	}
	return nil
}
