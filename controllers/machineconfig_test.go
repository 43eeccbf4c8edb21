package controllers

import (
	"strings"
	"testing"

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
