package flysim

import (
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"slices"
	"testing"

	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/pkg/replayauth"
)

// getDirect asks a simulated machine's listener directly, without the proxy.
func getDirect(t *testing.T, addr string, headers ...string) (UserMachineAnswer, error) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+"/direct", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return UserMachineAnswer{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	var a UserMachineAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("decoding the answer: %v", err)
	}
	return a, nil
}

func TestUserMachineListensPerInternalPort(t *testing.T) {
	f := newProxyFixture(t, fixtureOptions{})
	f.userApp("alice", "")
	id := f.userMachine("alice", blueprintServices(true, "off", 0))
	eps := f.machines.Endpoints("alice", id)
	if got := slices.Sorted(maps.Keys(eps)); !slices.Equal(got, []int{8080, 9090}) {
		t.Fatalf("endpoints %v, want internal ports 8080 and 9090", eps)
	}
	a, err := getDirect(t, eps[9090], "Fly-Replay-Src", "state=v1.1.x.y")
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
	a, _ = getDirect(t, eps[8080], "Fly-Replay-Src", "state="+signedState("alice", "00000000000000"))
	if a.ReplayStateVerified || a.ReplayStateError != replayauth.ErrWrongMachine.Error() {
		t.Errorf("another machine's state: verified %v (%q)", a.ReplayStateVerified, a.ReplayStateError)
	}
}

func TestUserMachineListenersFollowTheMachineState(t *testing.T) {
	f := newProxyFixture(t, fixtureOptions{})
	f.userApp("alice", "")
	id := f.userMachine("alice", blueprintServices(true, "off", 0))
	addr := f.machines.Endpoints("alice", id)[8080]

	f.stop("alice", id)
	eventually(t, "listeners closed", func() bool { return len(f.machines.Endpoints("alice", id)) == 0 })
	if _, err := getDirect(t, addr); err == nil {
		t.Fatal("a stopped machine still answers")
	}

	f.do("POST", "/v1/apps/alice/machines/"+id+"/start", nil).expect(t, http.StatusOK, nil)
	f.waitSettled("alice", id, stateStarted)
	f.waitListening("alice", id)
	// A restart leaves started: the listeners close (dropping a connection held open) and reopen.
	held, err := net.Dial("tcp", f.machines.Endpoints("alice", id)[8080])
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }()
	f.do("POST", "/v1/apps/alice/machines/"+id+"/restart", nil).expect(t, http.StatusOK, nil)
	f.waitSettled("alice", id, stateStarted)
	if n, err := held.Read(make([]byte, 1)); err == nil {
		t.Fatalf("a connection from before the restart is still open (read %d bytes)", n)
	}
	f.waitListening("alice", id) // the close above may have been the last event seen so far
	if a, err := getDirect(t, f.machines.Endpoints("alice", id)[8080]); err != nil || a.Machine != id {
		t.Fatalf("after restart: %+v, %v", a, err)
	}

	f.do("DELETE", "/v1/apps/alice?force=true", nil).expect(t, http.StatusAccepted, nil)
	eventually(t, "closed with the app", func() bool { return len(f.machines.Endpoints("alice", id)) == 0 })
}

func TestUserMachineSeesTheSecretsOfItsVersion(t *testing.T) {
	f := newProxyFixture(t, fixtureOptions{})
	f.userApp("alice", "")
	id := f.userMachine("alice", blueprintServices(true, "off", 0))
	f.router.set(replayWith("app=alice;instance=" + id))

	// Rotate the management token and add a secret: the running version keeps what it booted with.
	f.do("POST", "/v1/apps/alice/secrets", map[string]any{"values": map[string]any{
		keys.ManagementTokenSecret: "rotated-token", "EXTRA": "x",
	}}).expect(t, http.StatusOK, nil)
	a := f.send(9090, "GET", "/", nil, "Authorization", "Bearer "+testRoot.ManagementToken("alice")).answer(t)
	if a.SecretsVersion != 1 || !a.ManagementTokenMatched || slices.Contains(a.Secrets, "EXTRA") {
		t.Errorf("before the update: version %d, old token matched %v, secrets %v", a.SecretsVersion, a.ManagementTokenMatched, a.Secrets)
	}

	// An update makes a new version, which boots with the current secrets.
	f.do("POST", "/v1/apps/alice/machines/"+id, map[string]any{"config": configWith(blueprintServices(true, "off", 0))}).
		expect(t, http.StatusOK, nil)
	f.waitSettled("alice", id, stateStarted)
	eventually(t, "the new version answering", func() bool {
		return f.send(9090, "GET", "/", nil).answer(t).SecretsVersion == 2
	})
	a = f.send(9090, "GET", "/", nil, "Authorization", "Bearer rotated-token").answer(t)
	if !a.ManagementTokenMatched || !slices.Contains(a.Secrets, "EXTRA") {
		t.Errorf("after the update: token matched %v, secrets %v", a.ManagementTokenMatched, a.Secrets)
	}
	values, version, ok := f.srv.MachineSecrets("alice", id)
	if !ok || version != 2 || values[keys.ManagementTokenSecret] != "rotated-token" {
		t.Errorf("MachineSecrets = %d, %v", version, ok)
	}

	// skip_secrets: the machine sees none, so nothing verifies.
	skipped := f.createMachine("alice", map[string]any{"config": configWith(blueprintServices(true, "off", 0)), "skip_secrets": true})
	f.waitFor("alice", skipped.ID, stateStarted)
	f.waitListening("alice", skipped.ID)
	b, err := getDirect(t, f.machines.Endpoints("alice", skipped.ID)[8080], "Fly-Replay-Src", "state="+signedState("alice", skipped.ID))
	if err != nil || len(b.Secrets) != 0 || b.ReplayStateVerified || b.ReplayStateError == "" {
		t.Errorf("skip_secrets machine: %+v, %v", b, err)
	}
}

func TestRegisterExternal(t *testing.T) {
	f := newProxyFixture(t, fixtureOptions{})
	f.userApp("alice", "")
	id := f.userMachine("alice", blueprintServices(true, "off", 0))

	if err := f.machines.RegisterExternal("alice", id, map[int]string{8080: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if eps := f.machines.Endpoints("alice", id); !maps.Equal(eps, map[int]string{8080: "127.0.0.1:1"}) {
		t.Errorf("external endpoints %v", eps)
	}
	f.machines.UnregisterExternal("alice", id)
	eventually(t, "simulated again", func() bool { return len(f.machines.Endpoints("alice", id)) == 2 })

	if err := f.machines.RegisterExternal("alice", "00000000000000", nil); !errors.Is(err, ErrMachineNotFound) {
		t.Errorf("unknown machine: %v", err)
	}
	if err := f.machines.RegisterExternal("alice", id, map[int]string{0: "x"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("port 0: %v", err)
	}
	if err := f.machines.Close(); err != nil {
		t.Fatal(err)
	}
	if len(f.machines.Endpoints("alice", id)) != 0 {
		t.Error("listeners left open by Close")
	}
	if err := f.machines.RegisterExternal("alice", id, nil); !errors.Is(err, ErrUserMachinesClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestStartUserMachinesOpensAlreadyStartedMachines(t *testing.T) {
	h := newHarness(t)
	h.createApp("early")
	m := h.createMachine("early", map[string]any{"config": configWith(blueprintServices(true, "off", 0))})
	h.waitFor("early", m.ID, stateStarted)
	machines := StartUserMachines(h.srv, UserMachinesOptions{})
	t.Cleanup(func() { _ = machines.Close() })
	eventually(t, "listening", func() bool { return len(machines.Endpoints("early", m.ID)) == 2 })
}
