package managers_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/testenv/managerproc"
)

// TestShardsSplitTheFleet runs two managers, each with its own token, --selector and lease: each
// converges its own shard's users and makes no Fly call about the other's; a UserMachine whose
// UserApp is in the other shard waits, saying so, until it is moved to its app's shard; an object
// in no shard is left alone.
func TestShardsSplitTheFleet(t *testing.T) {
	s := newSuite(t, "shards")
	lt := timings{lease: 4 * time.Second, renew: 3 * time.Second, retry: 500 * time.Millisecond}
	a := startManager(t, "shard-a", s.managerArgs(0, "shard-a.hangar.dev", lt, "--selector", "shard=a"))
	b := startManager(t, "shard-b", s.managerArgs(1, "shard-b.hangar.dev", lt, "--selector", "shard=b"))

	alice := newUser("alice", 2, map[string]string{"shard": "a"})
	bob := newUser("bob", 2, map[string]string{"shard": "b"})
	// carol's UserApp is in shard b, her machine in shard a.
	carol := newUser("carol", 1, map[string]string{"shard": "b"})
	carol.machineLabels = map[string]string{"shard": "a"}
	dave := newUser("dave", 1, nil)
	for _, u := range []*user{alice, bob, carol, dave} {
		s.create(u)
	}
	s.waitConverged(time.Minute, alice, bob)
	s.waitConverged(time.Minute, &user{name: carol.name}) // her UserApp alone

	// Shard a owns carol's machine but not her app: the machine waits and names the selector.
	machine := &flyv1alpha1.UserMachine{}
	var appReady *metaCondition
	err := wait.PollUntilContextTimeout(s.ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: carol.machines[0]}, machine); err != nil {
			return false, err
		}
		appReady = findCondition(machine, flyv1alpha1.AppReadyCondition)
		return appReady != nil, nil
	})
	if err != nil {
		t.Fatalf("UserMachine %s got no AppReady condition: %v", machine.Name, err)
	}
	if appReady.Status != "False" || appReady.Reason != flyv1alpha1.WaitingForAppReason ||
		!strings.Contains(appReady.Message, `"shard=a"`) || !strings.Contains(appReady.Message, "shard") {
		t.Errorf("UserMachine %s AppReady %s %s %q, want False WaitingForApp naming the selector shard=a", machine.Name, appReady.Status, appReady.Reason, appReady.Message)
	}

	// Both shards lead at once, each on its own Lease.
	holderA, holderB := s.holder("shard-a.hangar.dev"), s.holder("shard-b.hangar.dev")
	if holderA == "" || holderB == "" || holderA == holderB {
		t.Errorf("Lease holders %q (shard a) and %q (shard b), want two", holderA, holderB)
	}

	// Every Fly call about a user's app comes from the manager of the user's UserApp's shard, and
	// carol's app got no machine.
	owner := map[string]string{alice.flyApp(s.ns): callers[0], bob.flyApp(s.ns): callers[1], carol.flyApp(s.ns): callers[1]}
	for _, c := range s.calls() {
		app := strings.TrimPrefix(strings.TrimPrefix(c.object, "app "), "machine ")
		app, _, _ = strings.Cut(app, "/")
		if want, ok := owner[app]; !ok || c.caller != want {
			t.Errorf("Fly call about app %q by %s (the app's shard calls as %q): %s", app, c.caller, want, c)
		}
		if app == carol.flyApp(s.ns) && c.action == "create_machine" {
			t.Errorf("a machine was created for carol's app from another shard: %s", c)
		}
	}
	// dave is in no shard: no finalizer, no status, no Fly app.
	for _, obj := range []client.Object{&flyv1alpha1.UserApp{}, &flyv1alpha1.UserMachine{}} {
		name := dave.name
		if _, ok := obj.(*flyv1alpha1.UserMachine); ok {
			name = dave.machines[0]
		}
		if err := env.Client.Get(s.ctx, client.ObjectKey{Namespace: s.ns, Name: name}, obj); err != nil {
			t.Fatal(err)
		}
		if len(obj.GetFinalizers()) > 0 || hasConditions(obj) {
			t.Errorf("%s in no shard was reconciled: finalizers %v", name, obj.GetFinalizers())
		}
	}
	if _, ok := s.sim.App(dave.flyApp(s.ns)); ok {
		t.Errorf("Fly app %s of a UserApp in no shard exists", dave.flyApp(s.ns))
	}

	// Moving carol's machine to her app's shard hands it over: shard b converges it.
	callsBefore := len(s.sim.Calls())
	err = wait.PollUntilContextTimeout(s.ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(machine), machine); err != nil {
			return false, err
		}
		machine.Labels["shard"] = "b"
		err := env.Client.Update(ctx, machine)
		return err == nil, client.IgnoreNotFound(ignoreConflict(err))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.waitConverged(time.Minute, carol)
	for _, c := range s.sim.Calls()[callsBefore:] {
		if c.Caller != "" && c.Caller != callers[1] {
			t.Errorf("after the move, a Fly call not from shard b: %s %s by %s", c.Action, c.Path, c.Caller)
		}
	}
	for _, p := range []*managerproc.Process{a, b} {
		if p.Exited() {
			t.Errorf("manager %s exited: %v", p.Name(), p.Err())
		}
	}
}

// TestShardCacheHoldsOnlyItsShard: a shard's informers list and watch its own UserApps and
// UserMachines alone, so a manager's memory follows its shard, not the fleet.
func TestShardCacheHoldsOnlyItsShard(t *testing.T) {
	s := newSuite(t, "shard-cache")
	for _, u := range []*user{newUser("in", 1, map[string]string{"shard": "a"}), newUser("out", 1, map[string]string{"shard": "b"}), newUser("none", 1, nil)} {
		s.create(u)
	}
	shard, err := labels.Parse("shard=a")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(env.Config, cacheOptions(controllers.ShardCacheOptions(s.ns, shard)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the cache did not start")
	}
	var apps flyv1alpha1.UserAppList
	var machines flyv1alpha1.UserMachineList
	if err := c.List(ctx, &apps); err != nil {
		t.Fatal(err)
	}
	if err := c.List(ctx, &machines); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range apps.Items {
		names = append(names, a.Name)
	}
	for _, m := range machines.Items {
		names = append(names, m.Name)
	}
	if want := []string{"in", "in-ws0"}; !slices.Equal(names, want) {
		t.Errorf("the shard's cache holds %v, want %v", names, want)
	}
}

// cacheOptions completes the manager's cache options as the manager does (scheme, mapper).
func cacheOptions(opts cache.Options) cache.Options {
	opts.Scheme = env.Scheme
	return opts
}

// metaCondition is a condition as the tests read it.
type metaCondition struct{ Status, Reason, Message string }

func findCondition(um *flyv1alpha1.UserMachine, condition string) *metaCondition {
	c := meta.FindStatusCondition(um.Status.Conditions, condition)
	if c == nil {
		return nil
	}
	return &metaCondition{Status: string(c.Status), Reason: c.Reason, Message: c.Message}
}

func hasConditions(obj client.Object) bool {
	switch o := obj.(type) {
	case *flyv1alpha1.UserApp:
		return len(o.Status.Conditions) > 0
	case *flyv1alpha1.UserMachine:
		return len(o.Status.Conditions) > 0
	}
	return false
}

func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}
