package flyapi_test

// Realistic-profile cases of the contract suite: the emulator departs from a fast, healthy Fly the
// way real Fly is known to (flysim.Realistic, docs/fly-api.md §11), one knob at a time so each case
// is deterministic, and the client must still give its callers correct answers. They run against
// the emulator only.

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/flysim"
)

// newRealisticEnv is newFaultEnv on an emulator with profile p (no rate limits, the client's limiter
// off), without an app.
func newRealisticEnv(t *testing.T, p flysim.Profile, edit func(*flyapi.Options)) *faultEnv {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	clock := flyapi.NewManualClock(time.Now())
	sim := flysim.New(flysim.Options{
		Orgs:              []flysim.OrgToken{{Token: simToken, Org: simOrg}},
		Seed:              11,
		Now:               clock.Now,
		DisableRateLimits: true,
		Profile:           p,
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
	return env
}

// realisticKnob is the realistic profile with only the knobs a case sets: the others off, so the
// case's outcome depends on nothing else.
func realisticKnob(set func(*flysim.Profile)) flysim.Profile {
	p := flysim.Profile{Name: "realistic, one knob", TimeScale: 1}
	set(&p)
	return p
}

// newRealisticApp creates an app on env and returns its name.
func (e *faultEnv) newRealisticApp(t *testing.T) string {
	t.Helper()
	name := e.tg.appName()
	if _, err := e.client.CreateApp(testContext(t), simOrg, name, name+"-net"); err != nil {
		t.Fatalf("CreateApp(%s): %v", name, err)
	}
	return name
}

func TestContractRealistic(t *testing.T) {
	r := flysim.Realistic()
	t.Run("the realistic profile is what these cases model", func(t *testing.T) {
		// Each case below turns on one of these knobs; if the profile drops one, the case stops
		// describing real Fly.
		if r.AppCreateLag == (flysim.Dist{}) || r.ShortPages == 0 || r.UnclearFailures["create_machine"] == 0 ||
			r.UnclearFailures["update_machine"] == 0 || r.UnclearFailures["acquire_lease"] == 0 || r.SecretsLag == (flysim.Dist{}) {
			t.Errorf("flysim.Realistic() = %+v no longer models one of the cases", r)
		}
	})

	t.Run("app create is asynchronous: CreateApp waits until the app reads", func(t *testing.T) {
		// The app stays invisible for 2 s of the emulator's clock after the create answered (no
		// real hold): CreateApp must read it until it shows, sleeping on the client's clock.
		env := newRealisticEnv(t, realisticKnob(func(p *flysim.Profile) {
			p.AppCreateLag, p.AppCreateWaitResidual = flysim.Fixed(2*time.Second), flysim.Fixed(2*time.Second)
		}), nil)
		ctx := testContext(t)
		name := env.tg.appName()
		app, err := env.client.CreateApp(ctx, simOrg, name, name+"-net")
		if err != nil {
			t.Fatalf("CreateApp: %v", err)
		}
		if app.ID == "" || app.Name != name {
			t.Errorf("CreateApp = %+v", app)
		}
		if reads := env.sim.CallsFor("get_app", name); len(reads) < 2 {
			t.Errorf("%d reads of the new app, want it read again after a 404", len(reads))
		}
		if create := env.sim.CallsFor("create_app", name); len(create) != 1 || create[0].Path != "/v1/apps" {
			t.Errorf("create calls %+v, want one", create)
		}
		if _, err := env.client.GetApp(ctx, name); err != nil {
			t.Errorf("GetApp right after CreateApp returned: %v", err)
		}
	})

	t.Run("app create is asynchronous: past the wait, created but not visible", func(t *testing.T) {
		env := newRealisticEnv(t, realisticKnob(func(p *flysim.Profile) {
			p.AppCreateLag, p.AppCreateWaitResidual = flysim.Fixed(time.Minute), flysim.Fixed(time.Minute)
		}), func(o *flyapi.Options) { o.CreateAppWait = 10 * time.Second })
		ctx := testContext(t)
		name := env.tg.appName()
		_, err := env.client.CreateApp(ctx, simOrg, name, "")
		if !flyapi.IsAppNotVisible(err) || flyapi.IsNotFound(err) || flyapi.IsOutcomeUnknown(err) {
			t.Fatalf("CreateApp: %v, want created but not visible", err)
		}
		if _, exists := env.sim.App(name); !exists {
			t.Fatal("the emulator has no such app: it was created")
		}
		// What the caller does next: the name is taken, and once the app shows it is readable.
		if _, err := env.client.CreateApp(ctx, simOrg, name, ""); !flyapi.IsNameTaken(err) {
			t.Errorf("CreateApp again: %v, want name taken", err)
		}
		env.clock.Advance(time.Minute)
		if _, err := env.client.GetApp(ctx, name); err != nil {
			t.Errorf("GetApp once the app shows: %v", err)
		}
	})

	t.Run("short and empty pages: every machine listed once", func(t *testing.T) {
		env := newRealisticEnv(t, realisticKnob(func(p *flysim.Profile) { p.ShortPages = 0.6 }), nil)
		ctx := testContext(t)
		app := env.newRealisticApp(t)
		var want []string
		for i := range 9 {
			m, err := env.client.CreateMachine(ctx, app, flyapi.CreateMachineRequest{
				Config: env.tg.machineConfig(fmt.Sprint("m", i)), Region: "ord", SkipLaunch: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, m.ID)
		}
		got, err := env.client.ListMachines(ctx, app, flyapi.ListMachinesOptions{PageSize: 2})
		if err != nil {
			t.Fatalf("ListMachines: %v", err)
		}
		ids := machineIDs(got)
		slices.Sort(ids)
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("listed %v, want %v", ids, want)
		}
		if pages := len(env.sim.CallsFor("list_machines", app)); pages <= 5 {
			t.Errorf("%d pages for 9 machines 2 at a time: no page was short, the case tests nothing", pages)
		}
	})

	for _, drop := range []bool{false, true} {
		answer := "408"
		if drop {
			answer = "a dropped connection"
		}
		t.Run("create committed, then "+answer+": outcome unknown, sent once, found by metadata", func(t *testing.T) {
			env := newRealisticEnv(t, realisticKnob(func(p *flysim.Profile) {
				p.UnclearFailures = map[string]float64{"create_machine": 1}
				if drop {
					p.UnclearDrop = 1
				}
			}), nil)
			ctx := testContext(t)
			app := env.newRealisticApp(t)
			_, err := env.client.CreateMachine(ctx, app, flyapi.CreateMachineRequest{Config: env.tg.machineConfig("web-1"), Name: "web-1", Region: "ord"})
			if !flyapi.IsOutcomeUnknown(err) || flyapi.IsWaitTimeout(err) {
				t.Fatalf("CreateMachine: %v, want an unknown outcome (and not a wait timeout)", err)
			}
			if n := len(env.sim.CallsFor("create_machine", app)); n != 1 {
				t.Errorf("the emulator saw %d creates, want exactly 1", n)
			}
			found, err := env.client.ListMachines(ctx, app, flyapi.ListMachinesOptions{Metadata: map[string]string{"hangar.dev/uid": "web-1"}})
			if err != nil || len(found) != 1 {
				t.Errorf("lookup after the unclear create = %v, %v; want the one committed machine", machineIDs(found), err)
			}
		})
	}

	t.Run("update committed, then 408: outcome unknown, sent once, applied", func(t *testing.T) {
		env := newRealisticEnv(t, realisticKnob(func(p *flysim.Profile) {
			p.UnclearFailures = map[string]float64{"update_machine": 1}
		}), nil)
		ctx := testContext(t)
		app := env.newRealisticApp(t)
		m, err := env.client.CreateMachine(ctx, app, flyapi.CreateMachineRequest{Config: env.tg.machineConfig("web-1"), Region: "ord", SkipLaunch: true})
		if err != nil {
			t.Fatal(err)
		}
		cfg := env.tg.machineConfig("web-1")
		cfg.Env = map[string]string{"V": "2"}
		_, err = env.client.UpdateMachine(ctx, app, m.ID, flyapi.UpdateMachineRequest{Config: cfg, CurrentVersion: m.Version})
		if !flyapi.IsOutcomeUnknown(err) {
			t.Fatalf("UpdateMachine: %v, want an unknown outcome", err)
		}
		if n := len(env.sim.CallsFor("update_machine", m.ID)); n != 1 {
			t.Errorf("the emulator saw %d updates, want exactly 1", n)
		}
		if info, _ := env.sim.Machine(app, m.ID); info.Version == m.Version {
			t.Errorf("version still %s: the unclear update was not committed, the case tests nothing", info.Version)
		}
	})

	t.Run("lease granted, then 408: outcome unknown, sent once", func(t *testing.T) {
		env := newRealisticEnv(t, realisticKnob(func(p *flysim.Profile) {
			p.UnclearFailures = map[string]float64{"acquire_lease": 1}
		}), nil)
		ctx := testContext(t)
		app := env.newRealisticApp(t)
		m, err := env.client.CreateMachine(ctx, app, flyapi.CreateMachineRequest{Config: env.tg.machineConfig("web-1"), Region: "ord", SkipLaunch: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = env.client.AcquireLease(ctx, app, m.ID, time.Minute, "hangar")
		if !flyapi.IsOutcomeUnknown(err) {
			t.Fatalf("AcquireLease: %v, want an unknown outcome", err)
		}
		if n := len(env.sim.CallsFor("acquire_lease", m.ID)); n != 1 {
			t.Errorf("the emulator saw %d lease requests, want exactly 1", n)
		}
		if info, _ := env.sim.Machine(app, m.ID); info.LeaseNonce == "" {
			t.Error("no lease is held: the unclear acquisition was not committed, the case tests nothing")
		}
	})

	t.Run("secrets lag: reads at the written version see it, machines may require it", func(t *testing.T) {
		env := newRealisticEnv(t, realisticKnob(func(p *flysim.Profile) { p.SecretsLag = flysim.Fixed(time.Hour) }), nil)
		ctx := testContext(t)
		app := env.newRealisticApp(t)
		v, err := env.client.SetSecrets(ctx, app, map[string]string{"ALPHA": "a"})
		if err != nil {
			t.Fatal(err)
		}
		if stale, err := env.client.ListSecrets(ctx, app, 0); err != nil || len(stale) != 0 {
			t.Errorf("a read without a version = %+v, %v; want the stale (empty) list the lag gives, or the case tests nothing", stale, err)
		}
		fresh, err := env.client.ListSecrets(ctx, app, v)
		if err != nil || len(fresh) != 1 || fresh[0].Name != "ALPHA" {
			t.Errorf("a read at version %d = %+v, %v; want ALPHA", v, fresh, err)
		}
		if _, err := env.client.GetSecret(ctx, app, "ALPHA", v); err != nil {
			t.Errorf("GetSecret at version %d: %v", v, err)
		}
		if _, err := env.client.CreateMachine(ctx, app, flyapi.CreateMachineRequest{
			Config: env.tg.machineConfig("web-1"), Region: "ord", SkipLaunch: true, MinSecretsVersion: &v,
		}); err != nil {
			t.Errorf("CreateMachine requiring secrets version %d right after writing it: %v", v, err)
		}
	})

	t.Run("the whole realistic profile, scaled down: a machine's life through the client", func(t *testing.T) {
		p := flysim.Realistic()
		p.TimeScale = 0.01
		p.UnclearFailures = nil // the cases above cover them one at a time
		env := newRealisticEnv(t, p, nil)
		ctx := testContext(t)
		app := env.newRealisticApp(t)
		m, err := env.client.CreateMachine(ctx, app, flyapi.CreateMachineRequest{Config: env.tg.machineConfig("web-1"), Name: "web-1", Region: "ord"})
		if err != nil {
			t.Fatalf("CreateMachine: %v", err)
		}
		env.tg.waitState(t, app, m.ID, m.Version, flyapi.StateStarted)
		cfg := env.tg.machineConfig("web-1")
		cfg.Env = map[string]string{"V": "2"}
		updated, err := env.client.UpdateMachine(ctx, app, m.ID, flyapi.UpdateMachineRequest{Config: cfg, CurrentVersion: m.Version})
		if err != nil {
			t.Fatalf("UpdateMachine: %v", err)
		}
		// The update's own answer carries the new version; nothing has to read it back.
		if updated.Version == m.Version || updated.Config == nil || updated.Config.Env["V"] != "2" {
			t.Errorf("UpdateMachine answered version %q (was %q), config %+v", updated.Version, m.Version, updated.Config)
		}
		env.tg.waitState(t, app, m.ID, updated.Version, flyapi.StateStarted)
		if err := env.client.DestroyMachine(ctx, app, m.ID, true, ""); err != nil {
			t.Fatalf("DestroyMachine: %v", err)
		}
		// 202: the deletion has started. The app may still read for a while (it completes on the
		// emulator's real timer); either answer is right, anything else is not.
		if err := env.client.DeleteApp(ctx, app, true); err != nil {
			t.Fatalf("DeleteApp: %v", err)
		}
		if _, err := env.client.GetApp(ctx, app); err != nil && !flyapi.IsNotFound(err) {
			t.Errorf("GetApp right after DeleteApp: %v, want the app or not found", err)
		}
	})
}
