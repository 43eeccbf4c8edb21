package usermachine_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
)

// checksFixture is an emulator on a settable clock whose machines' checks are probed.
type checksFixture struct {
	*flysimtest.Client
	srv      *flysim.Server
	machines *usermachine.Machines
	checks   *usermachine.Checks
	clock    *flysimtest.Clock
}

func newChecksFixture(t *testing.T, profile flysim.Profile) *checksFixture {
	t.Helper()
	f := &checksFixture{checks: usermachine.NewChecks(), clock: flysimtest.NewClock()}
	f.srv = flysim.New(flysim.Options{Orgs: []flysim.OrgToken{{Token: flysimtest.TokenA, Org: flysimtest.OrgA}}, Seed: 1,
		DisableRateLimits: true, Profile: profile, Now: f.clock.Now, Checks: f.checks})
	t.Cleanup(f.srv.Close)
	f.Client = flysimtest.Serve(t, f.srv, func(app, id string) (string, bool, bool) {
		m, _, ok := f.srv.SnapshotMachine(app, id)
		return m.State, m.Pending, ok
	})
	f.machines = usermachine.Start(f.srv, usermachine.Options{Checks: f.checks})
	t.Cleanup(func() { _ = f.machines.Close() })
	return f
}

// machineWithChecks creates a started machine of app with those checks and no services.
func (f *checksFixture) machineWithChecks(t *testing.T, app string, checks map[string]any) flysimtest.Machine {
	t.Helper()
	cfg := flysimtest.BaseConfig()
	cfg["checks"] = checks
	m := f.CreateMachine(app, map[string]any{"config": cfg})
	f.WaitFor(app, m.ID, flysim.StateStarted)
	return m
}

// checkOf reads one check of a machine through the Machines API.
func (f *checksFixture) checkOf(app, id, name string) (status, output string) {
	for _, c := range f.GetMachine(app, id).Checks {
		if c["name"] == name {
			s, _ := c["status"].(string)
			o, _ := c["output"].(string)
			return s, o
		}
	}
	return "", ""
}

// settledCheck reads a check until it has a probe's result (it reads warning until then).
func (f *checksFixture) settledCheck(t *testing.T, app, id, name string) (status, output string) {
	t.Helper()
	flysimtest.Eventually(t, "the check probed", func() bool {
		status, output = f.checkOf(app, id, name)
		return status != flysim.CheckWarning
	})
	return status, output
}

// Each case is one check against what a registered program serves on its port.
func TestChecksProbeTheMachinesPort(t *testing.T) {
	answering := func(code int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" || r.Header.Get("X-Check") != "yes" {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.WriteHeader(code)
		}))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		return addr
	}
	httpCheck := map[string]any{"type": "http", "port": 8082, "path": "/readyz", "method": "GET",
		"headers": []any{map[string]any{"name": "X-Check", "values": []any{"yes"}}}}
	tcpCheck := map[string]any{"type": "tcp", "port": 8082}
	cases := []struct {
		name       string
		check      map[string]any
		addr       string // registered for port 8082; "" registers nothing
		wantStatus string
		wantOutput string
	}{
		{"http 200", httpCheck, answering(http.StatusOK), flysim.CheckPassing, "GET /readyz on port 8082: 200 OK"},
		{"http 204", httpCheck, answering(http.StatusNoContent), flysim.CheckPassing, "204 No Content"},
		{"http 500", httpCheck, answering(http.StatusInternalServerError), flysim.CheckCritical, "GET /readyz on port 8082: 500 Internal Server Error"},
		{"http redirect is not followed", httpCheck, answering(http.StatusFound), flysim.CheckCritical, "302 Found"},
		{"http nothing listens", httpCheck, "", flysim.CheckCritical, "connection refused"},
		{"http listener gone", httpCheck, closed(), flysim.CheckCritical, "connection refused"},
		{"tcp listening", tcpCheck, answering(http.StatusOK), flysim.CheckPassing, "connect to port 8082: success"},
		{"tcp nothing listens", tcpCheck, "", flysim.CheckCritical, "connection refused"},
		{"tcp listener gone", tcpCheck, closed(), flysim.CheckCritical, "connection refused"},
		{"no port", map[string]any{"type": "tcp"}, "", flysim.CheckCritical, "names no port"},
	}
	f := newChecksFixture(t, flysim.Profile{})
	f.CreateApp("probed")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := f.machineWithChecks(t, "probed", map[string]any{"c": tc.check})
			addrs := map[int]string{}
			if tc.addr != "" {
				addrs[8082] = tc.addr
			}
			if err := f.machines.RegisterExternal("probed", m.ID, addrs); err != nil {
				t.Fatal(err)
			}
			status, output := f.settledCheck(t, "probed", m.ID, "c")
			if status != tc.wantStatus || !strings.Contains(output, tc.wantOutput) {
				t.Errorf("check %s (%q), want %s with %q", status, output, tc.wantStatus, tc.wantOutput)
			}
		})
	}
}

// Before the grace period has passed no probe runs and the check reads warning; after it, the
// check is probed, and the result is kept for the check's interval.
func TestChecksGracePeriodAndInterval(t *testing.T) {
	f := newChecksFixture(t, flysim.Profile{})
	f.CreateApp("grace")
	var probes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { probes.Add(1) }))
	t.Cleanup(srv.Close)
	m := f.machineWithChecks(t, "grace", map[string]any{"c": map[string]any{
		"type": "http", "port": 8082, "path": "/readyz", "grace_period": "5s", "interval": "10s",
	}})
	if err := f.machines.RegisterExternal("grace", m.ID, map[int]string{8082: srv.Listener.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if status, output := f.checkOf("grace", m.ID, "c"); status != flysim.CheckWarning || !strings.Contains(output, "grace period") {
			t.Fatalf("in the grace period: %s (%q), want warning", status, output)
		}
	}
	if n := probes.Load(); n != 0 {
		t.Fatalf("%d probes in the grace period", n)
	}
	f.clock.Advance(5 * time.Second)
	if status, _ := f.settledCheck(t, "grace", m.ID, "c"); status != flysim.CheckPassing {
		t.Fatalf("after the grace period: %s, want passing", status)
	}
	for range 5 {
		f.checkOf("grace", m.ID, "c")
	}
	if n := probes.Load(); n != 1 {
		t.Errorf("%d probes within one interval, want 1", n)
	}
	f.clock.Advance(10 * time.Second)
	f.checkOf("grace", m.ID, "c")
	flysimtest.Eventually(t, "a second probe after the interval", func() bool { return probes.Load() == 2 })
}

// A started machine whose program does not listen yet fails its checks; once it listens they pass.
// A restart starts the checks over.
func TestChecksFollowTheProgram(t *testing.T) {
	f := newChecksFixture(t, flysim.Profile{})
	f.CreateApp("prog")
	m := f.machineWithChecks(t, "prog", map[string]any{"readyz": map[string]any{"type": "http", "port": 8082, "path": "/readyz", "interval": "5s"}})
	// Started, but the program serves nothing yet (what flysim/images registers before it serves).
	if err := f.machines.RegisterExternal("prog", m.ID, map[int]string{}); err != nil {
		t.Fatal(err)
	}
	if status, output := f.settledCheck(t, "prog", m.ID, "readyz"); status != flysim.CheckCritical {
		t.Fatalf("a machine not listening: %s (%q), want critical", status, output)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	if err := f.machines.RegisterExternal("prog", m.ID, map[int]string{8082: srv.Listener.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	if status, _ := f.checkOf("prog", m.ID, "readyz"); status != flysim.CheckCritical {
		t.Fatalf("within the interval the last result stays: %s, want critical", status)
	}
	f.clock.Advance(5 * time.Second)
	flysimtest.Eventually(t, "passing once the program listens", func() bool {
		status, _ := f.checkOf("prog", m.ID, "readyz")
		return status == flysim.CheckPassing
	})

	f.Stop("prog", m.ID)
	if status, _ := f.checkOf("prog", m.ID, "readyz"); status != flysim.CheckCritical {
		t.Errorf("a stopped machine's check: %s, want critical", status)
	}
	f.Do("POST", "/v1/apps/prog/machines/"+m.ID+"/start", nil).Expect(t, http.StatusOK, nil)
	f.WaitSettled("prog", m.ID, flysim.StateStarted)
	if status, output := f.checkOf("prog", m.ID, "readyz"); status != flysim.CheckWarning {
		t.Errorf("a new boot's first read: %s (%q), want warning until probed", status, output)
	}
}

// A simulated machine listens on its checks' ports too, after the profile's ListenDelay: until
// then its checks fail.
func TestChecksOfASimulatedMachineWaitForItsListeners(t *testing.T) {
	f := newChecksFixture(t, flysim.Profile{ListenDelay: flysim.Fixed(time.Hour)})
	f.CreateApp("sim")
	m := f.machineWithChecks(t, "sim", map[string]any{"alive": map[string]any{"type": "http", "port": 8082, "path": "/healthz"}})
	if status, output := f.settledCheck(t, "sim", m.ID, "alive"); status != flysim.CheckCritical {
		t.Fatalf("before its app listens: %s (%q), want critical", status, output)
	}

	g := newChecksFixture(t, flysim.Profile{})
	g.CreateApp("sim")
	m = g.machineWithChecks(t, "sim", map[string]any{"alive": map[string]any{"type": "http", "port": 8082, "path": "/healthz"}})
	flysimtest.Eventually(t, "listening on the check's port", func() bool { return g.machines.Endpoints("sim", m.ID)[8082] != "" })
	if status, output := g.settledCheck(t, "sim", m.ID, "alive"); status != flysim.CheckPassing {
		t.Errorf("listening: %s (%q), want passing", status, output)
	}
}
