package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
	"github.com/hangar-dev/hangar/internal/keys"
)

func TestProxyReplayHeaderLandsOnMachineWithVerifiedState(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	tok := flysimtest.SignedState("alice", id)
	f.router.set(replayWith("app=alice;instance=" + id + ";state=" + tok))

	resp := f.send(80, "GET", "/hello?x=1", nil, "Host", "alice.example", "Fly-Replay-Src", "instance=x;state=forged",
		"Authorization", "Bearer "+flysimtest.Root.ManagementToken(keys.App{FlyApp: "alice", Generation: 1}))
	a := resp.answer(t)
	if a.App != "alice" || a.Machine != id || a.Region != flysim.DefaultRegion {
		t.Errorf("answered by %s/%s in %s", a.App, a.Machine, a.Region)
	}
	if a.Service != (usermachine.ServiceAnswer{InternalPort: 8080, Name: "public"}) {
		t.Errorf("service %+v, want the public service", a.Service)
	}
	if a.Method != "GET" || a.Path != "/hello" || a.Query != "x=1" || a.Host != "alice.example" {
		t.Errorf("request seen as %s %s?%s host %s", a.Method, a.Path, a.Query, a.Host)
	}
	if !a.ReplayStateVerified || a.ReplayStateError != "" {
		t.Errorf("replay state not verified: %q", a.ReplayStateError)
	}
	src := a.Headers[headerReplaySrc]
	want := fmt.Sprintf("instance=%s;region=%s;t=%d;state=%s", f.routerID, flysim.DefaultRegion, f.clock.Now().UnixMicro(), tok)
	if len(src) != 1 || src[0] != want {
		t.Errorf("fly-replay-src %q, want %q", src, want)
	}
	if !a.ManagementTokenMatched || !slices.Equal(a.Headers["Authorization"], []string{"[redacted]"}) {
		t.Errorf("management token matched=%v, Authorization shown as %q", a.ManagementTokenMatched, a.Headers["Authorization"])
	}
	if want := []string{keys.ManagementTokenSecret, keys.ReplayKeySecret}; !slices.Equal(a.Secrets, want) || a.SecretsVersion != 1 {
		t.Errorf("secrets %v at version %d, want %v at 1", a.Secrets, a.SecretsVersion, want)
	}
	if strings.Contains(string(resp.Body), flysimtest.Root.ManagementToken(keys.App{FlyApp: "alice", Generation: 1})) {
		t.Error("the answer reveals the management token")
	}

	// Fly's response headers.
	if id := resp.Header.Get("Fly-Request-Id"); !strings.HasSuffix(id, "-"+flysim.DefaultRegion) || len(id) < 27 {
		t.Errorf("fly-request-id %q", id)
	}
	if s := resp.Header.Get("Server"); !strings.HasPrefix(s, "Fly/") {
		t.Errorf("server %q", s)
	}
	if v := resp.Header.Values("Via"); !slices.Contains(v, "1.1 fly.io") {
		t.Errorf("via %q", v)
	}
	// The router saw the request without the client's forged fly-replay-src, with Fly's own headers.
	seen := f.router.requests()
	if len(seen) != 1 {
		t.Fatalf("router saw %d requests", len(seen))
	}
	if got := seen[0].header.Values(headerReplaySrc); len(got) != 0 {
		t.Errorf("client's fly-replay-src reached the router: %q", got)
	}
	if seen[0].header.Get("Fly-Forwarded-Port") != "80" || seen[0].header.Get("Fly-Client-Ip") == "" ||
		seen[0].header.Get("Fly-Request-Id") != resp.Header.Get("Fly-Request-Id") {
		t.Errorf("router request headers %v", seen[0].header)
	}
}

func TestProxyManagementPortReachesManagementService(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	f.router.set(replayWith("app=alice;instance=" + id + ";state=" + flysimtest.SignedState("alice", id)))

	tests := []struct {
		name          string
		authorization string
		matched       bool
	}{
		{name: "right token", authorization: "Bearer " + flysimtest.Root.ManagementToken(keys.App{FlyApp: "alice", Generation: 1}), matched: true},
		{name: "another app's token", authorization: "Bearer " + flysimtest.Root.ManagementToken(keys.App{FlyApp: "bob", Generation: 1})},
		{name: "no token"},
		{name: "not bearer", authorization: "Basic " + flysimtest.Root.ManagementToken(keys.App{FlyApp: "alice", Generation: 1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.authorization != "" {
				headers = []string{"Authorization", tt.authorization}
			}
			a := f.send(9090, "POST", "/v1/exec", []byte(`{"cmd":"ls"}`), headers...).answer(t)
			if a.Service != (usermachine.ServiceAnswer{InternalPort: 9090, Name: "management"}) {
				t.Errorf("service %+v, want management", a.Service)
			}
			if a.ManagementTokenMatched != tt.matched {
				t.Errorf("management token matched = %v, want %v", a.ManagementTokenMatched, tt.matched)
			}
			if a.BodyBytes != int64(len(`{"cmd":"ls"}`)) || !a.ReplayStateVerified {
				t.Errorf("body %d bytes, replay verified %v", a.BodyBytes, a.ReplayStateVerified)
			}
		})
	}
	seen := f.router.requests()
	if seen[0].port != 9090 {
		t.Errorf("public port 9090 went to the router's service on port %d", seen[0].port)
	}
}

func TestProxyPortWithoutTargetServiceIs503(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	publicOnly := flysimtest.BlueprintServices(true, "off", 0)[1:]
	id := f.UserMachine(f.machines, "alice", publicOnly)
	f.router.set(replayWith("app=alice;instance=" + id))
	f.send(9090, "GET", "/", nil).expectProxyError(t, http.StatusServiceUnavailable, "no service on port 9090")

	f.router.set(replayWith("app=alice"))
	f.send(9090, "GET", "/", nil).expectProxyError(t, http.StatusServiceUnavailable, "no machine with an http service on port 9090")
	f.send(80, "GET", "/", nil).answer(t)
}

func TestProxyJSONFormTransformsTheRequest(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	f.router.set(replayJSONWith(Replay{
		App: "alice", Instance: id, State: flysimtest.SignedState("alice", id),
		Transform: &ReplayTransform{
			Path:          "/rewritten?page=2",
			DeleteHeaders: []string{"Cookie", "X-Coordinator-Token"},
			SetHeaders: []ReplayHeader{
				{Name: "X-Added", Value: "yes"}, {Name: "Host", Value: "internal.alice"},
				{Name: headerReplaySrc, Value: "instance=forged"}, // the proxy's header wins
			},
		},
	}))
	a := f.send(80, "GET", "/original?page=1", nil, "Cookie", "session=1", "X-Coordinator-Token", "secret", "X-Kept", "1").answer(t)
	if a.Path != "/rewritten" || a.Query != "page=2" || a.Host != "internal.alice" {
		t.Errorf("request seen as %s?%s host %s", a.Path, a.Query, a.Host)
	}
	for _, gone := range []string{"Cookie", "X-Coordinator-Token"} {
		if _, ok := a.Headers[gone]; ok {
			t.Errorf("%s was not deleted", gone)
		}
	}
	if !slices.Equal(a.Headers["X-Added"], []string{"yes"}) || !slices.Equal(a.Headers["X-Kept"], []string{"1"}) {
		t.Errorf("headers %v", a.Headers)
	}
	if !a.ReplayStateVerified || !strings.HasPrefix(a.Headers[headerReplaySrc][0], "instance="+f.routerID+";") {
		t.Errorf("replay src %q, verified %v (%s)", a.Headers[headerReplaySrc], a.ReplayStateVerified, a.ReplayStateError)
	}
}

func TestProxyPreferInstance(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	first := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(false, "off", 0))
	second := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(false, "off", 0))

	f.router.set(replayWith("app=alice;prefer_instance=" + second))
	a := f.send(80, "GET", "/", nil).answer(t)
	if a.Machine != second || a.Headers[headerPreferredUnavailable] != nil {
		t.Errorf("available preferred instance: answered by %s with %q", a.Machine, a.Headers[headerPreferredUnavailable])
	}

	f.Stop("alice", second) // stopped with autostart off: cannot be honoured
	a = f.send(80, "GET", "/", nil).answer(t)
	if a.Machine != first || !slices.Equal(a.Headers[headerPreferredUnavailable], []string{second}) {
		t.Errorf("unavailable preferred instance: answered by %s with %q", a.Machine, a.Headers[headerPreferredUnavailable])
	}

	f.router.set(replayWith("app=alice;prefer_instance=00000000000000"))
	a = f.send(80, "GET", "/", nil).answer(t)
	if a.Machine != first || !slices.Equal(a.Headers[headerPreferredUnavailable], []string{"00000000000000"}) {
		t.Errorf("unknown preferred instance: answered by %s with %q", a.Machine, a.Headers[headerPreferredUnavailable])
	}
}

// A target that takes longer than the replay timeout to come up: an update keeps it replacing for a
// minute (Options.Delays.Update), far beyond the 20 ms timeout.
func TestProxyTimeoutAndFallback(t *testing.T) {
	f := newFixture(t, fixtureOptions{server: func(o *flysim.Options) { o.Delays.Update = time.Minute }})
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	if err := f.srv.UpdateOutOfBand("alice", id, func(map[string]any) {}); err != nil {
		t.Fatal(err)
	}

	f.router.set(fallbackAware("app=alice;instance=" + id + ";timeout=20ms"))
	f.send(80, "GET", "/", nil).expectProxyError(t, http.StatusGatewayTimeout, "not reachable")

	f.router.set(fallbackAware("app=alice;instance=" + id + ";timeout=20ms;fallback=force_self"))
	resp := f.send(80, "GET", "/", nil).Expect(t, http.StatusOK, nil)
	var got map[string]string
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatalf("not the router's fallback answer: %s", resp.Body)
	}
	fields := parseFields(t, got["fallback"])
	if fields["reason"] != reasonTimeout || fields["replay_source"] != f.routerID || fields["app"] != "alice" ||
		fields["instance"] != id || fields["elapsed_ms"] == "" {
		t.Errorf("fly-replay-failed %q", got["fallback"])
	}

	// No candidate at all also falls back, with its own reason.
	f.router.set(fallbackAware("app=nobody;fallback=prefer_self"))
	resp = f.send(80, "GET", "/", nil).Expect(t, http.StatusOK, nil)
	if err := json.Unmarshal(resp.Body, &got); err != nil || parseFields(t, got["fallback"])["reason"] != reasonNoCandidate {
		t.Errorf("no-candidate fallback answered %s", resp.Body)
	}

	// A fallback request that replays again is refused.
	f.router.set(replayWith("app=nobody;fallback=force_self"))
	f.send(80, "GET", "/", nil).expectProxyError(t, http.StatusBadGateway, "a fallback cannot be replayed")
}

func parseFields(t *testing.T, header string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for f := range strings.SplitSeq(header, ";") {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("field %q of %q", f, header)
		}
		out[k] = v
	}
	return out
}

func TestProxyAutostartsStoppedAndSuspendedMachines(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	f.router.set(replayWith("app=alice;instance=" + id))

	f.Stop("alice", id)
	if a := f.send(80, "GET", "/", nil).answer(t); a.Machine != id {
		t.Errorf("answered by %s", a.Machine)
	}
	m := f.GetMachine("alice", id)
	if m.State != flysim.StateStarted || m.Events[1].Source != sourceFlyProxy || m.Events[1].Status != flysim.StateStarting {
		t.Errorf("after the request: %s, start event %+v", m.State, m.Events[1])
	}

	f.Do("POST", "/v1/apps/alice/machines/"+id+"/suspend", nil).Expect(t, http.StatusOK, nil)
	f.WaitSettled("alice", id, flysim.StateSuspended)
	if a := f.send(80, "GET", "/", nil).answer(t); a.Machine != id {
		t.Errorf("answered by %s", a.Machine)
	}

	// Load-balanced replays wake a stopped machine too.
	f.Stop("alice", id)
	f.router.set(replayWith("app=alice"))
	if a := f.send(80, "GET", "/", nil).answer(t); a.Machine != id {
		t.Errorf("answered by %s", a.Machine)
	}
}

// A request sent while an update replaces a machine waits for the new version, which answers with the
// secrets it booted with: the old version's listeners are never used again.
func TestProxyReachesTheNewVersionAfterAnUpdate(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	f.router.set(replayWith("app=alice;instance=" + id))
	before := f.send(9090, "GET", "/", nil).answer(t)

	f.Do("POST", "/v1/apps/alice/secrets", map[string]any{"values": map[string]any{"EXTRA": "x"}}).Expect(t, http.StatusOK, nil)
	var updated flysimtest.Machine
	f.Do("POST", "/v1/apps/alice/machines/"+id, map[string]any{"config": flysimtest.ConfigWith(flysimtest.BlueprintServices(true, "off", 0))}).
		Expect(t, http.StatusOK, &updated)
	a := f.send(9090, "GET", "/", nil).answer(t)
	if a.Version == before.Version || a.Version != updated.Version || a.SecretsVersion != 2 || !slices.Contains(a.Secrets, "EXTRA") {
		t.Errorf("after the update: version %s (before %s, updated %s), secrets %v at version %d",
			a.Version, before.Version, updated.Version, a.Secrets, a.SecretsVersion)
	}
}

func TestProxyAutostartOffIs503(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(false, "off", 0))
	f.Stop("alice", id)

	f.router.set(replayWith("app=alice;instance=" + id))
	f.send(80, "GET", "/", nil).expectProxyError(t, http.StatusServiceUnavailable, "autostart off")
	f.router.set(replayWith("app=alice"))
	f.send(80, "GET", "/", nil).expectProxyError(t, http.StatusServiceUnavailable, "autostart is off")
	if m, _ := f.srv.Machine("alice", id); m.State != flysim.StateStopped {
		t.Errorf("machine is %s", m.State)
	}
}

func TestProxyBodyLimit(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	f.router.set(replayWith("app=alice;instance=" + id))

	f.send(80, "POST", "/upload", bytes.Repeat([]byte("x"), 2<<20)).expectProxyError(t, http.StatusRequestEntityTooLarge, "cannot be replayed")
	a := f.send(80, "POST", "/upload", bytes.Repeat([]byte("x"), MaxReplayBody)).answer(t)
	if a.BodyBytes != MaxReplayBody {
		t.Errorf("machine received %d bytes, want %d", a.BodyBytes, MaxReplayBody)
	}
	// A large body the entry answers itself (no replay) passes through whole.
	f.router.set(func(w http.ResponseWriter, r *http.Request) {
		n, _ := bytes.NewBuffer(nil).ReadFrom(r.Body)
		_, _ = fmt.Fprint(w, n)
	})
	if resp := f.send(80, "POST", "/upload", bytes.Repeat([]byte("x"), 2<<20)).Expect(t, http.StatusOK, nil); string(resp.Body) != fmt.Sprint(2<<20) {
		t.Errorf("router read %s bytes", resp.Body)
	}
}

func TestProxyCrossNetworkAndCrossOrgReplays(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("iso", "iso-net")
	id := f.UserMachine(f.machines, "iso", flysimtest.BlueprintServices(true, "off", 0))
	f.router.set(replayWith("app=iso;instance=" + id + ";state=" + flysimtest.SignedState("iso", id)))

	f.send(80, "GET", "/", nil).expectProxyError(t, http.StatusBadGateway, "cross-network replays disabled")
	f.srv.SetCrossNetworkReplays(flysimtest.OrgA, true)
	if a := f.send(80, "GET", "/", nil).answer(t); a.Machine != id || !a.ReplayStateVerified {
		t.Errorf("answered by %s, verified %v", a.Machine, a.ReplayStateVerified)
	}

	other := f.As(flysimtest.TokenB)
	other.UserApp("elsewhere", "")
	otherID := other.UserMachine(f.machines, "elsewhere", flysimtest.BlueprintServices(true, "off", 0))
	f.router.set(replayWith("app=elsewhere;instance=" + otherID))
	f.send(80, "GET", "/", nil).expectProxyError(t, http.StatusBadGateway, "another organization")
}

func TestProxyReplayErrors(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	f.UserApp("bob", "")
	f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	bobs := f.UserMachine(f.machines, "bob", flysimtest.BlueprintServices(true, "off", 0))

	tests := []struct {
		name   string
		answer func(http.ResponseWriter, *http.Request)
		status int
		want   string
	}{
		{"unknown app", replayWith("app=nobody"), http.StatusBadGateway, `app "nobody": no such app`},
		{"unknown instance", replayWith("app=alice;instance=00000000000000"), http.StatusBadGateway, "not a machine of app"},
		{"instance of another app", replayWith("app=alice;instance=" + bobs), http.StatusBadGateway, "not a machine of app \"alice\""},
		{"instance without app stays in the replaying app", replayWith("instance=" + bobs), http.StatusBadGateway, "not a machine of app \"router\""},
		{"malformed header", replayWith("app=alice;bogus=1"), http.StatusBadGateway, "unknown field"},
		{"malformed JSON", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ReplayJSONType)
			_, _ = w.Write([]byte(`{"app":`))
		}, http.StatusBadGateway, "not a replay object"},
		{"both forms", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set(HeaderReplay, "app=alice")
			replayJSONWith(Replay{App: "alice"})(w, nil)
		}, http.StatusBadGateway, "both the header and the JSON form"},
		{"replay loop", replayWith("app=router"), http.StatusBadGateway, "more than 10 replays"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.router.set(tt.answer)
			f.send(80, "GET", "/", nil).expectProxyError(t, tt.status, tt.want)
		})
	}
}

func TestProxyRelaysTheEntryAnswerAndRefusesUpgrades(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.router.set(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Server", "router/1")
		w.Header().Set("X-Router", "yes")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("no such host\n"))
	})
	resp := f.send(80, "GET", "/", nil, "Host", "unknown.example")
	if resp.Status != http.StatusNotFound || string(resp.Body) != "no such host\n" || resp.Header.Get("X-Router") != "yes" {
		t.Errorf("relayed %d %q %v", resp.Status, resp.Body, resp.Header)
	}
	if resp.Header.Get("Server") != proxyServerHeader || resp.Header.Get("Fly-Request-Id") == "" {
		t.Errorf("fly headers %v", resp.Header)
	}
	f.send(80, "GET", "/ws", nil, "Connection", "Upgrade", "Upgrade", "websocket").
		expectProxyError(t, http.StatusNotImplemented, "not simulated")
}

func TestProxyWakesAStoppedEntryMachine(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.Stop("router", f.routerID)
	if resp := f.send(80, "GET", "/", nil).Expect(t, http.StatusOK, nil); string(resp.Body) != "router" {
		t.Errorf("answer %q", resp.Body)
	}
	if m, _ := f.srv.Machine("router", f.routerID); m.State != flysim.StateStarted {
		t.Errorf("router machine is %s", m.State)
	}
}

func TestStartOptions(t *testing.T) {
	srv, _ := newServer(t, nil)
	machines := usermachine.Start(srv, usermachine.Options{})
	t.Cleanup(func() { _ = machines.Close() })
	// Checked by kind: a bare err != nil would also pass when the default addresses are taken.
	if _, err := Start(srv, machines, Options{}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("no entry app: %v, want ErrInvalidOptions", err)
	}
	if _, err := Start(srv, machines, Options{EntryApp: "r", Listen: map[int]string{0: "127.0.0.1:0"}}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("port 0: %v, want ErrInvalidOptions", err)
	}
	busy, err := Start(srv, machines, Options{EntryApp: "r", Listen: map[int]string{80: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Close() })
	if _, err := Start(srv, machines, Options{EntryApp: "r", Listen: map[int]string{80: busy.Addr(80)}}); err == nil {
		t.Error("a taken address accepted")
	}
}
