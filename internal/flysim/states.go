package flysim

import (
	"time"
)

// Machine states (§5), as MachineInfo, MachineEvent and the seam's snapshots report them. Replacing is
// the whole-machine state while an update swaps versions; replaced is only ever reported for an old
// version.
const (
	StateCreated    = "created"
	StateStarting   = "starting"
	StateStarted    = "started"
	StateStopping   = "stopping"
	StateStopped    = "stopped"
	StateSuspending = "suspending"
	StateSuspended  = "suspended"
	StateRestarting = "restarting"
	StateReplacing  = "replacing"
	StateDestroying = "destroying"
	StateDestroyed  = "destroyed"
	StateFailed     = "failed"
	StateReplaced   = "replaced"
)

// knownStates are the states a machine can be in (list filters accept these).
var knownStates = map[string]bool{
	StateCreated: true, StateStarting: true, StateStarted: true, StateStopping: true, StateStopped: true,
	StateSuspending: true, StateSuspended: true, StateRestarting: true, StateReplacing: true,
	StateDestroying: true, StateDestroyed: true, StateFailed: true,
}

// Event sources of the §4.1 events list.
const (
	sourceUser  = "user"      // an API call
	sourceFlyd  = "flyd"      // the host finished a transition
	sourceProxy = "fly-proxy" // autostop/autostart
)

// settled reports whether m rests in a persistent or terminal state with nothing pending (wait's
// `settled`).
func settled(m *machine) bool {
	switch m.state {
	case StateCreated, StateStarted, StateStopped, StateSuspended, StateFailed, StateDestroyed:
		return !m.pending()
	}
	return false
}

// running reports whether m is running or on its way in or out of running; app delete without force
// refuses such machines.
func running(m *machine) bool {
	switch m.state {
	case StateStarting, StateStarted, StateRestarting, StateStopping, StateSuspending, StateReplacing:
		return true
	case StateCreated:
		return m.pending() // launching
	}
	return false
}

// setState moves m to next now, recording an event and waking waiters and subscribers. Callers hold s.mu.
func (s *Server) setState(m *machine, next, eventType, source string) {
	old := m.state
	now := s.now()
	m.state = next
	m.updatedAt = now
	switch {
	case next == StateDestroyed && old != StateDestroyed:
		s.markDestroyed(m, old, now)
	case next == StateStarted:
		// §4.7: started means the VM booted, not that the app listens (profile ListenDelay).
		m.listenDelay = s.profile.draw(m.rng, s.profile.ListenDelay)
	}
	m.events = append([]machineEvent{{id: s.ids.ulid(now), typ: eventType, status: next, source: source, at: now}}, m.events...)
	if len(m.events) > maxMachineEvents {
		m.events = m.events[:maxMachineEvents]
	}
	close(m.changed)
	m.changed = make(chan struct{})
	s.bus.publish(MachineEvent{App: m.app.name, MachineID: m.id, OldState: old, NewState: next, Version: m.current().id, Time: now})
}

// schedule runs fn after d with s.mu held, unless a newer schedule or cancelPending superseded it or
// the server closed. Callers hold s.mu.
func (s *Server) schedule(m *machine, d time.Duration, fn func()) {
	s.cancelPending(m)
	epoch := m.epoch
	m.timer = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || m.epoch != epoch {
			return
		}
		m.timer = nil
		fn()
	})
}

// cancelPending drops m's pending transition, if any. Callers hold s.mu.
func (s *Server) cancelPending(m *machine) {
	m.epoch++
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

// transitionDelay is how long m stays in a transient state: drawn from the profile's row when the
// profile sets it (the realistic transition table), else the fixed delay of Options.Delays.
// Callers hold s.mu.
func (s *Server) transitionDelay(m *machine, row Transition, fixed time.Duration) time.Duration {
	if d, ok := s.profile.drawTransition(m.rng, row); ok {
		return d
	}
	return fixed
}

// boot moves m through starting to started; resume says it resumes from a suspend snapshot, which
// is faster than a cold boot.
func (s *Server) boot(m *machine, eventType, source string, resume bool) {
	row := s.profile.Transitions.Start
	if resume {
		row = s.profile.Transitions.Resume
	}
	s.setState(m, StateStarting, eventType, source)
	s.schedule(m, s.transitionDelay(m, row, s.opts.Delays.Start), func() { s.setState(m, StateStarted, "start", sourceFlyd) })
}

// launch is the boot after create: created, then starting and started.
func (s *Server) launch(m *machine) {
	s.schedule(m, s.transitionDelay(m, s.profile.Transitions.Create, s.opts.Delays.Create), func() { s.boot(m, "start", sourceFlyd, false) })
}

// halt moves m through stopping to stopped.
func (s *Server) halt(m *machine, source string) {
	s.setState(m, StateStopping, "stop", source)
	s.schedule(m, s.transitionDelay(m, s.profile.Transitions.Stop, s.opts.Delays.Stop), func() { s.setState(m, StateStopped, "exit", sourceFlyd) })
}

// pause moves m through suspending to suspended.
func (s *Server) pause(m *machine, source string) {
	s.setState(m, StateSuspending, "suspend", source)
	s.schedule(m, s.transitionDelay(m, s.profile.Transitions.Suspend, s.opts.Delays.Suspend), func() { s.setState(m, StateSuspended, "suspend", sourceFlyd) })
}

// reboot moves m through restarting, starting and started.
func (s *Server) reboot(m *machine) {
	s.setState(m, StateRestarting, "restart", sourceUser)
	s.schedule(m, s.transitionDelay(m, s.profile.Transitions.Restart, s.opts.Delays.Restart), func() { s.boot(m, "restart", sourceFlyd, false) })
}

// teardown moves m through destroying to destroyed, dropping its lease.
func (s *Server) teardown(m *machine, source string) {
	m.lease = nil
	s.setState(m, StateDestroying, "destroy", source)
	s.schedule(m, s.transitionDelay(m, s.profile.Transitions.Destroy, s.opts.Delays.Destroy), func() { s.setState(m, StateDestroyed, "destroy", sourceFlyd) })
}

// destroyNow stops (when running) and destroys m at once: the app delete cascade.
func (s *Server) destroyNow(m *machine) {
	s.cancelPending(m)
	m.lease = nil
	if running(m) {
		s.setState(m, StateStopped, "exit", sourceFlyd)
	}
	if m.state != StateDestroyed {
		s.setState(m, StateDestroyed, "destroy", sourceUser)
	}
}

// afterUpdate is where an update leaves the machine (§4.4, sheet guidance): a machine that was running
// (or on its way there) runs the new version; one that was not is left stopped, as Fly's own message
// "machine was in a non-started state prior to the update so leaving the new version stopped" says;
// with skip_launch the new version is created and not booted (open in the sheet: created or stopped; the
// states diagram's "no auto-start" says created).
func afterUpdate(prior string, skipLaunch bool) string {
	if skipLaunch {
		return StateCreated
	}
	switch prior {
	case StateStarted, StateStarting, StateRestarting:
		return StateStarted
	}
	return StateStopped
}

// replace runs the update swap: replacing for the Update transition, then the state afterUpdate picked.
func (s *Server) replace(m *machine, target string) {
	m.updateTarget = target
	s.setState(m, StateReplacing, "update", sourceUser)
	s.schedule(m, s.transitionDelay(m, s.profile.Transitions.Update, s.opts.Delays.Update), func() {
		switch target {
		case StateStarted:
			s.boot(m, "start", sourceFlyd, false)
		case StateStopped:
			s.setState(m, StateStopped, "update", sourceFlyd)
		default:
			s.setState(m, StateCreated, "update", sourceFlyd)
		}
	})
}

// markDestroyed records when m was destroyed, for the profile's windows: the list learns of it after
// ListLag (listing it as it was until then), and the API forgets it after DestroyedReadable (§11
// "Destroyed"). Callers hold s.mu.
func (s *Server) markDestroyed(m *machine, before string, now time.Time) {
	m.destroyedAt, m.stateBeforeDestroyed = now, before
	if lag := s.profile.draw(m.rng, s.profile.ListLag); lag > 0 {
		m.delistedAt = now.Add(lag)
	}
	if readable := s.profile.draw(m.rng, s.profile.DestroyedReadable); readable > 0 {
		m.goneAt = now.Add(readable)
	}
}
