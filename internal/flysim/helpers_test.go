package flysim

import (
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

// Test fixtures: flysimtest's two orgs with one token each.
const (
	tokenA = flysimtest.TokenA
	tokenB = flysimtest.TokenB
	orgA   = flysimtest.OrgA
	orgB   = flysimtest.OrgB
)

// quickDelays keep transitions short but observable.
var quickDelays = Delays{
	Create: time.Millisecond, Start: 2 * time.Millisecond, Stop: 2 * time.Millisecond, Suspend: 2 * time.Millisecond,
	Restart: time.Millisecond, Destroy: 2 * time.Millisecond, Update: 2 * time.Millisecond,
}

// harness is an emulator behind a real HTTP server (faults can drop connections) and a client for it.
type harness struct {
	*flysimtest.Client
	t   testing.TB
	srv *Server
}

func newHarness(t testing.TB, tweak ...func(*Options)) *harness {
	t.Helper()
	opts := Options{
		Orgs:              []OrgToken{{Token: tokenA, Org: orgA}, {Token: tokenB, Org: orgB}},
		Seed:              1,
		Delays:            quickDelays,
		DisableRateLimits: true,
	}
	for _, f := range tweak {
		f(&opts)
	}
	srv := New(opts)
	t.Cleanup(srv.Close) // after the HTTP server's close, registered by Serve
	return &harness{Client: flysimtest.Serve(t, srv, stateOf(srv)), t: t, srv: srv}
}

// stateOf reads machine states for flysimtest's WaitSettled.
func stateOf(srv *Server) flysimtest.StateFunc {
	return func(app, id string) (string, bool, bool) {
		m, _, ok := srv.SnapshotMachine(app, id)
		return m.State, m.Pending, ok
	}
}
