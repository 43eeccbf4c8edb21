package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flysim"
)

func TestSpecChangeMakesOneUpdateUnderLease(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	_, um := h.readyUser("carol")
	app := um.Status.AppName

	h.sim.ResetCalls()
	h.update(um, func() {
		um.Spec.Image = "registry.fly.io/workspace:v2"
		um.Spec.Env["FEATURE"] = "on"
	})
	h.eventually("image v2 on Fly", func() string {
		m, _ := h.sim.Machine(app, um.Status.MachineID)
		if img := machineConfig(t, m)["image"]; img != "registry.fly.io/workspace:v2" {
			return fmt.Sprint("image ", img)
		}
		return ""
	})
	h.settled(um, "started")

	var sequence []string
	for _, c := range h.sim.Calls() {
		if c.Method != "GET" {
			sequence = append(sequence, c.Action)
		}
	}
	want := []string{"acquire_lease", "update_machine", "release_lease"}
	if fmt.Sprint(sequence) != fmt.Sprint(want) {
		t.Fatalf("Fly writes for one spec change = %v, want %v", sequence, want)
	}
	if got := h.events(um.Name)[controllers.EventUpdated]; len(got) != 1 {
		t.Fatalf("Updated events = %v, want one", got)
	}

	// Labels and annotations are not part of the machine: a pass runs, Fly sees nothing.
	h.sim.ResetCalls()
	before := reconciles(t, "usermachine")
	h.update(um, func() {
		um.Labels = map[string]string{"team": "red"}
		um.Annotations = map[string]string{"note": "hello"}
	})
	h.eventually("a pass after the annotation change", func() string {
		if reconciles(t, "usermachine") <= before {
			return "no pass yet"
		}
		return ""
	})
	if calls := h.sim.Calls(); len(calls) != 0 {
		t.Fatalf("label/annotation change made Fly calls: %v", calls)
	}
}

func TestSteadyStateMakesNoWritesAndOneReadPerInterval(t *testing.T) {
	const interval = time.Second
	h := newHarness(t, harnessOptions{driftInterval: interval})
	app := newApp("dave")
	h.create(app)
	var machines []*flyv1alpha1.UserMachine
	for i := range 3 {
		um := newMachine(fmt.Sprintf("dave-%d", i), "dave")
		h.create(um)
		machines = append(machines, um)
	}
	for _, um := range machines {
		h.settled(um, "started")
	}

	h.sim.ResetCalls()
	start := time.Now()
	time.Sleep(6 * interval) // observe the fleet at rest over several drift intervals
	elapsed := time.Since(start)
	calls := h.sim.Calls()

	if n := writes(calls); n != 0 {
		t.Fatalf("steady state made %d Fly writes: %v", n, calls)
	}
	// Each object's interval is jittered to at least 0.9 × interval.
	maxReads := int(elapsed/(interval*9/10)) + 1
	for _, um := range machines {
		if n := len(h.sim.CallsFor("get_machine", um.Status.MachineID)); n > maxReads || n == 0 {
			t.Errorf("machine %s: %d reads in %s, want 1..%d (one per drift interval)", um.Name, n, elapsed, maxReads)
		}
	}
	if n := len(callsOf(calls, "get_app")); n > maxReads {
		t.Errorf("app: %d reads in %s, want at most %d", n, elapsed, maxReads)
	}
	if other := len(calls) - len(callsOf(calls, "get_machine")) - len(callsOf(calls, "get_app")); other != 0 {
		t.Errorf("steady state made %d other calls: %v", other, calls)
	}
}

func TestCreateCommittedButAnswerLostIsAdopted(t *testing.T) {
	// Fly may not enforce unique machine names (docs/fly-api.md §4.1): then only the create
	// recorded before it was sent stops a second machine while the list lags.
	laggingWithoutUniqueNames := &flysim.Profile{Name: "lag", ListLag: flysim.Fixed(2 * time.Second), DuplicateMachineNames: true}
	fast := &flysim.Profile{Name: "fast"}
	cases := []struct {
		name    string
		fault   flysim.Fault
		listLag time.Duration
		profile *flysim.Profile
	}{
		{name: "503 after commit", fault: flysim.Fault{CommitThenFail: true, Status: 503, Count: 1}, profile: fast},
		{name: "connection dropped after commit, list lagging", fault: flysim.Fault{CommitThenFail: true, DropConnection: true, Count: 1}, listLag: 2 * time.Second, profile: fast},
		{name: "408 after commit, realistic profile", fault: flysim.Fault{CommitThenFail: true, Status: 408, Count: 1}},
		{name: "408 after commit, list lagging, names not unique", fault: flysim.Fault{CommitThenFail: true, Status: 408, Count: 1}, profile: laggingWithoutUniqueNames},
		{name: "dropped after commit, list lagging, names not unique", fault: flysim.Fault{CommitThenFail: true, DropConnection: true, Count: 1}, profile: laggingWithoutUniqueNames},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{profile: tc.profile})
			h.create(newApp("erin"))
			h.sim.SetFault("create_machine", tc.fault)
			h.sim.SetListLag(tc.listLag)
			um := newMachine("erin-ws", "erin")
			h.create(um)
			h.settled(um, "started")

			assertOneMachine(t, h, um)
			// Events are recorded asynchronously: look until it shows, then count.
			h.eventually("an Adopted event", func() string {
				if got := h.events(um.Name)[controllers.EventAdopted]; len(got) != 1 {
					return fmt.Sprintf("Adopted events = %v, want one", got)
				}
				return ""
			})
		})
	}
}

func TestManagerRestartBetweenCreateAndStatusWriteAdopts(t *testing.T) {
	var failStatus atomic.Bool
	failStatus.Store(true)
	funcs := interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if um, ok := obj.(*flyv1alpha1.UserMachine); ok && um.Status.MachineID != "" && failStatus.Load() {
				return errors.New("injected: the manager died before recording the machine ID")
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}
	h := newHarness(t, harnessOptions{interceptor: &funcs})
	h.create(newApp("frank"))
	um := newMachine("frank-ws", "frank")
	h.create(um)
	h.eventually("machine created on Fly", func() string {
		h.get(um)
		if len(h.sim.Machines(flyv1alpha1.DefaultFlyAppName("hangar-", h.ns, "frank"))) == 0 {
			return "no machine yet"
		}
		return ""
	})
	h.stopManager()
	if h.get(um); um.Status.MachineID != "" {
		t.Fatalf("the injected failure did not keep the ID out of status: %+v", um.Status)
	}

	failStatus.Store(false)
	h.startManager()
	h.settled(um, "started")
	assertOneMachine(t, h, um)
}

func assertOneMachine(t *testing.T, h *harness, um *flyv1alpha1.UserMachine) {
	t.Helper()
	h.get(um)
	machines := h.sim.Machines(um.Status.AppName)
	if len(machines) != 1 || machines[0].ID != um.Status.MachineID {
		ids := make([]string, len(machines))
		for i, m := range machines {
			ids[i] = m.ID + " (" + m.State + ")"
		}
		t.Fatalf("want exactly one machine, the recorded %s; emulator has %d: %v", um.Status.MachineID, len(machines), ids)
	}
}

func TestDriftIsCorrectedWithinOneInterval(t *testing.T) {
	const interval = time.Second
	t.Run("machine destroyed out of band is recreated", func(t *testing.T) {
		h := newHarness(t, harnessOptions{driftInterval: interval})
		_, um := h.readyUser("gina")
		old := um.Status.MachineID
		if err := h.sim.DestroyOutOfBand(um.Status.AppName, old); err != nil {
			t.Fatal(err)
		}
		h.eventually("a new machine", func() string {
			h.get(um)
			if um.Status.MachineID == old || um.Status.MachineID == "" {
				return "still " + um.Status.MachineID
			}
			return ""
		})
		h.settled(um, "started")
		assertOneMachine(t, h, um)
		if got := h.events(um.Name)[controllers.EventDriftCorrected]; len(got) == 0 {
			t.Error("no DriftCorrected event")
		}
	})

	t.Run("config changed out of band is restored after a long transition", func(t *testing.T) {
		// The out-of-band update leaves the machine replacing for longer than a drift interval, so
		// the drift check finds it unsettled and must wait: the drift has to outlive that pass.
		p := testProfile()
		p.Transitions.Update = flysim.Transition{Typical: flysim.Fixed(40 * time.Second)}
		h := newHarness(t, harnessOptions{driftInterval: interval, profile: &p})
		_, um := h.readyUser("hugo")
		err := h.sim.UpdateOutOfBand(um.Status.AppName, um.Status.MachineID, func(cfg map[string]any) {
			cfg["image"] = "registry.fly.io/someone-else:latest"
		})
		if err != nil {
			t.Fatal(err)
		}
		h.condition(um, flyv1alpha1.ConfigSyncedCondition, metav1.ConditionFalse, flyv1alpha1.UpdatingReason)
		h.eventually("image restored", func() string {
			m, _ := h.sim.Machine(um.Status.AppName, um.Status.MachineID)
			if got := machineConfig(t, m)["image"]; got != um.Spec.Image {
				return fmt.Sprintf("image %v", got)
			}
			return ""
		})
	})

	t.Run("config changed out of band is restored", func(t *testing.T) {
		h := newHarness(t, harnessOptions{driftInterval: interval})
		_, um := h.readyUser("hank")
		err := h.sim.UpdateOutOfBand(um.Status.AppName, um.Status.MachineID, func(cfg map[string]any) {
			cfg["image"] = "registry.fly.io/someone-else:latest"
			cfg["auto_destroy"] = true // a field hangar does not manage: it must survive
		})
		if err != nil {
			t.Fatal(err)
		}
		h.eventually("image restored", func() string {
			m, _ := h.sim.Machine(um.Status.AppName, um.Status.MachineID)
			cfg := machineConfig(t, m)
			if cfg["image"] != um.Spec.Image || cfg["auto_destroy"] != true {
				return fmt.Sprintf("image %v auto_destroy %v", cfg["image"], cfg["auto_destroy"])
			}
			return ""
		})
		h.settled(um, "started")
		if got := h.events(um.Name)[controllers.EventDriftCorrected]; len(got) != 1 {
			t.Errorf("DriftCorrected events = %v, want one", got)
		}
	})

	t.Run("powerState Started: a stopped machine is started again", func(t *testing.T) {
		h := newHarness(t, harnessOptions{driftInterval: interval})
		app := newApp("ivy")
		um := newMachine("ivy-ws", "ivy")
		um.Spec.PowerState = flyv1alpha1.PowerStateStarted
		h.create(app)
		h.create(um)
		h.settled(um, "started")
		if err := h.sim.ProxyStop(um.Status.AppName, um.Status.MachineID); err != nil {
			t.Fatal(err)
		}
		h.eventually("started again", func() string {
			m, _ := h.sim.Machine(um.Status.AppName, um.Status.MachineID)
			if m.State != "started" || len(h.sim.CallsFor("start_machine", um.Status.MachineID)) != 1 {
				return "state " + m.State
			}
			return ""
		})
		h.settled(um, "started")
	})

	t.Run("powerState Auto: a machine the proxy stopped stays stopped", func(t *testing.T) {
		h := newHarness(t, harnessOptions{driftInterval: interval})
		_, um := h.readyUser("jack")
		if err := h.sim.ProxyStop(um.Status.AppName, um.Status.MachineID); err != nil {
			t.Fatal(err)
		}
		h.settled(um, "stopped") // observed within an interval, and still Ready
		time.Sleep(3 * interval)
		if calls := h.sim.CallsFor("start_machine", um.Status.MachineID); len(calls) != 0 {
			t.Fatalf("hangar fought the proxy's autostop: %v", calls)
		}
		if m, _ := h.sim.Machine(um.Status.AppName, um.Status.MachineID); m.State != "stopped" {
			t.Fatalf("state %s, want stopped", m.State)
		}
	})
}

func TestPowerStates(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.create(newApp("kate"))
	um := newMachine("kate-ws", "kate")
	um.Spec.PowerState = flyv1alpha1.PowerStateStopped
	h.create(um)
	// Stopped from the start: launched (so the proxy can wake it later), then stopped.
	h.settled(um, "stopped")
	if n := len(h.sim.CallsFor("stop_machine", um.Status.MachineID)); n != 1 {
		t.Fatalf("a Stopped machine was stopped %d times, want once", n)
	}

	steps := []struct {
		power flyv1alpha1.PowerState
		state string
		event string
	}{
		{flyv1alpha1.PowerStateStarted, "started", controllers.EventStarted},
		{flyv1alpha1.PowerStateSuspended, "suspended", controllers.EventSuspended},
		{flyv1alpha1.PowerStateStopped, "stopped", controllers.EventStopped},
		{flyv1alpha1.PowerStateSuspended, "suspended", controllers.EventSuspended}, // started first, then suspended
	}
	for _, step := range steps {
		// Events of earlier steps stay: each step must add one of its own.
		before := h.eventCount(um.Name, step.event)
		h.update(um, func() { um.Spec.PowerState = step.power })
		h.settled(um, step.state)
		if m, _ := h.sim.Machine(um.Status.AppName, um.Status.MachineID); m.State != step.state {
			t.Fatalf("powerState %s: emulator state %s", step.power, m.State)
		}
		h.eventually(fmt.Sprintf("powerState %s: a new %s event", step.power, step.event), func() string {
			if n := h.eventCount(um.Name, step.event); n <= before {
				return fmt.Sprintf("%d %s events, as before the step", n, step.event)
			}
			return ""
		})
	}
}

// TestTransitionsAreWaitedOnNotPolled: a machine's boot and stop, seconds long under the realistic
// profile, are learnt from Fly's wait endpoint, one held request each, not from reads every
// TransitionPoll (200 ms here, so polling would read several times per transition).
func TestTransitionsAreWaitedOnNotPolled(t *testing.T) {
	p := testProfile()
	p.Transitions.Create = flysim.Transition{Typical: flysim.Fixed(15 * time.Second)} // 1.5 s scaled
	p.Transitions.Stop = flysim.Transition{Typical: flysim.Fixed(15 * time.Second)}
	h := newHarness(t, harnessOptions{profile: &p})
	h.create(newApp("wanda"))
	um := newMachine("wanda-ws", "wanda")
	um.Spec.PowerState = flyv1alpha1.PowerStateStarted
	h.create(um)
	h.settled(um, "started")
	h.update(um, func() { um.Spec.PowerState = flyv1alpha1.PowerStateStopped })
	h.settled(um, "stopped")

	calls := h.sim.Calls()
	if n := len(callsOf(calls, "wait_machine")); n < 2 {
		t.Errorf("%d waits for a boot and a stop, want at least 2", n)
	}
	// The stop is decided from what the boot's wait saw; at most a read per pass that found
	// nothing to wait for.
	if n := len(h.sim.CallsFor("get_machine", um.Status.MachineID)); n > 2 {
		t.Errorf("%d machine reads across two transitions of 1.5 s each: they were polled", n)
	}
}
