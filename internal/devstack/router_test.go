package devstack

import (
	"context"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
)

// Under the realistic profile, where an app is readable only a moment after its create and every
// machine create here loses its answer after committing, the router app still gets its public
// addresses and exactly one started machine, registered as the in-process router.
func TestRegisterRouterAppUnderTheRealisticProfile(t *testing.T) {
	p := flysim.Realistic()
	p.TimeScale = 0.05
	p.UnclearFailures = map[string]float64{"create_machine": 1}
	s := &Stack{cfg: Config{StateDir: t.TempDir(), FlyAPIAddr: "127.0.0.1:0", FlyProfile: p}.withDefaults()}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := s.startFly(); err != nil {
		t.Fatal(err)
	}
	s.router = &routerProcess{public: "127.0.0.1:18080", management: "127.0.0.1:19090"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.registerRouterApp(ctx); err != nil {
		t.Fatal(err)
	}

	app, ok := s.Fly.SnapshotApp(RouterApp)
	if !ok || len(app.PublicIPs) != 2 {
		t.Fatalf("router app %+v", app)
	}
	if len(app.Machines) != 1 || app.Machines[0].State != flysim.StateStarted {
		t.Fatalf("router machines %+v, want one started", app.Machines)
	}
	if !s.Machines.IsExternal(RouterApp, app.Machines[0].ID) {
		t.Error("the router machine is not registered as external")
	}
	if calls := s.Fly.CallsFor("create_machine", RouterApp); len(calls) != 1 || !calls[0].Unclear {
		t.Errorf("creates %+v, want one whose answer was lost", calls)
	}
}
