package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/keys"
)

// An app made outside hangar, released to a UserApp on Fly, is observed with its machine: status
// and conditions report it, and nothing is written to Fly, not even when the objects are deleted.
func TestObserveOnlyReadsAndReportsButNeverWrites(t *testing.T) {
	h := newHarness(t, harnessOptions{driftInterval: time.Second})
	ctx := context.Background()
	fly, err := flyapi.New(flyapi.Options{BaseURL: h.flyURL, Token: flyapi.StaticToken(testToken)})
	if err != nil {
		t.Fatal(err)
	}
	const flyApp = "olga-made-by-hand"
	createForeignApp(t, h, testToken, flyApp)
	h.eventually("the app readable", func() string { // Fly creates apps asynchronously
		if _, err := fly.GetApp(ctx, flyApp); err != nil {
			return err.Error()
		}
		return ""
	})
	m, err := fly.CreateMachine(ctx, flyApp, flyapi.CreateMachineRequest{Region: "ams", Config: flyapi.MachineConfig{Image: "registry.fly.io/olga:v1"}})
	if err != nil {
		t.Fatal(err)
	}

	app := newApp("olga")
	app.Spec.AppName, app.Spec.ManagementPolicy = flyApp, flyv1alpha1.ManagementPolicyObserveOnly
	h.create(app)
	// Not released to this UserApp: refused, and nothing of the app reaches the status.
	c := h.condition(app, flyv1alpha1.ReadyCondition, metav1.ConditionFalse, flyv1alpha1.NameTakenReason)
	release := keys.ReleaseMarker(h.ns, "olga")
	if !strings.Contains(c.Message, release) {
		t.Fatalf("the refusal does not say how to release the app: %q", c.Message)
	}
	if app.Status.AppID != "" || app.Status.Network != "" {
		t.Fatalf("a refused observation recorded the app: %+v", app.Status)
	}
	if _, err := fly.SetSecrets(ctx, flyApp, map[string]string{release: "ops"}); err != nil {
		t.Fatal(err)
	}
	h.sim.ResetCalls()
	h.update(app, func() { app.Annotations = map[string]string{"retry": "now"} })
	h.ready(app)
	for _, cond := range []string{flyv1alpha1.AppCreatedCondition, flyv1alpha1.SecretsSyncedCondition,
		flyv1alpha1.PrivateIPReadyCondition, flyv1alpha1.ConnectionSecretReadyCondition} {
		h.condition(app, cond, metav1.ConditionTrue, flyv1alpha1.ObservedReason)
	}
	if app.Status.AppName != flyApp || app.Status.AppID == "" || app.Status.ConnectionSecretName != "" {
		t.Fatalf("observed app status %+v", app.Status)
	}

	um := newMachine("olga-ws", "olga")
	um.Spec.ManagementPolicy, um.Spec.MachineID = flyv1alpha1.ManagementPolicyObserveOnly, m.ID
	um.Spec.Image = "registry.fly.io/olga:v2" // not what runs: reported, never applied
	h.create(um)
	h.settled(um, "started")
	h.condition(um, flyv1alpha1.MachineCreatedCondition, metav1.ConditionTrue, flyv1alpha1.ObservedReason)
	h.condition(um, flyv1alpha1.ConfigSyncedCondition, metav1.ConditionTrue, flyv1alpha1.ObservedReason)
	if um.Status.MachineID != m.ID || um.Status.Region != "ams" {
		t.Fatalf("observed machine status %+v", um.Status)
	}
	if h.eventCount("olga-ws", "Observed") != 1 || h.eventCount("olga", "Observed") != 1 {
		t.Errorf("events: %v / %v", h.events("olga-ws"), h.events("olga"))
	}

	// Someone stops the machine: the next drift read reports it.
	if err := fly.StopMachine(ctx, flyApp, m.ID, flyapi.StopOptions{}, ""); err != nil {
		t.Fatal(err)
	}
	h.settled(um, "stopped")
	stopCalls := len(callsOf(h.sim.Calls(), "stop_machine"))

	// A UserMachine that would have hangar make a machine in the observed app waits instead.
	full := newMachine("olga-extra", "olga")
	h.create(full)
	c = h.condition(full, flyv1alpha1.AppReadyCondition, metav1.ConditionFalse, flyv1alpha1.WaitingForAppReason)
	if !strings.Contains(c.Message, "ObserveOnly") {
		t.Errorf("AppReady message %q does not say why", c.Message)
	}

	for _, del := range []func() error{
		func() error { return env.Client.Delete(ctx, full) },
		func() error { return env.Client.Delete(ctx, um) },
		func() error { return env.Client.Delete(ctx, app) },
	} {
		if err := del(); err != nil {
			t.Fatal(err)
		}
	}
	h.gone(full)
	h.gone(um)
	h.gone(app)
	if n := writes(h.sim.Calls()) - stopCalls; n != 0 {
		t.Fatalf("%d Fly writes for observed objects: %v", n, h.sim.Calls())
	}
	if _, ok := h.sim.App(flyApp); !ok {
		t.Fatal("the observed app was deleted with its UserApp")
	}
	if got, _ := h.sim.Machine(flyApp, m.ID); got.State == "destroyed" {
		t.Fatal("the observed machine was destroyed with its UserMachine")
	}
}

// Observing is a read, so another tenant's app cannot be observed: its name is refused before any
// of it is recorded. A hangar-managed user switched to ObserveOnly stops being written, and back to
// Full catches up.
func TestObserveOnlyNeverReachesAnotherTenantsAppAndCanBeLifted(t *testing.T) {
	h := newHarness(t, harnessOptions{driftInterval: time.Second})
	owner, um := h.readyUser("pia")

	peeker := newApp("quinn")
	peeker.Spec.AppName, peeker.Spec.ManagementPolicy = owner.Status.AppName, flyv1alpha1.ManagementPolicyObserveOnly
	peeker.Spec.Routing = nil
	h.create(peeker)
	h.condition(peeker, flyv1alpha1.ReadyCondition, metav1.ConditionFalse, flyv1alpha1.NameTakenReason)
	if peeker.Status.AppID != "" || peeker.Status.Network != "" || peeker.Status.PrivateIP != "" {
		t.Fatalf("another tenant's app reached the status: %+v", peeker.Status)
	}

	// pia's own objects go ObserveOnly: a new image is not applied.
	h.update(owner, func() { owner.Spec.ManagementPolicy = flyv1alpha1.ManagementPolicyObserveOnly })
	h.condition(owner, flyv1alpha1.AppCreatedCondition, metav1.ConditionTrue, flyv1alpha1.ObservedReason)
	h.update(um, func() {
		um.Spec.ManagementPolicy = flyv1alpha1.ManagementPolicyObserveOnly
		um.Spec.Image = "registry.fly.io/workspace:v2"
	})
	h.condition(um, flyv1alpha1.ConfigSyncedCondition, metav1.ConditionTrue, flyv1alpha1.ObservedReason)
	if n := len(callsOf(h.sim.Calls(), "update_machine")); n != 0 {
		t.Fatalf("%d machine updates under ObserveOnly", n)
	}

	// Back to Full: the image change is applied.
	h.update(owner, func() { owner.Spec.ManagementPolicy = flyv1alpha1.ManagementPolicyFull })
	h.update(um, func() { um.Spec.ManagementPolicy = flyv1alpha1.ManagementPolicyFull })
	h.eventually("the new image applied", func() string {
		h.get(um)
		got, _ := h.sim.Machine(owner.Status.AppName, um.Status.MachineID)
		if !strings.Contains(string(got.Config), "workspace:v2") {
			return "machine config " + string(got.Config)
		}
		return ""
	})
	h.condition(um, flyv1alpha1.ConfigSyncedCondition, metav1.ConditionTrue, flyv1alpha1.ReadyReason)
}
