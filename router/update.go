package router

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/hangar-dev/hangar/internal/hostclaim"
)

// built is what the Builds so far made, which the next one updates.
type built struct {
	groups map[types.NamespacedName]*group
	// claims are every host's claims, as hostclaim.Decide takes them.
	claims map[string][]hostclaim.Claim
	// conflicts are the problems of each contested host's losing claims.
	conflicts map[string][]Problem
	// problems counts every current problem (groups' and hosts'); a Build reports the ones it adds.
	problems map[Problem]int
	// overlaps are when each app's key rotation overlap ends, for the apps in one.
	overlaps map[types.NamespacedName]time.Time
	// skipped and nConflicts are the index's counts.
	skipped, nConflicts int
	hosts               cowMap[*target]
	machines            cowMap[*target]
}

func newBuilt() built {
	return built{
		groups:    map[types.NamespacedName]*group{},
		claims:    map[string][]hostclaim.Claim{},
		conflicts: map[string][]Problem{},
		problems:  map[Problem]int{},
		overlaps:  map[types.NamespacedName]time.Time{},
	}
}

// update is one Build's change to built: groups are undone and redone, then the hosts they
// touched are decided again.
type update struct {
	b        *built
	now      time.Time
	hosts    *cowEdit[*target]
	machines *cowEdit[*target]
	// touched are the hosts whose claims or claimants' targets changed.
	touched map[string]struct{}
	// before holds the count of each problem this update changed, as it was before.
	before map[Problem]int
}

// update starts an update of groups groups (about two hosts each). The first one, from nothing,
// sizes the maps for them, which saves growing them step by step through 100 000 hosts.
func (b *built) update(now time.Time, groups int) *update {
	if len(b.groups) == 0 {
		b.groups = make(map[types.NamespacedName]*group, groups)
		b.claims = make(map[string][]hostclaim.Claim, 2*groups)
	}
	return &update{b: b, now: now, hosts: b.hosts.edit(), machines: b.machines.edit(),
		touched: make(map[string]struct{}, 2*groups), before: map[Problem]int{}}
}

// unbuild withdraws what the last build made of group key: its claims, its machines' targets and
// its problems. The group itself stays, for rebuild to reuse its keys and signatures.
func (u *update) unbuild(key types.NamespacedName) {
	g := u.b.groups[key]
	if g == nil {
		return
	}
	for _, host := range g.hosts {
		u.withdraw(host, key)
	}
	for _, t := range g.machines {
		u.machines.remove(t.namespace + "/" + t.name)
	}
	u.count(g.problems, -1)
	u.b.skipped -= g.skipped
	delete(u.b.overlaps, key)
}

// withdraw removes the claims of group key on host. Every claim of a group's objects is for the
// group's UserApp (Claim.AppKey).
func (u *update) withdraw(host string, key types.NamespacedName) {
	u.touched[host] = struct{}{}
	claims := u.b.claims[host]
	kept := claims[:0]
	for _, c := range claims {
		if c.AppKey() != key {
			kept = append(kept, c)
		}
	}
	clear(claims[len(kept):])
	if len(kept) == 0 {
		delete(u.b.claims, host)
	} else {
		u.b.claims[host] = kept
	}
}

// rebuild builds group key again (or forgets it when none of its objects is left) and records its
// targets, claims and problems.
func (u *update) rebuild(key types.NamespacedName, r groupRun) {
	if r.app == nil && len(r.machines) == 0 {
		delete(u.b.groups, key)
		return
	}
	r.prev = u.b.groups[key]
	g := r.build()
	u.b.groups[key] = g
	for _, t := range g.machines {
		u.machines.set(t.namespace+"/"+t.name, t)
	}
	for _, c := range r.claims {
		u.b.claims[c.Host] = append(u.b.claims[c.Host], c)
		u.touched[c.Host] = struct{}{}
	}
	u.count(g.problems, 1)
	u.b.skipped += g.skipped
	if !g.overlapEnds.IsZero() {
		u.b.overlaps[key] = g.overlapEnds
	}
}

// decide decides the owner of every touched host (hostclaim.Decide, the rule the manager's
// HostsAccepted condition follows too), routes it to the winning claim's target, and reports the
// live claims of other apps as conflicts.
func (u *update) decide() {
	n := 0
	for host := range u.touched {
		n += len(u.b.claims[host])
	}
	claims := make([]hostclaim.Claim, 0, n)
	for host := range u.touched {
		if cs := u.b.claims[host]; len(cs) > 0 {
			claims = append(claims, cs...)
		} else {
			u.hosts.remove(host)
			u.setConflicts(host, nil)
		}
	}
	for _, d := range hostclaim.Decide(claims) {
		if t := u.targetOf(d.Winner()); t != nil {
			u.hosts.set(d.Host, t)
		} else {
			u.hosts.remove(d.Host)
		}
		u.setConflicts(d.Host, conflictsOf(d))
	}
}

// conflictsOf are the problems of a decision's losing claims. A claim of the owner app is a
// refinement (a machine pinning its app's host); an object being deleted has released its hosts
// and is not worth a log line.
func conflictsOf(d hostclaim.Decision) []Problem {
	var out []Problem
	for i, c := range d.Claims {
		if !d.Lost(i) || c.Released {
			continue
		}
		out = append(out, Problem{
			Kind: ProblemHostConflict, Object: c.Object(), Host: d.Host,
			Message: "host is owned by UserApp " + d.Owner().String() + " (the oldest claim is " + d.Claims[0].Object() + ") and is not routed here",
		})
	}
	return out
}

// setConflicts replaces the conflicts of host.
func (u *update) setConflicts(host string, problems []Problem) {
	old := u.b.conflicts[host]
	if len(old) == 0 && len(problems) == 0 {
		return // the common case: nothing contested before or now
	}
	u.count(old, -1)
	u.count(problems, 1)
	u.b.nConflicts += len(problems) - len(old)
	if len(problems) == 0 {
		delete(u.b.conflicts, host)
	} else {
		u.b.conflicts[host] = problems
	}
}

// targetOf is the target of the object that made c.
func (u *update) targetOf(c hostclaim.Claim) *target {
	if c.Kind == hostclaim.KindMachine {
		return u.machines.get(c.Namespace + "/" + c.Name)
	}
	if g := u.b.groups[c.AppKey()]; g != nil {
		return g.app
	}
	return nil
}

// count adds delta to the count of each problem, remembering the counts before the update.
func (u *update) count(problems []Problem, delta int) {
	for _, p := range problems {
		n := u.b.problems[p]
		if _, seen := u.before[p]; !seen {
			u.before[p] = n
		}
		if n += delta; n == 0 {
			delete(u.b.problems, p)
		} else {
			u.b.problems[p] = n
		}
	}
}

// fresh are the problems the update added: there now, not before it.
func (u *update) fresh() []Problem {
	var out []Problem
	for p, n := range u.before {
		if n == 0 && u.b.problems[p] > 0 {
			out = append(out, p)
		}
	}
	return out
}

// finish publishes the update as the next Index.
func (u *update) finish() *Index {
	u.b.hosts, u.b.machines = u.hosts.done(), u.machines.done()
	var keySwitch time.Time
	for _, ends := range u.b.overlaps {
		if keySwitch.IsZero() || ends.Before(keySwitch) {
			keySwitch = ends
		}
	}
	return &Index{hosts: u.b.hosts, machines: u.b.machines, conflicts: u.b.nConflicts, skipped: u.b.skipped, keySwitch: keySwitch}
}
