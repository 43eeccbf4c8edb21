package proxy

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

func TestAutostopStopsAnIdleMachine(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "stop", 0))
	f.router.set(replayWith("app=alice;instance=" + id))

	if got := f.proxy.RunAutostop(); len(got) != 0 {
		t.Fatalf("first pass acted on machines it had never seen idle: %v", got)
	}
	f.clock.Advance(50 * time.Second)
	f.send(80, "GET", "/", nil).answer(t) // activity resets the idle time
	// The proxy ends the request after the client has its answer: wait for that, so the idle time
	// starts at this clock reading and not after the next Advance.
	k := machineKey{"alice", id}
	flysimtest.Eventually(t, "request ended", func() bool { return f.proxy.activity.load(k) == 0 })
	f.clock.Advance(50 * time.Second)
	if got := f.proxy.RunAutostop(); len(got) != 0 {
		t.Fatalf("stopped a machine active 50 s ago (idle after 1 min): %v", got)
	}
	f.clock.Advance(11 * time.Second)
	want := []AutostopAction{{App: "alice", MachineID: id, Action: "stop"}}
	if diff := cmp.Diff(want, f.proxy.RunAutostop()); diff != "" {
		t.Fatalf("autostop (-want +got):\n%s", diff)
	}
	f.WaitSettled("alice", id, flysim.StateStopped)
	flysimtest.Eventually(t, "listeners closed", func() bool { return len(f.machines.Endpoints("alice", id)) == 0 })
	if m := f.GetMachine("alice", id); m.Events[1].Source != sourceFlyProxy {
		t.Errorf("stop recorded as %+v", m.Events[1])
	}
	// The router asks for autostop too, but it is an external process: never touched.
	f.clock.Advance(time.Hour)
	if got := f.proxy.RunAutostop(); len(got) != 0 {
		t.Errorf("later pass: %v", got)
	}
	if m, _ := f.srv.Machine("router", f.routerID); m.State != flysim.StateStarted {
		t.Errorf("router machine is %s", m.State)
	}
	// The next request wakes it again.
	if a := f.send(80, "GET", "/", nil).answer(t); a.Machine != id {
		t.Errorf("answered by %s", a.Machine)
	}
}

func TestAutostopModes(t *testing.T) {
	tests := []struct {
		name     string
		autostop any
		want     string // "" means left running
	}{
		{name: "off", autostop: "off"},
		{name: "false", autostop: false},
		{name: "stop", autostop: "stop", want: flysim.StateStopped},
		{name: "true", autostop: true, want: flysim.StateStopped},
		{name: "suspend", autostop: "suspend", want: flysim.StateSuspended},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			f.UserApp("alice", "")
			id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, tt.autostop, 0))
			f.proxy.RunAutostop()
			f.clock.Advance(2 * time.Minute)
			got := f.proxy.RunAutostop()
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("acted: %v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Action != map[string]string{flysim.StateStopped: "stop", flysim.StateSuspended: "suspend"}[tt.want] {
				t.Fatalf("actions %v", got)
			}
			f.WaitSettled("alice", id, tt.want)
		})
	}
}

func TestAutostopKeepsMinMachinesRunningAndStopsOnePerRegionPerPass(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	f.UserApp("bob", "")
	var alice []string
	for range 3 {
		alice = append(alice, f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "stop", 1)))
	}
	var bob []string
	for _, region := range []string{"ord", "ams"} {
		m := f.CreateMachine("bob", map[string]any{"config": flysimtest.ConfigWith(flysimtest.BlueprintServices(true, "stop", 0)), "region": region})
		f.WaitFor("bob", m.ID, flysim.StateStarted)
		bob = append(bob, m.ID)
	}
	f.proxy.RunAutostop()
	f.clock.Advance(2 * time.Minute)

	stopped := map[string][]string{}
	for range 4 {
		for _, a := range f.proxy.RunAutostop() {
			stopped[a.App] = append(stopped[a.App], a.MachineID)
			f.WaitSettled(a.App, a.MachineID, flysim.StateStopped)
		}
	}
	// alice: one per pass (one region), never below min_machines_running=1.
	if want := alice[:2]; !slices.Equal(stopped["alice"], want) {
		t.Errorf("alice stopped %v, want %v (oldest first, one left running)", stopped["alice"], want)
	}
	// bob: one machine per region, both in the first pass.
	if want := bob; !slices.Equal(stopped["bob"], want) {
		t.Errorf("bob stopped %v, want %v", stopped["bob"], want)
	}
}

func TestAutostopSkipsBusyMachines(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.UserApp("alice", "")
	id := f.UserMachine(f.machines, "alice", flysimtest.BlueprintServices(true, "stop", 0))
	k := machineKey{"alice", id}
	f.proxy.RunAutostop()
	f.proxy.activity.begin(k) // a request in flight for longer than the idle time
	f.clock.Advance(time.Hour)
	if got := f.proxy.RunAutostop(); len(got) != 0 {
		t.Fatalf("stopped a machine with a request in flight: %v", got)
	}
	f.proxy.activity.end(k, f.clock.Now())
	f.clock.Advance(time.Hour)
	if got := f.proxy.RunAutostop(); len(got) != 1 {
		t.Fatalf("actions after the request ended: %v", got)
	}
}

func TestAutostopLoop(t *testing.T) {
	f := newFixture(t, fixtureOptions{proxy: func(o *Options) {
		o.Autostop = AutostopOptions{Interval: time.Millisecond, IdleAfter: time.Nanosecond}
		o.Now = time.Now
	}})
	f.UserApp("alice", "")
	m := f.CreateMachine("alice", map[string]any{"config": flysimtest.ConfigWith(flysimtest.BlueprintServices(true, "stop", 0))})
	// Not a wait for started first: the loop may stop the machine before such a wait arrives (a
	// created machine reaches stopped only through started).
	f.WaitSettled("alice", m.ID, flysim.StateStopped)
}
