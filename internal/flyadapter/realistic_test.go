package flyadapter

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/flysim"
)

const (
	realisticToken = "realistic-token"
	realisticOrg   = "realistic-org"
)

// realisticEnv is an Adapter over the emulator with profile p, both on one fake clock (the
// emulator's read windows and lease expiry follow it; its transitions run on real timers, scaled
// by p.TimeScale).
type realisticEnv struct {
	sim   *flysim.Server
	a     *Adapter
	clock *fakeClock
}

func newRealisticEnv(t *testing.T, p flysim.Profile) *realisticEnv {
	t.Helper()
	clock := &fakeClock{now: time.Now()}
	sim := flysim.New(flysim.Options{
		Orgs: []flysim.OrgToken{{Token: realisticToken, Org: realisticOrg}}, Seed: 5, Now: clock.Now,
		DisableRateLimits: true, Profile: p,
	})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	client, err := flyapi.New(flyapi.Options{
		BaseURL: srv.URL, Token: flyapi.StaticToken(realisticToken), Limiter: flyapi.NewLimiter(flyapi.NoLimits()),
		Now: clock.Now, Sleep: clock.Sleep,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &realisticEnv{sim: sim, a: New(client, Options{}), clock: clock}
}

// realisticDesired is a machine the emulator's typed config accepts, with its UID in metadata.
func realisticDesired(uid string, minSecrets int64) controllers.DesiredMachine {
	d := desired()
	d.Name, d.Region = uid, "ord"
	d.Metadata = map[string]string{"hangar.dev/uid": uid}
	d.MinSecretsVersion = minSecrets
	return d
}

func (e *realisticEnv) app(t *testing.T, name string) {
	t.Helper()
	if _, err := e.a.CreateApp(context.Background(), realisticOrg, name, name+"-net"); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
}

// TestAgainstTheRealisticEmulator runs the adapter's calls the way a UserApp and a UserMachine pass
// make them, against the emulator's realistic profile (scaled down, lost answers off): the app
// appears late, secrets and lists lag, and every call still gives the controllers a right answer.
func TestAgainstTheRealisticEmulator(t *testing.T) {
	p := flysim.Realistic()
	p.TimeScale = 0.01
	p.UnclearFailures = nil
	p.AppCreateLag = flysim.Fixed(200 * time.Second) // scaled: 2 s on the fake clock, after no real hold
	p.AppCreateWaitResidual = p.AppCreateLag
	p.SecretsLag = flysim.Fixed(time.Hour)
	e := newRealisticEnv(t, p)
	ctx := context.Background()

	app, err := e.a.CreateApp(ctx, realisticOrg, "ra", "ra-net")
	if err != nil {
		t.Fatalf("CreateApp of an app Fly shows late: %v", err)
	}
	if app.ID == "" {
		t.Errorf("CreateApp = %+v, want the app's ID", app)
	}
	version, err := e.a.SetAppSecrets(ctx, "ra", map[string]string{"A": "1", "B": "2"}, nil)
	if err != nil || version == 0 {
		t.Fatalf("SetAppSecrets = %d, %v", version, err)
	}
	ip, err := e.a.EnsurePrivateIP(ctx, "ra", "ra-net")
	if err != nil {
		t.Fatalf("EnsurePrivateIP: %v", err)
	}
	if again, err := e.a.EnsurePrivateIP(ctx, "ra", "ra-net"); err != nil || again != ip {
		t.Errorf("EnsurePrivateIP again = %q, %v; want %q", again, err, ip)
	}
	if n := len(e.sim.CallsFor("assign_ip", "ra")); n != 1 {
		t.Errorf("%d allocations, want 1", n)
	}
	// The secrets just written have not reached every read yet; the machine asks for them.
	m, err := e.a.CreateMachine(ctx, "ra", realisticDesired("u1", version))
	if err != nil {
		t.Fatalf("CreateMachine requiring secrets version %d: %v", version, err)
	}
	if info, _ := e.sim.Machine("ra", m.ID); info.SecretsVersion < uint64(version) {
		t.Errorf("the machine booted with secrets version %d, want at least %d", info.SecretsVersion, version)
	}
	updated, err := e.a.UpdateMachine(ctx, "ra", m.ID, m.Version, realisticDesired("u1", version))
	if err != nil {
		t.Fatalf("UpdateMachine: %v", err)
	}
	if updated.Version == m.Version {
		t.Errorf("UpdateMachine answered the old version %s", updated.Version)
	}
	// An update planned from the version before is refused, not written over the newer one.
	if _, err := e.a.UpdateMachine(ctx, "ra", m.ID, m.Version, realisticDesired("u1", version)); flyKind(t, err) != controllers.FlyConflict {
		t.Errorf("UpdateMachine from an old version: %v, want conflict", err)
	}
	if n := len(e.sim.CallsFor("update_machine", m.ID)); n != 1 {
		t.Errorf("%d updates reached the emulator, want 1", n)
	}
}

// TestUnclearCreateIsFoundNotRepeated: a create that commits and then answers 408 is an unknown
// outcome; the list lags behind it, so FindMachine may miss it at first, and finds exactly one
// machine once the lag has passed.
func TestUnclearCreateIsFoundNotRepeated(t *testing.T) {
	e := newRealisticEnv(t, flysim.Profile{
		TimeScale: 1, UnclearFailures: map[string]float64{"create_machine": 1}, ListLag: flysim.Fixed(time.Second),
	})
	e.app(t, "rb")
	ctx := context.Background()
	_, err := e.a.CreateMachine(ctx, "rb", realisticDesired("u1", 0))
	if flyKind(t, err) != controllers.FlyUnavailable || !strings.HasPrefix(errMessage(err), "outcome unknown") {
		t.Fatalf("CreateMachine: %v, want FlyUnavailable saying the outcome is unknown", err)
	}
	if n := len(e.sim.CallsFor("create_machine", "rb")); n != 1 {
		t.Errorf("%d creates, want 1", n)
	}
	if found, err := e.a.FindMachine(ctx, "rb", "hangar.dev/uid", "u1"); err != nil || len(found) != 0 {
		t.Errorf("FindMachine during the list lag = %+v, %v; want nothing yet (else the case tests nothing)", found, err)
	}
	if err := e.clock.Sleep(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	found, err := e.a.FindMachine(ctx, "rb", "hangar.dev/uid", "u1")
	if err != nil || len(found) != 1 {
		t.Errorf("FindMachine after the lag = %+v, %v; want the one machine", found, err)
	}
}

// TestUnclearLeaseLocksTheUpdateOutUntilItsTTL: a lease granted whose answer is lost leaves the
// update's outcome unknown with nothing written; the next attempt meets the lease (FlyConflict)
// until its TTL passes, and then succeeds.
func TestUnclearLeaseLocksTheUpdateOutUntilItsTTL(t *testing.T) {
	e := newRealisticEnv(t, flysim.Fast())
	e.app(t, "rc")
	ctx := context.Background()
	m, err := e.a.CreateMachine(ctx, "rc", realisticDesired("u1", 0))
	if err != nil {
		t.Fatal(err)
	}
	e.sim.SetFault("acquire_lease", flysim.Fault{Status: 408, CommitThenFail: true, Count: 1})
	_, err = e.a.UpdateMachine(ctx, "rc", m.ID, m.Version, realisticDesired("u1", 0))
	if flyKind(t, err) != controllers.FlyUnavailable || !strings.HasPrefix(errMessage(err), "outcome unknown") {
		t.Fatalf("UpdateMachine: %v, want FlyUnavailable saying the outcome is unknown", err)
	}
	_, err = e.a.UpdateMachine(ctx, "rc", m.ID, m.Version, realisticDesired("u1", 0))
	if flyKind(t, err) != controllers.FlyConflict {
		t.Fatalf("UpdateMachine while the lost lease lasts: %v, want conflict", err)
	}
	if n := len(e.sim.CallsFor("update_machine", m.ID)); n != 0 {
		t.Errorf("%d updates reached the emulator without a lease, want 0", n)
	}
	if err := e.clock.Sleep(ctx, DefaultLeaseTTL+time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.UpdateMachine(ctx, "rc", m.ID, m.Version, realisticDesired("u1", 0)); err != nil {
		t.Errorf("UpdateMachine after the lost lease expired: %v", err)
	}
}
