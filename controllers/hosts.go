package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/hostclaim"
)

// Hosts have one owner each, decided by internal/hostclaim: the rule the router routes by. The
// HostsAccepted phase tells an object whether its UserApp owns every host it claims; a loser keeps
// its Fly app or machine, but the router sends it nothing for the hosts it lost, so it is not
// Ready (reason HostConflict, with a Warning Event). The phase is the last of both kinds, so a
// conflict never holds up the Fly work, and a loser keeps its drift checks. An object being
// deleted runs no phase; its claims rank after every live claim, so it releases its hosts as soon
// as its deletion starts.

// canonicalBaseDomain checks the router's base domain (Options.RouterBaseDomain) and returns its
// canonical form; empty stays empty (subdomains claim nothing, as in the router).
func canonicalBaseDomain(domain string) (string, error) {
	if domain == "" {
		return "", nil
	}
	canonical, err := hostclaim.Normalize(domain)
	if err != nil {
		return "", fmt.Errorf("controllers: router base domain %q: %w", domain, err)
	}
	return canonical, nil
}

// hostClaimsOf returns the host claims of a UserApp or UserMachine and the hosts it names that are
// not DNS names. baseDomain is canonical.
func hostClaimsOf(obj client.Object, baseDomain string) ([]hostclaim.Claim, []string) {
	switch o := obj.(type) {
	case *flyv1alpha1.UserApp:
		return hostclaim.AppClaims(o, baseDomain)
	case *flyv1alpha1.UserMachine:
		return hostclaim.MachineClaims(o)
	}
	return nil, nil
}

// claimedHosts are the canonical hosts obj claims: the keys of the host indexes of both kinds.
func claimedHosts(obj client.Object, baseDomain string) []string {
	claims, _ := hostClaimsOf(obj, baseDomain)
	return hostclaim.Hosts(claims)
}

// acceptHosts is the UserApp's HostsAccepted phase.
func (r *userAppReconciler) acceptHosts(ctx context.Context, s *appScope) error {
	return r.checkHosts(ctx, s.app, r.untilDriftCheck(s.app))
}

// acceptHosts is the UserMachine's HostsAccepted phase.
func (r *userMachineReconciler) acceptHosts(ctx context.Context, s *machineScope) error {
	return r.checkHosts(ctx, s.um, r.nextPass(s))
}

// checkHosts decides the owner of every host obj claims, from the claims of every object the host
// indexes find for them. When obj's UserApp owns them all, HostsAccepted is True (with a Normal
// Event when it ends a conflict). Otherwise the pass ends with HostConflict (a host another app
// owns) or InvalidHost (a host that is no DNS name), and comes back after retry, the kind's
// usual next pass; a change to a rival's claims brings it back sooner (watchHostClaims).
func (b base) checkHosts(ctx context.Context, obj object, retry time.Duration) error {
	baseDomain := b.options.RouterBaseDomain
	own, invalid := hostClaimsOf(obj, baseDomain)
	rivals, err := b.rivalClaims(ctx, obj, own)
	if err != nil {
		return err
	}
	var lost []string
	if len(own) > 0 {
		mine := own[0].AppKey()
		for _, d := range hostclaim.Decide(append(rivals, own...)) {
			if d.Owner() != mine {
				lost = append(lost, d.Host+" ("+ownerName(d.Owner(), obj.GetNamespace())+")")
			}
		}
		slices.Sort(lost)
	}
	var problems []string
	if len(lost) > 0 {
		problems = append(problems, fmt.Sprintf("hosts owned by an older claim of another UserApp are not routed here: %s; "+
			"remove them from spec.routing or free them first", strings.Join(lost, ", ")))
	}
	if len(invalid) > 0 {
		problems = append(problems, "hosts that are not DNS names are not routed: "+strings.Join(invalid, ", "))
	}
	if len(problems) > 0 {
		reason := flyv1alpha1.HostConflictReason
		if len(lost) == 0 {
			reason = flyv1alpha1.InvalidHostReason
		}
		return waitFor(max(retry, time.Second), reason, "%s", strings.Join(problems, "; "))
	}

	prev := meta.FindStatusCondition(obj.GetConditions(), flyv1alpha1.HostsAcceptedCondition)
	message := acceptedMessage(obj, own, baseDomain)
	if prev != nil && prev.Status == metav1.ConditionFalse && prev.Reason == flyv1alpha1.HostConflictReason {
		b.events.normal(obj, EventHostsAccepted, "Route", "%s", message)
	}
	setConditions(obj, func(conds *[]metav1.Condition, gen int64) {
		markTrue(conds, gen, flyv1alpha1.HostsAcceptedCondition, flyv1alpha1.ReadyReason, message)
	})
	return nil
}

// acceptedMessage says what HostsAccepted=True covers.
func acceptedMessage(obj object, own []hostclaim.Claim, baseDomain string) string {
	msg := "claims no hosts"
	if len(own) > 0 {
		msg = fmt.Sprintf("UserApp %s owns every claimed host: %s", own[0].App, strings.Join(hostclaim.Hosts(own), ", "))
	}
	if app, ok := obj.(*flyv1alpha1.UserApp); ok && baseDomain == "" && app.Spec.Routing != nil && app.Spec.Routing.Subdomain != "" {
		msg += "; spec.routing.subdomain is not checked: the manager has no --router-base-domain"
	}
	return msg
}

// ownerName names the UserApp that owns a host for a loser in namespace: namespace/name when it is
// in the same namespace, and only "in another namespace" otherwise, so a tenant learns nothing of
// another tenant's objects (the router's log names them for operators).
func ownerName(owner types.NamespacedName, namespace string) string {
	if owner.Namespace == namespace {
		return "UserApp " + owner.String()
	}
	return "a UserApp in another namespace"
}

// rivalClaims are the claims other objects make on the hosts of own, from the host indexes.
func (b base) rivalClaims(ctx context.Context, self client.Object, own []hostclaim.Claim) ([]hostclaim.Claim, error) {
	if len(own) == 0 {
		return nil, nil
	}
	hosts := make(map[string]bool, len(own))
	for _, c := range own {
		hosts[c.Host] = true
	}
	seen := map[types.UID]bool{self.GetUID(): true}
	var rivals []hostclaim.Claim
	add := func(obj client.Object) {
		if seen[obj.GetUID()] {
			return
		}
		seen[obj.GetUID()] = true
		claims, _ := hostClaimsOf(obj, b.options.RouterBaseDomain)
		for _, c := range claims {
			if hosts[c.Host] {
				rivals = append(rivals, c)
			}
		}
	}
	for _, c := range own {
		var apps flyv1alpha1.UserAppList
		if err := b.client.List(ctx, &apps, client.MatchingFields{indexAppHosts: c.Host}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		for i := range apps.Items {
			add(&apps.Items[i])
		}
		var machines flyv1alpha1.UserMachineList
		if err := b.client.List(ctx, &machines, client.MatchingFields{indexMachineHosts: c.Host}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		for i := range machines.Items {
			add(&machines.Items[i])
		}
	}
	return rivals, nil
}

// watchHostClaims adds to a kind's controller the watches that bring its objects back when another
// object's claims on one of their hosts change: a UserApp or UserMachine created or deleted, its
// hosts changed, or its deletion started (which releases its hosts). newList makes an empty list
// of the kind and index is the kind's host index. An update maps both the old and the new object,
// so the claimants of a host an object dropped are found too.
func (b base) watchHostClaims(bld *builder.Builder, newList func() client.ObjectList, index string) *builder.Builder {
	rivals := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []ctrl.Request {
		return b.hostRivals(ctx, obj, newList, index)
	})
	changed := builder.WithPredicates(hostClaimsChanged(b.options.RouterBaseDomain))
	return bld.
		Watches(&flyv1alpha1.UserApp{}, rivals, changed).
		Watches(&flyv1alpha1.UserMachine{}, rivals, changed)
}

// hostRivals maps obj to the objects of one kind (newList, index) that claim any of its hosts,
// obj itself left out.
func (b base) hostRivals(ctx context.Context, obj client.Object, newList func() client.ObjectList, index string) []ctrl.Request {
	var reqs []ctrl.Request
	for _, host := range claimedHosts(obj, b.options.RouterBaseDomain) {
		list := newList()
		if err := b.client.List(ctx, list, client.MatchingFields{index: host}, client.UnsafeDisableDeepCopy); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing the claimants of a host", "index", index)
			continue
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Reading a list", "index", index)
			continue
		}
		for _, item := range items {
			if o, ok := item.(client.Object); ok && o.GetUID() != obj.GetUID() {
				reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(o)})
			}
		}
	}
	return reqs
}

// hostClaimsChanged passes the events that can change who owns a host; status writes pass none.
func hostClaimsChanged(baseDomain string) predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero() ||
				!slices.Equal(claimedHosts(e.ObjectOld, baseDomain), claimedHosts(e.ObjectNew, baseDomain))
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}
