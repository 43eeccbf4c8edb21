package hostclaim

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// Kind says which kind of object made a claim.
type Kind uint8

const (
	// KindApp is a UserApp's claim: an entry of spec.routing.hosts or <spec.routing.subdomain>.<base domain>.
	KindApp Kind = iota
	// KindMachine is a UserMachine's claim: an entry of its spec.routing.hosts.
	KindMachine
)

// String is the kind's name, as in "UserApp".
func (k Kind) String() string {
	if k == KindMachine {
		return "UserMachine"
	}
	return "UserApp"
}

// Claim is one object's wish to serve one host.
type Claim struct {
	// Host is canonical (see Normalize).
	Host string
	Kind Kind
	// Namespace and Name name the claiming object.
	Namespace, Name string
	// App names the UserApp the claim is for, in Namespace: the object itself for a UserApp,
	// spec.appRef.name for a UserMachine.
	App string
	// Subdomain is true when a UserApp claims Host through spec.routing.subdomain.
	Subdomain bool
	// Created and UID are the object's; they order claims (see Less).
	Created time.Time
	UID     types.UID
	// Released is true while the object is being deleted.
	Released bool
}

// AppKey is the UserApp the claim is for.
func (c Claim) AppKey() types.NamespacedName {
	return types.NamespacedName{Namespace: c.Namespace, Name: c.App}
}

// Object names the claiming object for people: "UserApp ns/name" or "UserMachine ns/name".
func (c Claim) Object() string {
	return c.Kind.String() + " " + c.Namespace + "/" + c.Name
}

// Compare orders claims on one host, strongest first: live before being deleted, then the older
// object, the smaller UID, namespace, name, and a UserApp before a UserMachine.
func Compare(a, b Claim) int {
	if a.Released != b.Released {
		if a.Released {
			return 1
		}
		return -1
	}
	if c := a.Created.Compare(b.Created); c != 0 {
		return c
	}
	return cmp.Or(
		strings.Compare(string(a.UID), string(b.UID)),
		strings.Compare(a.Namespace, b.Namespace),
		strings.Compare(a.Name, b.Name),
		cmp.Compare(a.Kind, b.Kind),
	)
}

// AppClaims are the claims of a UserApp: each spec.routing.hosts entry and, when baseDomain is set,
// <spec.routing.subdomain>.<baseDomain>. baseDomain must be canonical (Normalize); empty turns
// subdomains off, as in the router. Hosts that are not DNS names claim nothing: they are returned
// in invalid, as written. A host named twice (a host equal to the app's own subdomain) is claimed
// once.
func AppClaims(app *flyv1alpha1.UserApp, baseDomain string) (claims []Claim, invalid []string) {
	r := app.Spec.Routing
	if r == nil {
		return nil, nil
	}
	proto := Claim{
		Kind: KindApp, Namespace: app.Namespace, Name: app.Name, App: app.Name,
		Created: app.CreationTimestamp.Time, UID: app.UID, Released: app.DeletionTimestamp != nil,
	}
	claims = make([]Claim, 0, len(r.Hosts)+1)
	for _, h := range r.Hosts {
		claims, invalid = add(claims, invalid, proto, h)
	}
	if r.Subdomain != "" && baseDomain != "" {
		proto.Subdomain = true
		claims, invalid = add(claims, invalid, proto, r.Subdomain+"."+baseDomain)
	}
	return claims, invalid
}

// MachineClaims are the claims of a UserMachine: each spec.routing.hosts entry, for the UserApp of
// spec.appRef. Hosts that are not DNS names are returned in invalid, as written.
func MachineClaims(m *flyv1alpha1.UserMachine) (claims []Claim, invalid []string) {
	if m.Spec.Routing == nil {
		return nil, nil
	}
	proto := Claim{
		Kind: KindMachine, Namespace: m.Namespace, Name: m.Name, App: m.Spec.AppRef.Name,
		Created: m.CreationTimestamp.Time, UID: m.UID, Released: m.DeletionTimestamp != nil,
	}
	claims = make([]Claim, 0, len(m.Spec.Routing.Hosts))
	for _, h := range m.Spec.Routing.Hosts {
		claims, invalid = add(claims, invalid, proto, h)
	}
	return claims, invalid
}

func add(claims []Claim, invalid []string, proto Claim, host string) ([]Claim, []string) {
	canonical, err := Normalize(host)
	if err != nil {
		return claims, append(invalid, host)
	}
	for _, c := range claims {
		if c.Host == canonical {
			return claims, invalid
		}
	}
	proto.Host = canonical
	return append(claims, proto), invalid
}

// Hosts are the hosts of claims, in order.
func Hosts(claims []Claim) []string {
	hosts := make([]string, len(claims))
	for i, c := range claims {
		hosts[i] = c.Host
	}
	return hosts
}

// Decision is the rule's outcome for one host.
type Decision struct {
	Host string
	// Claims are every claim on Host, strongest first (Compare): Claims[0] decides the owner.
	Claims []Claim
	// Route indexes the claim in Claims the host is routed to: the first machine claim of the
	// owner app that is as live as Claims[0], else Claims[0].
	Route int
}

// Owner is the UserApp that owns the host.
func (d Decision) Owner() types.NamespacedName { return d.Claims[0].AppKey() }

// Winner is the claim the host is routed to.
func (d Decision) Winner() Claim { return d.Claims[d.Route] }

// Lost reports whether Claims[i] loses the host: it is for another app than the owner. A claim of
// the owner app that is not routed (the app's own claim under a machine's, a second machine's) is
// a refinement, not a loss.
func (d Decision) Lost(i int) bool { return d.Claims[i].AppKey() != d.Owner() }

// Decide applies the rule to claims, which may name any number of hosts and come in any order, and
// returns one Decision per host (in the order hosts first appear). claims is not modified; the
// decisions share one new copy of it. It takes linear time plus a sort of each contested host.
//
// The rule: a host belongs to one UserApp, the app of the oldest claim on it. Claims are ordered by
// their object's creationTimestamp, then its UID (then namespace, name and kind, so objects without
// a UID, as in tests, still order the same everywhere); the claims of an object being deleted come
// after every live claim, so an object releases its hosts as soon as its deletion starts and the
// next claimant takes over. Within the owning app, a UserMachine's claim routes the host to that
// machine: a machine refines a host of its own app and never takes one another app owns. Every
// claim of another app loses.
//
// The age is the object's, not the claim's: a host added to an old object takes the host from a
// younger one. Kubernetes keeps no time per list entry, and the object's age is what every replica
// of the manager and the router agrees on.
func Decide(claims []Claim) []Decision {
	if len(claims) == 0 {
		return nil
	}
	groupOf := make(map[string]int, len(claims))
	group := make([]int, len(claims))
	var sizes []int
	for i, c := range claims {
		g, seen := groupOf[c.Host]
		if !seen {
			g = len(sizes)
			groupOf[c.Host] = g
			sizes = append(sizes, 0)
		}
		sizes[g]++
		group[i] = g
	}
	starts := make([]int, len(sizes))
	next := make([]int, len(sizes))
	for g, off := 1, sizes[0]; g < len(sizes); g++ {
		starts[g], next[g] = off, off
		off += sizes[g]
	}
	grouped := make([]Claim, len(claims))
	for i, c := range claims {
		grouped[next[group[i]]] = c
		next[group[i]]++
	}
	decisions := make([]Decision, len(sizes))
	for g, start := range starts {
		cs := grouped[start : start+sizes[g] : start+sizes[g]]
		if len(cs) > 1 {
			slices.SortFunc(cs, Compare)
		}
		decisions[g] = Decision{Host: cs[0].Host, Claims: cs, Route: route(cs)}
	}
	return decisions
}

// route finds the claim a host goes to among its ordered claims: a machine of the owner app
// refines the app's host; a machine being deleted refines it only when every claim is.
func route(cs []Claim) int {
	owner := cs[0].AppKey()
	for i, c := range cs {
		if c.Kind == KindMachine && c.Released == cs[0].Released && c.AppKey() == owner {
			return i
		}
	}
	return 0
}
