package controllers_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/pkg/replayauth"
)

// newPool is a pool of one-machine users.
func newPool(name string, replicas int32) *flyv1alpha1.UserAppPool {
	return &flyv1alpha1.UserAppPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: flyv1alpha1.UserAppPoolSpec{
			Replicas: replicas,
			Template: flyv1alpha1.UserAppTemplate{
				AllocatePrivateIP: true,
				Machines: []flyv1alpha1.MachineTemplate{{Name: "ws", Spec: flyv1alpha1.MachineTemplateSpec{
					Region: "ams", Image: "registry.fly.io/workspace:v1",
					Guest: &flyv1alpha1.Guest{CPUKind: flyv1alpha1.CPUKindShared, CPUs: 1, MemoryMB: 512},
				}}},
			},
		},
	}
}

// newClaim is a claim on pool with a host and one secret. Hosts are global across namespaces, so
// the host names the namespace too: tests running on the same apiserver must not claim each other's.
func newClaim(name, ns, pool string) *flyv1alpha1.UserAppClaim {
	return &flyv1alpha1.UserAppClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: flyv1alpha1.UserAppClaimSpec{
			PoolRef: flyv1alpha1.PoolReference{Name: pool},
			Routing: &flyv1alpha1.AppRouting{Hosts: []string{claimHost(name, ns)}},
			Secrets: []flyv1alpha1.AppSecret{{Name: "UPSTREAM_KEY", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: name + "-creds", Key: "key"}}},
		},
	}
}

// claimHost is the host newClaim routes.
func claimHost(name, ns string) string { return name + "." + ns + ".example.com" }

// claimWithSecret creates the claim's Secret and the claim.
func (h *harness) claimWithSecret(name, pool, value string) *flyv1alpha1.UserAppClaim {
	h.t.Helper()
	h.sharedSecret(name+"-creds", value)
	claim := newClaim(name, h.ns, pool)
	h.create(claim)
	return claim
}

// poolUsers lists the UserApps made for pool, split into unclaimed and claimed.
func (h *harness) poolUsers(pool string) (unclaimed, claimed []flyv1alpha1.UserApp) {
	h.t.Helper()
	var apps flyv1alpha1.UserAppList
	if err := env.Client.List(context.Background(), &apps, client.InNamespace(h.ns), client.MatchingLabels{flyv1alpha1.PoolLabel: pool}); err != nil {
		h.t.Fatal(err)
	}
	for _, a := range apps.Items {
		if !a.DeletionTimestamp.IsZero() {
			continue
		}
		if a.Labels[flyv1alpha1.ClaimedByLabel] == "" {
			unclaimed = append(unclaimed, a)
		} else {
			claimed = append(claimed, a)
		}
	}
	return unclaimed, claimed
}

// machinesOf lists the UserMachines of a UserApp.
func (h *harness) machinesOf(app string) []flyv1alpha1.UserMachine {
	h.t.Helper()
	var list flyv1alpha1.UserMachineList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(h.ns)); err != nil {
		h.t.Fatal(err)
	}
	return slices.DeleteFunc(list.Items, func(um flyv1alpha1.UserMachine) bool { return um.Spec.AppRef.Name != app })
}

// poolFull waits until pool is Ready with want ready unclaimed users.
func (h *harness) poolFull(pool *flyv1alpha1.UserAppPool, want int32) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("pool %s full with %d ready users", pool.Name, want), func() string {
		h.get(pool)
		st := pool.Status
		if !meta.IsStatusConditionTrue(st.Conditions, flyv1alpha1.ReadyCondition) || st.ObservedGeneration != pool.Generation ||
			st.ReadyReplicas != want || st.Replicas != want {
			return fmt.Sprintf("replicas %d, ready %d, conditions %v", st.Replicas, st.ReadyReplicas, st.Conditions)
		}
		return ""
	})
}

// TestPoolFillsAndAClaimBindsAPooledUser: a pool of two fills with users whose machines booted
// once and wait stopped; a claim takes the oldest without creating a Fly app, its routing and
// secrets become the user's, the app's keys are rotated without overlap (the pool-time replay key
// and management token are refused by the machine and gone from Fly and the connection Secret),
// the machine starts, and the pool refills.
func TestPoolFillsAndAClaimBindsAPooledUser(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	pool := newPool("ws", 2)
	h.create(pool)
	h.poolFull(pool, 2)
	unclaimed, _ := h.poolUsers("ws")
	if len(unclaimed) != 2 {
		t.Fatalf("pool holds %d users, want 2", len(unclaimed))
	}
	slices.SortFunc(unclaimed, func(a, b flyv1alpha1.UserApp) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	for _, app := range unclaimed {
		ms := h.machinesOf(app.Name)
		if len(ms) != 1 || ms[0].Status.State != "stopped" || ms[0].Spec.PowerState != flyv1alpha1.PowerStateStopped {
			t.Fatalf("pooled user %s: machines %+v, want one stopped", app.Name, ms)
		}
	}
	if n := len(callsOf(h.sim.Calls(), "start_machine")); n > 0 {
		t.Errorf("%d start calls while filling: pooled machines boot from their create only", n)
	}
	oldest := unclaimed[0]
	poolTime := keys.App{FlyApp: oldest.Status.AppName, Owner: string(oldest.UID), Generation: oldest.Status.KeyGeneration}
	appsBefore := len(callsOf(h.sim.Calls(), "create_app"))

	claim := h.claimWithSecret("carol", "ws", "carol-secret")
	h.ready(claim)
	h.get(claim)
	if claim.Status.Source != flyv1alpha1.ClaimSourcePool || claim.Status.UserAppName != oldest.Name || claim.Status.AppName != oldest.Status.AppName {
		t.Fatalf("claim status %+v, want the oldest pooled user %s (Fly app %s) from the pool", claim.Status, oldest.Name, oldest.Status.AppName)
	}
	if c := findCondition(claim.Status.Conditions, flyv1alpha1.BoundCondition); c.Reason != flyv1alpha1.ClaimedReason {
		t.Errorf("Bound reason %s, want %s", c.Reason, flyv1alpha1.ClaimedReason)
	}
	app := &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: oldest.Name, Namespace: h.ns}}
	h.get(app)
	if owner := metav1.GetControllerOf(app); owner == nil || owner.UID != claim.UID {
		t.Errorf("the bound UserApp's controller is %+v, want the claim", owner)
	}
	if app.Spec.Routing == nil || !slices.Equal(app.Spec.Routing.Hosts, []string{claimHost("carol", h.ns)}) || len(app.Spec.Secrets) != 1 {
		t.Errorf("the bound UserApp's spec does not hold the claim's routing and secrets: %+v", app.Spec)
	}

	values, _ := h.sim.Secrets(app.Status.AppName)
	current := keys.App{FlyApp: app.Status.AppName, Owner: string(app.UID), Generation: app.Status.KeyGeneration}
	switch {
	case values["UPSTREAM_KEY"] != "carol-secret":
		t.Error("Fly does not hold the claim's secret")
	case app.Status.KeyGeneration <= poolTime.Generation || app.Status.PreviousKeysValidUntil != nil:
		t.Errorf("keys: generation %d (pool time %d), previous valid until %v: want a new generation with no overlap",
			app.Status.KeyGeneration, poolTime.Generation, app.Status.PreviousKeysValidUntil)
	case values[keys.ManagementTokenSecret] != h.root.ManagementToken(current):
		t.Error("Fly does not hold the new management token")
	}
	for _, name := range []string{keys.PreviousManagementTokenSecret, keys.PreviousReplayKeySecret} {
		if _, ok := values[name]; ok {
			t.Errorf("Fly still holds %s after binding", name)
		}
	}
	if string(h.connectionToken(app)) != h.root.ManagementToken(current) {
		t.Error("the connection Secret does not hold the new management token")
	}

	// The machine runs the new secrets, started, and refuses a replay signed with the pool-time key.
	um := h.machinesOf(app.Name)[0]
	if um.Status.State != "started" {
		t.Fatalf("claimed machine is %s, want started", um.Status.State)
	}
	boot, ok := h.sim.MachineBoot(app.Status.AppName, um.Status.MachineID)
	if !ok {
		t.Fatal("claimed machine not found on Fly")
	}
	if boot.Secrets["UPSTREAM_KEY"] != "carol-secret" || boot.Secrets[keys.ManagementTokenSecret] != h.root.ManagementToken(current) {
		t.Error("the claimed machine did not boot with the claim's secret and the new token")
	}
	key, err := keys.DecodeReplayKey(boot.Secrets[keys.ReplayKeySecret])
	if err != nil {
		t.Fatal(err)
	}
	var previous []byte
	if raw := boot.Secrets[keys.PreviousReplayKeySecret]; raw != "" {
		previous, _ = keys.DecodeReplayKey(raw)
	}
	cfg := replayauth.Config{Key: key, PreviousKey: previous, App: app.Status.AppName, MachineID: um.Status.MachineID}
	replay := func(k []byte) error {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set(replayauth.HeaderSource, "state="+replayauth.Sign(k, app.Status.AppName, um.Status.MachineID, time.Now().Add(time.Minute)))
		return cfg.Verify(req)
	}
	if err := replay(h.root.ReplayKey(current)); err != nil {
		t.Errorf("the machine refuses a replay signed with the new key: %v", err)
	}
	if err := replay(h.root.ReplayKey(poolTime)); err == nil {
		t.Error("the machine accepts a replay signed with the pool-time key")
	}

	// The claim made no Fly app: every app created since belongs to the refill.
	h.poolFull(pool, 2)
	h.get(pool)
	if pool.Status.Claimed != 1 {
		t.Errorf("pool status claimed %d, want 1", pool.Status.Claimed)
	}
	refill, _ := h.poolUsers("ws")
	created := callsOf(h.sim.Calls(), "create_app")[appsBefore:]
	for _, c := range created {
		if c.App == app.Status.AppName {
			t.Errorf("a Fly app was created for the claim (%s)", c.App)
		}
		if !slices.ContainsFunc(refill, func(a flyv1alpha1.UserApp) bool { return a.Status.AppName == c.App }) {
			t.Errorf("Fly app %s created after the claim is not a pooled user's", c.App)
		}
	}
	if len(created) != 1 {
		t.Errorf("%d Fly apps created after the claim, want 1 (the refill)", len(created))
	}
	if h.eventCount(claim.Name, "Bound") != 1 {
		t.Errorf("claim Events %v, want one Bound", h.events(claim.Name))
	}
}

// TestPoolChangesTouchUnclaimedUsersOnly: scaling down removes unclaimed users only, and a template
// change replaces the unclaimed users with users of the new template, one at a time, while the
// claimed user keeps its image and its place.
func TestPoolChangesTouchUnclaimedUsersOnly(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	pool := newPool("scale", 3)
	h.create(pool)
	h.poolFull(pool, 3)
	claim := h.claimWithSecret("dave", "scale", "dave-secret")
	h.ready(claim)
	h.get(claim)
	h.poolFull(pool, 3)

	h.update(pool, func() { pool.Spec.Replicas = 2 })
	h.poolFull(pool, 2)
	unclaimed, claimed := h.poolUsers("scale")
	if len(unclaimed) != 2 || len(claimed) != 1 || claimed[0].Name != claim.Status.UserAppName {
		t.Fatalf("after scale-down: %d unclaimed, claimed %v; want 2 unclaimed and the claim's user", len(unclaimed), names(claimed))
	}

	h.get(pool)
	oldHash := pool.Status.TemplateHash
	h.update(pool, func() { pool.Spec.Template.Machines[0].Spec.Image = "registry.fly.io/workspace:v2" })
	most := 0
	h.eventually("the unclaimed users replaced by users of the new template", func() string {
		h.get(pool)
		unclaimed, _ := h.poolUsers("scale")
		// One at a time: one new user beside the two the pool holds, never more.
		most = max(most, len(unclaimed))
		fresh := 0
		for _, u := range unclaimed {
			if u.Labels[flyv1alpha1.TemplateHashLabel] == pool.Status.TemplateHash {
				fresh++
			}
		}
		if pool.Status.TemplateHash == oldHash || len(unclaimed) != 2 || fresh != 2 ||
			!meta.IsStatusConditionTrue(pool.Status.Conditions, flyv1alpha1.ReadyCondition) || pool.Status.ObservedGeneration != pool.Generation {
			return fmt.Sprintf("%d unclaimed (%d new), hash %s, conditions %v", len(unclaimed), fresh, pool.Status.TemplateHash, pool.Status.Conditions)
		}
		return ""
	})
	if most > 3 {
		t.Errorf("the pool held %d unclaimed users during the replacement, want at most 3 (one at a time)", most)
	}
	unclaimed, _ = h.poolUsers("scale")
	for _, u := range unclaimed {
		if ms := h.machinesOf(u.Name); len(ms) != 1 || ms[0].Spec.Image != "registry.fly.io/workspace:v2" {
			t.Errorf("the new pooled user %s's machines: %+v", u.Name, ms)
		}
	}
	for _, um := range h.machinesOf(claim.Status.UserAppName) {
		if um.Spec.Image != "registry.fly.io/workspace:v1" || um.Status.State != "started" {
			t.Errorf("claimed machine %s: image %s, state %s; the template change must not touch it", um.Name, um.Spec.Image, um.Status.State)
		}
	}
	if h.eventCount(pool.Name, "UserReplaced") != 2 || h.eventCount(pool.Name, "ScaledDown") != 1 {
		t.Errorf("pool Events %v, want two UserReplaced and one ScaledDown", h.events(pool.Name))
	}
	h.ready(claim)
}

// TestSuspendedPool: a pool with warmState Suspended keeps its machines suspended after their
// first boot, and a claim resumes them.
func TestSuspendedPool(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	pool := newPool("susp", 1)
	pool.Spec.WarmState = flyv1alpha1.WarmStateSuspended
	h.create(pool)
	h.poolFull(pool, 1)
	unclaimed, _ := h.poolUsers("susp")
	ms := h.machinesOf(unclaimed[0].Name)
	if len(ms) != 1 || ms[0].Status.State != "suspended" || ms[0].Spec.PowerState != flyv1alpha1.PowerStateSuspended {
		t.Fatalf("pooled machines %+v, want one suspended", ms)
	}
	claim := h.claimWithSecret("jan", "susp", "j")
	h.ready(claim)
	if ms := h.machinesOf(unclaimed[0].Name); ms[0].Status.State != "started" || ms[0].Spec.PowerState != flyv1alpha1.PowerStateStarted {
		t.Errorf("claimed machine %s is %s (powerState %s), want started", ms[0].Name, ms[0].Status.State, ms[0].Spec.PowerState)
	}
}

func names(apps []flyv1alpha1.UserApp) []string {
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = a.Name
	}
	return out
}

// TestEmptyPoolColdStarts: a claim on a pool with no ready user creates one from the template,
// says so in its Bound condition, and runs.
func TestEmptyPoolColdStarts(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	pool := newPool("empty", 0)
	h.create(pool)
	h.poolFull(pool, 0)
	claim := h.claimWithSecret("erin", "empty", "erin-secret")
	c := h.condition(claim, flyv1alpha1.BoundCondition, metav1.ConditionTrue, flyv1alpha1.ColdStartReason)
	if c.Message == "" || !strings.Contains(c.Message, "pool empty: created one (cold start)") {
		t.Errorf("Bound message %q", c.Message)
	}
	h.ready(claim)
	h.get(claim)
	if claim.Status.Source != flyv1alpha1.ClaimSourceColdStart || claim.Status.AppName == "" {
		t.Errorf("claim status %+v", claim.Status)
	}
	values, _ := h.sim.Secrets(claim.Status.AppName)
	if values["UPSTREAM_KEY"] != "erin-secret" {
		t.Error("the cold-started app does not hold the claim's secret")
	}
	if h.eventCount(claim.Name, "ColdStart") != 1 {
		t.Errorf("claim Events %v, want one ColdStart", h.events(claim.Name))
	}
}

// TestClaimsRaceForOnePooledUser: two claims made at once on a pool holding one ready user: one
// binds it, the other gets another user; no user is bound twice.
func TestClaimsRaceForOnePooledUser(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	pool := newPool("race", 1)
	h.create(pool)
	h.poolFull(pool, 1)
	unclaimed, _ := h.poolUsers("race")
	a := h.claimWithSecret("fay", "race", "a")
	b := h.claimWithSecret("gus", "race", "b")
	h.ready(a)
	h.ready(b)
	h.get(a)
	h.get(b)
	if a.Status.UserAppName == b.Status.UserAppName || a.Status.AppName == b.Status.AppName {
		t.Fatalf("both claims hold user %s", a.Status.UserAppName)
	}
	fromPool := 0
	for _, c := range []*flyv1alpha1.UserAppClaim{a, b} {
		if c.Status.Source == flyv1alpha1.ClaimSourcePool {
			fromPool++
			if c.Status.UserAppName != unclaimed[0].Name {
				t.Errorf("claim %s took %s from the pool, which held only %s", c.Name, c.Status.UserAppName, unclaimed[0].Name)
			}
		}
	}
	if fromPool != 1 {
		t.Errorf("%d claims took the pool's one user, want exactly 1", fromPool)
	}
	_, claimed := h.poolUsers("race")
	if len(claimed) != 2 {
		t.Errorf("claimed users %v, want two", names(claimed))
	}
}

// TestDeletingClaimsAndPools: deleting a claim deletes its user and Fly app; deleting a pool deletes
// its unclaimed users and leaves claimed ones running.
func TestDeletingClaimsAndPools(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	pool := newPool("del", 2)
	h.create(pool)
	h.poolFull(pool, 2)
	gone := h.claimWithSecret("hal", "del", "h")
	kept := h.claimWithSecret("ivy", "del", "i")
	h.ready(gone)
	h.ready(kept)
	h.get(gone)
	h.get(kept)
	h.poolFull(pool, 2)
	unclaimed, _ := h.poolUsers("del")

	if err := env.Client.Delete(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	h.gone(gone)
	h.gone(&flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: gone.Status.UserAppName, Namespace: h.ns}})
	h.eventually("the deleted claim's Fly app deleted", func() string {
		if info, ok := h.sim.App(gone.Status.AppName); ok && !info.Deleted {
			return "Fly app " + gone.Status.AppName + " still there"
		}
		return ""
	})

	if err := env.Client.Delete(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	h.gone(pool)
	for _, u := range unclaimed {
		if info, ok := h.sim.App(u.Status.AppName); ok && !info.Deleted {
			t.Errorf("unclaimed user %s's Fly app %s left after the pool was deleted", u.Name, u.Status.AppName)
		}
		h.gone(&flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: u.Name, Namespace: h.ns}})
	}
	keptApp := &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: kept.Status.UserAppName, Namespace: h.ns}}
	h.ready(keptApp)
	if info, ok := h.sim.App(kept.Status.AppName); !ok || info.Deleted {
		t.Error("deleting the pool deleted a claimed user's Fly app")
	}
	h.ready(kept)
}
