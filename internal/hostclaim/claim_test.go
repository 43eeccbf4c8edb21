package hostclaim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const base = "apps.example.net"

// objOpt tweaks a test object's metadata.
type objOpt func(*metav1.ObjectMeta)

// age sets the creation time to epoch + d.
func age(d time.Duration) objOpt {
	return func(m *metav1.ObjectMeta) { m.CreationTimestamp = metav1.NewTime(epoch.Add(d)) }
}
func uid(u string) objOpt { return func(m *metav1.ObjectMeta) { m.UID = types.UID(u) } }
func deleting() objOpt {
	return func(m *metav1.ObjectMeta) { t := metav1.NewTime(epoch.Add(time.Hour)); m.DeletionTimestamp = &t }
}

func meta(ns, name string, opts []objOpt) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(epoch)}
	for _, o := range opts {
		o(&m)
	}
	return m
}

// app is a UserApp claiming hosts; a host written "sub:x" is the subdomain x instead.
func app(ns, name string, hosts []string, opts ...objOpt) []Claim {
	a := &flyv1alpha1.UserApp{ObjectMeta: meta(ns, name, opts), Spec: flyv1alpha1.UserAppSpec{Routing: &flyv1alpha1.AppRouting{}}}
	for _, h := range hosts {
		if sub, ok := strings.CutPrefix(h, "sub:"); ok {
			a.Spec.Routing.Subdomain = sub
		} else {
			a.Spec.Routing.Hosts = append(a.Spec.Routing.Hosts, h)
		}
	}
	claims, invalid := AppClaims(a, base)
	if len(invalid) != 0 {
		panic(fmt.Sprint("invalid test hosts ", invalid))
	}
	return claims
}

// machine is a UserMachine of UserApp appName claiming hosts.
func machine(ns, name, appName string, hosts []string, opts ...objOpt) []Claim {
	m := &flyv1alpha1.UserMachine{ObjectMeta: meta(ns, name, opts), Spec: flyv1alpha1.UserMachineSpec{
		AppRef: flyv1alpha1.AppReference{Name: appName}, Routing: &flyv1alpha1.MachineRouting{Hosts: hosts},
	}}
	claims, invalid := MachineClaims(m)
	if len(invalid) != 0 {
		panic(fmt.Sprint("invalid test hosts ", invalid))
	}
	return claims
}

func h(hosts ...string) []string { return hosts }

// outcome is a Decision in words: the owner app, the object routed to, and the objects that lose.
type outcome struct {
	owner  string // "ns/app"
	routed string // Claim.Object()
	losers []string
}

func describe(d Decision) outcome {
	o := outcome{owner: d.Owner().String(), routed: d.Winner().Object()}
	for i, c := range d.Claims {
		if d.Lost(i) {
			o.losers = append(o.losers, c.Object())
		}
	}
	return o
}

func TestDecide(t *testing.T) {
	const host = "shared.example.com"
	tests := []struct {
		name   string
		claims [][]Claim
		host   string
		want   outcome
	}{
		{"one claim", [][]Claim{
			app("ns", "a", h(host)),
		}, host, outcome{"ns/a", "UserApp ns/a", nil}},
		{"the older app owns the host", [][]Claim{
			app("ns", "young", h(host), age(time.Hour)),
			app("ns", "old", h(host)),
		}, host, outcome{"ns/old", "UserApp ns/old", []string{"UserApp ns/young"}}},
		{"same age: the smaller UID wins, whatever the names", [][]Claim{
			app("a", "a", h(host), uid("bbbb")),
			app("z", "z", h(host), uid("aaaa")),
		}, host, outcome{"z/z", "UserApp z/z", []string{"UserApp a/a"}}},
		{"same age, no UIDs: namespace then name decide", [][]Claim{
			app("ns-b", "x", h(host)),
			app("ns-a", "y", h(host)),
			app("ns-a", "x", h(host)),
		}, host, outcome{"ns-a/x", "UserApp ns-a/x", []string{"UserApp ns-a/y", "UserApp ns-b/x"}}},
		{"a machine refines its own app's host", [][]Claim{
			app("ns", "a", h(host)),
			machine("ns", "m", "a", h(host), age(time.Hour)),
		}, host, outcome{"ns/a", "UserMachine ns/m", nil}},
		{"a machine of the owner app wins over the other apps", [][]Claim{
			app("ns", "a", h(host)),
			app("ns", "b", h(host), age(time.Minute)),
			machine("ns", "m", "a", h(host), age(time.Hour)),
		}, host, outcome{"ns/a", "UserMachine ns/m", []string{"UserApp ns/b"}}},
		{"two machines of one app: the older is routed, neither loses", [][]Claim{
			machine("ns", "m2", "a", h(host), age(2*time.Hour)),
			machine("ns", "m1", "a", h(host), age(time.Hour)),
			app("ns", "a", h(host)),
		}, host, outcome{"ns/a", "UserMachine ns/m1", nil}},
		{"a machine never takes another app's older host", [][]Claim{
			app("ns", "old", h(host)),
			app("ns", "other", nil, age(-time.Hour)),
			machine("ns", "m", "other", h(host), age(time.Hour)),
		}, host, outcome{"ns/old", "UserApp ns/old", []string{"UserMachine ns/m"}}},
		{"a machine that claimed first keeps the host for its app", [][]Claim{
			app("ns", "late", h(host), age(time.Hour)),
			machine("ns", "m", "first", h(host)),
		}, host, outcome{"ns/first", "UserMachine ns/m", []string{"UserApp ns/late"}}},
		{"across namespaces too", [][]Claim{
			app("tenant-b", "a", h(host), age(time.Hour)),
			machine("tenant-b", "m", "a", h(host), age(2*time.Hour)),
			app("tenant-a", "a", h(host)),
		}, host, outcome{"tenant-a/a", "UserApp tenant-a/a", []string{"UserApp tenant-b/a", "UserMachine tenant-b/m"}}},
		{"an older subdomain wins over a younger exact host", [][]Claim{
			app("ns", "host", h("x."+base), age(time.Hour)),
			app("ns", "sub", h("sub:x")),
		}, "x." + base, outcome{"ns/sub", "UserApp ns/sub", []string{"UserApp ns/host"}}},
		{"an older exact host wins over a younger subdomain", [][]Claim{
			app("ns", "sub", h("sub:x"), age(time.Hour)),
			app("ns", "host", h("x."+base)),
		}, "x." + base, outcome{"ns/host", "UserApp ns/host", []string{"UserApp ns/sub"}}},
		{"an app naming its own subdomain as a host claims it once", [][]Claim{
			app("ns", "a", h("a."+base, "sub:a")),
		}, "a." + base, outcome{"ns/a", "UserApp ns/a", nil}},
		{"hosts compare in canonical form", [][]Claim{
			app("ns", "new", h("xn--bcher-kva.example.com"), age(time.Hour)),
			app("ns", "old", h("Bücher.Example.com.")),
		}, "xn--bcher-kva.example.com", outcome{"ns/old", "UserApp ns/old", []string{"UserApp ns/new"}}},
		{"an object being deleted releases the host to the next claimant", [][]Claim{
			app("ns", "old", h(host), deleting()),
			app("ns", "next", h(host), age(time.Hour)),
		}, host, outcome{"ns/next", "UserApp ns/next", []string{"UserApp ns/old"}}},
		{"a machine being deleted no longer refines its app's host", [][]Claim{
			app("ns", "a", h(host)),
			machine("ns", "m", "a", h(host), age(time.Hour), deleting()),
		}, host, outcome{"ns/a", "UserApp ns/a", nil}},
		{"a machine being deleted leaves another app's host alone", [][]Claim{
			machine("ns", "m", "first", h(host), deleting()),
			app("ns", "late", h(host), age(time.Hour)),
		}, host, outcome{"ns/late", "UserApp ns/late", []string{"UserMachine ns/m"}}},
		{"with every claimant being deleted the oldest keeps the host", [][]Claim{
			app("ns", "young", h(host), age(time.Hour), deleting()),
			app("ns", "old", h(host), deleting()),
			machine("ns", "m", "old", h(host), age(time.Minute), deleting()),
		}, host, outcome{"ns/old", "UserMachine ns/m", []string{"UserApp ns/young"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := slices.Concat(tt.claims...)
			got := find(t, Decide(claims), tt.host)
			if o := describe(got); !equalOutcome(o, tt.want) {
				t.Errorf("%s: got %+v, want %+v", tt.host, o, tt.want)
			}
			// Every order of the same claims gives the same decision.
			rng := rand.New(rand.NewPCG(1, 2))
			for range 20 {
				shuffled := slices.Clone(claims)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				if o := describe(find(t, Decide(shuffled), tt.host)); !equalOutcome(o, tt.want) {
					t.Fatalf("order %v: got %+v, want %+v", objects(shuffled), o, tt.want)
				}
			}
		})
	}
}

// TestNextClaimantTakesOver removes the winner of a host again and again: each time the next
// claimant in age order owns it, as if the winner's object had gone away.
func TestNextClaimantTakesOver(t *testing.T) {
	const host = "shared.example.com"
	claims := slices.Concat(
		app("ns", "third", h(host), age(2*time.Hour)),
		machine("ns", "m", "second", h(host), age(time.Hour)),
		app("ns", "first", h(host, "first-only.example.com")),
		app("ns", "second", h(host), age(3*time.Hour)),
	)
	for _, want := range []outcome{
		{"ns/first", "UserApp ns/first", []string{"UserMachine ns/m", "UserApp ns/third", "UserApp ns/second"}},
		// The oldest claim left is the machine's: its app, second, owns the host through it.
		{"ns/second", "UserMachine ns/m", []string{"UserApp ns/third"}},
		// The machine gone, its app's own claim is younger than third's.
		{"ns/third", "UserApp ns/third", []string{"UserApp ns/second"}},
		{"ns/second", "UserApp ns/second", nil},
	} {
		got := describe(find(t, Decide(claims), host))
		if !equalOutcome(got, want) {
			t.Fatalf("claimants %v: got %+v, want %+v", objects(claims), got, want)
		}
		winner := find(t, Decide(claims), host).Claims[0]
		claims = slices.DeleteFunc(claims, func(c Claim) bool { return c.Kind == winner.Kind && c.Name == winner.Name })
	}
	if len(claims) != 0 {
		t.Fatalf("claims left: %v", objects(claims))
	}
}

func TestDecideManyHosts(t *testing.T) {
	claims := slices.Concat(
		app("ns", "a", h("a.example.com", "shared.example.com", "sub:a")),
		app("ns", "b", h("b.example.com", "shared.example.com"), age(time.Hour)),
		machine("ns", "m", "b", h("b.example.com", "m.example.com")),
	)
	before := slices.Clone(claims)
	decisions := Decide(claims)
	if !slices.Equal(claims, before) {
		t.Error("Decide modified its input")
	}
	got := map[string]outcome{}
	for _, d := range decisions {
		if _, dup := got[d.Host]; dup {
			t.Fatalf("two decisions for %s", d.Host)
		}
		got[d.Host] = describe(d)
	}
	want := map[string]outcome{
		"a.example.com":      {"ns/a", "UserApp ns/a", nil},
		"a." + base:          {"ns/a", "UserApp ns/a", nil},
		"shared.example.com": {"ns/a", "UserApp ns/a", []string{"UserApp ns/b"}},
		"b.example.com":      {"ns/b", "UserMachine ns/m", nil},
		"m.example.com":      {"ns/b", "UserMachine ns/m", nil},
	}
	if len(got) != len(want) {
		t.Errorf("decided %d hosts, want %d: %+v", len(got), len(want), got)
	}
	for host, w := range want {
		if !equalOutcome(got[host], w) {
			t.Errorf("%s: got %+v, want %+v", host, got[host], w)
		}
	}
	if Decide(nil) != nil {
		t.Error("Decide(nil) is not empty")
	}
}

func TestClaimsOfObjects(t *testing.T) {
	created := metav1.NewTime(epoch)
	now := metav1.NewTime(epoch.Add(time.Minute))
	a := &flyv1alpha1.UserApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u1", CreationTimestamp: created, DeletionTimestamp: &now},
		Spec: flyv1alpha1.UserAppSpec{Routing: &flyv1alpha1.AppRouting{
			Hosts: []string{"A.example.com", strings.Repeat("x", 64) + ".example.com"}, Subdomain: "a",
		}},
	}
	claims, invalid := AppClaims(a, base)
	want := []Claim{
		{Host: "a.example.com", Kind: KindApp, Namespace: "ns", Name: "a", App: "a", Created: epoch, UID: "u1", Released: true},
		{Host: "a." + base, Kind: KindApp, Namespace: "ns", Name: "a", App: "a", Subdomain: true, Created: epoch, UID: "u1", Released: true},
	}
	if !slices.Equal(claims, want) || !slices.Equal(invalid, []string{strings.Repeat("x", 64) + ".example.com"}) {
		t.Errorf("AppClaims = %+v, invalid %q", claims, invalid)
	}
	if claims, _ := AppClaims(a, ""); !slices.Equal(Hosts(claims), []string{"a.example.com"}) {
		t.Errorf("without a base domain the subdomain claimed something: %v", Hosts(claims))
	}
	a.Spec.Routing.Subdomain = "under_score"
	if _, invalid := AppClaims(a, base); !slices.Contains(invalid, "under_score."+base) {
		t.Errorf("a subdomain that makes no DNS name is not reported: %q", invalid)
	}
	if claims, invalid := AppClaims(&flyv1alpha1.UserApp{}, base); claims != nil || invalid != nil {
		t.Errorf("an app without routing claims %v, %v", claims, invalid)
	}

	m := &flyv1alpha1.UserMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m", UID: "u2", CreationTimestamp: created},
		Spec: flyv1alpha1.UserMachineSpec{AppRef: flyv1alpha1.AppReference{Name: "a"},
			Routing: &flyv1alpha1.MachineRouting{Hosts: []string{"m.example.com", "m.example.com."}}},
	}
	claims, invalid = MachineClaims(m)
	wantM := []Claim{{Host: "m.example.com", Kind: KindMachine, Namespace: "ns", Name: "m", App: "a", Created: epoch, UID: "u2"}}
	if !slices.Equal(claims, wantM) || invalid != nil {
		t.Errorf("MachineClaims = %+v, invalid %q", claims, invalid)
	}
	if got := claims[0].Object(); got != "UserMachine ns/m" {
		t.Errorf("Object() = %q", got)
	}
	if claims, _ := MachineClaims(&flyv1alpha1.UserMachine{}); claims != nil {
		t.Errorf("a machine without routing claims %v", claims)
	}
}

func find(t *testing.T, ds []Decision, host string) Decision {
	t.Helper()
	for _, d := range ds {
		if d.Host == host {
			return d
		}
	}
	t.Fatalf("no decision for %s among %d", host, len(ds))
	return Decision{}
}

func equalOutcome(a, b outcome) bool {
	return a.owner == b.owner && a.routed == b.routed && slices.Equal(a.losers, b.losers)
}

func objects(cs []Claim) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Object()
	}
	return out
}
