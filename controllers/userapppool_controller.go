package controllers

import (
	"context"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// The UserAppPool controller's rights, generated into config/rbac/role.yaml by `make manifests`.
// It creates and deletes the UserApps and UserMachines of pooled users.
//
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapppools,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapppools/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapppools/finalizers,verbs=update
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapps,verbs=create;delete
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=usermachines,verbs=create;delete

// kindUserAppPool names the kind in metrics.
const kindUserAppPool = "UserAppPool"

// Event reasons of pools.
const (
	// EventPoolUserCreated: the pool made a user (filling, refilling after a claim, or replacing).
	EventPoolUserCreated = "UserCreated"
	// EventPoolUserReplaced: the pool deleted an unclaimed user of an old template.
	EventPoolUserReplaced = "UserReplaced"
	// EventPoolScaledDown: the pool deleted an unclaimed user above spec.replicas.
	EventPoolScaledDown = "ScaledDown"
)

// userAppPoolReconciler keeps each pool's unclaimed users: as many as spec.replicas, of the current
// template, ready. It never touches a claimed user.
type userAppPoolReconciler struct {
	base
}

// poolScope is what one pass over a pool works on.
type poolScope struct {
	pool *flyv1alpha1.UserAppPool
	hash string
	// unclaimed are the pool's users waiting for a claim (not being deleted), oldest first.
	unclaimed []pooledUser
	// deleting are unclaimed users being deleted.
	deleting []pooledUser
}

// lifecycle declares the pool's phases, each owning the condition it names.
func (r *userAppPoolReconciler) lifecycle() lifecycle[*flyv1alpha1.UserAppPool, *poolScope] {
	return lifecycle[*flyv1alpha1.UserAppPool, *poolScope]{
		kind: kindUserAppPool,
		scope: func(pool *flyv1alpha1.UserAppPool) *poolScope {
			return &poolScope{pool: pool, hash: templateHash(&pool.Spec)}
		},
		phases: []phase[*poolScope]{
			{flyv1alpha1.PoolScaledCondition, r.scale},
			{flyv1alpha1.UsersReadyCondition, r.usersReady},
		},
		finalize: r.finalize,
		nextPass: func(*poolScope) time.Duration { return r.options.DriftInterval },
		readyMessage: func(s *poolScope) string {
			return fmt.Sprintf("%d unclaimed users ready (%s); %d claimed", s.pool.Status.ReadyReplicas,
				effectiveWarmState(&s.pool.Spec), s.pool.Status.Claimed)
		},
	}
}

// setupWithManager registers the controller and its watches.
func (r *userAppPoolReconciler) setupWithManager(mgr ctrl.Manager) error {
	return setupKind(mgr, r.base, r.lifecycle(), func(b *builder.Builder) *builder.Builder {
		return b.
			// Its users' UserApps (created, Ready, claimed away: the controller reference moves).
			Owns(&flyv1alpha1.UserApp{}).
			// Their machines reaching the warm state, while unclaimed.
			Watches(&flyv1alpha1.UserMachine{}, handler.EnqueueRequestsFromMapFunc(poolOfMachine),
				builder.WithPredicates(predicate.NewPredicateFuncs(func(obj client.Object) bool {
					labels := obj.GetLabels()
					return labels[flyv1alpha1.PoolLabel] != "" && labels[flyv1alpha1.ClaimedByLabel] == ""
				})))
	})
}

// poolOfMachine maps a pooled user's UserMachine to its pool.
func poolOfMachine(_ context.Context, obj client.Object) []ctrl.Request {
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace(), Name: obj.GetLabels()[flyv1alpha1.PoolLabel]}}}
}

// finalize deletes the pool's unclaimed users and waits until they are gone. Claimed users belong
// to their claims and stay.
func (r *userAppPoolReconciler) finalize(ctx context.Context, s *poolScope) error {
	if err := r.listUsers(ctx, s); err != nil {
		return err
	}
	for _, u := range append(s.unclaimed, s.deleting...) {
		if _, err := deleteUser(ctx, r.client, u); err != nil {
			return err
		}
	}
	if n := len(s.unclaimed) + len(s.deleting); n > 0 {
		return waitFor(r.options.DriftInterval, flyv1alpha1.DeletingReason, "deleting %d unclaimed users", n)
	}
	return nil
}
