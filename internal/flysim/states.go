package flysim

import (
	"time"
)

// Machine states (§5). replacing is the whole-machine state while an update swaps versions; replaced
// is only ever reported for an old version.
const (
	stateCreated    = "created"
	stateStarting   = "starting"
	stateStarted    = "started"
	stateStopping   = "stopping"
	stateStopped    = "stopped"
	stateSuspending = "suspending"
	stateSuspended  = "suspended"
	stateRestarting = "restarting"
	stateReplacing  = "replacing"
	stateDestroying = "destroying"
	stateDestroyed  = "destroyed"
	stateFailed     = "failed"
	stateReplaced   = "replaced"
)

// knownStates are the states a machine can be in (list filters accept these).
var knownStates = map[string]bool{
	stateCreated: true, stateStarting: true, stateStarted: true, stateStopping: true, stateStopped: true,
	stateSuspending: true, stateSuspended: true, stateRestarting: true, stateReplacing: true,
	stateDestroying: true, stateDestroyed: true, stateFailed: true,
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
	case stateCreated, stateStarted, stateStopped, stateSuspended, stateFailed, stateDestroyed:
		return !m.pending()
	}
	return false
}

// running reports whether m is running or on its way in or out of running; app delete without force
// refuses such machines.
func running(m *machine) bool {
	switch m.state {
	case stateStarting, stateStarted, stateRestarting, stateStopping, stateSuspending, stateReplacing:
		return true
	case stateCreated:
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

// boot moves m through starting to started.
func (s *Server) boot(m *machine, eventType, source string) {
	s.setState(m, stateStarting, eventType, source)
	s.schedule(m, s.opts.Delays.Start, func() { s.setState(m, stateStarted, "start", sourceFlyd) })
}

// launch is the boot after create: created, then starting and started.
func (s *Server) launch(m *machine) {
	s.schedule(m, s.opts.Delays.Create, func() { s.boot(m, "start", sourceFlyd) })
}

// halt moves m through stopping to stopped.
func (s *Server) halt(m *machine, source string) {
	s.setState(m, stateStopping, "stop", source)
	s.schedule(m, s.opts.Delays.Stop, func() { s.setState(m, stateStopped, "exit", sourceFlyd) })
}

// pause moves m through suspending to suspended.
func (s *Server) pause(m *machine, source string) {
	s.setState(m, stateSuspending, "suspend", source)
	s.schedule(m, s.opts.Delays.Suspend, func() { s.setState(m, stateSuspended, "suspend", sourceFlyd) })
}

// reboot moves m through restarting, starting and started.
func (s *Server) reboot(m *machine) {
	s.setState(m, stateRestarting, "restart", sourceUser)
	s.schedule(m, s.opts.Delays.Restart, func() { s.boot(m, "restart", sourceFlyd) })
}

// teardown moves m through destroying to destroyed, dropping its lease.
func (s *Server) teardown(m *machine, source string) {
	m.lease = nil
	s.setState(m, stateDestroying, "destroy", source)
	s.schedule(m, s.opts.Delays.Destroy, func() { s.setState(m, stateDestroyed, "destroy", sourceFlyd) })
}

// destroyNow stops (when running) and destroys m at once: the app delete cascade.
func (s *Server) destroyNow(m *machine) {
	s.cancelPending(m)
	m.lease = nil
	if running(m) {
		s.setState(m, stateStopped, "exit", sourceFlyd)
	}
	if m.state != stateDestroyed {
		s.setState(m, stateDestroyed, "destroy", sourceUser)
	}
}

// afterUpdate is where an update leaves the machine (§4.4, sheet guidance): a machine that was running
// (or on its way there) runs the new version; one that was not is left stopped, as Fly's own message
// "machine was in a non-started state prior to the update so leaving the new version stopped" says;
// with skip_launch the new version is created and not booted (open in the sheet: created or stopped; the
// states diagram's "no auto-start" says created).
func afterUpdate(prior string, skipLaunch bool) string {
	if skipLaunch {
		return stateCreated
	}
	switch prior {
	case stateStarted, stateStarting, stateRestarting:
		return stateStarted
	}
	return stateStopped
}

// replace runs the update swap: replacing for Delays.Update, then the state afterUpdate picked.
func (s *Server) replace(m *machine, target string) {
	m.updateTarget = target
	s.setState(m, stateReplacing, "update", sourceUser)
	s.schedule(m, s.opts.Delays.Update, func() {
		switch target {
		case stateStarted:
			s.boot(m, "start", sourceFlyd)
		case stateStopped:
			s.setState(m, stateStopped, "update", sourceFlyd)
		default:
			s.setState(m, stateCreated, "update", sourceFlyd)
		}
	})
}
