package flysim

import (
	"slices"
	"sync"
	"time"
)

// Call is one API call as the emulator saw it.
type Call struct {
	Time    time.Time // by Options.Now, when the call arrived
	Action  string    // action name (e.g. "create_machine"); "" for an unmatched route
	Method  string
	Path    string
	App     string // app name from the path, or the body for create_app
	Machine string // machine ID from the path, or the created machine for create_machine
	Org     string // org of the token; "" when unauthenticated
	// Caller names the token the call was made with by the identity Fly shows as its lease owner
	// (token<n>@<org>.flysim.invalid, n counting Options.Orgs from 1), never by the token itself:
	// it tells apart clients sharing an org, e.g. two manager replicas. "" when unauthenticated.
	Caller string
	// Status answered; 0 when the connection was dropped, 499 when the client went away first.
	Status      int
	Faulted     bool // a configured fault changed the outcome
	RateLimited bool // answered 429 by the rate limiter
	// Unclear reports that the profile's UnclearFailures replaced the answer of a call whose change
	// committed (a 408 or a dropped connection).
	Unclear bool
}

type callLog struct {
	mu    sync.Mutex
	calls []Call
}

func (l *callLog) add(c Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

// Calls returns every call since the start or the last ResetCalls, oldest first.
func (s *Server) Calls() []Call {
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	return slices.Clone(s.calls.calls)
}

// CallsFor returns the calls of action ("" for any) about machineOrApp (a machine ID or an app name;
// "" for any), oldest first.
func (s *Server) CallsFor(action, machineOrApp string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if action != "" && c.Action != action {
			continue
		}
		if machineOrApp != "" && c.Machine != machineOrApp && c.App != machineOrApp {
			continue
		}
		out = append(out, c)
	}
	return out
}

// ResetCalls empties the call log.
func (s *Server) ResetCalls() {
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	s.calls.calls = nil
}
