package proxy

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

// Under RequirePublicIP the entry app needs a public address; replay targets need none.
func TestProxyRefusesAnEntryAppWithoutPublicIP(t *testing.T) {
	f := newRealisticFixture(t, 0.01, nil)
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	f.router.set(replayWith("app=alice;instance=" + id))
	// The fixture gave the router app a v6 address; alice has none and is still reached by replay.
	if a := f.send(80, "GET", "/", nil).answer(t); a.Machine != id {
		t.Errorf("answered by %s", a.Machine)
	}

	info, _ := f.srv.App("router")
	f.Do("DELETE", "/v1/apps/router/ip_assignments/"+info.IPs[0], nil).Expect(t, http.StatusNoContent, nil)
	seen := len(f.router.requests())
	for _, port := range []int{80, 9090} {
		f.send(port, "GET", "/", nil).expectProxyError(t, http.StatusServiceUnavailable, `entry app "router" has no public IP address`)
	}
	if len(f.router.requests()) != seen {
		t.Error("the router got a request through an app without a public address")
	}

	// Flycast is not public; a shared IPv4 is.
	f.Do("POST", "/v1/apps/router/ip_assignments", map[string]any{"type": "private_v6"}).Expect(t, http.StatusOK, nil)
	f.send(80, "GET", "/", nil).expectProxyError(t, http.StatusServiceUnavailable, "no public IP address")
	f.Do("POST", "/v1/apps/router/ip_assignments", map[string]any{"type": "shared_v4"}).Expect(t, http.StatusOK, nil)
	if a := f.send(80, "GET", "/", nil).answer(t); a.Machine != id {
		t.Errorf("after shared_v4: answered by %s", a.Machine)
	}
}

// A replay to a stopped machine waits for its start (seconds under the realistic table, here shrunk
// twentyfold) and for its app to listen, then lands on it.
func TestProxyWakesAStoppedMachineUnderRealisticTiming(t *testing.T) {
	f := newRealisticFixture(t, 0.05, nil)
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))
	f.router.set(replayWith("app=alice;instance=" + id))

	for _, park := range []string{"stop", "suspend"} {
		f.Do("POST", "/v1/apps/alice/machines/"+id+"/"+park, nil).Expect(t, http.StatusOK, nil)
		f.WaitSettled("alice", id, map[string]string{"stop": flysim.StateStopped, "suspend": flysim.StateSuspended}[park])
		if a := f.send(80, "GET", "/", nil).answer(t); a.Machine != id {
			t.Errorf("after %s: answered by %s", park, a.Machine)
		}
		m := f.GetMachine("alice", id)
		if m.State != flysim.StateStarted || m.Events[1].Source != sourceFlyProxy || m.Events[1].Status != flysim.StateStarting {
			t.Errorf("after %s and a request: %s, start event %+v", park, m.State, m.Events[1])
		}
	}
}

// A replay timeout shorter than the start gives 504, or the fallback with reason=timeout; the start
// goes on and a later request lands on the machine.
func TestProxyReplayTimeoutUnderRealisticTiming(t *testing.T) {
	// Cold starts take 1-3 s (scaled to 50-150 ms), far beyond the replays' 10 ms timeout.
	f := newRealisticFixture(t, 0.05, nil)
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "off", 0))

	f.Stop("alice", id)
	f.router.set(fallbackAware("app=alice;instance=" + id + ";timeout=10ms"))
	f.send(80, "GET", "/", nil).expectProxyError(t, http.StatusGatewayTimeout, "not reachable")
	// The proxy started it before giving up; the start completes.
	f.WaitSettled("alice", id, flysim.StateStarted)
	f.router.set(replayWith("app=alice;instance=" + id))
	if a := f.send(80, "GET", "/", nil).answer(t); a.Machine != id {
		t.Errorf("after the start: answered by %s", a.Machine)
	}

	f.Stop("alice", id)
	f.router.set(fallbackAware("app=alice;instance=" + id + ";timeout=10ms;fallback=force_self"))
	resp := f.send(80, "GET", "/", nil).Expect(t, http.StatusOK, nil)
	var got map[string]string
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatalf("not the router's fallback answer: %s", resp.Body)
	}
	if fields := parseFields(t, got["fallback"]); fields["reason"] != reasonTimeout || fields["instance"] != id {
		t.Errorf("fly-replay-failed %q", got["fallback"])
	}

	// Without a timeout the proxy's default (30 s) covers the start.
	f.WaitSettled("alice", id, flysim.StateStarted)
	f.Stop("alice", id)
	f.router.set(replayWith("app=alice;instance=" + id))
	begun := time.Now()
	if a := f.send(80, "GET", "/", nil).answer(t); a.Machine != id {
		t.Errorf("answered by %s", a.Machine)
	}
	t.Logf("woke the machine in %v (not asserted)", time.Since(begun))
}
