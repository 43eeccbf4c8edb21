package controllers

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// ownUsers lists, from the apiserver, the UserApps bound to the claim: its label and its
// controller reference. Looking here first is what makes binding crash-safe: a pass that bound or
// created a user and ended before its status write finds that user again, and never takes another.
func (r *userAppClaimReconciler) ownUsers(ctx context.Context, claim *flyv1alpha1.UserAppClaim) ([]pooledUser, error) {
	var apps flyv1alpha1.UserAppList
	if err := r.reader.List(ctx, &apps, client.InNamespace(claim.Namespace),
		client.MatchingLabels{flyv1alpha1.ClaimedByLabel: claim.Name}); err != nil {
		return nil, fmt.Errorf("listing the UserApps of claim %s: %w", claim.Name, err)
	}
	users, err := withMachines(ctx, r.client, apps.Items)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(users, func(u pooledUser) bool { return !u.claimedBy(claim) }), nil
}

// recordedUser reads the user status.userAppName names, when it is still the claim's: the steady
// state, a read from the cache. nil: no user recorded, or no longer the claim's (ownUsers, a list
// on the apiserver, then finds what a pass that ended before its status write bound).
func (r *userAppClaimReconciler) recordedUser(ctx context.Context, claim *flyv1alpha1.UserAppClaim) ([]pooledUser, error) {
	name := claim.Status.UserAppName
	if name == "" {
		return nil, nil
	}
	app := &flyv1alpha1.UserApp{}
	err := r.get(ctx, client.ObjectKey{Namespace: claim.Namespace, Name: name}, app)
	if kerrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	users, err := withMachines(ctx, r.client, []flyv1alpha1.UserApp{*app})
	if err != nil || !users[0].claimedBy(claim) {
		return nil, err
	}
	return users, nil
}

// bind finds the claim's user, or takes the oldest ready unclaimed user of the pool, or, when
// there is none, creates one (a cold start). Once bound, it keeps the user's routing and secrets
// those of the claim.
func (r *userAppClaimReconciler) bind(ctx context.Context, s *claimScope) error {
	claim := s.claim
	users, err := r.recordedUser(ctx, claim)
	if err != nil {
		return err
	}
	if users == nil {
		if users, err = r.ownUsers(ctx, claim); err != nil {
			return err
		}
	}
	for i := range users {
		if users[i].deleting() {
			return waitFor(0, flyv1alpha1.DeletingReason, "UserApp %s of this claim is being deleted; a new user is bound once it is gone",
				users[i].app.Name)
		}
	}
	if len(users) > 0 {
		s.user = &users[0]
		return r.keepBound(ctx, s)
	}

	pool := &flyv1alpha1.UserAppPool{}
	err = r.client.Get(ctx, client.ObjectKey{Namespace: claim.Namespace, Name: claim.Spec.PoolRef.Name}, pool)
	if kerrors.IsNotFound(err) || (err == nil && !pool.DeletionTimestamp.IsZero()) {
		return waitFor(0, flyv1alpha1.PoolNotFoundReason,
			"UserAppPool %q does not exist in this namespace (or is being deleted): create it or fix spec.poolRef.name", claim.Spec.PoolRef.Name)
	}
	if err != nil {
		return err
	}
	candidates, err := listPoolUsers(ctx, r.reader, r.client, pool.Namespace, pool.Name)
	if err != nil {
		return err
	}
	hash := templateHash(&pool.Spec)
	for _, u := range candidates {
		if !u.unclaimedIn(pool.UID) || u.deleting() || u.app.Labels[flyv1alpha1.TemplateHashLabel] != hash || !u.warm(&pool.Spec) {
			continue
		}
		bound, err := r.take(ctx, claim, u)
		if err != nil {
			return err
		}
		if bound {
			s.user = &u
			r.recordBinding(s, flyv1alpha1.ClaimSourcePool)
			r.events.normal(claim, EventBound, "Bind", "Bound pooled user %s (Fly app %s) from pool %s", u.app.Name, u.app.Status.AppName, pool.Name)
			return r.markBound(s)
		}
	}
	return r.coldStart(ctx, s, pool)
}

// take binds one pooled user to the claim in a single write, conditional on the version read: the
// claim label, the controller reference moved from the pool to the claim, the claim's routing and
// secrets, and a key rotation. A conflict means another claim (or the pool's scale-down) got there
// first: bound is false and the caller tries the next user.
func (r *userAppClaimReconciler) take(ctx context.Context, claim *flyv1alpha1.UserAppClaim, u pooledUser) (bound bool, err error) {
	app := u.app
	if app.Labels == nil {
		app.Labels = map[string]string{}
	}
	app.Labels[flyv1alpha1.ClaimedByLabel] = claim.Name
	if app.Annotations == nil {
		app.Annotations = map[string]string{}
	}
	app.Annotations[flyv1alpha1.RotateKeysAnnotation] = claimKeyRotation(claim.UID)
	app.OwnerReferences = slices.DeleteFunc(app.OwnerReferences, func(o metav1.OwnerReference) bool {
		return o.Controller != nil && *o.Controller
	})
	if err := controllerutil.SetControllerReference(claim, app, r.client.Scheme()); err != nil {
		return false, err
	}
	setUserSpec(app, claim)
	err = r.client.Update(ctx, app)
	switch {
	case kerrors.IsConflict(err), kerrors.IsNotFound(err):
		ctrl.LoggerFrom(ctx).Info("Pooled user taken first by someone else; trying the next", "userApp", app.Name)
		return false, nil
	case err != nil:
		return false, fmt.Errorf("binding UserApp %s: %w", app.Name, err)
	}
	r.known.record(app)
	return true, nil
}

// setUserSpec makes the end user's part of app's spec the claim's.
func setUserSpec(app *flyv1alpha1.UserApp, claim *flyv1alpha1.UserAppClaim) {
	app.Spec.Routing = claim.Spec.Routing.DeepCopy()
	app.Spec.Secrets = slices.Clone(claim.Spec.Secrets)
}

// keepBound records the bound user in status and keeps its routing and secrets the claim's (a
// change to the claim's spec reaches the UserApp).
func (r *userAppClaimReconciler) keepBound(ctx context.Context, s *claimScope) error {
	app := s.user.app
	if !equality.Semantic.DeepEqual(app.Spec.Routing, s.claim.Spec.Routing) ||
		!equality.Semantic.DeepEqual(app.Spec.Secrets, s.claim.Spec.Secrets) {
		setUserSpec(app, s.claim)
		if err := r.client.Update(ctx, app); err != nil {
			return fmt.Errorf("updating UserApp %s with the claim's routing and secrets: %w", app.Name, err)
		}
		r.known.record(app)
	}
	if s.claim.Status.UserAppName != app.Name {
		// Bound by a pass that ended before its status write, or the claim's user was deleted and
		// this is its new one.
		source := flyv1alpha1.ClaimSourcePool
		if app.Name == coldStartName(s.claim) {
			source = flyv1alpha1.ClaimSourceColdStart
		}
		r.recordBinding(s, source)
	}
	s.claim.Status.AppName = app.Status.AppName
	return r.markBound(s)
}

// coldStart creates the claim's user from the pool's template, bound from the start: its UserApp
// (named after the claim, so a repeated create finds it) and its machines, started.
func (r *userAppClaimReconciler) coldStart(ctx context.Context, s *claimScope, pool *flyv1alpha1.UserAppPool) error {
	claim := s.claim
	app, err := newPooledApp(pool, coldStartName(claim), claim, r.client)
	if err != nil {
		return err
	}
	app.Labels[flyv1alpha1.ClaimedByLabel] = claim.Name
	setUserSpec(app, claim)
	err = r.client.Create(ctx, app)
	if kerrors.IsAlreadyExists(err) {
		// Ours (found by ownUsers next pass) or, unlikely, someone else's object of that name.
		return waitFor(r.options.TransitionPoll, flyv1alpha1.ReconcilingReason, "UserApp %s exists already; looking for it again", app.Name)
	}
	if err != nil {
		return fmt.Errorf("creating UserApp %s for a cold start: %w", app.Name, err)
	}
	if _, err := ensureMachines(ctx, r.client, app, nil, pool.Spec.Template.Machines, flyv1alpha1.PowerStateStarted); err != nil {
		return err
	}
	s.user = &pooledUser{app: app}
	r.recordBinding(s, flyv1alpha1.ClaimSourceColdStart)
	r.events.normal(claim, EventColdStart, "Create", "Pool %s had no ready user: created user %s (cold start)", pool.Name, app.Name)
	return r.markBound(s)
}

func (r *userAppClaimReconciler) recordBinding(s *claimScope, source flyv1alpha1.ClaimSource) {
	st := &s.claim.Status
	now := metav1.Now()
	st.UserAppName, st.AppName, st.Source, st.BoundTime = s.user.app.Name, s.user.app.Status.AppName, source, &now
}

func (r *userAppClaimReconciler) markBound(s *claimScope) error {
	st := &s.claim.Status
	reason, msg := flyv1alpha1.ClaimedReason, fmt.Sprintf("bound pooled user %s", st.UserAppName)
	if st.Source == flyv1alpha1.ClaimSourceColdStart {
		reason, msg = flyv1alpha1.ColdStartReason, fmt.Sprintf("pool empty: created one (cold start): user %s", st.UserAppName)
	}
	markTrue(&st.Conditions, s.claim.Generation, flyv1alpha1.BoundCondition, reason, msg)
	return nil
}

// startMachines asks every machine of the user to run, once its UserApp holds the claim's secrets
// and fresh keys: a machine started earlier would run, and be reachable with, what it had in the
// pool. The machines' update to the new secrets then happens while they are still stopped.
func (r *userAppClaimReconciler) startMachines(ctx context.Context, s *claimScope) error {
	app := s.user.app
	if !keysCurrent(app) {
		return waitFor(0, flyv1alpha1.UserNotReadyReason, "waiting for UserApp %s to set the claim's secrets and new keys before its machines start", app.Name)
	}
	pool := &flyv1alpha1.UserAppPool{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: app.Labels[flyv1alpha1.PoolLabel]}, pool)
	switch {
	case err == nil && pool.DeletionTimestamp.IsZero() && app.Labels[flyv1alpha1.TemplateHashLabel] == templateHash(&pool.Spec):
		// A cold start whose pass ended before its machines were created.
		n, err := ensureMachines(ctx, r.client, app, s.user.machines, pool.Spec.Template.Machines, flyv1alpha1.PowerStateStarted)
		if err != nil {
			return err
		}
		if n > 0 {
			return waitFor(0, flyv1alpha1.UserNotReadyReason, "created %d missing machine(s) of user %s", n, app.Name)
		}
	case err != nil && !kerrors.IsNotFound(err):
		return err
	}
	for i := range s.user.machines {
		um := &s.user.machines[i]
		if um.Spec.PowerState == flyv1alpha1.PowerStateStarted && um.Labels[flyv1alpha1.ClaimedByLabel] == s.claim.Name {
			continue
		}
		um.Spec.PowerState = flyv1alpha1.PowerStateStarted
		if um.Labels == nil {
			um.Labels = map[string]string{}
		}
		um.Labels[flyv1alpha1.ClaimedByLabel] = s.claim.Name
		if err := r.client.Update(ctx, um); err != nil {
			return fmt.Errorf("starting UserMachine %s: %w", um.Name, err)
		}
		ctrl.LoggerFrom(ctx).Info("Starting claimed machine", "userMachine", um.Name)
	}
	if len(s.user.machines) == 0 {
		return waitFor(0, flyv1alpha1.UserNotReadyReason, "user %s has no UserMachines yet", app.Name)
	}
	markTrue(&s.claim.Status.Conditions, s.claim.Generation, flyv1alpha1.MachinesStartedCondition, flyv1alpha1.ReadyReason,
		fmt.Sprintf("%d machine(s) asked to run", len(s.user.machines)))
	return nil
}

// keysCurrent reports whether app is Ready for its generation with the key generation its
// rotate-keys annotation asks for: the claim's secrets and keys are on Fly.
func keysCurrent(app *flyv1alpha1.UserApp) bool {
	return readyForGeneration(app, app.Status.Conditions, app.Status.ObservedGeneration) &&
		app.Status.KeyRotation == app.Annotations[flyv1alpha1.RotateKeysAnnotation]
}

// userReady waits until the user runs what the claim asked: its UserApp Ready, and each machine
// Ready, started and running the app's current secrets version.
func (r *userAppClaimReconciler) userReady(_ context.Context, s *claimScope) error {
	app := s.user.app
	s.claim.Status.AppName = app.Status.AppName
	for i := range s.user.machines {
		um := &s.user.machines[i]
		want := desiredMachineFor(um, app, r.options.DefaultRegion).Metadata[MetadataConfigHash]
		if !readyForGeneration(um, um.Status.Conditions, um.Status.ObservedGeneration) ||
			um.Status.State != MachineStarted || um.Status.ConfigHash != want {
			return waitFor(0, flyv1alpha1.UserNotReadyReason, "machine %s of user %s is %s; waiting until it runs the claim's configuration, started",
				um.Name, app.Name, orUnknown(um.Status.State))
		}
	}
	markTrue(&s.claim.Status.Conditions, s.claim.Generation, flyv1alpha1.UserReadyCondition, flyv1alpha1.ReadyReason,
		fmt.Sprintf("user %s runs %d machine(s) with the claim's secrets and keys", app.Name, len(s.user.machines)))
	return nil
}

func orUnknown(state string) string {
	if state == "" {
		return "not created yet"
	}
	return state
}
