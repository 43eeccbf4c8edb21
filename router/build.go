package router

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
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
//
// A Build updates the previous index instead of building a new one from scratch: it rebuilds the
// groups (a UserApp and the UserMachines that name it) changed since, decides again the hosts their
// objects claimed or claim, and copies only the shards of the index those touch. The result is
// exactly what a Build of every object gives (see TestIncrementalBuildEqualsFullBuild).
type Builder struct {
	baseDomain string
	root       keys.Root
	sources    sourceConfig
	clock      func() time.Time
	// activity gives targets their activity slots (nil: activity off). Set before the first Build.
	activity *activityRecorder

	mu       sync.Mutex
	apps     map[types.NamespacedName]*flyv1alpha1.UserApp
	machines map[types.NamespacedName]*flyv1alpha1.UserMachine
	// members are the names of the UserMachines naming each UserApp (spec.appRef, same namespace).
	members map[types.NamespacedName][]string
	// dirty are the groups (by UserApp) changed since the last Build.
	dirty map[types.NamespacedName]struct{}
	built built
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
		baseDomain: base,
		root:       cfg.Root,
		sources:    sourceConfig{opts: cfg.Replay, clock: newStateClock(cfg.StateTTL)},
		apps:       map[types.NamespacedName]*flyv1alpha1.UserApp{},
		machines:   map[types.NamespacedName]*flyv1alpha1.UserMachine{},
		members:    map[types.NamespacedName][]string{},
		dirty:      map[types.NamespacedName]struct{}{},
		clock:      clockOr(cfg.Now),
		built:      newBuilt(),
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

// appKeyOf is the UserApp a UserMachine names.
func appKeyOf(m *flyv1alpha1.UserMachine) types.NamespacedName {
	return types.NamespacedName{Namespace: m.Namespace, Name: m.Spec.AppRef.Name}
}

// UpsertApp records the current state of a UserApp.
func (b *Builder) UpsertApp(app *flyv1alpha1.UserApp) {
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	b.mu.Lock()
	b.apps[key] = app
	b.dirty[key] = struct{}{}
	b.mu.Unlock()
}

// DeleteApp forgets a UserApp.
func (b *Builder) DeleteApp(key types.NamespacedName) {
	b.mu.Lock()
	delete(b.apps, key)
	b.dirty[key] = struct{}{}
	b.mu.Unlock()
}

// UpsertMachine records the current state of a UserMachine.
func (b *Builder) UpsertMachine(m *flyv1alpha1.UserMachine) {
	key := types.NamespacedName{Namespace: m.Namespace, Name: m.Name}
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.machines[key]; ok {
		if appKeyOf(old) == appKeyOf(m) {
			b.machines[key] = m
			b.dirty[appKeyOf(m)] = struct{}{}
			return
		}
		b.leave(old)
	}
	b.machines[key] = m
	app := appKeyOf(m)
	b.members[app] = append(b.members[app], m.Name)
	b.dirty[app] = struct{}{}
}

// DeleteMachine forgets a UserMachine.
func (b *Builder) DeleteMachine(key types.NamespacedName) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.machines[key]; ok {
		b.leave(old)
		delete(b.machines, key)
	}
}

// leave takes m out of its UserApp's members.
func (b *Builder) leave(m *flyv1alpha1.UserMachine) {
	app := appKeyOf(m)
	names := slices.DeleteFunc(b.members[app], func(n string) bool { return n == m.Name })
	if len(names) == 0 {
		delete(b.members, app)
	} else {
		b.members[app] = names
	}
	b.dirty[app] = struct{}{}
}

// Build makes an Index of everything recorded and returns it with the problems not reported by the
// previous Build (so a persistent problem is logged once, not on every rebuild).
func (b *Builder) Build() (*Index, []Problem) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	// A key rotation's overlap that ended changes what its app signs with.
	for key, ends := range b.built.overlaps {
		if !now.Before(ends) {
			b.dirty[key] = struct{}{}
		}
	}
	u := b.built.update(now, len(b.dirty))
	// Undo every dirty group before redoing any: a machine that moved between two dirty groups
	// must leave the first before it joins the second.
	for key := range b.dirty {
		u.unbuild(key)
	}
	for key := range b.dirty {
		u.rebuild(key, b.groupRun(key, now))
	}
	// A new set, not a cleared one: iterating a cleared map still walks the capacity it once
	// grew to (every group, after the first Build).
	b.dirty = map[types.NamespacedName]struct{}{}
	u.decide()
	return u.finish(), u.fresh()
}

// groupRun sets up the build of a group from the objects recorded now.
func (b *Builder) groupRun(key types.NamespacedName, now time.Time) groupRun {
	names := b.members[key]
	machines := make([]*flyv1alpha1.UserMachine, len(names))
	for i, name := range names {
		machines[i] = b.machines[types.NamespacedName{Namespace: key.Namespace, Name: name}]
	}
	run := groupRun{b: b, now: now, app: b.apps[key], machines: machines}
	if run.app != nil {
		run.activity = b.activity.app(run.app)
	} else {
		b.activity.forget(key)
	}
	return run
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
