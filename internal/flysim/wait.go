package flysim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// waitStates are the states wait accepts (S's enum); settled means any resting state.
var waitStates = map[string]bool{
	StateStarted: true, StateStopped: true, StateSuspended: true, StateDestroyed: true, StateFailed: true, "settled": true,
}

const (
	defaultWaitTimeout = 60 * time.Second
	maxWaitTimeout     = 60 * time.Second
	minWaitTimeout     = 1 * time.Second
)

type waitResponse struct {
	OK      bool   `json:"ok"`
	State   string `json:"state"`
	Version string `json:"version"`
	EventID string `json:"event_id"`
}

// waitMachine blocks until the machine (or the version asked for) is in one of the wanted states, or
// answers 408 when the timeout passes first (§4.7).
func (s *Server) waitMachine(req *request) reply {
	q := req.r.URL.Query()
	var want []string
	for _, v := range q["state"] { // repeated (fly-go) or comma-separated (spec)
		for st := range strings.SplitSeq(v, ",") {
			if st = strings.TrimSpace(st); st != "" {
				want = append(want, st)
			}
		}
	}
	if len(want) == 0 {
		want = []string{StateStarted}
	}
	for _, st := range want {
		if !waitStates[st] {
			return errorf(http.StatusBadRequest, "invalid_argument: state %q cannot be waited for", st)
		}
	}
	version := q.Get("version")
	if version == "" {
		version = q.Get("instance_id") // deprecated alias
	}
	// The docs require the version when waiting for stopped: a stop of one version must not be
	// confused with another.
	if slices.Contains(want, StateStopped) && version == "" {
		return errorf(http.StatusBadRequest, "invalid_argument: version (instance_id) is required to wait for the stopped state")
	}
	timeout := defaultWaitTimeout
	if t := q.Get("timeout"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return errorf(http.StatusBadRequest, "invalid_argument: timeout must be an integer number of seconds")
		}
		timeout = min(max(time.Duration(n)*time.Second, minWaitTimeout), maxWaitTimeout)
	}
	fromEvent := q.Get("from_event_id")

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		m, err := s.machineFor(req)
		if err != nil {
			s.mu.Unlock()
			return errReply(err)
		}
		state, ver := m.state, m.current().id
		if version != "" && version != ver {
			if m.version(version) == nil {
				s.mu.Unlock()
				return errorf(http.StatusNotFound, "machine version not found")
			}
			state, ver = StateReplaced, version
		}
		eventID := m.latestEventID()
		reached := slices.Contains(want, state) || (slices.Contains(want, "settled") && state != StateReplaced && settled(m))
		if reached && (fromEvent == "" || eventID > fromEvent) {
			s.mu.Unlock()
			return jsonReply(http.StatusOK, waitResponse{OK: true, State: state, Version: ver, EventID: eventID})
		}
		changed := m.changed
		s.mu.Unlock()

		select {
		case <-changed:
		case <-deadline.C:
			return errorf(http.StatusRequestTimeout, "deadline_exceeded: machine failed to reach desired state, %s, currently %s",
				strings.Join(want, ","), state)
		case <-req.r.Context().Done():
			return errorf(499, "client closed request")
		case <-s.done:
			return errorf(http.StatusServiceUnavailable, "flysim: server closed")
		}
	}
}
