package router

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/hostclaim"
	"github.com/hangar-dev/hangar/internal/keys"
)

// group is a UserApp and the UserMachines that name it (spec.appRef), as a Build made them. It is
// the unit a change rebuilds: a machine's target takes its app's auth mode and keys, and the app's
// target depends on how many of its machines are routable. Nothing else depends on a group but
// the hosts its objects claim.
type group struct {
	// app is the UserApp's target; nil while the UserApp is not cached.
	app *target
	// machines are the UserMachines' targets.
	machines []*target
	// hosts are the hosts the group's objects claim, so the next build can withdraw the claims.
	hosts []string
	// problems are the group's invalid hosts and statuses (its host conflicts are the hosts').
	problems []Problem
	// skipped counts its objects left out for a status that cannot go into a replay.
	skipped int
	// secrets are the app's derived keys in use: one generation, two while a rotation overlaps.
	secrets []derivedSecrets
	// overlapEnds is when the app's key rotation overlap ends; zero without one.
	overlapEnds time.Time
}

type derivedSecrets struct {
	app     keys.App
	secrets *appSecrets
}

// groupRun builds one group. It reuses the previous build's derived keys and signature caches
// (prev), so a rebuild derives and signs only for what is new.
type groupRun struct {
	b        *Builder
	now      time.Time
	app      *flyv1alpha1.UserApp // nil when not cached
	machines []*flyv1alpha1.UserMachine
	prev     *group // nil: nothing to reuse
	out      *group
	claims   []hostclaim.Claim
	// prevSources indexes prev's signature caches, made on first use.
	prevSources map[sourceKey]*replaySource
	// activity is the UserApp's activity slots (nil: activity off, or no UserApp).
	activity *appActivity
}

// build makes the group's targets and claims.
func (r *groupRun) build() *group {
	r.out = &group{}
	isRoutable := make([]bool, len(r.machines))
	for i, m := range r.machines {
		isRoutable[i] = r.routableMachine(m)
	}
	if r.app != nil {
		r.out.app = r.addApp(r.app, isRoutable)
	}
	r.out.machines = make([]*target, len(r.machines))
	for i, m := range r.machines {
		r.out.machines[i] = r.addMachine(m, isRoutable[i])
	}
	r.out.hosts = hostclaim.Hosts(r.claims)
	return r.out
}

// addApp makes the target of a UserApp from its routable machines (r.machines[i] when
// isRoutable[i]) and claims its hosts.
func (r *groupRun) addApp(app *flyv1alpha1.UserApp, isRoutable []bool) *target {
	t := &target{kind: ownerApp, namespace: app.Namespace, name: app.Name, auth: authOf(app)}
	flyApp := app.Status.AppName
	switch {
	case flyApp == "":
	case !validReplayName(flyApp):
		r.invalidStatus(t, "status.appName is not a Fly app name")
	default:
		t.flyApp = flyApp
		current, previous := r.keysOf(app)
		t.signer = current
		t.managementToken = r.secretsOf(current).managementToken
		if previous != nil {
			// A rotation overlaps: machines hold both replay keys until it ends, so keep signing
			// with the previous one, and accept both management tokens.
			t.signer = *previous
			t.previousManagementToken = r.secretsOf(*previous).managementToken
		}
	}
	if t.flyApp != "" && app.DeletionTimestamp == nil {
		var pinned string
		count := 0
		for i, m := range r.machines {
			if isRoutable[i] && m.Status.AppName == t.flyApp {
				count++
				pinned = m.Status.MachineID
			}
		}
		switch {
		case count == 1:
			r.makeReady(t, pinned)
		case count > 1:
			// Several machines: the Fly Proxy balances among them; the state is good on any.
			r.makeReady(t, "")
		}
	}
	claims, invalid := hostclaim.AppClaims(app, r.b.baseDomain)
	r.addClaims(t, claims, invalid)
	return t
}

// addMachine makes the target of a UserMachine (for its hosts and for Hangar-Target) and claims its
// hosts.
func (r *groupRun) addMachine(m *flyv1alpha1.UserMachine, routable bool) *target {
	t := &target{kind: ownerMachine, namespace: m.Namespace, name: m.Name}
	if appTarget := r.out.app; appTarget != nil {
		// The machine inherits its app's auth mode. Without its UserApp in the cache the machine is
		// never routed: falling back to Public could open a Token-protected app.
		t.auth = appTarget.auth
		t.flyApp = appTarget.flyApp
		t.signer = appTarget.signer
		t.managementToken = appTarget.managementToken
		t.previousManagementToken = appTarget.previousManagementToken
		if routable && m.Status.AppName == t.flyApp && t.flyApp != "" && r.app.DeletionTimestamp == nil {
			r.makeReady(t, m.Status.MachineID)
		}
	}
	claims, invalid := hostclaim.MachineClaims(m)
	r.addClaims(t, claims, invalid)
	return t
}

// routableMachine: a Fly machine exists and is recorded (MachineCreated True, ID and app name in
// status, both usable in a replay), and the object is not being deleted.
func (r *groupRun) routableMachine(m *flyv1alpha1.UserMachine) bool {
	if m.DeletionTimestamp != nil || m.Status.MachineID == "" || m.Status.AppName == "" ||
		!meta.IsStatusConditionTrue(m.Status.Conditions, flyv1alpha1.MachineCreatedCondition) {
		return false
	}
	if !validReplayName(m.Status.MachineID) || !validReplayName(m.Status.AppName) {
		r.invalidStatus(&target{kind: ownerMachine, namespace: m.Namespace, name: m.Name},
			"status.machineID or status.appName cannot go into a replay")
		return false
	}
	return true
}

func (r *groupRun) invalidStatus(t *target, msg string) {
	r.out.skipped++
	r.out.problems = append(r.out.problems, Problem{Kind: ProblemInvalidStatus, Object: t.ownerName(), Message: msg})
}

func (r *groupRun) makeReady(t *target, machine string) {
	t.ready = true
	t.machine = machine
	t.replay = r.sourceOf(t.signer, machine, t.auth)
	t.activity = r.b.activity.slot(r.activity, machine)
}

// keysOf names the keys of a UserApp's app as the manager derives them (bound to the UserApp's
// UID and key generation), and the previous generation while a rotation overlaps.
func (r *groupRun) keysOf(app *flyv1alpha1.UserApp) (current keys.App, previous *keys.App) {
	st := &app.Status
	current = keys.App{FlyApp: st.AppName, Owner: string(app.UID), Generation: max(st.KeyGeneration, 1)}
	if until := st.PreviousKeysValidUntil; until != nil && current.Generation > 1 && r.now.Before(until.Time) {
		p := current
		p.Generation--
		previous = &p
		r.out.overlapEnds = until.Time
	}
	return current, previous
}

func (r *groupRun) secretsOf(app keys.App) *appSecrets {
	if s := findSecrets(r.out.secrets, app); s != nil {
		return s
	}
	var s *appSecrets
	if r.prev != nil {
		s = findSecrets(r.prev.secrets, app)
	}
	if s == nil {
		s = &appSecrets{
			replayKey:       r.b.root.ReplayKey(app),
			managementToken: []byte(r.b.root.ManagementToken(app)),
		}
	}
	r.out.secrets = append(r.out.secrets, derivedSecrets{app: app, secrets: s})
	return s
}

func findSecrets(in []derivedSecrets, app keys.App) *appSecrets {
	for _, d := range in {
		if d.app == app {
			return d.secrets
		}
	}
	return nil
}

// sourceOf finds the signature cache of what a target signs: the app's own when a machine target
// signs the same (the app's only routable machine), else the previous build's, else a new one.
func (r *groupRun) sourceOf(signer keys.App, machine string, auth flyv1alpha1.RoutingAuth) *replaySource {
	key := sourceKey{signer: signer, machine: machine, deleteAuth: auth == flyv1alpha1.RoutingAuthToken}
	if app := r.out.app; app != nil && app.replay != nil && sourceKeyOf(app) == key {
		return app.replay
	}
	if s, ok := r.previousSources()[key]; ok {
		return s
	}
	return &replaySource{app: signer.FlyApp, machine: machine, deleteAuth: key.deleteAuth,
		key: r.secretsOf(signer).replayKey, cfg: &r.b.sources}
}

func sourceKeyOf(t *target) sourceKey {
	return sourceKey{signer: t.signer, machine: t.machine, deleteAuth: t.auth == flyv1alpha1.RoutingAuthToken}
}

// previousSources are the signature caches of the previous build's targets, by what they sign.
func (r *groupRun) previousSources() map[sourceKey]*replaySource {
	if r.prevSources != nil || r.prev == nil {
		return r.prevSources
	}
	r.prevSources = make(map[sourceKey]*replaySource, len(r.prev.machines)+1)
	for _, t := range append([]*target{r.prev.app}, r.prev.machines...) {
		if t != nil && t.replay != nil {
			r.prevSources[sourceKeyOf(t)] = t.replay
		}
	}
	return r.prevSources
}

// addClaims records an object's host claims and reports the hosts that cannot be routed.
func (r *groupRun) addClaims(t *target, claims []hostclaim.Claim, invalid []string) {
	if r.claims == nil {
		r.claims = claims // hostclaim made it for this object: the run may keep and grow it
	} else {
		r.claims = append(r.claims, claims...)
	}
	for _, host := range invalid {
		r.out.problems = append(r.out.problems, Problem{Kind: ProblemInvalidHost, Object: t.ownerName(), Host: host,
			Message: "host is not a DNS name and is not routed"})
	}
}
