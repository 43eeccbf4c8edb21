package controllers_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/router"
)

// TestHostConflictBetweenApps: of two UserApps claiming one host, the younger is told (HostsAccepted
// False, reason HostConflict naming the owner, a Warning Event) while its Fly work goes on; a
// tenant in another namespace is told only that the owner is elsewhere; when the owner is deleted
// the next claimant takes the host over, through the host watches alone. The router, built from
// the same objects, agrees at each step.
func TestHostConflictBetweenApps(t *testing.T) {
	// A long drift interval: a loser's retry comes only with its drift check, so getting the host
	// after the owner's deletion proves the watches brought it back.
	h := newHarness(t, harnessOptions{tenants: 1, driftInterval: 30 * time.Minute})
	const shared = "shared." + testBaseDomain
	old := newApp("old")
	old.Spec.Routing.Hosts = []string{"old.example.com", shared}
	h.create(old)
	h.ready(old)
	h.condition(old, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionTrue, "")
	h.nextSecond(old)

	// The younger claim names the host through its subdomain: exact hosts and subdomains weigh the
	// same, only age counts.
	young := newApp("young")
	young.Spec.Routing.Hosts = []string{"young.example.com"}
	young.Spec.Routing.Subdomain = "shared"
	h.create(young)
	c := h.condition(young, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionFalse, flyv1alpha1.HostConflictReason)
	if !strings.Contains(c.Message, shared+" (UserApp "+h.ns+"/old)") || strings.Contains(c.Message, "young.example.com") {
		t.Errorf("HostsAccepted message %q should name %s and its owner old, and only that host", c.Message, shared)
	}
	h.condition(young, flyv1alpha1.ReadyCondition, metav1.ConditionFalse, flyv1alpha1.HostConflictReason)
	// The conflict does not hold up the Fly work: every phase before HostsAccepted is done.
	for _, cond := range []string{flyv1alpha1.AppCreatedCondition, flyv1alpha1.SecretsSyncedCondition, flyv1alpha1.ConnectionSecretReadyCondition} {
		h.condition(young, cond, metav1.ConditionTrue, "")
	}
	h.eventually("a HostConflict Warning on young", func() string {
		if notes := h.events("young")[flyv1alpha1.HostConflictReason]; len(notes) != 1 || !strings.Contains(notes[0], shared) {
			return "HostConflict events: " + strings.Join(notes, " | ")
		}
		return ""
	})
	h.condition(old, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionTrue, "")
	if got := h.routerLosers(old, young); !slices.Equal(got, []string{"UserApp " + h.ns + "/young " + shared}) {
		t.Errorf("router losers = %q, want young on %s", got, shared)
	}

	// Another tenant's claim: refused too, without learning whose host it is.
	h.nextSecond(young)
	other := newApp("other")
	other.Namespace = h.tenants[0]
	other.Spec.Routing.Hosts = []string{shared}
	h.create(other)
	c = h.condition(other, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionFalse, flyv1alpha1.HostConflictReason)
	if !strings.Contains(c.Message, shared+" (a UserApp in another namespace)") || strings.Contains(c.Message, h.ns) {
		t.Errorf("another tenant's message %q should say only that the owner is in another namespace", c.Message)
	}

	// The owner goes away: the next claimant (young, older than other) takes the host over.
	if err := env.Client.Delete(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	h.condition(young, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionTrue, "")
	h.ready(young)
	h.eventually("a HostsAccepted Event on young", func() string {
		if n := h.eventCount("young", controllers.EventHostsAccepted); n != 1 {
			return "HostsAccepted events: " + strings.Join(h.events("young")[controllers.EventHostsAccepted], " | ")
		}
		return ""
	})
	h.gone(old)
	h.condition(other, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionFalse, flyv1alpha1.HostConflictReason)
	if got := h.routerLosers(young, other); !slices.Equal(got, []string{"UserApp " + other.Namespace + "/other " + shared}) {
		t.Errorf("router losers after old is gone = %q, want only other on %s", got, shared)
	}
	if n := h.eventCount("young", flyv1alpha1.HostConflictReason); n != 1 {
		t.Errorf("%d HostConflict Warnings on young, want 1 (an Event per transition)", n)
	}
}

// TestMachineCannotTakeAnotherAppsHost: a UserMachine naming a host its own UserApp does not own
// is refused like a UserApp would be (the machine is still created); a machine naming its own app's
// host refines it; dropping the host ends the conflict.
func TestMachineCannotTakeAnotherAppsHost(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := newApp("alice")
	h.create(alice)
	pinned := newMachine("alice-pinned", "alice")
	pinned.Spec.Routing = &flyv1alpha1.MachineRouting{Hosts: []string{"alice.example.com"}}
	h.create(pinned)
	h.ready(alice)
	h.nextSecond(pinned)

	mallory := newApp("mallory")
	h.create(mallory)
	thief := newMachine("mallory-ws", "mallory")
	thief.Spec.Routing = &flyv1alpha1.MachineRouting{Hosts: []string{"alice.example.com", "mallory-ws.example.com"}}
	h.create(thief)
	c := h.condition(thief, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionFalse, flyv1alpha1.HostConflictReason)
	if !strings.Contains(c.Message, "alice.example.com (UserApp "+h.ns+"/alice)") || strings.Contains(c.Message, "mallory-ws.example.com") {
		t.Errorf("HostsAccepted message %q should name alice.example.com and its owner", c.Message)
	}
	h.condition(thief, flyv1alpha1.MachineCreatedCondition, metav1.ConditionTrue, "")
	h.condition(thief, flyv1alpha1.ReadyCondition, metav1.ConditionFalse, flyv1alpha1.HostConflictReason)
	h.eventually("a HostConflict Warning on the machine", func() string {
		if n := h.eventCount(thief.Name, flyv1alpha1.HostConflictReason); n != 1 {
			return "HostConflict events: " + strings.Join(h.events(thief.Name)[flyv1alpha1.HostConflictReason], " | ")
		}
		return ""
	})
	// alice's own machine pins her host: a refinement, not a conflict.
	h.condition(pinned, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionTrue, "")
	h.ready(pinned)
	h.condition(alice, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionTrue, "")
	h.condition(mallory, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionTrue, "")
	if got := h.routerLosers(alice, pinned, mallory, thief); !slices.Equal(got, []string{"UserMachine " + h.ns + "/mallory-ws alice.example.com"}) {
		t.Errorf("router losers = %q, want only the thief", got)
	}

	h.update(thief, func() { thief.Spec.Routing.Hosts = []string{"mallory-ws.example.com"} })
	h.condition(thief, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionTrue, "")
	h.ready(thief)
	h.eventually("a HostsAccepted Event on the machine", func() string {
		if n := h.eventCount(thief.Name, controllers.EventHostsAccepted); n != 1 {
			return "no HostsAccepted event yet"
		}
		return ""
	})
}

// TestInvalidHostIsReported: a host the CRD admits but that is no DNS name (a label over 63
// characters) is never routed, and the object says so.
func TestInvalidHostIsReported(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	app := newApp("long")
	long := strings.Repeat("a", 64) + ".example.com"
	app.Spec.Routing.Hosts = []string{long}
	app.Namespace = h.ns
	if err := env.Client.Create(context.Background(), app); apierrors.IsInvalid(err) {
		t.Skipf("admission refuses the host already: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	c := h.condition(app, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionFalse, flyv1alpha1.InvalidHostReason)
	if !strings.Contains(c.Message, long) {
		t.Errorf("message %q does not name the host", c.Message)
	}
	h.condition(app, flyv1alpha1.ConnectionSecretReadyCondition, metav1.ConditionTrue, "")
}

// nextSecond waits until an object created now is younger than obj: creation times have whole
// seconds, and two objects of the same second are ordered by UID.
func (h *harness) nextSecond(obj client.Object) {
	h.t.Helper()
	h.get(obj)
	time.Sleep(time.Until(obj.GetCreationTimestamp().Add(time.Second + 50*time.Millisecond)))
}

// routerLosers builds the router's index from the objects as the apiserver has them and returns
// its host conflicts as "<object> <host>", sorted: the router decides by the rule the manager
// reports.
func (h *harness) routerLosers(objs ...client.Object) []string {
	h.t.Helper()
	b, err := router.NewBuilder(router.BuildConfig{BaseDomain: testBaseDomain, Root: h.root})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, obj := range objs {
		fresh := obj.DeepCopyObject().(client.Object)
		h.get(fresh)
		switch o := fresh.(type) {
		case *flyv1alpha1.UserApp:
			b.UpsertApp(o)
		case *flyv1alpha1.UserMachine:
			b.UpsertMachine(o)
		}
	}
	_, problems := b.Build()
	var out []string
	for _, p := range problems {
		if p.Kind == router.ProblemHostConflict {
			out = append(out, p.Object+" "+p.Host)
		}
	}
	slices.Sort(out)
	return out
}
