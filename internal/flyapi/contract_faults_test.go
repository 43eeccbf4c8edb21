package flyapi_test

// Fault-knob cases of the contract suite: they configure the emulator's faults, so they run
// against the emulator only. They check the client's side-effect rules end to end: a create or
// update is sent exactly once whatever happens, reads and converging calls are retried, 429s are
// waited out.

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/flysim"
)

// faultEnv is an emulator, a client on a shared manual clock, and one app.
type faultEnv struct {
	sim    *flysim.Server
	client *flyapi.Client
	clock  *flyapi.ManualClock
	app    string
	tg     *target
}

func newFaultEnv(t *testing.T, rateLimits bool, edit func(*flyapi.Options)) *faultEnv {
	t.Helper()
	clock := flyapi.NewManualClock(time.Now())
	sim := flysim.New(flysim.Options{
		Orgs:              []flysim.OrgToken{{Token: simToken, Org: simOrg}},
		Seed:              7,
		Now:               clock.Now,
		DisableRateLimits: !rateLimits,
	})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	opts := flyapi.Options{
		BaseURL: srv.URL,
		Token:   flyapi.StaticToken(simToken),
		Limiter: flyapi.NewLimiter(flyapi.NoLimits()),
		Now:     clock.Now,
		Sleep:   clock.Sleep,
	}
	if edit != nil {
		edit(&opts)
	}
	env := &faultEnv{sim: sim, client: mustClient(t, opts), clock: clock}
	env.tg = &target{client: env.client, org: simOrg, region: "ord", image: "registry-1.docker.io/library/nginx:alpine", prefix: randomPrefix(t)}
	env.app = env.tg.appName()
	if _, err := env.client.CreateApp(testContext(t), simOrg, env.app, ""); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	return env
}

func (e *faultEnv) createRequest(uid string) flyapi.CreateMachineRequest {
	return flyapi.CreateMachineRequest{Config: e.tg.machineConfig(uid), Name: uid, Region: "ord"}
}

func (e *faultEnv) calls(action string) []flysim.Call { return e.sim.CallsFor(action, e.app) }

func TestContractFaults(t *testing.T) {
	t.Run("503 on create: sent once, nothing created", func(t *testing.T) {
		env := newFaultEnv(t, false, nil)
		env.sim.SetFault("create_machine", flysim.Fault{Status: 503, Count: 1})
		_, err := env.client.CreateMachine(testContext(t), env.app, env.createRequest("web-1"))
		if !flyapi.IsUnavailable(err) {
			t.Fatalf("CreateMachine: %v, want unavailable", err)
		}
		if n := len(env.calls("create_machine")); n != 1 {
			t.Errorf("the emulator saw %d creates, want exactly 1", n)
		}
		if ms := env.sim.Machines(env.app); len(ms) != 0 {
			t.Errorf("%d machines exist, want none", len(ms))
		}
	})

	for _, drop := range []bool{false, true} {
		name := "create committed then 503: sent once, found by metadata"
		if drop {
			name = "create committed then connection dropped: sent once, found by metadata"
		}
		t.Run(name, func(t *testing.T) {
			env := newFaultEnv(t, false, nil)
			env.sim.SetFault("create_machine", flysim.Fault{Status: 503, CommitThenFail: true, DropConnection: drop, Count: 1})
			ctx := testContext(t)
			_, err := env.client.CreateMachine(ctx, env.app, env.createRequest("web-1"))
			if !flyapi.IsUnavailable(err) {
				t.Fatalf("CreateMachine: %v, want unavailable (outcome unknown)", err)
			}
			var transportErr *flyapi.TransportError
			if drop != errors.As(err, &transportErr) {
				t.Errorf("error %T: a dropped connection must give a TransportError, a 503 an APIError", err)
			}
			if n := len(env.calls("create_machine")); n != 1 {
				t.Errorf("the emulator saw %d creates, want exactly 1", n)
			}
			// The caller's recovery: look the machine up by its metadata before creating again.
			found, err := env.client.ListMachines(ctx, env.app, flyapi.ListMachinesOptions{Metadata: map[string]string{"hangar.dev/uid": "web-1"}})
			if err != nil || len(found) != 1 || found[0].Name != "web-1" {
				t.Errorf("lookup after the failed create = %v, %v; want the one committed machine", machineIDs(found), err)
			}
		})
	}

	t.Run("update committed then 503: sent once, change applied", func(t *testing.T) {
		env := newFaultEnv(t, false, nil)
		ctx := testContext(t)
		m := env.tg.createStarted(t, env.app, "web-1")
		env.sim.SetFault("update_machine", flysim.Fault{Status: 503, CommitThenFail: true, Count: 1})
		cfg := env.tg.machineConfig("web-1")
		cfg.Env = map[string]string{"V": "2"}
		_, err := env.client.UpdateMachine(ctx, env.app, m.ID, flyapi.UpdateMachineRequest{Config: cfg, CurrentVersion: m.Version})
		if !flyapi.IsUnavailable(err) {
			t.Fatalf("UpdateMachine: %v, want unavailable", err)
		}
		if n := len(env.sim.CallsFor("update_machine", m.ID)); n != 1 {
			t.Errorf("the emulator saw %d updates, want exactly 1", n)
		}
		after, err := env.client.GetMachine(ctx, env.app, m.ID)
		if err != nil || after.Version == m.Version || after.Config.Env["V"] != "2" {
			t.Errorf("after the failed update: version %q (was %q), env %v, %v", after.Version, m.Version, after.Config.Env, err)
		}
		// A blind resend with the old current_version is refused instead of applied twice.
		_, err = env.client.UpdateMachine(ctx, env.app, m.ID, flyapi.UpdateMachineRequest{Config: cfg, CurrentVersion: m.Version})
		if !flyapi.IsConflict(err) {
			t.Errorf("resent update: %v, want conflict", err)
		}
	})

	t.Run("reads ride out 503s and dropped connections", func(t *testing.T) {
		env := newFaultEnv(t, false, nil)
		ctx := testContext(t)
		m, err := env.client.CreateMachine(ctx, env.app, env.createRequest("web-1"))
		if err != nil {
			t.Fatal(err)
		}
		env.sim.SetFault("get_machine", flysim.Fault{Status: 503, Count: 2})
		if _, err := env.client.GetMachine(ctx, env.app, m.ID); err != nil {
			t.Fatalf("GetMachine through two 503s: %v", err)
		}
		if n := len(env.sim.CallsFor("get_machine", m.ID)); n != 3 {
			t.Errorf("%d get calls, want 3", n)
		}
		env.sim.SetFault("list_machines", flysim.Fault{DropConnection: true, Count: 1})
		if ms, err := env.client.ListMachines(ctx, env.app, flyapi.ListMachinesOptions{}); err != nil || len(ms) != 1 {
			t.Fatalf("ListMachines through a dropped connection = %v, %v", machineIDs(ms), err)
		}
		if n := len(env.calls("list_machines")); n != 2 {
			t.Errorf("%d list calls, want 2", n)
		}
	})

	t.Run("destroy committed then 503: retried, success", func(t *testing.T) {
		env := newFaultEnv(t, false, nil)
		ctx := testContext(t)
		m := env.tg.createStarted(t, env.app, "web-1")
		env.sim.SetFault("destroy_machine", flysim.Fault{Status: 503, CommitThenFail: true, Count: 1})
		if err := env.client.DestroyMachine(ctx, env.app, m.ID, true, ""); err != nil {
			t.Fatalf("DestroyMachine: %v, want success (the first attempt destroyed it)", err)
		}
		if n := len(env.sim.CallsFor("destroy_machine", m.ID)); n != 2 {
			t.Errorf("%d destroy calls, want 2 (one retry)", n)
		}
		env.tg.waitState(t, env.app, m.ID, "", flyapi.StateDestroyed)
	})

	t.Run("lease release committed then dropped: retried, success", func(t *testing.T) {
		env := newFaultEnv(t, false, nil)
		ctx := testContext(t)
		m, err := env.client.CreateMachine(ctx, env.app, env.createRequest("web-1"))
		if err != nil {
			t.Fatal(err)
		}
		lease, err := env.client.AcquireLease(ctx, env.app, m.ID, time.Minute, "")
		if err != nil {
			t.Fatal(err)
		}
		env.sim.SetFault("release_lease", flysim.Fault{CommitThenFail: true, DropConnection: true, Count: 1})
		if err := env.client.ReleaseLease(ctx, env.app, m.ID, lease.Nonce); err != nil {
			t.Fatalf("ReleaseLease: %v, want success", err)
		}
		if _, err := env.client.GetLease(ctx, env.app, m.ID); !flyapi.IsNotFound(err) {
			t.Errorf("GetLease: %v, want not found", err)
		}
	})

	t.Run("429 storm on create: waited out, one machine", func(t *testing.T) {
		env := newFaultEnv(t, false, nil)
		env.sim.SetFault("create_machine", flysim.Fault{Status: 429, Count: 2})
		var stats flyapi.CallStats
		if _, err := env.client.CreateMachine(flyapi.WithCallStats(testContext(t), &stats), env.app, env.createRequest("web-1")); err != nil {
			t.Fatalf("CreateMachine through two 429s: %v", err)
		}
		if n := len(env.calls("create_machine")); n != 3 {
			t.Errorf("%d create calls, want 3", n)
		}
		if ms := env.sim.Machines(env.app); len(ms) != 1 {
			t.Errorf("%d machines, want 1", len(ms))
		}
		sleeps := env.clock.Sleeps()
		if len(sleeps) != 2 {
			t.Errorf("slept %v, want one sleep before each of the 2 retries", sleeps)
		}
		for _, d := range sleeps {
			if d < time.Second {
				t.Errorf("slept %v before a retry, less than the Retry-After of 1s", d)
			}
		}
		if stats.RateLimited() != 2 || !stats.Throttled() {
			t.Errorf("stats: rate limited %d times", stats.RateLimited())
		}
	})

	t.Run("429 storm beyond the attempts: rate limited, nothing created", func(t *testing.T) {
		env := newFaultEnv(t, false, func(o *flyapi.Options) { o.Retry.MaxAttempts = 3 })
		env.sim.SetFault("create_machine", flysim.Fault{Status: 429})
		_, err := env.client.CreateMachine(testContext(t), env.app, env.createRequest("web-1"))
		if !flyapi.IsRateLimited(err) || flyapi.RateLimitedAfter(err) != time.Second {
			t.Fatalf("CreateMachine: %v, want rate limited with Retry-After 1s", err)
		}
		if n := len(env.calls("create_machine")); n != 3 {
			t.Errorf("%d create calls, want 3", n)
		}
		if ms := env.sim.Machines(env.app); len(ms) != 0 {
			t.Errorf("%d machines, want none", len(ms))
		}
	})

	t.Run("emulator rate limits: 429s waited out without duplicates", func(t *testing.T) {
		// The client's own limiter is off, so the emulator's published limits answer 429.
		env := newFaultEnv(t, true, nil)
		ctx := testContext(t)
		var stats flyapi.CallStats
		for _, uid := range []string{"m1", "m2", "m3", "m4", "m5", "m6"} {
			if _, err := env.client.CreateMachine(flyapi.WithCallStats(ctx, &stats), env.app, env.createRequest(uid)); err != nil {
				t.Fatalf("CreateMachine(%s): %v", uid, err)
			}
		}
		limited := 0
		for _, call := range env.calls("create_machine") {
			if call.RateLimited {
				limited++
			}
		}
		if limited == 0 || stats.RateLimited() != limited {
			t.Errorf("emulator refused %d creates, client counted %d; want the same, above 0", limited, stats.RateLimited())
		}
		if ms := env.sim.Machines(env.app); len(ms) != 6 {
			t.Errorf("%d machines, want 6", len(ms))
		}
	})

	t.Run("revoked token", func(t *testing.T) {
		env := newFaultEnv(t, false, nil)
		env.sim.RevokeToken(simToken)
		_, err := env.client.GetApp(testContext(t), env.app)
		if !flyapi.IsUnauthorized(err) {
			t.Fatalf("GetApp with a revoked token: %v, want unauthorized", err)
		}
		env.sim.RestoreToken(simToken)
		if _, err := env.client.GetApp(testContext(t), env.app); err != nil {
			t.Fatalf("GetApp after restore: %v", err)
		}
	})

	t.Run("list lag: a new machine is missing from the list but found by ID", func(t *testing.T) {
		env := newFaultEnv(t, false, nil)
		ctx := testContext(t)
		env.sim.SetListLag(time.Hour)
		m, err := env.client.CreateMachine(ctx, env.app, env.createRequest("web-1"))
		if err != nil {
			t.Fatal(err)
		}
		if ms, err := env.client.ListMachines(ctx, env.app, flyapi.ListMachinesOptions{}); err != nil || len(ms) != 0 {
			t.Errorf("list during lag = %v, %v; want empty", machineIDs(ms), err)
		}
		if _, err := env.client.GetMachine(ctx, env.app, m.ID); err != nil {
			t.Errorf("GetMachine during lag: %v", err)
		}
	})

	t.Run("latency beyond the caller's deadline", func(t *testing.T) {
		env := newFaultEnv(t, false, nil)
		env.sim.SetFault("get_app", flysim.Fault{Latency: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := env.client.GetApp(ctx, env.app)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GetApp: %v, want the context's deadline", err)
		}
	})
}
