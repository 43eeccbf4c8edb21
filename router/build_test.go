package router

import (
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/keys"

	"k8s.io/apimachinery/pkg/types"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// routeOf describes what a host resolves to in ix: "404", "503" or "<fly app>/<machine or *>".
func routeOf(ix *Index, host string) string {
	t, o := resolveHost(ix, host)
	switch {
	case t == nil && o == outcomeNotFound:
		return "404"
	case t == nil:
		return "400"
	case !t.ready:
		return "503"
	case t.machine == "":
		return t.flyApp + "/*"
	default:
		return t.flyApp + "/" + t.machine
	}
}

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

func TestIndexAddUpdateDelete(t *testing.T) {
	r := newTestRouter(t)
	ix := func() *Index { return r.table.Load() }
	steps := []struct {
		name  string
		apply func()
		want  map[string]string
	}{
		{"app without machines", func() {
			r.set(newApp("ns", "alice", "alice-app", hosts("alice.example.com"), subdomain("alice")))
		}, map[string]string{"alice.example.com": "503", "alice.apps.example.net": "503", "bob.example.com": "404"}},
		{"machine created", func() {
			r.set(newMachine("ns", "m1", "alice", "alice-app", "aaaaaaaaaaaaa1"))
		}, map[string]string{"alice.example.com": "alice-app/aaaaaaaaaaaaa1", "alice.apps.example.net": "alice-app/aaaaaaaaaaaaa1"}},
		{"second machine: replay to the app", func() {
			r.set(newMachine("ns", "m2", "alice", "alice-app", "aaaaaaaaaaaaa2"))
		}, map[string]string{"alice.example.com": "alice-app/*"}},
		{"second machine not created any more", func() {
			r.set(newMachine("ns", "m2", "alice", "alice-app", "aaaaaaaaaaaaa2", notCreated()))
		}, map[string]string{"alice.example.com": "alice-app/aaaaaaaaaaaaa1"}},
		{"first machine replaced by another Fly machine", func() {
			r.set(newMachine("ns", "m1", "alice", "alice-app", "aaaaaaaaaaaaa9"))
		}, map[string]string{"alice.example.com": "alice-app/aaaaaaaaaaaaa9"}},
		{"machine being deleted", func() {
			r.set(newMachine("ns", "m1", "alice", "alice-app", "aaaaaaaaaaaaa9", machineDeleting()))
		}, map[string]string{"alice.example.com": "503"}},
		{"machine back, hosts changed", func() {
			r.set(newMachine("ns", "m1", "alice", "alice-app", "aaaaaaaaaaaaa1"),
				newApp("ns", "alice", "alice-app", hosts("alice.example.org")))
		}, map[string]string{"alice.example.com": "404", "alice.apps.example.net": "404", "alice.example.org": "alice-app/aaaaaaaaaaaaa1"}},
		{"machine deleted", func() {
			r.builder.DeleteMachine(nn("ns", "m1"))
			r.publish()
		}, map[string]string{"alice.example.org": "503"}},
		{"app deleted", func() {
			r.builder.DeleteApp(nn("ns", "alice"))
			r.publish()
		}, map[string]string{"alice.example.org": "404"}},
	}
	for _, s := range steps {
		s.apply()
		for host, want := range s.want {
			if got := routeOf(ix(), host); got != want {
				t.Errorf("after %q: %s -> %s, want %s", s.name, host, got, want)
			}
		}
	}
}

func TestIndexRoutability(t *testing.T) {
	tests := []struct {
		name string
		objs []any
		want map[string]string
	}{
		{"app has no Fly app name yet", []any{
			newApp("ns", "a", "", hosts("a.example.com")),
			newMachine("ns", "m", "a", "a-app", "aaaaaaaaaaaaa1"),
		}, map[string]string{"a.example.com": "503"}},
		{"app being deleted", []any{
			newApp("ns", "a", "a-app", hosts("a.example.com"), appDeleting()),
			newMachine("ns", "m", "a", "a-app", "aaaaaaaaaaaaa1", machineHosts("m.example.com")),
		}, map[string]string{"a.example.com": "503", "m.example.com": "503"}},
		{"machine status names another Fly app", []any{
			newApp("ns", "a", "a-app", hosts("a.example.com")),
			newMachine("ns", "m", "a", "stale-app", "aaaaaaaaaaaaa1", machineHosts("m.example.com")),
		}, map[string]string{"a.example.com": "503", "m.example.com": "503"}},
		{"machine without machine ID", []any{
			newApp("ns", "a", "a-app", hosts("a.example.com")),
			newMachine("ns", "m", "a", "a-app", ""),
		}, map[string]string{"a.example.com": "503"}},
		{"machine of an app in another namespace", []any{
			newApp("ns", "a", "a-app", hosts("a.example.com")),
			newMachine("other", "m", "a", "a-app", "aaaaaaaaaaaaa1"),
		}, map[string]string{"a.example.com": "503"}},
		{"machine whose UserApp is not cached is never routed", []any{
			newMachine("ns", "m", "gone", "gone-app", "aaaaaaaaaaaaa1", machineHosts("m.example.com")),
		}, map[string]string{"m.example.com": "503"}},
		{"machine host pins its machine", []any{
			newApp("ns", "a", "a-app", hosts("a.example.com")),
			newMachine("ns", "m1", "a", "a-app", "aaaaaaaaaaaaa1", machineHosts("m1.example.com")),
			newMachine("ns", "m2", "a", "a-app", "aaaaaaaaaaaaa2"),
		}, map[string]string{"a.example.com": "a-app/*", "m1.example.com": "a-app/aaaaaaaaaaaaa1"}},
		{"status names that cannot go into a replay", []any{
			newApp("ns", "a", "A_App", hosts("a.example.com")),
			newApp("ns", "b", "b-app", hosts("b.example.com")),
			newMachine("ns", "m", "b", "b-app", "id;app=evil"),
		}, map[string]string{"a.example.com": "503", "b.example.com": "503"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRouter(t).set(tt.objs...)
			for host, want := range tt.want {
				if got := routeOf(r.table.Load(), host); got != want {
					t.Errorf("%s -> %s, want %s", host, got, want)
				}
			}
		})
	}
}

func TestIndexHostConflicts(t *testing.T) {
	tests := []struct {
		name          string
		objs          []any
		host          string
		want          string
		wantConflicts int
		loser         string
	}{
		{"older app wins", []any{
			newApp("ns", "young", "young-app", hosts("shared.example.com"), appCreated(time.Hour)),
			newMachine("ns", "y", "young", "young-app", "aaaaaaaaaaaaa1"),
			newApp("ns", "old", "old-app", hosts("shared.example.com")),
			newMachine("ns", "o", "old", "old-app", "aaaaaaaaaaaaa2"),
		}, "shared.example.com", "old-app/aaaaaaaaaaaaa2", 1, "UserApp ns/young"},
		{"same age: smaller name wins", []any{
			newApp("ns-b", "x", "b-app", hosts("shared.example.com")),
			newMachine("ns-b", "m", "x", "b-app", "aaaaaaaaaaaaa1"),
			newApp("ns-a", "x", "a-app", hosts("shared.example.com")),
			newMachine("ns-a", "m", "x", "a-app", "aaaaaaaaaaaaa2"),
		}, "shared.example.com", "a-app/aaaaaaaaaaaaa2", 1, "UserApp ns-b/x"},
		// This case asserted the old precedence, where a UserMachine's host beat any UserApp's across
		// apps, so any tenant could take another's host by naming it on a machine. One owner per
		// host (internal/hostclaim): the oldest claim's app owns it, and a machine only refines a
		// host of its own app.
		{"machine host never takes another app's older host", []any{
			newApp("ns", "old", "old-app", hosts("shared.example.com")),
			newMachine("ns", "o", "old", "old-app", "aaaaaaaaaaaaa2"),
			newApp("ns", "other", "other-app", appCreated(time.Hour)),
			newMachine("ns", "m", "other", "other-app", "aaaaaaaaaaaaa1", machineHosts("shared.example.com"), machineCreated(time.Hour)),
		}, "shared.example.com", "old-app/aaaaaaaaaaaaa2", 1, "UserMachine ns/m"},
		{"machine host that claimed first keeps the host for its app", []any{
			newApp("ns", "late", "late-app", hosts("shared.example.com"), appCreated(time.Hour)),
			newMachine("ns", "l", "late", "late-app", "aaaaaaaaaaaaa2"),
			newApp("ns", "other", "other-app"),
			newMachine("ns", "m", "other", "other-app", "aaaaaaaaaaaaa1", machineHosts("shared.example.com")),
		}, "shared.example.com", "other-app/aaaaaaaaaaaaa1", 1, "UserApp ns/late"},
		{"machine refines its own app's host against other apps", []any{
			newApp("ns", "a", "a-app", hosts("shared.example.com")),
			newMachine("ns", "m1", "a", "a-app", "aaaaaaaaaaaaa1", machineHosts("shared.example.com"), machineCreated(2*time.Hour)),
			newMachine("ns", "m2", "a", "a-app", "aaaaaaaaaaaaa2"),
			newApp("ns", "b", "b-app", hosts("shared.example.com"), appCreated(time.Hour)),
		}, "shared.example.com", "a-app/aaaaaaaaaaaaa1", 1, "UserApp ns/b"},
		// This case asserted the old precedence of an exact host over a subdomain. Both are claims
		// of a UserApp now, and the older one owns the host.
		{"older subdomain beats another app's younger exact host", []any{
			newApp("ns", "sub", "sub-app", subdomain("x")),
			newMachine("ns", "s", "sub", "sub-app", "aaaaaaaaaaaaa1"),
			newApp("ns", "host", "host-app", hosts("x.apps.example.net"), appCreated(time.Hour)),
			newMachine("ns", "h", "host", "host-app", "aaaaaaaaaaaaa2"),
		}, "x.apps.example.net", "sub-app/aaaaaaaaaaaaa1", 1, "UserApp ns/host"},
		{"older exact host beats another app's younger subdomain", []any{
			newApp("ns", "sub", "sub-app", subdomain("x"), appCreated(time.Hour)),
			newMachine("ns", "s", "sub", "sub-app", "aaaaaaaaaaaaa1"),
			newApp("ns", "host", "host-app", hosts("x.apps.example.net")),
			newMachine("ns", "h", "host", "host-app", "aaaaaaaaaaaaa2"),
		}, "x.apps.example.net", "host-app/aaaaaaaaaaaaa2", 1, "UserApp ns/sub"},
		{"an app being deleted releases its host to the next claimant, without a conflict", []any{
			newApp("ns", "old", "old-app", hosts("shared.example.com"), appDeleting()),
			newMachine("ns", "o", "old", "old-app", "aaaaaaaaaaaaa1"),
			newApp("ns", "next", "next-app", hosts("shared.example.com"), appCreated(time.Hour)),
			newMachine("ns", "n", "next", "next-app", "aaaaaaaaaaaaa2"),
		}, "shared.example.com", "next-app/aaaaaaaaaaaaa2", 0, ""},
		{"machine pinning its own app's host is not a conflict", []any{
			newApp("ns", "a", "a-app", hosts("a.example.com")),
			newMachine("ns", "m1", "a", "a-app", "aaaaaaaaaaaaa1", machineHosts("a.example.com")),
			newMachine("ns", "m2", "a", "a-app", "aaaaaaaaaaaaa2"),
		}, "a.example.com", "a-app/aaaaaaaaaaaaa1", 0, ""},
		{"app naming its own subdomain as a host is not a conflict", []any{
			newApp("ns", "a", "a-app", hosts("a.apps.example.net"), subdomain("a")),
			newMachine("ns", "m", "a", "a-app", "aaaaaaaaaaaaa1"),
		}, "a.apps.example.net", "a-app/aaaaaaaaaaaaa1", 0, ""},
		{"hosts compared in canonical form", []any{
			newApp("ns", "old", "old-app", hosts("bücher.example.com")),
			newMachine("ns", "o", "old", "old-app", "aaaaaaaaaaaaa1"),
			newApp("ns", "new", "new-app", hosts("xn--bcher-kva.example.com"), appCreated(time.Hour)),
		}, "xn--bcher-kva.example.com", "old-app/aaaaaaaaaaaaa1", 1, "UserApp ns/new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRouter(t).set(tt.objs...)
			ix := r.table.Load()
			if got := routeOf(ix, tt.host); got != tt.want {
				t.Errorf("%s -> %s, want %s", tt.host, got, tt.want)
			}
			if ix.Conflicts() != tt.wantConflicts {
				t.Errorf("conflicts = %d, want %d", ix.Conflicts(), tt.wantConflicts)
			}
			var reported []Problem
			for _, p := range r.problems {
				if p.Kind == ProblemHostConflict {
					reported = append(reported, p)
				}
			}
			if len(reported) != tt.wantConflicts {
				t.Fatalf("conflict problems = %+v, want %d", reported, tt.wantConflicts)
			}
			if tt.wantConflicts == 1 && (reported[0].Object != tt.loser || reported[0].Host != tt.host) {
				t.Errorf("problem = %+v, want loser %s on %s", reported[0], tt.loser, tt.host)
			}
		})
	}
}

// TestNextClaimantTakesOver: when the owner of a host goes away, the next claimant in age order is
// routed, whatever kind of claim it makes.
func TestNextClaimantTakesOver(t *testing.T) {
	r := newTestRouter(t).set(
		newApp("ns", "first", "first-app", hosts("shared.example.com")),
		newMachine("ns", "f", "first", "first-app", "aaaaaaaaaaaaa1"),
		newApp("ns", "second", "second-app", subdomain("other"), appCreated(2*time.Hour)),
		newMachine("ns", "s", "second", "second-app", "aaaaaaaaaaaaa2", machineHosts("shared.example.com"), machineCreated(time.Hour)),
		newApp("ns", "third", "third-app", hosts("shared.example.com"), appCreated(90*time.Minute)),
		newMachine("ns", "t", "third", "third-app", "aaaaaaaaaaaaa3"),
	)
	steps := []struct {
		name      string
		apply     func()
		want      string
		conflicts int
	}{
		{"all there: the oldest claim", func() {}, "first-app/aaaaaaaaaaaaa1", 2},
		{"first deleted: second's machine", func() { r.builder.DeleteApp(nn("ns", "first")); r.publish() }, "second-app/aaaaaaaaaaaaa2", 1},
		{"second's machine deleted: third", func() { r.builder.DeleteMachine(nn("ns", "s")); r.publish() }, "third-app/aaaaaaaaaaaaa3", 0},
		{"third being deleted: still third, nobody else wants it", func() {
			r.set(newApp("ns", "third", "third-app", hosts("shared.example.com"), appCreated(90*time.Minute), appDeleting()))
		}, "503", 0},
		{"third gone", func() { r.builder.DeleteApp(nn("ns", "third")); r.publish() }, "404", 0},
	}
	for _, s := range steps {
		s.apply()
		if got := routeOf(r.table.Load(), "shared.example.com"); got != s.want {
			t.Errorf("%s: shared -> %s, want %s", s.name, got, s.want)
		}
		if c := r.table.Load().Conflicts(); c != s.conflicts {
			t.Errorf("%s: %d conflicts, want %d", s.name, c, s.conflicts)
		}
	}
}

func TestConflictsAreOrderIndependent(t *testing.T) {
	objs := []any{
		newApp("b", "x", "b-app", hosts("shared.example.com")),
		newApp("a", "x", "a-app", hosts("shared.example.com")),
		newApp("c", "x", "c-app", hosts("shared.example.com"), appCreated(-time.Hour)),
	}
	for _, app := range objs {
		ns := app.(*flyv1alpha1.UserApp).Namespace
		objs = append(objs, newMachine(ns, "m", "x", ns+"-app", "aaaaaaaaaaaaa1"))
	}
	for i := range 6 {
		perm := append([]any(nil), objs...)
		perm[0], perm[i%3] = perm[i%3], perm[0]
		perm[1], perm[2-i%2] = perm[2-i%2], perm[1]
		r := newTestRouter(t).set(perm...)
		if got := routeOf(r.table.Load(), "shared.example.com"); got != "c-app/aaaaaaaaaaaaa1" {
			t.Fatalf("order %d: shared -> %s, want the oldest (c-app)", i, got)
		}
		if c := r.table.Load().Conflicts(); c != 2 {
			t.Fatalf("order %d: %d conflicts, want 2", i, c)
		}
	}
}

func TestProblemsAreReportedOnce(t *testing.T) {
	r := newTestRouter(t).set(
		newApp("ns", "a", "a-app", hosts("shared.example.com")),
		newApp("ns", "b", "b-app", hosts("shared.example.com"), appCreated(time.Hour)),
		newApp("ns", "bad", "Bad_App"),
		newApp("ns", "odd", "odd-app", subdomain("under_score")),
	)
	kinds := map[ProblemKind]int{}
	for _, p := range r.problems {
		kinds[p.Kind]++
	}
	if kinds[ProblemHostConflict] != 1 || kinds[ProblemInvalidStatus] != 1 || kinds[ProblemInvalidHost] != 1 {
		t.Fatalf("first build problems = %+v, want one of each kind", r.problems)
	}
	if r.publish(); len(r.problems) != 0 {
		t.Fatalf("second build re-reported %+v", r.problems)
	}
	r.builder.DeleteApp(nn("ns", "b"))
	r.publish()
	r.set(newApp("ns", "b", "b-app", hosts("shared.example.com"), appCreated(time.Hour)))
	if len(r.problems) != 1 || r.problems[0].Kind != ProblemHostConflict {
		t.Fatalf("a conflict that came back was not reported again: %+v", r.problems)
	}
	if r.table.Load().skipped != 1 {
		t.Errorf("skipped = %d, want 1", r.table.Load().skipped)
	}
}

func TestRebuildKeepsSignaturesAndDropsGoneApps(t *testing.T) {
	r := newTestRouter(t).set(
		newApp("ns", "a", "a-app", hosts("a.example.com")),
		newMachine("ns", "m", "a", "a-app", "aaaaaaaaaaaaa1"),
		newApp("ns", "b", "b-app", hosts("b.example.com")),
	)
	before, _ := resolveHost(r.table.Load(), "a.example.com")
	signed := before.replay.values(testNow)
	r.set(newApp("ns", "c", "c-app", hosts("c.example.com")))
	after, _ := resolveHost(r.table.Load(), "a.example.com")
	if after.replay != before.replay || after.replay.values(testNow) != signed {
		t.Error("a rebuild threw away an unchanged target's signatures")
	}
	r.builder.DeleteApp(nn("ns", "b"))
	r.publish()
	if _, kept := r.builder.built.groups[nn("ns", "b")]; kept {
		t.Error("the derived secrets of a deleted app are still held")
	}
	if g := r.builder.built.groups[nn("ns", "a")]; g == nil || findSecrets(g.secrets, keys.App{FlyApp: "a-app", Generation: 1}) == nil {
		t.Error("derived secrets of a live app were dropped")
	}
}

func TestTokenAuthReachesMachineHosts(t *testing.T) {
	r := newTestRouter(t, withTokens(testVerifier(t))).set(
		newApp("ns", "a", "a-app", hosts("a.example.com"), tokenAuth()),
		newMachine("ns", "m", "a", "a-app", "aaaaaaaaaaaaa1", machineHosts("m.example.com")),
	)
	for _, host := range []string{"a.example.com", "m.example.com"} {
		if rec := r.do(request{host: host}); rec.Code != 401 {
			t.Errorf("%s without a token: %d, want 401", host, rec.Code)
		}
	}
}

func TestNewBuilderChecksConfig(t *testing.T) {
	root := testRoot(t)
	bad := []BuildConfig{
		{},
		{Root: root, BaseDomain: "not a domain"},
		{Root: root, Replay: ReplayOptions{Fallback: "nope"}},
	}
	for _, cfg := range bad {
		if _, err := NewBuilder(cfg); err == nil {
			t.Errorf("NewBuilder(%+v) accepted", cfg)
		}
	}
	b, err := NewBuilder(BuildConfig{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	b.UpsertApp(newApp("ns", "a", "a-app", subdomain("a")))
	if ix, _ := b.Build(); ix.Routes() != 0 {
		t.Errorf("without a base domain a subdomain made %d routes, want 0", ix.Routes())
	}
}
