package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// The UserAppClaim controller's rights, generated into config/rbac/role.yaml by `make manifests`.
// It binds pooled UserApps (an update), creates cold-start users, and starts their machines.
//
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userappclaims,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userappclaims/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userappclaims/finalizers,verbs=update
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapppools,verbs=get;list;watch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapps,verbs=create;delete
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=usermachines,verbs=create;delete

// kindUserAppClaim names the kind in metrics.
const kindUserAppClaim = "UserAppClaim"

// indexClaimPool finds the claims of a pool.
const indexClaimPool = "spec.poolRef.name"

// Event reasons of claims.
const (
	// EventBound: the claim took a ready user out of its pool.
	EventBound = "Bound"
	// EventColdStart: the pool had no ready user; the claim created one.
	EventColdStart = "ColdStart"
)

// userAppClaimReconciler binds each claim to one user of its pool, or creates one when the pool
// has none ready, makes the user the end user's and starts its machines.
type userAppClaimReconciler struct {
	base
}

// claimScope is what one pass over a claim works on.
type claimScope struct {
	claim *flyv1alpha1.UserAppClaim
	// user is the claim's user once found or bound in this pass.
	user *pooledUser
}

// lifecycle declares the claim's phases, each owning the condition it names.
func (r *userAppClaimReconciler) lifecycle() lifecycle[*flyv1alpha1.UserAppClaim, *claimScope] {
	return lifecycle[*flyv1alpha1.UserAppClaim, *claimScope]{
		kind:  kindUserAppClaim,
		scope: func(c *flyv1alpha1.UserAppClaim) *claimScope { return &claimScope{claim: c} },
		phases: []phase[*claimScope]{
			{flyv1alpha1.BoundCondition, r.bind},
			{flyv1alpha1.MachinesStartedCondition, r.startMachines},
			{flyv1alpha1.UserReadyCondition, r.userReady},
		},
		finalize: r.finalize,
		nextPass: func(*claimScope) time.Duration { return r.options.DriftInterval },
		readyMessage: func(s *claimScope) string {
			st := &s.claim.Status
			machines := 0
			if s.user != nil {
				machines = len(s.user.machines)
			}
			return fmt.Sprintf("user %s (Fly app %s, %s) runs %d machine(s)", st.UserAppName, st.AppName, st.Source, machines)
		},
	}
}

// setupWithManager registers the controller, its index and its watches.
func (r *userAppClaimReconciler) setupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &flyv1alpha1.UserAppClaim{}, indexClaimPool,
		func(obj client.Object) []string {
			return []string{obj.(*flyv1alpha1.UserAppClaim).Spec.PoolRef.Name}
		}); err != nil {
		return fmt.Errorf("indexing UserAppClaims by pool: %w", err)
	}
	return setupKind(mgr, r.base, r.lifecycle(), func(b *builder.Builder) *builder.Builder {
		return b.
			// The claimed user's UserApp (its controller reference is the claim's).
			Owns(&flyv1alpha1.UserApp{}).
			// Its machines, labelled with the claim's name when they are started.
			Watches(&flyv1alpha1.UserMachine{}, handler.EnqueueRequestsFromMapFunc(claimOfMachine),
				builder.WithPredicates(predicate.NewPredicateFuncs(func(obj client.Object) bool {
					return obj.GetLabels()[flyv1alpha1.ClaimedByLabel] != ""
				}))).
			// A claim waiting for its pool to exist.
			Watches(&flyv1alpha1.UserAppPool{}, handler.EnqueueRequestsFromMapFunc(r.claimsOfPool),
				builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	})
}

// claimOfMachine maps a claimed user's UserMachine to its claim.
func claimOfMachine(_ context.Context, obj client.Object) []ctrl.Request {
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace(), Name: obj.GetLabels()[flyv1alpha1.ClaimedByLabel]}}}
}

// claimsOfPool maps a pool to the claims naming it.
func (r *userAppClaimReconciler) claimsOfPool(ctx context.Context, pool client.Object) []ctrl.Request {
	return requestsByIndex(ctx, r.client, &flyv1alpha1.UserAppClaimList{}, indexClaimPool, pool)
}

// claimKeyRotation is the rotate-keys value a claim writes on the pooled UserApp it binds: the
// UserApp controller starts a new key generation for it, without the usual overlap (see
// rotateKeys), so no key of the pool time stays valid for the end user's traffic.
func claimKeyRotation(claim types.UID) string { return "claim-" + string(claim) }

// coldStartName is the UserApp a claim creates when its pool has none ready: derived from the
// claim's UID, so a pass that ended before it saw its create finds it again, never making two.
func coldStartName(claim *flyv1alpha1.UserAppClaim) string {
	name := claim.Name
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-.")
	}
	return name + "-" + strings.ReplaceAll(string(claim.UID), "-", "")[:8]
}

// finalize deletes the claimed user: its UserMachines and its UserApp, whose finalizer removes
// the Fly app. The claim stays until the UserApp is gone, so deleting a claim means its Fly app is
// going when the claim disappears.
func (r *userAppClaimReconciler) finalize(ctx context.Context, s *claimScope) error {
	users, err := r.ownUsers(ctx, s.claim)
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := deleteMachines(ctx, r.client, u.machines); err != nil {
			return err
		}
		if u.app.DeletionTimestamp.IsZero() {
			if err := client.IgnoreNotFound(r.client.Delete(ctx, u.app)); err != nil {
				return fmt.Errorf("deleting UserApp %s: %w", u.app.Name, err)
			}
		}
	}
	if len(users) > 0 {
		return waitFor(r.options.DriftInterval, flyv1alpha1.DeletingReason, "deleting user %s and its Fly app", users[0].app.Name)
	}
	return nil
}
