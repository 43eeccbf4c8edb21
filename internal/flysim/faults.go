package flysim

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// The fault knobs: how the emulator is made less kind than a fast, healthy Fly on demand. Options
// (options.go) hold the knobs fixed at construction (transition delays, rate limits, clock, seed); these
// change at run time. The profile (profiles.go) is the background unkindness of real Fly (§11).

// Fault makes matching API calls misbehave, to test clients against an unreliable Fly.
type Fault struct {
	// ErrorRate is the fraction (0..1) of matching calls that fail, decided by the seeded RNG. Zero (or
	// 1) means every matching call fails, when a failure mode (Status, DropConnection, CommitThenFail)
	// is set; a Fault with only Latency never fails.
	ErrorRate float64
	// Status is the status failing calls answer (e.g. 503, 500, 429); default 503.
	Status int
	// Latency is added to every matching call before it is handled, failing or not.
	Latency time.Duration
	// CommitThenFail does the work first, then answers Status (or drops the connection when
	// DropConnection is also set): the client sees a failure although the change happened.
	CommitThenFail bool
	// DropConnection closes the connection without answering (hijack and close).
	DropConnection bool
	// Count, if > 0, limits the fault to the next Count failing calls; the fault is then removed.
	Count int
}

func (f Fault) failureMode() bool { return f.Status != 0 || f.DropConnection || f.CommitThenFail }

func (f Fault) status() int {
	if f.Status == 0 {
		return http.StatusServiceUnavailable
	}
	return f.Status
}

// anyAction is the fault key matching every action.
const anyAction = "*"

// faultSet holds the configured faults and the RNG deciding them.
type faultSet struct {
	mu       sync.Mutex
	rng      *rand.Rand
	byAction map[string]*Fault
}

func newFaultSet(seed int64) *faultSet {
	return &faultSet{
		rng:      rand.New(rand.NewPCG(uint64(seed), 0x666c7973696d4654)), // "flysimFT"
		byAction: map[string]*Fault{},
	}
}

// decide returns the fault matching action (an action-specific one wins over "*") and whether this
// call fails. Each call a fault with a failure mode matches draws exactly once from the RNG, so a
// sequential series of calls fails the same way under the same seed.
func (fs *faultSet) decide(action string) (f Fault, matched, fail bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	key := action
	fp := fs.byAction[key]
	if fp == nil {
		key = anyAction
		fp = fs.byAction[key]
	}
	if fp == nil {
		return Fault{}, false, false
	}
	f = *fp
	if !f.failureMode() {
		return f, true, false
	}
	draw := fs.rng.Float64()
	fail = f.ErrorRate <= 0 || f.ErrorRate >= 1 || draw < f.ErrorRate
	if fail && f.Count > 0 {
		fp.Count--
		if fp.Count == 0 {
			delete(fs.byAction, key)
		}
	}
	return f, true, fail
}

// SetFault configures the fault for action (one of the action names, or "" / "*" for every action),
// replacing any earlier fault for it.
func (s *Server) SetFault(action string, f Fault) {
	if action == "" {
		action = anyAction
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.byAction[action] = &f
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	clear(s.faults.byAction)
}

// SetListLag hides machines created less than d ago (by Options.Now) from the machine list, like
// Fly's eventually consistent list: a fixed lag on creates, on top of the profile's ListLag (which
// draws a lag per create and per destroy); zero turns it off.
func (s *Server) SetListLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listLag = d
}
