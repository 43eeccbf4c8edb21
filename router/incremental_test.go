package router

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// markAllDirty makes the next Build rebuild every group, as the first Build after the initial sync
// does.
func (b *Builder) markAllDirty() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for key := range b.apps {
		b.dirty[key] = struct{}{}
	}
	for _, m := range b.machines {
		b.dirty[appKeyOf(m)] = struct{}{}
	}
}

// The random world of the property test: few names, hosts, ages and UIDs, so objects collide on
// hosts, tie on age and move between apps often.
var (
	propNamespaces = []string{"ns-a", "ns-b"}
	propApps       = []string{"a1", "a2", "a3", "a4"}
	propMachines   = []string{"m1", "m2", "m3", "m4", "m5"}
	// propHosts are claimed as written; "H2.Example.COM." is h2 in another spelling, s1.apps...
	// is the subdomain s1, and "bad_host!" is no host at all.
	propHosts      = []string{"h1.example.com", "h2.example.com", "h3.example.com", "h4.example.com", "H2.Example.COM.", "s1.apps.example.net", "bad_host!"}
	propSubdomains = []string{"", "s1", "s2"}
	// propLookups are every host the world can route, canonical or not.
	propLookups = []string{"h1.example.com", "h2.example.com", "h3.example.com", "h4.example.com", "H2.Example.COM.", "s1.apps.example.net", "s2.apps.example.net", "nobody.example.com"}
	propUIDs    = []types.UID{"", "uid-1", "uid-2"}
)

// propWorld draws random changes and keeps the objects as they are now.
type propWorld struct {
	rng      *rand.Rand
	now      time.Time
	apps     map[types.NamespacedName]*flyv1alpha1.UserApp
	machines map[types.NamespacedName]*flyv1alpha1.UserMachine
}

func pick[T any](rng *rand.Rand, from []T) T { return from[rng.IntN(len(from))] }

// subset is up to n entries of from, duplicates possible.
func subset(rng *rand.Rand, from []string, n int) []string {
	out := make([]string, rng.IntN(n+1))
	for i := range out {
		out[i] = pick(rng, from)
	}
	return out
}

func (w *propWorld) meta(ns, name string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Namespace: ns, Name: name, UID: pick(w.rng, propUIDs),
		CreationTimestamp: metav1.NewTime(testEpoch.Add(time.Duration(w.rng.IntN(3)) * time.Hour))}
	if w.rng.IntN(8) == 0 {
		m.DeletionTimestamp = &metav1.Time{Time: w.now}
	}
	return m
}

func (w *propWorld) randomApp() *flyv1alpha1.UserApp {
	ns, name := pick(w.rng, propNamespaces), pick(w.rng, propApps)
	app := &flyv1alpha1.UserApp{
		ObjectMeta: w.meta(ns, name),
		Spec: flyv1alpha1.UserAppSpec{Routing: &flyv1alpha1.AppRouting{
			Hosts: subset(w.rng, propHosts, 3), Subdomain: pick(w.rng, propSubdomains),
		}},
		Status: flyv1alpha1.UserAppStatus{AppName: pick(w.rng, []string{"fa-" + name, "fa-" + name, "", "Bad_App"}),
			KeyGeneration: int64(w.rng.IntN(3))},
	}
	if w.rng.IntN(3) == 0 {
		app.Spec.Routing.Auth = flyv1alpha1.RoutingAuthToken
	}
	if w.rng.IntN(3) == 0 {
		// A rotation overlap that may end during the next few builds.
		app.Status.PreviousKeysValidUntil = &metav1.Time{Time: w.now.Add(time.Duration(w.rng.IntN(180)-30) * time.Second)}
	}
	if w.rng.IntN(10) == 0 {
		app.Spec.Routing = nil
	}
	return app
}

func (w *propWorld) randomMachine() *flyv1alpha1.UserMachine {
	ns, name, app := pick(w.rng, propNamespaces), pick(w.rng, propMachines), pick(w.rng, propApps)
	m := &flyv1alpha1.UserMachine{
		ObjectMeta: w.meta(ns, name),
		Spec:       flyv1alpha1.UserMachineSpec{AppRef: flyv1alpha1.AppReference{Name: app}},
		Status: flyv1alpha1.UserMachineStatus{
			AppName:   pick(w.rng, []string{"fa-" + app, "fa-" + app, "fa-other"}),
			MachineID: pick(w.rng, []string{"0000000000000" + name[1:], "1000000000000" + name[1:], "", "id;app=evil"}),
		},
	}
	if w.rng.IntN(4) != 0 {
		m.Status.Conditions = machineCreatedTrue
	}
	if hosts := subset(w.rng, propHosts, 2); len(hosts) > 0 {
		m.Spec.Routing = &flyv1alpha1.MachineRouting{Hosts: hosts}
	}
	return m
}

// change applies one random change to the world and to b.
func (w *propWorld) change(b *Builder) {
	switch op := w.rng.IntN(10); {
	case op < 4:
		app := w.randomApp()
		w.apps[types.NamespacedName{Namespace: app.Namespace, Name: app.Name}] = app
		b.UpsertApp(app)
	case op < 8:
		m := w.randomMachine()
		w.machines[types.NamespacedName{Namespace: m.Namespace, Name: m.Name}] = m
		b.UpsertMachine(m)
	case op == 8 && len(w.apps) > 0:
		key := pick(w.rng, sortedKeys(w.apps))
		delete(w.apps, key)
		b.DeleteApp(key)
	case len(w.machines) > 0:
		key := pick(w.rng, sortedKeys(w.machines))
		delete(w.machines, key)
		b.DeleteMachine(key)
	}
}

// sortedKeys are m's keys in a fixed order, so a seed draws the same changes every run.
func sortedKeys[V any](m map[types.NamespacedName]V) []types.NamespacedName {
	return slices.SortedFunc(maps.Keys(m), func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
}

// fullBuild builds the world from scratch in a new Builder, at the same time.
func (w *propWorld) fullBuild(t *testing.T) (*Index, []Problem) {
	t.Helper()
	b, err := NewBuilder(BuildConfig{BaseDomain: "Apps.Example.NET.", Root: testRoot(t), Now: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, app := range w.apps {
		b.UpsertApp(app)
	}
	for _, m := range w.machines {
		b.UpsertMachine(m)
	}
	return b.Build()
}

// describe is everything a request could get from what ref resolves to.
func describe(t *target) string {
	if t == nil {
		return "none"
	}
	replay := "none"
	if t.replay != nil {
		replay = fmt.Sprintf("%s/%s/%v/%x", t.replay.app, t.replay.machine, t.replay.deleteAuth, t.replay.key)
	}
	return fmt.Sprintf("%s fly=%q machine=%q auth=%q ready=%v signer=%+v token=%s previous=%s replay=%s",
		t.ownerName(), t.flyApp, t.machine, t.auth, t.ready, t.signer, t.managementToken, t.previousManagementToken, replay)
}

// snapshot is what ix answers for every host and machine reference the world can have, and its
// counts.
func snapshot(ix *Index) map[string]string {
	out := map[string]string{
		"routes":    fmt.Sprint(ix.Routes()),
		"conflicts": fmt.Sprint(ix.Conflicts()),
		"skipped":   fmt.Sprint(ix.skipped),
		"keySwitch": ix.KeySwitch().String(),
	}
	for _, host := range propLookups {
		tgt, o := resolveHost(ix, host)
		out["host "+host] = fmt.Sprintf("%d %s", o, describe(tgt))
	}
	for _, ns := range propNamespaces {
		for _, name := range propMachines {
			out["machine "+ns+"/"+name] = describe(ix.lookupMachine(ns + "/" + name))
		}
	}
	return out
}

func problemSet(ps []Problem) map[Problem]bool {
	out := map[Problem]bool{}
	for _, p := range ps {
		out[p] = true
	}
	return out
}

// TestIncrementalBuildEqualsFullBuild applies random batches of adds, updates (hosts, subdomains,
// statuses, ages, deletions starting, key rotations), deletes and host conflicts to one Builder,
// building after each batch, and checks each index against a Builder given the same objects at
// once: every host and machine reference answers the same, the counts agree, the problems
// reported are the new ones, and the previous index still answers as it did.
func TestIncrementalBuildEqualsFullBuild(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			w := &propWorld{rng: rand.New(rand.NewPCG(seed, 12)), now: testNow,
				apps: map[types.NamespacedName]*flyv1alpha1.UserApp{}, machines: map[types.NamespacedName]*flyv1alpha1.UserMachine{}}
			b, err := NewBuilder(BuildConfig{BaseDomain: "Apps.Example.NET.", Root: testRoot(t), Now: func() time.Time { return w.now }})
			if err != nil {
				t.Fatal(err)
			}
			var prevIndex *Index
			var prevSnapshot map[string]string
			prevProblems := map[Problem]bool{}
			for step := range 150 {
				for range 1 + w.rng.IntN(4) {
					w.change(b)
				}
				w.now = w.now.Add(time.Duration(w.rng.IntN(60)) * time.Second)
				ix, fresh := b.Build()
				want, all := w.fullBuild(t)
				if diff := diffSnapshots(snapshot(ix), snapshot(want)); diff != "" {
					t.Fatalf("step %d: incremental index differs from a full build:\n%s", step, diff)
				}
				wantProblems := problemSet(all)
				wantFresh := map[Problem]bool{}
				for p := range wantProblems {
					if !prevProblems[p] {
						wantFresh[p] = true
					}
				}
				if got := problemSet(fresh); !maps.Equal(got, wantFresh) {
					t.Fatalf("step %d: problems reported %v, want the new ones %v", step, got, wantFresh)
				}
				if prevIndex != nil {
					if diff := diffSnapshots(snapshot(prevIndex), prevSnapshot); diff != "" {
						t.Fatalf("step %d: the previous index changed under its readers:\n%s", step, diff)
					}
				}
				prevIndex, prevSnapshot, prevProblems = ix, snapshot(ix), wantProblems
			}
		})
	}
}

func diffSnapshots(got, want map[string]string) string {
	var diff string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			diff += fmt.Sprintf("  %s:\n    got  %s\n    want %s\n", k, got[k], want[k])
		}
	}
	return diff
}

// TestIncrementalBuildKeepsSignatures: a build after a change elsewhere keeps the targets of the
// groups it did not touch, and a rebuilt group keeps the signature caches of what it still signs.
func TestIncrementalBuildKeepsSignatures(t *testing.T) {
	r := newTestRouter(t).set(
		newApp("ns", "a", "a-app", hosts("a.example.com")),
		newMachine("ns", "m", "a", "a-app", "aaaaaaaaaaaaa1", machineHosts("m.example.com")),
		newApp("ns", "b", "b-app", hosts("b.example.com")),
		newMachine("ns", "n", "b", "b-app", "bbbbbbbbbbbbb1"),
	)
	before := map[string]*target{}
	for _, h := range []string{"a.example.com", "m.example.com", "b.example.com"} {
		before[h], _ = resolveHost(r.table.Load(), h)
	}
	r.set(newMachine("ns", "n", "b", "b-app", "bbbbbbbbbbbbb2"))
	ix := r.table.Load()
	for _, h := range []string{"a.example.com", "m.example.com"} {
		if after, _ := resolveHost(ix, h); after != before[h] {
			t.Errorf("%s: a change to another app made a new target", h)
		}
	}
	if after, _ := resolveHost(ix, "b.example.com"); after == before["b.example.com"] || after.machine != "bbbbbbbbbbbbb2" {
		t.Errorf("b.example.com was not rebuilt: %s", describe(after))
	}
	r.set(newMachine("ns", "m", "a", "a-app", "aaaaaaaaaaaaa1", machineHosts("m.example.com", "m2.example.com")))
	after, _ := resolveHost(r.table.Load(), "m.example.com")
	if after == before["m.example.com"] || after.replay != before["m.example.com"].replay {
		t.Error("a rebuilt group threw away the signature cache of a machine it still signs for")
	}
}

// TestCowMapVersions: an edit changes only the new version; the old one answers as before.
func TestCowMapVersions(t *testing.T) {
	e := cowMap[int]{}.edit()
	for i := range 10_000 {
		e.set(fmt.Sprint("k", i), i)
	}
	v1 := e.done()
	e = v1.edit()
	e.set("k1", -1)
	e.set("new", 7)
	e.remove("k2")
	e.remove("absent")
	v2 := e.done()
	tests := []struct {
		name string
		m    cowMap[int]
		key  string
		want int
	}{
		{"old version keeps a changed key", v1, "k1", 1},
		{"old version keeps a removed key", v1, "k2", 2},
		{"old version lacks an added key", v1, "new", 0},
		{"new version has the change", v2, "k1", -1},
		{"new version lost the removed key", v2, "k2", 0},
		{"new version has the added key", v2, "new", 7},
		{"new version shares the rest", v2, "k9999", 9999},
		{"empty map", cowMap[int]{}, "k1", 0},
	}
	for _, tt := range tests {
		if got := tt.m.get(tt.key); got != tt.want {
			t.Errorf("%s: %s = %d, want %d", tt.name, tt.key, got, tt.want)
		}
	}
	if v1.size() != 10_000 || v2.size() != 10_000 {
		t.Errorf("sizes %d and %d, want 10000 and 10000", v1.size(), v2.size())
	}
}
