package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// A pooled user is a UserApp and its UserMachines made from a pool's template. The pool and claim
// controllers share what is below: how a user is made from a template, how its parts are found,
// and when it is ready to be claimed.

// pooledUser is one user of a pool as listed in a pass.
type pooledUser struct {
	app      *flyv1alpha1.UserApp
	machines []flyv1alpha1.UserMachine
}

// templateHash identifies what a pool makes: its template and warm state. It is short, lower-case
// hex, fit for a label value.
func templateHash(spec *flyv1alpha1.UserAppPoolSpec) string {
	raw, err := json.Marshal(struct {
		Template  flyv1alpha1.UserAppTemplate `json:"template"`
		WarmState flyv1alpha1.WarmState       `json:"warmState"`
	}{spec.Template, effectiveWarmState(spec)})
	if err != nil {
		// Every field is a plain value; failing here is a programming error.
		panic("controllers: encoding a pool template: " + err.Error())
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:5])
}

// effectiveWarmState is spec.warmState with its default.
func effectiveWarmState(spec *flyv1alpha1.UserAppPoolSpec) flyv1alpha1.WarmState {
	if spec.WarmState == "" {
		return flyv1alpha1.WarmStateStopped
	}
	return spec.WarmState
}

// warmPower is the powerState pooled machines wait in.
func warmPower(spec *flyv1alpha1.UserAppPoolSpec) flyv1alpha1.PowerState {
	if effectiveWarmState(spec) == flyv1alpha1.WarmStateSuspended {
		return flyv1alpha1.PowerStateSuspended
	}
	return flyv1alpha1.PowerStateStopped
}

// userLabels are the labels of a pooled user's objects: the pool's own (so a shard selector that
// takes the pool takes its users), the pool's name and the template hash.
func userLabels(pool *flyv1alpha1.UserAppPool, hash string) map[string]string {
	labels := maps.Clone(pool.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	delete(labels, flyv1alpha1.ClaimedByLabel)
	labels[flyv1alpha1.PoolLabel] = pool.Name
	labels[flyv1alpha1.TemplateHashLabel] = hash
	return labels
}

// newPooledApp is the UserApp of a new user of pool, owned by owner (the pool, or a claim for a
// cold start). name empty: the apiserver generates one from the pool's name.
func newPooledApp(pool *flyv1alpha1.UserAppPool, name string, owner client.Object, c client.Client) (*flyv1alpha1.UserApp, error) {
	app := &flyv1alpha1.UserApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: pool.Namespace, Name: name, Labels: userLabels(pool, templateHash(&pool.Spec))},
		Spec: flyv1alpha1.UserAppSpec{
			Org:               pool.Spec.Template.Org,
			AllocatePrivateIP: pool.Spec.Template.AllocatePrivateIP,
			DeletionPolicy:    flyv1alpha1.DeletionPolicyDelete,
		},
	}
	if name == "" {
		app.GenerateName = pool.Name + "-"
	}
	if err := controllerutil.SetControllerReference(owner, app, c.Scheme()); err != nil {
		return nil, err
	}
	return app, nil
}

// pooledMachineName is the UserMachine of template entry tpl in the user whose UserApp is app.
func pooledMachineName(app, tpl string) string { return app + "-" + tpl }

// newPooledMachine is the UserMachine of template entry tpl for the user whose UserApp is app, in
// power state power, owned by the UserApp.
func newPooledMachine(app *flyv1alpha1.UserApp, tpl flyv1alpha1.MachineTemplate, power flyv1alpha1.PowerState, c client.Client) (*flyv1alpha1.UserMachine, error) {
	t := tpl.Spec
	um := &flyv1alpha1.UserMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: pooledMachineName(app.Name, tpl.Name), Labels: maps.Clone(app.Labels)},
		Spec: flyv1alpha1.UserMachineSpec{
			AppRef: flyv1alpha1.AppReference{Name: app.Name},
			Region: t.Region, Image: t.Image, Guest: t.Guest, Env: t.Env, Metadata: t.Metadata,
			Services: t.Services, Checks: t.Checks, Restart: t.Restart, StopConfig: t.StopConfig,
			PowerState: power,
		},
	}
	if err := controllerutil.SetControllerReference(app, um, c.Scheme()); err != nil {
		return nil, err
	}
	return um, nil
}

// ensureMachines creates the template's UserMachines a user lacks (a pass that created the
// UserApp may have ended before its machines) and says how many it created. Creating one that
// exists is no error.
func ensureMachines(ctx context.Context, c client.Client, app *flyv1alpha1.UserApp, have []flyv1alpha1.UserMachine,
	machines []flyv1alpha1.MachineTemplate, power flyv1alpha1.PowerState) (created int, err error) {
	for _, tpl := range machines {
		name := pooledMachineName(app.Name, tpl.Name)
		if slices.ContainsFunc(have, func(um flyv1alpha1.UserMachine) bool { return um.Name == name }) {
			continue
		}
		um, err := newPooledMachine(app, tpl, power, c)
		if err != nil {
			return created, err
		}
		err = c.Create(ctx, um)
		switch {
		case apierrors.IsAlreadyExists(err):
			// Created already; the cache had not shown it yet.
		case err != nil:
			return created, fmt.Errorf("creating UserMachine %s: %w", name, err)
		default:
			created++
		}
	}
	return created, nil
}

// deleteUser deletes a user's UserApp, only if it is still at the version read (a claim that bound
// it since wins: conflict, nothing deleted), then its UserMachines. The UserApp's finalizer removes
// the Fly app once the machines are gone.
func deleteUser(ctx context.Context, c client.Client, u pooledUser) (deleted bool, err error) {
	if u.app.DeletionTimestamp.IsZero() {
		rv := u.app.ResourceVersion
		err := c.Delete(ctx, u.app, client.Preconditions{UID: &u.app.UID, ResourceVersion: &rv})
		switch {
		case apierrors.IsConflict(err):
			return false, nil
		case apierrors.IsNotFound(err):
			return true, nil
		case err != nil:
			return false, fmt.Errorf("deleting UserApp %s: %w", u.app.Name, err)
		}
	}
	return true, deleteMachines(ctx, c, u.machines)
}

// deleteMachines deletes UserMachines (each destroys its Fly machine).
func deleteMachines(ctx context.Context, c client.Client, machines []flyv1alpha1.UserMachine) error {
	for i := range machines {
		if !machines[i].DeletionTimestamp.IsZero() {
			continue
		}
		if err := client.IgnoreNotFound(c.Delete(ctx, &machines[i])); err != nil {
			return fmt.Errorf("deleting UserMachine %s: %w", machines[i].Name, err)
		}
	}
	return nil
}

// listPoolUsers reads every UserApp made for the pool named pool (claimed or not) from the
// apiserver, not the cache: a user created or bound by the previous pass must be seen, or the pool
// would make another and a claim could bind a second one. Their UserMachines come from the cache,
// by app.
func listPoolUsers(ctx context.Context, reader client.Reader, c client.Client, namespace, pool string) ([]pooledUser, error) {
	var apps flyv1alpha1.UserAppList
	if err := reader.List(ctx, &apps, client.InNamespace(namespace), client.MatchingLabels{flyv1alpha1.PoolLabel: pool}); err != nil {
		return nil, fmt.Errorf("listing the users of pool %s: %w", pool, err)
	}
	return withMachines(ctx, c, apps.Items)
}

// withMachines pairs each UserApp with its UserMachines, read from the cache.
func withMachines(ctx context.Context, c client.Client, apps []flyv1alpha1.UserApp) ([]pooledUser, error) {
	users := make([]pooledUser, 0, len(apps))
	for i := range apps {
		var machines flyv1alpha1.UserMachineList
		if err := c.List(ctx, &machines, client.InNamespace(apps[i].Namespace),
			client.MatchingFields{indexMachineAppRef: apps[i].Name}); err != nil {
			return nil, fmt.Errorf("listing the UserMachines of %s: %w", apps[i].Name, err)
		}
		users = append(users, pooledUser{app: &apps[i], machines: machines.Items})
	}
	// Oldest first: claims take the user that waited longest, scale-down removes the newest.
	slices.SortFunc(users, func(a, b pooledUser) int {
		if c := a.app.CreationTimestamp.Compare(b.app.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.app.Name, b.app.Name)
	})
	return users, nil
}

// unclaimedIn reports whether u waits in pool: not bound to a claim, controlled by the pool.
func (u pooledUser) unclaimedIn(pool types.UID) bool {
	owner := metav1.GetControllerOf(u.app)
	return u.app.Labels[flyv1alpha1.ClaimedByLabel] == "" && owner != nil && owner.UID == pool
}

// claimedBy reports whether u is bound to the claim with that UID.
func (u pooledUser) claimedBy(claim *flyv1alpha1.UserAppClaim) bool {
	owner := metav1.GetControllerOf(u.app)
	return u.app.Labels[flyv1alpha1.ClaimedByLabel] == claim.Name && owner != nil && owner.UID == claim.UID
}

// deleting reports whether u's UserApp is being deleted.
func (u pooledUser) deleting() bool { return !u.app.DeletionTimestamp.IsZero() }

// warm reports whether u is ready to be claimed: its UserApp Ready for its generation, and each of
// the template's machines Ready for its generation in the warm state (booted once, then stopped or
// suspended).
func (u pooledUser) warm(spec *flyv1alpha1.UserAppPoolSpec) bool {
	if !readyForGeneration(u.app, u.app.Status.Conditions, u.app.Status.ObservedGeneration) {
		return false
	}
	power := warmPower(spec)
	for _, tpl := range spec.Template.Machines {
		i := slices.IndexFunc(u.machines, func(um flyv1alpha1.UserMachine) bool {
			return um.Name == pooledMachineName(u.app.Name, tpl.Name)
		})
		if i < 0 {
			return false
		}
		um := &u.machines[i]
		if !readyForGeneration(um, um.Status.Conditions, um.Status.ObservedGeneration) ||
			um.Spec.PowerState != power || !settled(um.Status.State) || !powerSatisfied(power, um.Status.State) {
			return false
		}
	}
	return true
}

// readyForGeneration reports whether obj's Ready condition is True for its current generation.
func readyForGeneration(obj client.Object, conds []metav1.Condition, observed int64) bool {
	c := meta.FindStatusCondition(conds, flyv1alpha1.ReadyCondition)
	return c != nil && c.Status == metav1.ConditionTrue && observed == obj.GetGeneration() && c.ObservedGeneration == obj.GetGeneration()
}
