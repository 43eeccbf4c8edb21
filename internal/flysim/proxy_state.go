package flysim

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
)

// Snapshots the proxy simulator and the simulated machines take of the emulator's state. Each is
// copied under s.mu, so the caller works without the lock and never sees a half-made change.

// machineKey names one machine.
type machineKey struct{ app, id string }

// machineSnap is one machine as the proxy sees it.
type machineSnap struct {
	app, id, region, state, version string
	seq                             uint64
	cordoned                        bool
	launching                       bool   // created with a launch pending (not a skip_launch machine)
	lastEvent                       string // ID of the latest state change
	services                        []serviceSpec
}

func (m machineSnap) key() machineKey { return machineKey{m.app, m.id} }

// appSnap is one app with its machines that are not destroyed, in creation order.
type appSnap struct {
	name, org   string
	network     string // display name, "default" for the org's
	networkID   uint32
	machines    []machineSnap
	crossReplay bool // the org's cross-network replay setting
}

// machineBoot is what a simulated machine boots with: its current version and that version's secrets.
type machineBoot struct {
	machineSnap
	secretsVersion uint64
	secrets        map[string]string
}

// errServerClosed ends waits when the Server closes.
var errServerClosed = errors.New("flysim: server closed")

func snapOf(m *machine) machineSnap {
	return machineSnap{
		app: m.app.name, id: m.id, region: m.region, state: m.state, version: m.current().id,
		seq: m.seq, cordoned: m.cordoned, launching: m.state == stateCreated && m.pending(),
		lastEvent: m.latestEventID(), services: servicesOf(m.current().config),
	}
}

// snapApp returns the live app of that name.
func (s *Server) snapApp(name string) (appSnap, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[name]
	if a == nil {
		return appSnap{}, false
	}
	return s.snapAppLocked(a), true
}

func (s *Server) snapAppLocked(a *app) appSnap {
	out := appSnap{name: a.name, org: a.org, network: a.network.displayName(), networkID: a.network.id}
	if o := s.orgs[a.org]; o != nil {
		out.crossReplay = o.crossNetworkReplays
	}
	for _, m := range a.machines {
		if m.state != stateDestroyed {
			out.machines = append(out.machines, snapOf(m))
		}
	}
	slices.SortFunc(out.machines, func(x, y machineSnap) int { return cmp.Compare(x.seq, y.seq) })
	return out
}

// snapApps returns every live app, by name.
func (s *Server) snapApps() []appSnap {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]appSnap, 0, len(s.apps))
	for _, name := range slices.Sorted(maps.Keys(s.apps)) {
		out = append(out, s.snapAppLocked(s.apps[name]))
	}
	return out
}

// snapMachine returns one machine of a live app (destroyed ones included) and the channel closed on
// its next state change.
func (s *Server) snapMachine(app, id string) (machineSnap, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookupMachine(app, id)
	if err != nil {
		return machineSnap{}, nil, false
	}
	return snapOf(m), m.changed, true
}

// bootOf returns the machine with the secrets its current version booted with.
func (s *Server) bootOf(app, id string) (machineBoot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookupMachine(app, id)
	if err != nil {
		return machineBoot{}, false
	}
	v := m.current()
	return machineBoot{machineSnap: snapOf(m), secretsVersion: v.secretsVersion, secrets: maps.Clone(v.secretValues)}, true
}

// MachineSecrets returns the secret values a machine's current version booted with (none when it was
// created or updated with skip_secrets) and that app secrets version. App secrets written later reach
// the machine only through a new version (an update), as on Fly.
func (s *Server) MachineSecrets(app, id string) (values map[string]string, version uint64, ok bool) {
	boot, ok := s.bootOf(app, id)
	if !ok {
		return nil, 0, false
	}
	if boot.secrets == nil {
		boot.secrets = map[string]string{}
	}
	return boot.secrets, boot.secretsVersion, true
}

// awaitAny blocks until one of chans is closed, ctx ends or the Server closes.
func (s *Server) awaitAny(ctx context.Context, a, b <-chan struct{}) error {
	select {
	case <-a:
		return nil
	case <-b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errServerClosed
	}
}
