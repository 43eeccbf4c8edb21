package flysim

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

func TestSubscribeSeesEveryTransitionInOrder(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("subs")
	var mu sync.Mutex
	var got []string
	cancel := h.srv.Subscribe(func(e MachineEvent) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, e.OldState+">"+e.NewState)
	})
	m := h.CreateMachine("subs", nil)
	h.WaitFor("subs", m.ID, StateStarted)
	stopMachine(h, "subs", m.ID)
	want := ">created created>starting starting>started started>stopping stopping>stopped"
	flysimtest.Eventually(t, "events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(got, " ") == want
	})
	cancel()
	// Delivery is asynchronous: a second subscriber tells when the later events have been delivered,
	// so the check below cannot pass merely because they have not arrived yet.
	delivered := make(chan struct{})
	var once sync.Once
	defer h.srv.Subscribe(func(e MachineEvent) {
		if e.NewState == StateStarted {
			once.Do(func() { close(delivered) })
		}
	})()
	h.Do("POST", "/v1/apps/subs/machines/"+m.ID+"/start", nil).Expect(t, 200, nil)
	h.WaitFor("subs", m.ID, StateStarted)
	select {
	case <-delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("the start was never delivered to the second subscriber")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, " ") != want {
		t.Errorf("events after cancel: %v", got)
	}
}

func TestProxyActions(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("px")
	m := h.StartedMachine("px")
	before := len(h.srv.Calls())

	if err := h.srv.ProxyStart("px", m.ID); !errors.Is(err, ErrFailedPrecondition) {
		t.Errorf("ProxyStart on started: %v", err)
	}
	if err := h.srv.ProxyStop("px", m.ID); err != nil {
		t.Fatal(err)
	}
	h.WaitSettled("px", m.ID, StateStopped)
	if err := h.srv.ProxyStop("px", m.ID); !errors.Is(err, ErrFailedPrecondition) {
		t.Errorf("ProxyStop on stopped: %v", err)
	}
	if err := h.srv.ProxyStart("px", m.ID); err != nil {
		t.Fatal(err)
	}
	h.WaitSettled("px", m.ID, StateStarted)
	if err := h.srv.ProxySuspend("px", m.ID); err != nil {
		t.Fatal(err)
	}
	h.WaitSettled("px", m.ID, StateSuspended)
	if err := h.srv.ProxyStart("px", m.ID); err != nil {
		t.Fatal(err)
	}
	h.WaitSettled("px", m.ID, StateStarted)
	got := h.GetMachine("px", m.ID)
	if got.Events[1].Source != sourceProxy {
		t.Errorf("proxy start recorded as %+v", got.Events[1])
	}
	if n := len(h.srv.Calls()) - before; n != 1 { // only the getMachine above
		t.Errorf("out-of-band actions logged %d API calls", n-1)
	}
	if err := h.srv.ProxyStop("px", "aaaaaaaaaaaaaa"); !errors.Is(err, ErrMachineNotFound) {
		t.Errorf("unknown machine: %v", err)
	}
	if err := h.srv.ProxyStop("nope", m.ID); !errors.Is(err, ErrAppNotFound) {
		t.Errorf("unknown app: %v", err)
	}
}

func TestOutOfBandChanges(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("oob")
	m := h.StartedMachine("oob")

	if err := h.srv.UpdateOutOfBand("oob", m.ID, func(c map[string]any) { c["env"] = map[string]any{"BY": "flyctl"} }); err != nil {
		t.Fatal(err)
	}
	h.WaitSettled("oob", m.ID, StateStarted)
	info, _ := h.srv.Machine("oob", m.ID)
	if info.Version == m.Version || !strings.Contains(string(info.Config), `"BY":"flyctl"`) {
		t.Errorf("out-of-band update: %s %s", info.Version, info.Config)
	}
	// The client's current_version is now stale.
	h.Do("POST", "/v1/apps/oob/machines/"+m.ID, map[string]any{"config": flysimtest.BaseConfig(), "current_version": m.Version}).ExpectError(t, 409, "")
	if err := h.srv.UpdateOutOfBand("oob", m.ID, func(c map[string]any) { delete(c, "image") }); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("invalid out-of-band update: %v", err)
	}

	if err := h.srv.FailOutOfBand("oob", m.ID); err != nil {
		t.Fatal(err)
	}
	if info, _ := h.srv.Machine("oob", m.ID); info.State != StateFailed {
		t.Errorf("after FailOutOfBand: %s", info.State)
	}
	if err := h.srv.DestroyOutOfBand("oob", m.ID); err != nil {
		t.Fatal(err)
	}
	h.WaitSettled("oob", m.ID, StateDestroyed)
	if ms := h.srv.Machines("oob"); len(ms) != 0 {
		t.Errorf("Machines lists destroyed: %+v", ms)
	}
	if err := h.srv.DestroyOutOfBand("oob", m.ID); !errors.Is(err, ErrFailedPrecondition) {
		t.Errorf("destroying twice: %v", err)
	}
}

func TestCrossNetworkReplaysSetting(t *testing.T) {
	h := newHarness(t)
	if h.srv.CrossNetworkReplays(orgA) {
		t.Error("on by default")
	}
	h.srv.SetCrossNetworkReplays(orgA, true)
	if !h.srv.CrossNetworkReplays(orgA) || h.srv.CrossNetworkReplays(orgB) {
		t.Error("setting not per org")
	}
}

func TestAppInspection(t *testing.T) {
	h := newHarness(t)
	h.Do("POST", "/v1/apps", map[string]any{"name": "seen", "org_slug": orgA, "network": "n1"}).Expect(t, 201, nil)
	h.Do("POST", "/v1/apps/seen/ip_assignments", map[string]any{"type": "private_v6", "network": "n1"}).Expect(t, 200, nil)
	info, ok := h.srv.App("seen")
	if !ok || info.Network != "n1" || info.NetworkID == 0 || len(info.IPs) != 1 || info.FlycastNets[0] != "n1" || info.Deleted {
		t.Errorf("App(seen) = %+v", info)
	}
	if apps := h.srv.Apps(orgB); len(apps) != 0 {
		t.Errorf("Apps(orgB) = %+v", apps)
	}
	if _, ok := h.srv.App("never"); ok {
		t.Error("App(never) found")
	}
}
