package v1alpha1_test

import (
	"regexp"
	"strings"
	"testing"

	v1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

var flyAppName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestDefaultFlyAppName(t *testing.T) {
	long := strings.Repeat("n", 253)
	cases := []struct {
		name, prefix, namespace, objName string
		wantPrefix                       string
	}{
		{name: "short", prefix: "hangar-", namespace: "team-a", objName: "alice", wantPrefix: "hangar-team-a-alice-"},
		{name: "no prefix", namespace: "default", objName: "bob", wantPrefix: "default-bob-"},
		{name: "dots become dashes", namespace: "default", objName: "alice.dev", wantPrefix: "default-alice-dev-"},
		{name: "long name is cut", prefix: "hangar-", namespace: "default", objName: long, wantPrefix: "hangar-default-nnn"},
		{name: "long namespace is cut", namespace: strings.Repeat("x", 63), objName: "alice", wantPrefix: "xxxx"},
		{name: "digit first", namespace: "1team", objName: "alice", wantPrefix: "1team-alice-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := v1.DefaultFlyAppName(tc.prefix, tc.namespace, tc.objName)
			if len(got) > v1.MaxFlyAppNameLength || !flyAppName.MatchString(got) {
				t.Fatalf("%q is not a valid Fly app name (len %d)", got, len(got))
			}
			if !strings.HasPrefix(got, tc.wantPrefix) {
				t.Fatalf("%q does not start with %q", got, tc.wantPrefix)
			}
			if again := v1.DefaultFlyAppName(tc.prefix, tc.namespace, tc.objName); again != got {
				t.Fatalf("not stable: %q then %q", got, again)
			}
		})
	}
}

func TestDefaultFlyAppNameKeepsLookalikesApart(t *testing.T) {
	long := strings.Repeat("a", 200)
	pairs := [][2][2]string{
		{{"a-b", "c"}, {"a", "b-c"}},               // same text once joined
		{{"ns", "alice.dev"}, {"ns", "alice-dev"}}, // same text once sanitised
		{{"ns", long + "1"}, {"ns", long + "2"}},   // same text once cut
	}
	for _, p := range pairs {
		a := v1.DefaultFlyAppName("hangar-", p[0][0], p[0][1])
		b := v1.DefaultFlyAppName("hangar-", p[1][0], p[1][1])
		if a == b {
			t.Errorf("%v and %v both map to %q", p[0], p[1], a)
		}
	}
}

func TestIsolatedNetworkName(t *testing.T) {
	cases := map[string]string{
		"alice-x1":              "alice-x1",
		"1team-alice":           "n-1team-alice",
		strings.Repeat("9", 63): "n-" + strings.Repeat("9", 61),
	}
	for app, want := range cases {
		if got := v1.IsolatedNetworkName(app); got != want {
			t.Errorf("IsolatedNetworkName(%q) = %q, want %q", app, got, want)
		}
	}
}

func TestEffectiveServicesAndGuest(t *testing.T) {
	var spec v1.UserMachineSpec
	services := spec.EffectiveServices()
	if len(services) != 2 || services[0].Name != "management" || services[0].Ports[0].Port != 9090 ||
		services[0].InternalPort != 9090 || services[1].Name != "public" || services[1].InternalPort != 8080 ||
		len(services[1].Ports) != 2 || services[1].Ports[0].Port != 80 || services[1].Ports[1].Port != 443 {
		t.Fatalf("blueprint services wrong: %+v", services)
	}
	spec.Services = []v1.MachineService{{Name: "only", InternalPort: 1}}
	if got := spec.EffectiveServices(); len(got) != 1 || got[0].Name != "only" {
		t.Fatalf("spec.services not used: %+v", got)
	}

	if g := spec.EffectiveGuest(); g != (v1.Guest{CPUKind: v1.CPUKindShared, CPUs: 1, MemoryMB: 256}) {
		t.Fatalf("default guest = %+v", g)
	}
	spec.Guest = &v1.Guest{MemoryMB: 1024}
	if g := spec.EffectiveGuest(); g != (v1.Guest{CPUKind: v1.CPUKindShared, CPUs: 1, MemoryMB: 1024}) {
		t.Fatalf("partial guest = %+v", g)
	}
}

func TestEffectiveDeletionPolicy(t *testing.T) {
	orphanApp := &v1.UserApp{Spec: v1.UserAppSpec{DeletionPolicy: v1.DeletionPolicyOrphan}}
	cases := []struct {
		name    string
		machine v1.DeletionPolicy
		app     *v1.UserApp
		want    v1.DeletionPolicy
	}{
		{name: "machine wins", machine: v1.DeletionPolicyDelete, app: orphanApp, want: v1.DeletionPolicyDelete},
		{name: "inherits the app", app: orphanApp, want: v1.DeletionPolicyOrphan},
		{name: "app gone", want: v1.DeletionPolicyDelete},
	}
	for _, tc := range cases {
		spec := v1.UserMachineSpec{DeletionPolicy: tc.machine}
		if got := spec.EffectiveDeletionPolicy(tc.app); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
