package flyapi_test

// The contract suite runs the client against an API: always against the emulator
// (internal/flysim), and against the real Fly Machines API when FLY_API_TOKEN, FLY_ORG and
// HANGAR_FLY_LIVE=1 are set. The parts that run live use only the client. Checks of behaviour
// docs/fly-api.md marks unconfirmed ("?") are made against the emulator only (target.live false),
// and the fault-knob cases are in contract_faults_test.go.
//
// Live runs create real apps and machines (shared-cpu-1x, 256 MB) named hct-<random>-<n> in
// FLY_ORG and delete them at the end of each test; they cost a little money and take minutes.
// Optional: FLY_REGION (default ord), HANGAR_FLY_IMAGE (default nginx:alpine).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/flysim"
)

const (
	simToken      = "contract-token"
	simOrg        = "contract-org"
	simOtherToken = "other-token"
	simOtherOrg   = "other-org"
)

// target is one API the contract suite runs against.
type target struct {
	live    bool
	client  *flyapi.Client
	org     string
	region  string
	image   string
	baseURL string // "" for the default
	token   string
	// otherOrg is a client of a second org (nil when unavailable, e.g. live).
	otherOrg *flyapi.Client
	// sim is the emulator behind the API; nil when live. The suite in this file never uses it:
	// only the end-of-suite check that the client stayed within the server's limits does.
	sim *flysim.Server

	prefix string
	serial atomic.Int64
}

// appName returns a name unique to this run (app names are global across Fly).
func (tg *target) appName() string {
	return fmt.Sprintf("%s-%d", tg.prefix, tg.serial.Add(1))
}

func randomPrefix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "hct-" + hex.EncodeToString(b)
}

// simTarget starts an emulator with Fly's rate limits on and a client with the default limits, as
// in production. Both run on one manual clock that moves only when the client sleeps: the
// emulator then sees each request at the instant the client's limiter let it go, so "the client
// never provokes a 429" is checked exactly, without depending on real time or machine load.
func simTarget(t *testing.T) *target {
	clock := flyapi.NewManualClock(time.Now())
	sim := flysim.New(flysim.Options{
		Orgs: []flysim.OrgToken{{Token: simToken, Org: simOrg}, {Token: simOtherToken, Org: simOtherOrg}},
		Seed: 42,
		Now:  clock.Now,
	})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	limiter := flyapi.NewLimiter(flyapi.DefaultLimits()) // one org, one limiter, as in production
	return &target{
		client: mustClient(t, flyapi.Options{
			BaseURL: srv.URL, Token: flyapi.StaticToken(simToken), Limiter: limiter, MaxLimiterWait: 5 * time.Second,
			Now: clock.Now, Sleep: clock.Sleep,
		}),
		otherOrg: mustClient(t, flyapi.Options{BaseURL: srv.URL, Token: flyapi.StaticToken("Bearer " + simOtherToken)}),
		org:      simOrg,
		region:   "ord",
		image:    "registry-1.docker.io/library/nginx:alpine",
		baseURL:  srv.URL,
		token:    simToken,
		sim:      sim,
		prefix:   randomPrefix(t),
	}
}

// liveTarget is the real API, or skips the test saying what is missing.
func liveTarget(t *testing.T) *target {
	token := os.Getenv("FLY_API_TOKEN")
	org := os.Getenv("FLY_ORG")
	switch {
	case os.Getenv("HANGAR_FLY_LIVE") != "1":
		t.Skip("live contract run disabled: set HANGAR_FLY_LIVE=1, FLY_API_TOKEN and FLY_ORG to run it against the real Fly API")
	case token == "":
		t.Skip("live contract run needs FLY_API_TOKEN")
	case org == "":
		t.Skip("live contract run needs FLY_ORG (the org slug to create test apps in)")
	}
	region := os.Getenv("FLY_REGION")
	if region == "" {
		region = "ord"
	}
	image := os.Getenv("HANGAR_FLY_IMAGE")
	if image == "" {
		image = "registry-1.docker.io/library/nginx:alpine"
	}
	return &target{
		live:   true,
		client: mustClient(t, flyapi.Options{Token: flyapi.StaticToken(token), MaxLimiterWait: 5 * time.Second}),
		org:    org,
		region: region,
		image:  image,
		token:  token,
		prefix: randomPrefix(t),
	}
}

func mustClient(t *testing.T, opts flyapi.Options) *flyapi.Client {
	t.Helper()
	c, err := flyapi.New(opts)
	if err != nil {
		t.Fatalf("flyapi.New: %v", err)
	}
	return c
}

// testContext bounds each contract test; live machine operations can take a while.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// liveNetwork is the one custom network live runs put their apps on: Fly keeps a network name
// bound to its org forever, so a network per test app would litter the org.
const liveNetwork = "hangar-contract"

// newApp creates an app on a custom network (its own on the emulator, as hangar does) and deletes
// it when the test ends.
func (tg *target) newApp(t *testing.T) (name, network string) {
	t.Helper()
	name = tg.appName()
	network = name + "-net"
	if tg.live {
		network = liveNetwork
	}
	if _, err := tg.client.CreateApp(testContext(t), tg.org, name, network); err != nil {
		t.Fatalf("CreateApp(%s): %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := tg.client.DeleteApp(ctx, name, true); err != nil && !flyapi.IsNotFound(err) {
			t.Errorf("cleanup: DeleteApp(%s): %v", name, err)
		}
	})
	return name, network
}

// machineConfig is a small config with the parts hangar sets.
func (tg *target) machineConfig(uid string) flyapi.MachineConfig {
	return flyapi.MachineConfig{
		Image:    tg.image,
		Env:      map[string]string{"HANGAR_CONTRACT": "1"},
		Guest:    &flyapi.MachineGuest{CPUKind: "shared", CPUs: 1, MemoryMB: 256},
		Metadata: map[string]string{"hangar.dev/uid": uid},
		Services: []flyapi.MachineService{{
			Protocol:     "tcp",
			InternalPort: 80,
			Autostart:    flyapi.BoolPtr(false),
			Autostop:     flyapi.AutostopOff,
			Ports:        []flyapi.MachinePort{{Port: 80, Handlers: []string{"http"}}},
		}},
		Restart:    &flyapi.MachineRestart{Policy: flyapi.RestartNo},
		StopConfig: &flyapi.StopConfig{Signal: "SIGTERM", Timeout: flyapi.DurationOf(5 * time.Second)},
	}
}

// createStarted creates a machine and waits until it runs.
func (tg *target) createStarted(t *testing.T, app, name string) *flyapi.Machine {
	t.Helper()
	ctx := testContext(t)
	m, err := tg.client.CreateMachine(ctx, app, flyapi.CreateMachineRequest{
		Config: tg.machineConfig(name), Name: name, Region: tg.region,
	})
	if err != nil {
		t.Fatalf("CreateMachine(%s): %v", name, err)
	}
	tg.waitState(t, app, m.ID, m.Version, flyapi.StateStarted)
	return m
}

// waitState waits (through the API's own wait) for the machine to reach state.
func (tg *target) waitState(t *testing.T, app, id, version, state string) *flyapi.WaitResult {
	t.Helper()
	ctx := testContext(t)
	for {
		res, err := tg.client.WaitMachine(ctx, app, id, flyapi.WaitOptions{States: []string{state}, Version: version, Timeout: 60 * time.Second})
		if flyapi.IsWaitTimeout(err) && ctx.Err() == nil {
			continue // Fly caps a wait at 60 s; keep waiting until the test's own deadline
		}
		if err != nil {
			t.Fatalf("WaitMachine(%s, %s): %v", id, state, err)
		}
		return res
	}
}

// eventually polls cond until it holds or the deadline passes (Fly's lists are eventually
// consistent). It reports the last error on failure.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened (last error: %v)", what, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func apiStatus(err error) int {
	var apiErr *flyapi.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
}

func TestContract(t *testing.T) {
	t.Run("flysim", func(t *testing.T) {
		tg := simTarget(t)
		runContract(t, tg)
		// The client's limiter mirrors Fly's limits, so a whole suite of sequential calls never
		// met a 429 from the emulator, which enforces the same limits.
		calls := tg.sim.Calls()
		if len(calls) == 0 {
			t.Fatal("the emulator logged no calls: nothing shows the client stayed within its limits")
		}
		for _, call := range calls {
			if call.RateLimited {
				t.Errorf("the emulator rate-limited %s %s at %s: the client limiter let too much through", call.Action, call.Path, call.Time.Format("15:04:05.000000"))
			}
		}
	})
	t.Run("live", func(t *testing.T) {
		runContract(t, liveTarget(t))
	})
}

func runContract(t *testing.T, tg *target) {
	t.Run("apps", func(t *testing.T) { contractApps(t, tg) })
	t.Run("auth and routing errors", func(t *testing.T) { contractAuth(t, tg) })
	t.Run("machine lifecycle", func(t *testing.T) { contractLifecycle(t, tg) })
	t.Run("machine update", func(t *testing.T) { contractUpdate(t, tg) })
	t.Run("leases", func(t *testing.T) { contractLeases(t, tg) })
	t.Run("metadata", func(t *testing.T) { contractMetadata(t, tg) })
	t.Run("secrets", func(t *testing.T) { contractSecrets(t, tg) })
	t.Run("ip assignments", func(t *testing.T) { contractIPs(t, tg) })
}

func contractApps(t *testing.T, tg *target) {
	ctx := testContext(t)
	c := tg.client
	name, network := tg.newApp(t)

	app, err := c.GetApp(ctx, name)
	if err != nil {
		t.Fatalf("GetApp: %v", err)
	}
	if app.Name != name || app.ID == "" || app.Organization.Slug != tg.org {
		t.Errorf("GetApp = %+v", app)
	}

	_, err = c.CreateApp(ctx, tg.org, name, network)
	if !flyapi.IsNameTaken(err) {
		t.Errorf("CreateApp of an existing name: %v, want name taken", err)
	}
	_, err = c.CreateApp(ctx, tg.org, "Not_A_Valid_Name", "")
	if apiStatus(err) != 422 || flyapi.IsNameTaken(err) {
		t.Errorf("CreateApp with an invalid name: %v, want a 422 validation error", err)
	}

	eventually(t, "the new app is listed with its network", func() (bool, error) {
		apps, err := c.ListApps(ctx, tg.org)
		for _, a := range apps {
			if a.Name == name {
				return a.Network == network, fmt.Errorf("listed with network %q", a.Network)
			}
		}
		return false, err
	})

	if _, err := c.GetApp(ctx, tg.prefix+"-never-created"); !flyapi.IsNotFound(err) {
		t.Errorf("GetApp of an unknown app: %v, want not found", err)
	}

	doomed, _ := tg.newApp(t)
	if err := c.DeleteApp(ctx, doomed, true); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
	eventually(t, "the deleted app is gone", func() (bool, error) {
		_, err := c.GetApp(ctx, doomed)
		return flyapi.IsNotFound(err), err
	})
}

func contractAuth(t *testing.T, tg *target) {
	ctx := testContext(t)
	app, _ := tg.newApp(t)

	badOpts := flyapi.Options{BaseURL: tg.baseURL, Token: flyapi.StaticToken("not-a-valid-token-" + tg.prefix)}
	bad := mustClient(t, badOpts)
	if _, err := bad.GetApp(ctx, app); !flyapi.IsUnauthorized(err) {
		t.Errorf("GetApp with a bad token: %v, want unauthorized", err)
	}

	// A path Fly does not serve answers a plain-text 404: not a missing resource.
	base := tg.baseURL
	if base == "" {
		base = flyapi.DefaultBaseURL
	}
	wrong := mustClient(t, flyapi.Options{BaseURL: base + "/no-such-prefix", Token: flyapi.StaticToken(tg.token)})
	_, err := wrong.GetApp(ctx, app)
	if !flyapi.IsRouteNotFound(err) || flyapi.IsNotFound(err) {
		t.Errorf("GetApp on an unknown route: %v, want route not found and not resource not found", err)
	}

	if tg.otherOrg != nil {
		if _, err := tg.otherOrg.GetApp(ctx, app); !flyapi.IsForbidden(err) {
			t.Errorf("GetApp of another org's app: %v, want forbidden", err)
		}
	}
}

func contractIPs(t *testing.T, tg *target) {
	ctx := testContext(t)
	c := tg.client
	app, network := tg.newApp(t)

	ip, err := c.AllocatePrivateV6(ctx, app, network)
	if err != nil {
		t.Fatalf("AllocatePrivateV6: %v", err)
	}
	if !strings.HasPrefix(ip.IP, "fdaa:") || ip.Network == nil || ip.Network.Name != network {
		t.Errorf("allocated %+v (network %+v), want a Flycast address in %q", ip, ip.Network, network)
	}
	listed := func() []string {
		ips, err := c.ListIPAssignments(ctx, app)
		if err != nil {
			t.Fatalf("ListIPAssignments: %v", err)
		}
		var out []string
		for _, a := range ips {
			out = append(out, a.IP)
		}
		return out
	}
	if got := listed(); len(got) != 1 || got[0] != ip.IP {
		t.Errorf("listed %v, want [%s]", got, ip.IP)
	}
	if err := c.DeleteIPAssignment(ctx, app, ip.IP); err != nil {
		t.Fatalf("DeleteIPAssignment: %v", err)
	}
	if got := listed(); len(got) != 0 {
		t.Errorf("listed %v after delete", got)
	}
	if !tg.live {
		// Unconfirmed on the live API (docs/fly-api.md §3 cites a third party): 400 "network not found".
		if _, err := c.AllocatePrivateV6(ctx, app, "no-such-network-"+tg.prefix); !flyapi.IsBadRequest(err) {
			t.Errorf("AllocatePrivateV6 in an unknown network: %v, want 400", err)
		}
	}
}

func contractSecrets(t *testing.T, tg *target) {
	ctx := testContext(t)
	c := tg.client
	app, _ := tg.newApp(t)

	v1, err := c.SetSecrets(ctx, app, map[string]string{"ALPHA": "a-value", "BETA": "b-value"})
	if err != nil || v1 == 0 {
		t.Fatalf("SetSecrets = %d, %v", v1, err)
	}
	// Reads pass the version the change returned: a lagging read side must not answer older.
	secrets, err := c.ListSecrets(ctx, app, v1)
	if err != nil {
		t.Fatalf("ListSecrets: %v", err)
	}
	if len(secrets) != 2 || secrets[0].Name != "ALPHA" || secrets[1].Name != "BETA" || secrets[0].Digest == "" || secrets[0].Digest == "a-value" {
		t.Errorf("ListSecrets = %+v", secrets)
	}
	one, err := c.GetSecret(ctx, app, "ALPHA", v1)
	if err != nil || one.Name != "ALPHA" || one.Digest != secrets[0].Digest {
		t.Errorf("GetSecret = %+v, %v", one, err)
	}
	v2, err := c.SetSecret(ctx, app, "GAMMA", "g-value")
	if err != nil || v2 <= v1 {
		t.Errorf("SetSecret = %d, %v; want a version above %d", v2, err, v1)
	}
	v3, err := c.DeleteSecret(ctx, app, "GAMMA")
	if err != nil || v3 <= v2 {
		t.Errorf("DeleteSecret = %d, %v; want a version above %d", v3, err, v2)
	}
	v4, err := c.UnsetSecrets(ctx, app, "BETA")
	if err != nil || v4 <= v3 {
		t.Errorf("UnsetSecrets = %d, %v; want a version above %d", v4, err, v3)
	}
	if _, err := c.GetSecret(ctx, app, "BETA", v4); !flyapi.IsNotFound(err) {
		t.Errorf("GetSecret of an unset secret: %v, want not found", err)
	}
	v5, err := c.UpdateSecrets(ctx, app, map[string]string{"DELTA": "d-value"}, []string{"ALPHA"})
	if err != nil || v5 != v4+1 {
		t.Errorf("UpdateSecrets = %d, %v; want one new version, %d", v5, err, v4+1)
	}
	if secrets, err := c.ListSecrets(ctx, app, v5); err != nil || len(secrets) != 1 || secrets[0].Name != "DELTA" {
		t.Errorf("ListSecrets after UpdateSecrets = %+v, %v; want DELTA alone", secrets, err)
	}
	if !tg.live {
		// Unconfirmed on the live API: how Fly answers a read asking for a version it does not have.
		if _, err := c.ListSecrets(ctx, app, v5+100); !flyapi.IsFailedPrecondition(err) {
			t.Errorf("ListSecrets at a version not reached yet: %v, want failed precondition", err)
		}
	}
	v4 = v5
	// A machine can require the new secrets.
	m, err := c.CreateMachine(ctx, app, flyapi.CreateMachineRequest{
		Config: tg.machineConfig("secrets"), Region: tg.region, SkipLaunch: true, MinSecretsVersion: &v4,
	})
	if err != nil {
		t.Fatalf("CreateMachine with min_secrets_version: %v", err)
	}
	if err := c.DestroyMachine(ctx, app, m.ID, true, ""); err != nil {
		t.Errorf("DestroyMachine: %v", err)
	}
}
