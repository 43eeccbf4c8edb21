package controllers

import (
	"context"
	"fmt"
	"slices"

	ctrl "sigs.k8s.io/controller-runtime"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// listUsers fills the scope with the pool's unclaimed users and records the counts in status.
func (r *userAppPoolReconciler) listUsers(ctx context.Context, s *poolScope) error {
	users, err := listPoolUsers(ctx, r.reader, r.client, s.pool.Namespace, s.pool.Name)
	if err != nil {
		return err
	}
	st := &s.pool.Status
	st.TemplateHash = s.hash
	st.Replicas, st.ReadyReplicas, st.Claimed = 0, 0, 0
	s.unclaimed, s.deleting = nil, nil
	for _, u := range users {
		switch {
		case u.unclaimedIn(s.pool.UID) && u.deleting():
			s.deleting = append(s.deleting, u)
		case u.unclaimedIn(s.pool.UID):
			s.unclaimed = append(s.unclaimed, u)
			st.Replicas++
			if s.fresh(u) && u.warm(&s.pool.Spec) {
				st.ReadyReplicas++
			}
		case u.app.Labels[flyv1alpha1.ClaimedByLabel] != "" && !u.deleting():
			st.Claimed++
		}
	}
	return nil
}

// fresh reports whether u was made from the pool's current template.
func (s *poolScope) fresh(u pooledUser) bool {
	return u.app.Labels[flyv1alpha1.TemplateHashLabel] == s.hash
}

// scale makes the unclaimed users what spec asks: spec.replicas of them, of the current template.
// Users of an old template are replaced one at a time, a new one made ready before an old one
// goes, so the pool never holds fewer ready users than before the change. Claimed users are never
// touched: they are not the pool's any more.
func (r *userAppPoolReconciler) scale(ctx context.Context, s *poolScope) error {
	if err := r.listUsers(ctx, s); err != nil {
		return err
	}
	for _, u := range s.deleting {
		// Deleted by an earlier pass that may have ended before its machines were.
		if err := deleteMachines(ctx, r.client, u.machines); err != nil {
			return err
		}
	}
	spec := &s.pool.Spec
	var fresh, old []pooledUser
	for _, u := range s.unclaimed {
		if s.fresh(u) {
			fresh = append(fresh, u)
			// A user whose pass ended between its UserApp and its machines gets them now.
			if _, err := ensureMachines(ctx, r.client, u.app, u.machines, spec.Template.Machines, warmPower(spec)); err != nil {
				return err
			}
		} else {
			old = append(old, u)
		}
	}
	replicas := int(spec.Replicas)
	target := replicas
	if len(old) > 0 && replicas > 0 {
		target++ // one new user is made ready before each old one goes
	}
	total := len(fresh) + len(old)
	switch {
	case total < target:
		n := target - total
		for range n {
			if err := r.createUser(ctx, s); err != nil {
				return err
			}
		}
		return waitFor(0, flyv1alpha1.FillingReason, "creating %d users (%d of %d unclaimed)", n, total, replicas)
	case total > target:
		victims := surplus(fresh, old, total-target, spec)
		for _, u := range victims {
			deleted, err := deleteUser(ctx, r.client, u)
			if err != nil {
				return err
			}
			if deleted {
				r.events.normal(s.pool, EventPoolScaledDown, "Delete", "Deleted unclaimed user %s (spec.replicas %d)", u.app.Name, replicas)
			}
		}
		return waitFor(0, flyv1alpha1.ScalingDownReason, "deleting %d unclaimed users above spec.replicas %d", len(victims), replicas)
	case len(old) > 0:
		if i := slices.IndexFunc(fresh, func(u pooledUser) bool { return !u.warm(spec) }); i >= 0 {
			return waitFor(0, flyv1alpha1.ReplacingReason, "template changed: new user %s is getting ready before an old one goes (%d old left)",
				fresh[i].app.Name, len(old))
		}
		victim := surplus(nil, old, 1, spec)[0]
		deleted, err := deleteUser(ctx, r.client, victim)
		if err != nil {
			return err
		}
		if deleted {
			r.events.normal(s.pool, EventPoolUserReplaced, "Delete", "Deleted unclaimed user %s of an old template (%d old left)", victim.app.Name, len(old)-1)
		}
		return waitFor(0, flyv1alpha1.ReplacingReason, "template changed: replacing unclaimed users one at a time (%d old left)", len(old))
	}
	markTrue(&s.pool.Status.Conditions, s.pool.Generation, flyv1alpha1.PoolScaledCondition, flyv1alpha1.ReadyReason,
		fmt.Sprintf("%d unclaimed users of template %s", total, s.hash))
	return nil
}

// surplus picks n users to delete: old-template ones before current ones, those not ready before
// ready ones, the newest first (the oldest ready users are the ones claims take next).
func surplus(fresh, old []pooledUser, n int, spec *flyv1alpha1.UserAppPoolSpec) []pooledUser {
	ranked := make([]pooledUser, 0, len(fresh)+len(old))
	for _, group := range [][]pooledUser{old, fresh} {
		for _, wantWarm := range []bool{false, true} {
			for i := len(group) - 1; i >= 0; i-- {
				if group[i].warm(spec) == wantWarm {
					ranked = append(ranked, group[i])
				}
			}
		}
	}
	return ranked[:min(n, len(ranked))]
}

// createUser makes one user: its UserApp (named by the apiserver from the pool's name) and its
// UserMachines in the warm state. A pass that ends between the two finishes in the next (scale
// makes the missing machines of every unclaimed user).
func (r *userAppPoolReconciler) createUser(ctx context.Context, s *poolScope) error {
	app, err := newPooledApp(s.pool, "", s.pool, r.client)
	if err != nil {
		return err
	}
	if err := r.client.Create(ctx, app); err != nil {
		return fmt.Errorf("creating a pooled UserApp: %w", err)
	}
	ctrl.LoggerFrom(ctx).Info("Created pooled user", "userApp", app.Name, "templateHash", s.hash)
	if _, err := ensureMachines(ctx, r.client, app, nil, s.pool.Spec.Template.Machines, warmPower(&s.pool.Spec)); err != nil {
		return err
	}
	r.events.normal(s.pool, EventPoolUserCreated, "Create", "Created pooled user %s (template %s)", app.Name, s.hash)
	return nil
}

// usersReady waits until every unclaimed user is ready to be claimed.
func (r *userAppPoolReconciler) usersReady(_ context.Context, s *poolScope) error {
	st := &s.pool.Status
	if st.ReadyReplicas < st.Replicas {
		return waitFor(0, flyv1alpha1.WarmingReason, "%d of %d unclaimed users ready: the others are booting once before they wait %s",
			st.ReadyReplicas, st.Replicas, effectiveWarmState(&s.pool.Spec))
	}
	markTrue(&st.Conditions, s.pool.Generation, flyv1alpha1.UsersReadyCondition, flyv1alpha1.ReadyReason,
		fmt.Sprintf("%d unclaimed users ready", st.ReadyReplicas))
	return nil
}
