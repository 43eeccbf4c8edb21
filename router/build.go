package router

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/hostclaim"
	"github.com/hangar-dev/hangar/internal/keys"
)

// BuildConfig is what the index needs besides the cluster's objects.
type BuildConfig struct {
	// Now tells the time for key rotations (time.Now when nil).
	Now func() time.Time
	// BaseDomain serves <spec.routing.subdomain>.<BaseDomain>; empty turns subdomain routing off.
	BaseDomain string
	// Root derives each app's replay key and management token.
	Root keys.Root
	// Replay holds the installation-wide replay options.
	Replay ReplayOptions
	// StateTTL is the least time a replay state stays valid (DefaultStateTTL when zero).
	StateTTL time.Duration
}

// ProblemKind classifies what Build could not route as asked.
type ProblemKind string

const (
	// ProblemHostConflict means an object claims a host another app owns (see hostclaim.Decide);
	// the message names the owner's oldest claim.
	ProblemHostConflict ProblemKind = "HostConflict"
	// ProblemInvalidHost means a host (or subdomain + base domain) is not a DNS name.
	ProblemInvalidHost ProblemKind = "InvalidHost"
	// ProblemInvalidStatus means a Fly app name or machine ID in a status cannot go into a replay.
	ProblemInvalidStatus ProblemKind = "InvalidStatus"
)

// Problem is one thing worth a log line. Hosts and object names are cluster data, not secrets.
type Problem struct {
	Kind    ProblemKind
	Object  string // "UserApp ns/name" or "UserMachine ns/name"
	Host    string
	Message string
}

// Builder holds the UserApps and UserMachines the router knows and builds Indexes from them. The
// objects are the cache's own (already stripped by the cache transform); the Builder keeps pointers
// and never modifies them. All methods are safe for concurrent use.
type Builder struct {
	baseDomain string
	root       keys.Root
	sources    sourceConfig
	clock      func() time.Time

	mu       sync.Mutex
	apps     map[types.NamespacedName]*flyv1alpha1.UserApp
	machines map[types.NamespacedName]*flyv1alpha1.UserMachine
	// Derived per-app secrets and signature caches outlive a build, so a rebuild derives and signs
	// only for what is new.
	appSecrets    map[keys.App]*appSecrets
	replaySources map[sourceKey]*replaySource
	reported      map[Problem]struct{}
}

// sourceConfig is shared by every replaySource of a Builder.
type sourceConfig struct {
	opts  ReplayOptions
	clock stateClock
}

type appSecrets struct {
	replayKey       []byte
	managementToken []byte
}

type sourceKey struct {
	// signer is the app's keys the replay state is signed with.
	signer     keys.App
	machine    string
	deleteAuth bool
}

// NewBuilder checks cfg and returns an empty Builder.
func NewBuilder(cfg BuildConfig) (*Builder, error) {
	if cfg.Root.IsZero() {
		return nil, fmt.Errorf("router: BuildConfig.Root is required")
	}
	if err := cfg.Replay.Validate(); err != nil {
		return nil, err
	}
	base := ""
	if cfg.BaseDomain != "" {
		var err error
		if base, err = NormalizeHost(cfg.BaseDomain); err != nil {
			return nil, fmt.Errorf("router: base domain %q: %w", cfg.BaseDomain, err)
		}
	}
	return &Builder{
		baseDomain:    base,
		root:          cfg.Root,
		sources:       sourceConfig{opts: cfg.Replay, clock: newStateClock(cfg.StateTTL)},
		apps:          map[types.NamespacedName]*flyv1alpha1.UserApp{},
		machines:      map[types.NamespacedName]*flyv1alpha1.UserMachine{},
		clock:         clockOr(cfg.Now),
		appSecrets:    map[keys.App]*appSecrets{},
		replaySources: map[sourceKey]*replaySource{},
		reported:      map[Problem]struct{}{},
	}, nil
}

func (b *Builder) now() time.Time { return b.clock() }

// clockOr is now, or time.Now when it is nil.
func clockOr(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

// UpsertApp records the current state of a UserApp.
func (b *Builder) UpsertApp(app *flyv1alpha1.UserApp) {
	b.mu.Lock()
	b.apps[types.NamespacedName{Namespace: app.Namespace, Name: app.Name}] = app
	b.mu.Unlock()
}

// DeleteApp forgets a UserApp.
func (b *Builder) DeleteApp(key types.NamespacedName) {
	b.mu.Lock()
	delete(b.apps, key)
	b.mu.Unlock()
}

// UpsertMachine records the current state of a UserMachine.
func (b *Builder) UpsertMachine(m *flyv1alpha1.UserMachine) {
	b.mu.Lock()
	b.machines[types.NamespacedName{Namespace: m.Namespace, Name: m.Name}] = m
	b.mu.Unlock()
}

// DeleteMachine forgets a UserMachine.
func (b *Builder) DeleteMachine(key types.NamespacedName) {
	b.mu.Lock()
	delete(b.machines, key)
	b.mu.Unlock()
}

// Build makes an Index of everything recorded and returns it with the problems not reported by the
// previous Build (so a persistent problem is logged once, not on every rebuild).
func (b *Builder) Build() (*Index, []Problem) {
	b.mu.Lock()
	defer b.mu.Unlock()

	run := buildRun{
		b:        b,
		claims:   make([]hostclaim.Claim, 0, len(b.apps)*2+len(b.machines)),
		apps:     make(map[types.NamespacedName]*target, len(b.apps)),
		machines: make(map[string]*target, len(b.machines)),
		secrets:  make(map[keys.App]*appSecrets, len(b.apps)),
		now:      b.now(),
		sources:  make(map[sourceKey]*replaySource, len(b.machines)+len(b.apps)),
	}
	// Routable machines grouped by their UserApp; each machine is judged once.
	routable := make(map[types.NamespacedName][]*flyv1alpha1.UserMachine, len(b.apps))
	isRoutable := make(map[*flyv1alpha1.UserMachine]bool, len(b.machines))
	for _, m := range b.machines {
		if run.routableMachine(m) {
			key := types.NamespacedName{Namespace: m.Namespace, Name: m.Spec.AppRef.Name}
			routable[key] = append(routable[key], m)
			isRoutable[m] = true
		}
	}
	for key, app := range b.apps {
		run.apps[key] = run.addApp(app, routable[key])
	}
	for _, m := range b.machines {
		appKey := types.NamespacedName{Namespace: m.Namespace, Name: m.Spec.AppRef.Name}
		run.addMachine(m, b.apps[appKey], run.apps[appKey], isRoutable[m])
	}
	ix := run.finish()

	b.appSecrets = run.secrets
	b.replaySources = run.sources
	fresh := make([]Problem, 0, len(run.problems))
	reported := make(map[Problem]struct{}, len(run.problems))
	for _, p := range run.problems {
		reported[p] = struct{}{}
		if _, seen := b.reported[p]; !seen {
			fresh = append(fresh, p)
		}
	}
	b.reported = reported
	return ix, fresh
}

// buildRun is the scratch state of one Build.
type buildRun struct {
	b *Builder
	// claims are every host claim; finish decides their owners.
	claims []hostclaim.Claim
	// apps and machines are the targets by object: apps by namespace/name, machines by
	// "namespace/name" (the Hangar-Target form).
	apps     map[types.NamespacedName]*target
	machines map[string]*target
	secrets  map[keys.App]*appSecrets
	sources  map[sourceKey]*replaySource
	problems []Problem
	skipped  int
	// now is the build's time; keySwitch the earliest later time a key rotation's overlap ends
	// (the index must then be rebuilt to sign with the new keys).
	now       time.Time
	keySwitch time.Time
}

// addApp makes the target of a UserApp from its routable machines and claims its hosts.
func (r *buildRun) addApp(app *flyv1alpha1.UserApp, routable []*flyv1alpha1.UserMachine) *target {
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
		for _, m := range routable {
			if m.Status.AppName == t.flyApp {
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
func (r *buildRun) addMachine(m *flyv1alpha1.UserMachine, app *flyv1alpha1.UserApp, appTarget *target, routable bool) {
	t := &target{kind: ownerMachine, namespace: m.Namespace, name: m.Name}
	if app != nil && appTarget != nil {
		// The machine inherits its app's auth mode. Without its UserApp in the cache the machine is
		// never routed: falling back to Public could open a Token-protected app.
		t.auth = appTarget.auth
		t.flyApp = appTarget.flyApp
		t.signer = appTarget.signer
		t.managementToken = appTarget.managementToken
		t.previousManagementToken = appTarget.previousManagementToken
		if routable && m.Status.AppName == t.flyApp && t.flyApp != "" && app.DeletionTimestamp == nil {
			r.makeReady(t, m.Status.MachineID)
		}
	}
	r.machines[m.Namespace+"/"+m.Name] = t
	claims, invalid := hostclaim.MachineClaims(m)
	r.addClaims(t, claims, invalid)
}

// routableMachine: a Fly machine exists and is recorded (MachineCreated True, ID and app name in
// status, both usable in a replay), and the object is not being deleted.
func (r *buildRun) routableMachine(m *flyv1alpha1.UserMachine) bool {
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

func (r *buildRun) invalidStatus(t *target, msg string) {
	r.skipped++
	r.problems = append(r.problems, Problem{Kind: ProblemInvalidStatus, Object: t.ownerName(), Message: msg})
}

func (r *buildRun) makeReady(t *target, machine string) {
	t.ready = true
	t.machine = machine
	t.replay = r.sourceOf(t.signer, machine, t.auth)
}

// keysOf names the keys of a UserApp's app as the manager derives them (bound to the UserApp's
// UID and key generation), and the previous generation while a rotation overlaps.
func (r *buildRun) keysOf(app *flyv1alpha1.UserApp) (current keys.App, previous *keys.App) {
	st := &app.Status
	current = keys.App{FlyApp: st.AppName, Owner: string(app.UID), Generation: max(st.KeyGeneration, 1)}
	if until := st.PreviousKeysValidUntil; until != nil && current.Generation > 1 && r.now.Before(until.Time) {
		p := current
		p.Generation--
		previous = &p
		if r.keySwitch.IsZero() || until.Time.Before(r.keySwitch) {
			r.keySwitch = until.Time
		}
	}
	return current, previous
}

func (r *buildRun) secretsOf(app keys.App) *appSecrets {
	if s, ok := r.secrets[app]; ok {
		return s
	}
	s, ok := r.b.appSecrets[app]
	if !ok {
		s = &appSecrets{
			replayKey:       r.b.root.ReplayKey(app),
			managementToken: []byte(r.b.root.ManagementToken(app)),
		}
	}
	r.secrets[app] = s
	return s
}

func (r *buildRun) sourceOf(signer keys.App, machine string, auth flyv1alpha1.RoutingAuth) *replaySource {
	key := sourceKey{signer: signer, machine: machine, deleteAuth: auth == flyv1alpha1.RoutingAuthToken}
	if s, ok := r.sources[key]; ok {
		return s
	}
	s, ok := r.b.replaySources[key]
	if !ok {
		s = &replaySource{app: signer.FlyApp, machine: machine, deleteAuth: key.deleteAuth,
			key: r.secretsOf(signer).replayKey, cfg: &r.b.sources}
	}
	r.sources[key] = s
	return s
}

// addClaims records an object's host claims and reports the hosts that cannot be routed.
func (r *buildRun) addClaims(t *target, claims []hostclaim.Claim, invalid []string) {
	r.claims = append(r.claims, claims...)
	for _, host := range invalid {
		r.problems = append(r.problems, Problem{Kind: ProblemInvalidHost, Object: t.ownerName(), Host: host,
			Message: "host is not a DNS name and is not routed"})
	}
}

// targetOf is the target of the object that made c.
func (r *buildRun) targetOf(c hostclaim.Claim) *target {
	if c.Kind == hostclaim.KindMachine {
		return r.machines[c.Namespace+"/"+c.Name]
	}
	return r.apps[types.NamespacedName{Namespace: c.Namespace, Name: c.Name}]
}

// finish decides the owner of every claimed host (hostclaim.Decide, the rule the manager's
// HostsAccepted condition follows too) and reports the live claims of other apps as conflicts.
func (r *buildRun) finish() *Index {
	decisions := hostclaim.Decide(r.claims)
	hosts := make(map[string]*target, len(decisions))
	conflicts := 0
	for _, d := range decisions {
		if t := r.targetOf(d.Winner()); t != nil {
			hosts[d.Host] = t
		}
		for i, c := range d.Claims {
			// A claim of the owner app is a refinement (a machine pinning its app's host); an object
			// being deleted has released its hosts and is not worth a log line.
			if !d.Lost(i) || c.Released {
				continue
			}
			conflicts++
			r.problems = append(r.problems, Problem{
				Kind: ProblemHostConflict, Object: c.Object(), Host: d.Host,
				Message: "host is owned by UserApp " + d.Owner().String() + " (the oldest claim is " + d.Claims[0].Object() + ") and is not routed here",
			})
		}
	}
	return &Index{hosts: hosts, machines: r.machines, conflicts: conflicts, skipped: r.skipped, keySwitch: r.keySwitch}
}

func authOf(app *flyv1alpha1.UserApp) flyv1alpha1.RoutingAuth {
	if app.Spec.Routing == nil || app.Spec.Routing.Auth == "" {
		return flyv1alpha1.RoutingAuthPublic
	}
	return app.Spec.Routing.Auth
}

// ownerKind says which kind of object a target came from.
type ownerKind uint8

const (
	ownerApp ownerKind = iota
	ownerMachine
)

// ownerName is "UserApp ns/name" or "UserMachine ns/name", built only for log lines.
func (t *target) ownerName() string {
	var b strings.Builder
	if t.kind == ownerMachine {
		b.WriteString("UserMachine ")
	} else {
		b.WriteString("UserApp ")
	}
	b.WriteString(t.namespace)
	b.WriteByte('/')
	b.WriteString(t.name)
	return b.String()
}
