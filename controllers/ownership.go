package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// Ownership of Fly apps and networks between tenants. A Fly app and a private network each have
// one owner among the UserApps of the cluster, whatever their namespaces: the oldest claim wins
// (creation time, then UID), and a newer claimant is refused before any Fly call. Outside the
// cluster, a Fly app's owner marker (keys.OwnerMarker, a secret hangar sets on every app it
// manages) tells an app of this UserApp from one of another object or another installation, so a
// UserApp created again, or a second cluster, never takes over or deletes another's app.

// Names of the field indexes of claims (registered by indexClaims).
const (
	// indexAppFlyName finds the UserApps that claim a Fly app name.
	indexAppFlyName = "fly.hangar.dev/app-name"
	// indexAppNetwork finds the UserApps that claim a Fly private network.
	indexAppNetwork = "fly.hangar.dev/network"
)

// indexClaims registers the indexes of the Fly app names and networks UserApps claim.
func indexClaims(indexer client.FieldIndexer, opts Options) error {
	ctx := context.Background()
	if err := indexer.IndexField(ctx, &flyv1alpha1.UserApp{}, indexAppFlyName, func(obj client.Object) []string {
		return claimedAppNames(obj.(*flyv1alpha1.UserApp), opts.AppNamePrefix)
	}); err != nil {
		return fmt.Errorf("indexing UserApps by Fly app name: %w", err)
	}
	if err := indexer.IndexField(ctx, &flyv1alpha1.UserApp{}, indexAppNetwork, func(obj client.Object) []string {
		return claimedNetworks(obj.(*flyv1alpha1.UserApp), opts.AppNamePrefix)
	}); err != nil {
		return fmt.Errorf("indexing UserApps by network: %w", err)
	}
	return nil
}

// claimedAppNames are the Fly app names a UserApp claims: the one it uses, and the one its spec
// or derivation asks for.
func claimedAppNames(app *flyv1alpha1.UserApp, prefix string) []string {
	wanted := app.Spec.AppName
	if wanted == "" {
		wanted = flyv1alpha1.DefaultFlyAppName(prefix, app.Namespace, app.Name)
	}
	return distinct(app.Status.AppName, wanted)
}

// claimedNetworks are the networks a UserApp claims: the one its app is on, and the one its spec
// or derivation asks for.
func claimedNetworks(app *flyv1alpha1.UserApp, prefix string) []string {
	wanted := app.Spec.Network
	if wanted == "" {
		names := claimedAppNames(app, prefix)
		wanted = flyv1alpha1.IsolatedNetworkName(names[len(names)-1])
	}
	return distinct(app.Status.Network, wanted)
}

func distinct(values ...string) []string {
	var out []string
	for _, v := range values {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// claimedFirst reports whether a claims before b: the older object, then the smaller UID.
func claimedFirst(a, b client.Object) bool {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.GetUID() < b.GetUID()
}

// checkClaims refuses the pass when spec.appName takes the form of names hangar derives for other
// UserApps, or an older UserApp claims the same Fly app name, or the same network without both
// sharing it; the refusal waits for a change of the claims (the other app deleted, or this one's
// spec changed).
func (r *userAppReconciler) checkClaims(ctx context.Context, s *appScope) error {
	var apps flyv1alpha1.UserAppList
	if err := r.client.List(ctx, &apps, client.MatchingFields{indexAppFlyName: s.flyName}); err != nil {
		return err
	}
	var holder *flyv1alpha1.UserApp
	for i := range apps.Items {
		other := &apps.Items[i]
		if other.UID != s.app.UID && other.DeletionTimestamp.IsZero() && claimedFirst(other, s.app) &&
			(holder == nil || claimedFirst(other, holder)) {
			holder = other
		}
	}
	if holder != nil {
		return waitFor(r.options.DriftInterval, flyv1alpha1.NameTakenReason,
			"Fly app name %q is claimed by an older UserApp%s: choose another spec.appName", s.flyName, where(holder, s.app))
	}
	if prefix := r.options.AppNamePrefix; prefix != "" && s.app.Spec.AppName != "" && !s.derivedName &&
		strings.HasPrefix(s.app.Spec.AppName, prefix) {
		// Derived names are predictable: taking one would squat the Fly app of a UserApp yet to come.
		return waitFor(0, flyv1alpha1.NameTakenReason,
			"spec.appName %q starts with %q, which is reserved for the Fly app names hangar derives: choose another name",
			s.app.Spec.AppName, prefix)
	}
	if err := r.client.List(ctx, &apps, client.MatchingFields{indexAppNetwork: s.network}); err != nil {
		return err
	}
	// The message names the oldest blocking claimant: the one that holds the network, not another
	// newcomer refused before this one.
	var blocking *flyv1alpha1.UserApp
	for i := range apps.Items {
		other := &apps.Items[i]
		if other.UID == s.app.UID || !other.DeletionTimestamp.IsZero() || !claimedFirst(other, s.app) {
			continue
		}
		if other.Namespace == s.app.Namespace && other.Spec.ShareNetwork && s.app.Spec.ShareNetwork {
			continue
		}
		if blocking == nil || claimedFirst(other, blocking) {
			blocking = other
		}
	}
	if blocking != nil {
		return waitFor(r.options.DriftInterval, flyv1alpha1.NetworkInUseReason,
			"network %q is used by an older UserApp%s: apps share a network only within one namespace and when each sets spec.shareNetwork: true",
			s.network, where(blocking, s.app))
	}
	return nil
}

// where names the other claimant when it is in the same namespace, and only says "in another
// namespace" otherwise: a tenant learns nothing about another tenant's objects.
func where(other, self client.Object) string {
	if other.GetNamespace() == self.GetNamespace() {
		return fmt.Sprintf(" (%s)", other.GetName())
	}
	return " in another namespace"
}

// appsSharingClaims maps a UserApp to the other UserApps claiming its Fly app name or network, so
// a refused claimant is looked at again when the owner goes away or changes.
func (r *userAppReconciler) appsSharingClaims(ctx context.Context, obj client.Object) []ctrl.Request {
	app, ok := obj.(*flyv1alpha1.UserApp)
	if !ok {
		return nil
	}
	var out []ctrl.Request
	for _, claim := range []struct {
		index  string
		values []string
	}{
		{indexAppFlyName, claimedAppNames(app, r.options.AppNamePrefix)},
		{indexAppNetwork, claimedNetworks(app, r.options.AppNamePrefix)},
	} {
		for _, v := range claim.values {
			var apps flyv1alpha1.UserAppList
			if err := r.client.List(ctx, &apps, client.MatchingFields{claim.index: v}); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "Listing UserApps by claim", "index", claim.index)
				continue
			}
			for i := range apps.Items {
				if apps.Items[i].UID != app.UID {
					out = append(out, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&apps.Items[i])})
				}
			}
		}
	}
	return out
}

// ownership is what a Fly app's owner markers say about it.
type ownership int

const (
	// unmarked: no hangar object marked the app (hangar never set its secrets).
	unmarked ownership = iota
	// released: no hangar object marked the app, and whoever holds the Fly token released it to
	// this UserApp (keys.ReleaseMarker).
	released
	// ownedByUs: the app carries this UserApp's marker.
	ownedByUs
	// ownedByAnother: the app carries another object's or another installation's marker.
	ownedByAnother
)

// ownerMarker is the name of the secret that marks a Fly app as this UserApp's.
func (r *userAppReconciler) ownerMarker(s *appScope) string {
	return r.keys.OwnerMarker(s.flyName, string(s.app.UID))
}

// ownershipOf reads the Fly app's owner markers (secret names only, never values).
func (r *userAppReconciler) ownershipOf(ctx context.Context, s *appScope) (ownership, error) {
	names, err := r.fly.AppSecretNames(ctx, s.flyName)
	if err != nil {
		return unmarked, err
	}
	mine, release := r.ownerMarker(s), keys.ReleaseMarker(s.app.Namespace, s.app.Name)
	found := unmarked
	for _, name := range names {
		switch {
		case name == mine:
			found = max(found, ownedByUs)
		case name == release:
			found = max(found, released)
		case keys.IsOwnerMarker(name):
			// Another's marker wins over ours: an app marked by two owners is not ours to take.
			return ownedByAnother, nil
		}
	}
	return found, nil
}
