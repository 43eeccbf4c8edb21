package flysim

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// The seam between the Machines API emulator and the simulators built on it: the Fly Proxy simulator
// (flysim/proxy) and the simulated user machines (flysim/usermachine). They never reach into the
// Server's state; they use only these methods:
//
//   - Subscribe follows machine state changes;
//   - SnapshotApp, SnapshotApps and SnapshotMachine read apps (with their public addresses) and
//     machines, with their services;
//   - MachineBoot reads a machine with the secrets its current version booted with;
//   - ProxyStart, ProxyStop and ProxySuspend act as the Fly Proxy does (autostart, autostop);
//   - Done and NewRequestID let the proxy stop waiting when the Server closes and number its answers;
//   - Profile tells what the simulators must model of the Server's profile (RequirePublicIP).
//
// Each snapshot is copied under the Server's lock, so a caller works without it and never sees a
// half-made change.

// MachineSnapshot is one machine as the simulators see it.
type MachineSnapshot struct {
	App, ID, Region string
	State           string // one of the State constants
	Version         string // the current version
	Cordoned        bool
	// Pending reports a scheduled transition: the machine will change state on its own (a created
	// machine with Pending set is launching; one created with skip_launch is not).
	Pending bool
	// LastEvent is the ID of the latest state change: a different value means the machine changed.
	LastEvent string
	// Services are the services of the current config.
	Services []Service
}

// AppSnapshot is one live app with its machines that are not destroyed, in creation order.
type AppSnapshot struct {
	Name, Org string
	Network   string // display name: "default" for the org's default network
	NetworkID uint32
	// CrossNetworkReplays is the org's setting (SetCrossNetworkReplays).
	CrossNetworkReplays bool
	// PublicIPs are the app's public addresses (v4, v6, shared_v4), through which inbound traffic
	// can reach it; apps created through the API have none (§2).
	PublicIPs []string
	Machines  []MachineSnapshot
}

// MachineBoot is what a machine boots with: the machine and its current version's secrets.
type MachineBoot struct {
	MachineSnapshot
	// SecretsVersion is the app secrets version the current version was made with.
	SecretsVersion uint64
	// Secrets are the values the version sees (none when made with skip_secrets).
	Secrets map[string]string
	// ListenDelay is how long after reaching started the machine's app opens its listeners (the
	// profile's ListenDelay, drawn at each boot; 0 when started at once or not started).
	ListenDelay time.Duration
	// CheckPorts are the distinct ports the current config's checks probe, sorted: a healthy app
	// serves them as well as its services' internal ports.
	CheckPorts []int
}

func snapshotOf(m *machine) MachineSnapshot {
	return MachineSnapshot{
		App: m.app.name, ID: m.id, Region: m.region, State: m.state, Version: m.current().id,
		Cordoned: m.cordoned, Pending: m.pending(), LastEvent: m.latestEventID(),
		Services: servicesOf(m.current().config),
	}
}

// SnapshotApp returns the live app of that name.
func (s *Server) SnapshotApp(name string) (AppSnapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[name]
	if a == nil {
		return AppSnapshot{}, false
	}
	return s.snapshotAppLocked(a), true
}

func (s *Server) snapshotAppLocked(a *app) AppSnapshot {
	out := AppSnapshot{Name: a.name, Org: a.org, Network: a.network.displayName(), NetworkID: a.network.id}
	if o := s.orgs[a.org]; o != nil {
		out.CrossNetworkReplays = o.crossNetworkReplays
	}
	for _, ip := range a.ips {
		if publicIPTypes[ip.typ] {
			out.PublicIPs = append(out.PublicIPs, ip.ip)
		}
	}
	ms := slices.Collect(maps.Values(a.machines))
	slices.SortFunc(ms, func(x, y *machine) int { return cmp.Compare(x.seq, y.seq) })
	for _, m := range ms {
		if m.state != StateDestroyed {
			out.Machines = append(out.Machines, snapshotOf(m))
		}
	}
	return out
}

// SnapshotApps returns every live app, by name.
func (s *Server) SnapshotApps() []AppSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AppSnapshot, 0, len(s.apps))
	for _, name := range slices.Sorted(maps.Keys(s.apps)) {
		out = append(out, s.snapshotAppLocked(s.apps[name]))
	}
	return out
}

// SnapshotMachine returns one machine of a live app (destroyed ones included) and a channel closed on
// its next state change.
func (s *Server) SnapshotMachine(app, id string) (MachineSnapshot, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookupMachine(app, id)
	if err != nil {
		return MachineSnapshot{}, nil, false
	}
	return snapshotOf(m), m.changed, true
}

// MachineBoot returns one machine of a live app with the secrets its current version booted with.
func (s *Server) MachineBoot(app, id string) (MachineBoot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookupMachine(app, id)
	if err != nil {
		return MachineBoot{}, false
	}
	v := m.current()
	boot := MachineBoot{MachineSnapshot: snapshotOf(m), SecretsVersion: v.secretsVersion, Secrets: maps.Clone(v.secretValues),
		CheckPorts: checkPorts(v.config)}
	if m.state == StateStarted {
		boot.ListenDelay = m.listenDelay
	}
	return boot, true
}

// Done returns a channel closed when the Server closes, to end waits on it.
func (s *Server) Done() <-chan struct{} { return s.done }

// NewRequestID makes a fly-request-id for an answer made at `at` in an edge region: ULID-like, with the
// region as suffix, like Fly's. One counter numbers the API's and the proxy's, so they never collide.
func (s *Server) NewRequestID(at time.Time, region string) string {
	return fmt.Sprintf("%s-%s", encodeULID(uint64(at.UnixMilli()), 0, s.requestSeq.Add(1)), region)
}
