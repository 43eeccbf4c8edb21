package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

func testMachine() (*flyv1alpha1.UserMachine, *flyv1alpha1.UserApp) {
	um := &flyv1alpha1.UserMachine{
		ObjectMeta: metav1.ObjectMeta{Name: "ws", Namespace: "team", UID: types.UID("uid-1"), Labels: map[string]string{"a": "b"}},
		Spec: flyv1alpha1.UserMachineSpec{
			AppRef: flyv1alpha1.AppReference{Name: "alice"}, Image: "img:v1",
			Env: map[string]string{"A": "1", "B": "2"}, Metadata: map[string]string{"team": "blue"},
		},
	}
	app := &flyv1alpha1.UserApp{Status: flyv1alpha1.UserAppStatus{AppName: "fly-alice", SecretsVersion: 3}}
	return um, app
}

func TestDesiredMachineFor(t *testing.T) {
	um, app := testMachine()
	d := desiredMachineFor(um, app, "ord")
	if d.Region != "ord" || d.Name != "ws" || d.MinSecretsVersion != 3 || len(d.Services) != 2 || d.Guest.MemoryMB != 256 {
		t.Fatalf("desired = %+v", d)
	}
	for k, v := range map[string]string{MetadataUID: "uid-1", MetadataNamespace: "team", MetadataName: "ws", "team": "blue"} {
		if d.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, d.Metadata[k], v)
		}
	}
	if um.Spec.Metadata[MetadataUID] != "" {
		t.Fatal("building the desired machine wrote into the spec's metadata map")
	}
}

func TestConfigHashChangesWithWhatFlyRuns(t *testing.T) {
	base := func() (*flyv1alpha1.UserMachine, *flyv1alpha1.UserApp) { return testMachine() }
	um, app := base()
	hash := desiredMachineFor(um, app, "ord").Metadata[MetadataConfigHash]
	if again := desiredMachineFor(um, app, "ord").Metadata[MetadataConfigHash]; again != hash {
		t.Fatalf("hash not stable: %s then %s", hash, again)
	}
	cases := []struct {
		name    string
		mutate  func(*flyv1alpha1.UserMachine, *flyv1alpha1.UserApp)
		changes bool
	}{
		{"image", func(m *flyv1alpha1.UserMachine, _ *flyv1alpha1.UserApp) { m.Spec.Image = "img:v2" }, true},
		{"env value", func(m *flyv1alpha1.UserMachine, _ *flyv1alpha1.UserApp) { m.Spec.Env["A"] = "9" }, true},
		{"secrets version", func(_ *flyv1alpha1.UserMachine, a *flyv1alpha1.UserApp) { a.Status.SecretsVersion = 4 }, true},
		{"guest", func(m *flyv1alpha1.UserMachine, _ *flyv1alpha1.UserApp) {
			m.Spec.Guest = &flyv1alpha1.Guest{MemoryMB: 512}
		}, true},
		{"user metadata", func(m *flyv1alpha1.UserMachine, _ *flyv1alpha1.UserApp) { m.Spec.Metadata["team"] = "red" }, true},
		{"labels", func(m *flyv1alpha1.UserMachine, _ *flyv1alpha1.UserApp) { m.Labels["a"] = "c" }, false},
		{"power state Started", func(m *flyv1alpha1.UserMachine, _ *flyv1alpha1.UserApp) {
			m.Spec.PowerState = flyv1alpha1.PowerStateStarted
		}, false},
		{"routing hosts", func(m *flyv1alpha1.UserMachine, _ *flyv1alpha1.UserApp) {
			m.Spec.Routing = &flyv1alpha1.MachineRouting{Hosts: []string{"x.example"}}
		}, false},
		{"explicit default services", func(m *flyv1alpha1.UserMachine, _ *flyv1alpha1.UserApp) {
			m.Spec.Services = flyv1alpha1.DefaultServices()
		}, false},
	}
	for _, tc := range cases {
		um, app := base()
		tc.mutate(um, app)
		got := desiredMachineFor(um, app, "ord").Metadata[MetadataConfigHash]
		if (got != hash) != tc.changes {
			t.Errorf("%s: hash changed = %v, want %v", tc.name, got != hash, tc.changes)
		}
	}
}

func TestMachineName(t *testing.T) {
	long := strings.Repeat("a", 100)
	if got := machineName("ws"); got != "ws" {
		t.Fatalf("short name changed: %q", got)
	}
	a, b := machineName(long+"1"), machineName(long+"2")
	if len(a) > maxMachineNameLength || a == b || machineName(long+"1") != a {
		t.Fatalf("long names: %q, %q", a, b)
	}
}

func TestPowerDecisions(t *testing.T) {
	cases := []struct {
		want      flyv1alpha1.PowerState
		state     string
		satisfied bool
		action    string
	}{
		{flyv1alpha1.PowerStateStarted, MachineStarted, true, ""},
		{flyv1alpha1.PowerStateStarted, MachineStopped, false, "start"},
		{flyv1alpha1.PowerStateStarted, MachineSuspended, false, "start"},
		{flyv1alpha1.PowerStateStarted, MachineCreated, false, "start"},
		{flyv1alpha1.PowerStateStarted, MachineFailed, false, "start"},
		{flyv1alpha1.PowerStateStopped, MachineStopped, true, ""},
		{flyv1alpha1.PowerStateStopped, MachineCreated, true, ""},
		{flyv1alpha1.PowerStateStopped, MachineStarted, false, "stop"},
		{flyv1alpha1.PowerStateStopped, MachineSuspended, false, "stop"},
		{flyv1alpha1.PowerStateSuspended, MachineSuspended, true, ""},
		{flyv1alpha1.PowerStateSuspended, MachineStarted, false, "suspend"},
		{flyv1alpha1.PowerStateSuspended, MachineStopped, false, "start"},
		{flyv1alpha1.PowerStateAuto, MachineStopped, true, ""},
	}
	for _, tc := range cases {
		if got := powerSatisfied(tc.want, tc.state); got != tc.satisfied {
			t.Errorf("powerSatisfied(%s, %s) = %v", tc.want, tc.state, got)
		}
		if tc.satisfied {
			continue
		}
		if action, _, _ := powerActionFor(tc.want, tc.state); action != tc.action {
			t.Errorf("powerActionFor(%s, %s) = %s, want %s", tc.want, tc.state, action, tc.action)
		}
	}
}

func TestOutcomeOf(t *testing.T) {
	o := Options{UnauthorizedRetry: time.Minute}
	cases := []struct {
		name       string
		err        error
		reason     string
		requeue    time.Duration
		returnsErr bool
	}{
		{"waiting", waitFor(5*time.Second, flyv1alpha1.WaitingForAppReason, "app"), flyv1alpha1.WaitingForAppReason, 5 * time.Second, false},
		{"throttled", &FlyError{Kind: FlyThrottled, RetryAfter: 3 * time.Second}, flyv1alpha1.ThrottledReason, 3 * time.Second, false},
		{"throttled without a hint", &FlyError{Kind: FlyThrottled}, flyv1alpha1.ThrottledReason, time.Second, false},
		{"unauthorized", &FlyError{Kind: FlyUnauthorized}, flyv1alpha1.UnauthorizedReason, time.Minute, false},
		{"rejected", &FlyError{Kind: FlyRejected, Message: "bad image"}, flyv1alpha1.FlyRejectedReason, 0, true},
		{"unavailable", &FlyError{Kind: FlyUnavailable}, flyv1alpha1.FlyUnavailableReason, 0, true},
		{"kubernetes error", errors.New("conflict"), flyv1alpha1.ReconcilingReason, 0, true},
	}
	for _, tc := range cases {
		oc := outcomeOf(tc.err, o)
		if oc.reason != tc.reason || oc.result.RequeueAfter != tc.requeue || (oc.err != nil) != tc.returnsErr {
			t.Errorf("%s: outcome %+v", tc.name, oc)
		}
	}
}

func TestDriftIntervalJitter(t *testing.T) {
	o := Options{DriftInterval: 100 * time.Second}
	seen := map[time.Duration]bool{}
	for _, uid := range []types.UID{"a", "b", "c", "d", "e"} {
		d := o.driftIntervalFor(uid)
		if d < 90*time.Second || d >= 110*time.Second {
			t.Fatalf("interval %s outside ±10%%", d)
		}
		if o.driftIntervalFor(uid) != d {
			t.Fatal("jitter not stable per object")
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatal("no jitter between objects")
	}
}
