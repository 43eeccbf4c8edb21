package flysim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// This file holds the legal-action rules of §5 and the lifecycle endpoints. The rule functions are
// shared by the API handlers and the out-of-band methods. Callers hold s.mu.

func stateError(action, state string) *apiError {
	return newAPIError(http.StatusPreconditionFailed, "failed_precondition: unable to %s machine from current state: '%s'", action, state)
}

// doStart starts m. Legal from stopped, suspended, failed, and created when no launch is pending
// (a skip_launch machine). Stricter: start on a started machine is refused (the sheet leaves it open).
func (s *Server) doStart(m *machine, source string) (previous string, err *apiError) {
	switch {
	case m.state == StateReplacing:
		return "", newAPIError(http.StatusPreconditionFailed, "failed_precondition: machine getting replaced, refusing to start")
	case m.state == StateStopped, m.state == StateSuspended, m.state == StateFailed,
		m.state == StateCreated && !m.pending():
	default:
		return "", stateError("start", m.state)
	}
	previous = m.state
	s.boot(m, "start", source, previous == StateSuspended)
	return previous, nil
}

// doStop stops m. Legal from started, suspended (discarding the snapshot), created and failed.
// Stricter: stop on an already stopped machine is a 412, not a no-op (the sheet leaves it open).
func (s *Server) doStop(m *machine, source string) *apiError {
	switch m.state {
	case StateStarted, StateSuspended, StateCreated, StateFailed:
		s.halt(m, source)
		return nil
	}
	return stateError("stop", m.state)
}

// doSuspend suspends m. Stricter: only a started machine can be suspended (the sheet leaves other states
// open), and only when it meets Fly's suspend requirements: no swap and no schedule.
func (s *Server) doSuspend(m *machine, source string) *apiError {
	if m.state != StateStarted {
		return stateError("suspend", m.state)
	}
	var cfg struct {
		Schedule string `json:"schedule"`
		Init     struct {
			SwapSizeMB json.Number `json:"swap_size_mb"`
		} `json:"init"`
	}
	_ = json.Unmarshal(m.current().config, &cfg) // validated on write; zero values on any surprise
	if swap, _ := cfg.Init.SwapSizeMB.Int64(); swap > 0 {
		return newAPIError(http.StatusPreconditionFailed, "failed_precondition: machine cannot be suspended: swap is enabled (init.swap_size_mb)")
	}
	if cfg.Schedule != "" {
		return newAPIError(http.StatusPreconditionFailed, "failed_precondition: machine cannot be suspended: it has a schedule")
	}
	s.pause(m, source)
	return nil
}

// doRestart restarts m. Stricter: only a started machine can be restarted (the sheet leaves others open).
func (s *Server) doRestart(m *machine) *apiError {
	if m.state != StateStarted {
		return stateError("restart", m.state)
	}
	s.reboot(m)
	return nil
}

// doSignal checks that m can receive a signal. Stricter: the sheet says nothing; a signal needs a running
// process, so only started machines take one. The simulated process ignores signals: no state changes.
func doSignal(m *machine) *apiError {
	if m.state != StateStarted {
		return stateError("signal", m.state)
	}
	return nil
}

// doCordon sets m's cordon flag. Cordoning only changes proxy routing, so it is legal in any state but
// destroying and destroyed.
func doCordon(m *machine, action string, cordoned bool) *apiError {
	if m.state == StateDestroying || m.state == StateDestroyed {
		return stateError(action, m.state)
	}
	m.cordoned = cordoned
	return nil
}

// doDestroy destroys m. Without force it must be stopped, suspended, failed or created; with force any
// state but destroyed (forcing an already destroying machine is a no-op).
func (s *Server) doDestroy(m *machine, force bool, source string) *apiError {
	switch {
	case m.state == StateDestroyed:
		if force {
			return stateError("destroy", m.state)
		}
	case force && m.state == StateDestroying:
		return nil
	case force:
		s.teardown(m, source)
		return nil
	}
	switch m.state {
	case StateStopped, StateSuspended, StateFailed, StateCreated:
		s.teardown(m, source)
		return nil
	}
	return newAPIError(http.StatusPreconditionFailed,
		"failed_precondition: unable to destroy machine, not currently stopped, suspended, failed or created")
}

// notDestroyed refuses actions that need an existing machine (update, leases, metadata writes).
func notDestroyed(m *machine, action string) *apiError {
	if m.state == StateDestroying || m.state == StateDestroyed {
		return stateError(action, m.state)
	}
	return nil
}

// machineAction runs fn for the path's machine with s.mu held, after the lease check that guards
// mutations: while the machine is leased, the caller must send the lease's nonce.
func (s *Server) machineAction(req *request, guarded bool, fn func(m *machine) reply) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.machineFor(req)
	if err != nil {
		return errReply(err)
	}
	if guarded {
		if err := s.leaseGuard(m, req); err != nil {
			return errReply(err)
		}
	}
	return fn(m)
}

var okBody = map[string]bool{"ok": true}

func (s *Server) startMachine(req *request) reply {
	return s.machineAction(req, true, func(m *machine) reply {
		prev, err := s.doStart(m, sourceUser)
		if err != nil {
			return errReply(err)
		}
		return jsonReply(http.StatusOK, map[string]any{"previous_state": prev, "migrated": false, "new_host": ""})
	})
}

// stopSignals are the signals stop (and restart) accept (§4.5).
var stopSignals = map[string]bool{
	"SIGHUP": true, "SIGINT": true, "SIGQUIT": true, "SIGKILL": true, "SIGUSR1": true, "SIGUSR2": true, "SIGTERM": true,
}

// anySignals are the signal names of the signal endpoint's enum (S lists 14).
var anySignals = map[string]bool{
	"SIGABRT": true, "SIGALRM": true, "SIGFPE": true, "SIGHUP": true, "SIGILL": true, "SIGINT": true, "SIGKILL": true,
	"SIGPIPE": true, "SIGQUIT": true, "SIGSEGV": true, "SIGTERM": true, "SIGTRAP": true, "SIGUSR1": true, "SIGUSR2": true,
}

func (s *Server) stopMachine(req *request) reply {
	var body struct {
		Signal  *string         `json:"signal"`
		Timeout json.RawMessage `json:"timeout"`
	}
	if err := req.decodeBody(&body, true); err != nil {
		return errReply(err)
	}
	if body.Signal != nil && *body.Signal != "" && !stopSignals[*body.Signal] {
		return errorf(http.StatusBadRequest, "invalid_argument: signal: unknown signal %q", *body.Signal)
	}
	if len(body.Timeout) > 0 {
		if err := checkDurationJSON(body.Timeout, "timeout"); err != nil {
			return errReply(err)
		}
	}
	return s.machineAction(req, true, func(m *machine) reply {
		if err := s.doStop(m, sourceUser); err != nil {
			return errReply(err)
		}
		return jsonReply(http.StatusOK, okBody)
	})
}

func (s *Server) suspendMachine(req *request) reply {
	return s.machineAction(req, true, func(m *machine) reply {
		if err := s.doSuspend(m, sourceUser); err != nil {
			return errReply(err)
		}
		return jsonReply(http.StatusOK, okBody)
	})
}

func (s *Server) restartMachine(req *request) reply {
	q := req.r.URL.Query()
	if _, err := req.boolQuery("force_stop"); err != nil {
		return errReply(err)
	}
	if sig := q.Get("signal"); sig != "" && !stopSignals[sig] {
		return errorf(http.StatusBadRequest, "invalid_argument: signal: unknown signal %q", sig)
	}
	if t := q.Get("timeout"); t != "" {
		if _, err := time.ParseDuration(t); err != nil {
			if n, err := strconv.Atoi(t); err != nil || n < 0 {
				return errorf(http.StatusBadRequest, "invalid_argument: timeout must be a duration or whole seconds")
			}
		}
	}
	return s.machineAction(req, true, func(m *machine) reply {
		if err := s.doRestart(m); err != nil {
			return errReply(err)
		}
		return jsonReply(http.StatusOK, okBody)
	})
}

func (s *Server) signalMachine(req *request) reply {
	var body struct {
		Signal json.RawMessage `json:"signal"`
	}
	if err := req.decodeBody(&body, false); err != nil {
		return errReply(err)
	}
	if err := checkSignal(body.Signal); err != nil {
		return errReply(err)
	}
	// Leases do not guard signal: fly-go sends no nonce with it, and the guarded list of §4.5 omits it.
	return s.machineAction(req, false, func(m *machine) reply {
		if err := doSignal(m); err != nil {
			return errReply(err)
		}
		return jsonReply(http.StatusOK, okBody)
	})
}

// checkSignal accepts a signal name of the enum or a number 1..31 (fly-go's Kill sends {"signal":9}).
func checkSignal(raw json.RawMessage) *apiError {
	var name string
	if err := json.Unmarshal(raw, &name); err == nil {
		if anySignals[name] {
			return nil
		}
		return newAPIError(http.StatusBadRequest, "invalid_argument: signal: unknown signal %q", name)
	}
	var num int
	if err := json.Unmarshal(raw, &num); err == nil && num >= 1 && num <= 31 {
		return nil
	}
	return newAPIError(http.StatusBadRequest, "invalid_argument: signal: a signal name (SIGTERM) or number is required")
}

func (s *Server) cordonMachine(req *request) reply {
	return s.machineAction(req, true, func(m *machine) reply {
		if err := doCordon(m, "cordon", true); err != nil {
			return errReply(err)
		}
		return jsonReply(http.StatusOK, okBody)
	})
}

func (s *Server) uncordonMachine(req *request) reply {
	return s.machineAction(req, true, func(m *machine) reply {
		if err := doCordon(m, "uncordon", false); err != nil {
			return errReply(err)
		}
		return jsonReply(http.StatusOK, okBody)
	})
}

func (s *Server) destroyMachine(req *request) reply {
	// fly-go sends ?kill=, the docs ?force= (§10): either forces.
	force, err := req.boolQuery("force")
	if err != nil {
		return errReply(err)
	}
	kill, err := req.boolQuery("kill")
	if err != nil {
		return errReply(err)
	}
	return s.machineAction(req, true, func(m *machine) reply {
		if err := s.doDestroy(m, force || kill, sourceUser); err != nil {
			return errReply(err)
		}
		return jsonReply(http.StatusOK, okBody)
	})
}
