package usermachine_test

import (
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/pkg/replayauth"
)

// fixture is an emulator (default transition delays) with its simulated user machines.
type fixture struct {
	*flysimtest.Client
	srv      *flysim.Server
	machines *usermachine.Machines
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, flysim.Profile{})
}

// newFixtureWith is newFixture with a Server profile.
func newFixtureWith(t *testing.T, profile flysim.Profile) *fixture {
	t.Helper()
	srv := flysim.New(flysim.Options{Orgs: []flysim.OrgToken{{Token: flysimtest.TokenA, Org: flysimtest.OrgA}}, Seed: 1,
		DisableRateLimits: true, Profile: profile})
	t.Cleanup(srv.Close) // after the HTTP server's close, registered by Serve
	f := &fixture{srv: srv, Client: flysimtest.Serve(t, srv, func(app, id string) (string, bool, bool) {
		m, _, ok := srv.SnapshotMachine(app, id)
		return m.State, m.Pending, ok
	})}
	f.machines = usermachine.Start(srv, usermachine.Options{})
	t.Cleanup(func() { _ = f.machines.Close() })
	return f
}

// getDirect asks a simulated machine's listener directly; any failure to get an answer is an error.
func getDirect(addr string, headers ...string) (usermachine.Answer, error) {
	req, err := http.NewRequest("GET", "http://"+addr+"/direct", nil)
	if err != nil {
		return usermachine.Answer{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return usermachine.Answer{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	var a usermachine.Answer
	err = json.NewDecoder(resp.Body).Decode(&a)
	return a, err
}

func TestUserMachineListensPerInternalPort(t *testing.T) {
	f := newFixture(t)
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	eps := f.machines.Endpoints("alice", id)
	if got := slices.Sorted(maps.Keys(eps)); !slices.Equal(got, []int{8080, 9090}) {
		t.Fatalf("endpoints %v, want internal ports 8080 and 9090", eps)
	}
	a, err := getDirect(eps[9090], "Fly-Replay-Src", "state=v1.1.x.y")
	if err != nil {
		t.Fatal(err)
	}
	if a.Machine != id || a.Service.Name != "management" || a.Path != "/direct" {
		t.Errorf("answer %+v", a)
	}
	if a.ReplayStateVerified || a.ReplayStateError == "" || a.ManagementTokenMatched {
		t.Errorf("unsigned request: verified %v (%q), token matched %v", a.ReplayStateVerified, a.ReplayStateError, a.ManagementTokenMatched)
	}
	// A state for another machine of the app is refused.
	a, err = getDirect(eps[8080], "Fly-Replay-Src", "state="+flysimtest.SignedState("alice", "00000000000000"))
	if err != nil || a.ReplayStateVerified || a.ReplayStateError != replayauth.ErrWrongMachine.Error() {
		t.Errorf("another machine's state: verified %v (%q), %v", a.ReplayStateVerified, a.ReplayStateError, err)
	}
	// Its own state verifies, and the management token matches on any port.
	a, err = getDirect(eps[8080], "Fly-Replay-Src", "state="+flysimtest.SignedState("alice", id),
		"Authorization", "Bearer "+flysimtest.Root.ManagementToken(keys.App{FlyApp: "alice", Generation: 1}))
	if err != nil || !a.ReplayStateVerified || !a.ManagementTokenMatched || a.Service.Name != "public" {
		t.Errorf("signed request: %+v, %v", a, err)
	}
}

func TestUserMachineListenersFollowTheMachineState(t *testing.T) {
	f := newFixture(t)
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	addr := f.machines.Endpoints("alice", id)[8080]

	f.Stop("alice", id)
	flysimtest.Eventually(t, "listeners closed", func() bool { return len(f.machines.Endpoints("alice", id)) == 0 })
	if _, err := getDirect(addr); err == nil {
		t.Fatal("a stopped machine still answers")
	}

	f.Do("POST", "/v1/apps/alice/machines/"+id+"/start", nil).Expect(t, http.StatusOK, nil)
	f.WaitSettled("alice", id, flysim.StateStarted)
	flysimtest.WaitListening(t, f.machines, "alice", id)
	// A restart leaves started: the listeners close (dropping a connection held open) and reopen.
	held, err := net.Dial("tcp", f.machines.Endpoints("alice", id)[8080])
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }()
	f.Do("POST", "/v1/apps/alice/machines/"+id+"/restart", nil).Expect(t, http.StatusOK, nil)
	f.WaitSettled("alice", id, flysim.StateStarted)
	// A deadline, so a connection left open fails the test instead of hanging it.
	if err := held.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var netErr net.Error
	if n, err := held.Read(make([]byte, 1)); err == nil || (errors.As(err, &netErr) && netErr.Timeout()) {
		t.Fatalf("a connection from before the restart is still open (read %d bytes, %v)", n, err)
	}
	flysimtest.WaitListening(t, f.machines, "alice", id) // the close above may have been the last event seen so far
	if a, err := getDirect(f.machines.Endpoints("alice", id)[8080]); err != nil || a.Machine != id {
		t.Fatalf("after restart: %+v, %v", a, err)
	}

	f.Do("DELETE", "/v1/apps/alice?force=true", nil).Expect(t, http.StatusAccepted, nil)
	flysimtest.Eventually(t, "closed with the app", func() bool { return len(f.machines.Endpoints("alice", id)) == 0 })
}

func TestUserMachineSeesTheSecretsOfItsVersion(t *testing.T) {
	f := newFixture(t)
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	management := func(headers ...string) (usermachine.Answer, error) {
		return getDirect(f.machines.Endpoints("alice", id)[9090], headers...)
	}

	// Rotate the management token and add a secret: the running version keeps what it booted with.
	f.Do("POST", "/v1/apps/alice/secrets", map[string]any{"values": map[string]any{
		keys.ManagementTokenSecret: "rotated-token", "EXTRA": "x",
	}}).Expect(t, http.StatusOK, nil)
	a, err := management("Authorization", "Bearer "+flysimtest.Root.ManagementToken(keys.App{FlyApp: "alice", Generation: 1}))
	if err != nil || a.SecretsVersion != 1 || !a.ManagementTokenMatched || slices.Contains(a.Secrets, "EXTRA") {
		t.Errorf("before the update: version %d, old token matched %v, secrets %v (%v)", a.SecretsVersion, a.ManagementTokenMatched, a.Secrets, err)
	}

	// An update makes a new version, which boots with the current secrets.
	f.Do("POST", "/v1/apps/alice/machines/"+id, map[string]any{"config": flysimtest.ConfigWith(flysimtest.BlueprintServices(true, "off", 0))}).
		Expect(t, http.StatusOK, nil)
	f.WaitSettled("alice", id, flysim.StateStarted)
	flysimtest.Eventually(t, "the new version answering", func() bool {
		a, err := management()
		return err == nil && a.SecretsVersion == 2
	})
	a, err = management("Authorization", "Bearer rotated-token")
	if err != nil || !a.ManagementTokenMatched || !slices.Contains(a.Secrets, "EXTRA") {
		t.Errorf("after the update: token matched %v, secrets %v (%v)", a.ManagementTokenMatched, a.Secrets, err)
	}
	values, version, ok := f.srv.MachineSecrets("alice", id)
	if !ok || version != 2 || values[keys.ManagementTokenSecret] != "rotated-token" {
		t.Errorf("MachineSecrets = %d, %v", version, ok)
	}

	// skip_secrets: the machine sees none, so nothing verifies.
	skipped := f.CreateMachine("alice", map[string]any{"config": flysimtest.ConfigWith(flysimtest.BlueprintServices(true, "off", 0)), "skip_secrets": true})
	f.WaitFor("alice", skipped.ID, flysim.StateStarted)
	flysimtest.WaitListening(t, f.machines, "alice", skipped.ID)
	b, err := getDirect(f.machines.Endpoints("alice", skipped.ID)[8080], "Fly-Replay-Src", "state="+flysimtest.SignedState("alice", skipped.ID))
	if err != nil || len(b.Secrets) != 0 || b.ReplayStateVerified || b.ReplayStateError == "" {
		t.Errorf("skip_secrets machine: %+v, %v", b, err)
	}
}

func TestRegisterExternal(t *testing.T) {
	f := newFixture(t)
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))

	if err := f.machines.RegisterExternal("alice", id, map[int]string{8080: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if eps := f.machines.Endpoints("alice", id); !maps.Equal(eps, map[int]string{8080: "127.0.0.1:1"}) {
		t.Errorf("external endpoints %v", eps)
	}
	f.machines.UnregisterExternal("alice", id)
	flysimtest.Eventually(t, "simulated again", func() bool { return len(f.machines.Endpoints("alice", id)) == 2 })

	if err := f.machines.RegisterExternal("alice", "00000000000000", nil); !errors.Is(err, flysim.ErrMachineNotFound) {
		t.Errorf("unknown machine: %v", err)
	}
	if err := f.machines.RegisterExternal("alice", id, map[int]string{0: "x"}); !errors.Is(err, flysim.ErrInvalidConfig) {
		t.Errorf("port 0: %v", err)
	}
	if err := f.machines.Close(); err != nil {
		t.Fatal(err)
	}
	if len(f.machines.Endpoints("alice", id)) != 0 {
		t.Error("listeners left open by Close")
	}
	if err := f.machines.RegisterExternal("alice", id, nil); !errors.Is(err, usermachine.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestStartOpensAlreadyStartedMachines(t *testing.T) {
	f := newFixture(t)
	f.CreateApp("early")
	m := f.CreateMachine("early", map[string]any{"config": flysimtest.ConfigWith(flysimtest.BlueprintServices(true, "off", 0))})
	f.WaitFor("early", m.ID, flysim.StateStarted)
	machines := usermachine.Start(f.srv, usermachine.Options{})
	t.Cleanup(func() { _ = machines.Close() })
	flysimtest.Eventually(t, "listening", func() bool { return len(machines.Endpoints("early", m.ID)) == 2 })
}

// Under a profile's ListenDelay, a machine reads started before its app listens.
func TestListenersOpenAfterTheProfilesListenDelay(t *testing.T) {
	t.Run("started is not listening", func(t *testing.T) {
		f := newFixtureWith(t, flysim.Profile{ListenDelay: flysim.Fixed(time.Hour)})
		f.UserApp("alice", "")
		m := f.CreateMachine("alice", map[string]any{"config": flysimtest.ConfigWith(flysimtest.BlueprintServices(true, "off", 0))})
		f.WaitSettled("alice", m.ID, flysim.StateStarted)
		boot, _ := f.srv.MachineBoot("alice", m.ID)
		if boot.ListenDelay != time.Hour {
			t.Errorf("MachineBoot.ListenDelay %v", boot.ListenDelay)
		}
		if eps := f.machines.Endpoints("alice", m.ID); len(eps) != 0 {
			t.Errorf("listening an hour early: %v", eps)
		}
	})
	t.Run("then it listens", func(t *testing.T) {
		f := newFixtureWith(t, flysim.Profile{ListenDelay: flysim.Fixed(5 * time.Millisecond)})
		f.UserApp("alice", "")
		id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
		if _, err := getDirect(f.machines.Endpoints("alice", id)[8080]); err != nil {
			t.Fatal(err)
		}
		// Stopped before its delay passed, a machine never opens the listeners of that boot.
		f.Stop("alice", id)
		f.Do("POST", "/v1/apps/alice/machines/"+id+"/start", nil).Expect(t, http.StatusOK, nil)
		f.WaitSettled("alice", id, flysim.StateStarted)
		f.Stop("alice", id)
		time.Sleep(20 * time.Millisecond) // beyond the delay: an open that was not cancelled would show
		if eps := f.machines.Endpoints("alice", id); len(eps) != 0 {
			t.Errorf("a stopped machine listens: %v", eps)
		}
	})
}
