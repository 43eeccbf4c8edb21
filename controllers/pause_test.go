package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
)

func TestPausedMachineIsObservedButNeverWritten(t *testing.T) {
	h := newHarness(t, harnessOptions{driftInterval: time.Second})
	app, um := h.readyUser("paula")
	h.update(um, func() { um.Annotations = map[string]string{flyv1alpha1.PausedAnnotation: "true"} })
	h.condition(um, flyv1alpha1.PausedCondition, metav1.ConditionTrue, flyv1alpha1.PausedReason)
	h.sim.ResetCalls()

	// Someone changes the machine on Fly, and the spec asks for a new image: the pass reads Fly,
	// says what it would do, and does nothing.
	if err := h.sim.UpdateOutOfBand(app.Status.AppName, um.Status.MachineID, func(cfg map[string]any) {
		cfg["env"] = map[string]any{"OWNER": "someone-else"}
	}); err != nil {
		t.Fatal(err)
	}
	h.update(um, func() { um.Spec.Image = "registry.fly.io/workspace:v2" })
	c := h.condition(um, flyv1alpha1.ReadyCondition, metav1.ConditionFalse, flyv1alpha1.PausedReason)
	if !strings.Contains(c.Message, "would update machine "+um.Status.MachineID) {
		t.Errorf("Ready message %q does not say what the pass would do", c.Message)
	}
	h.condition(um, flyv1alpha1.StalledCondition, metav1.ConditionTrue, flyv1alpha1.PausedReason)

	// Deleting it while paused keeps the object and the machine.
	if err := env.Client.Delete(context.Background(), um); err != nil {
		t.Fatal(err)
	}
	h.eventually("the deletion waits for the pause", func() string {
		h.get(um)
		c := findCondition(um.Status.Conditions, flyv1alpha1.ReadyCondition)
		if c == nil || !strings.Contains(c.Message, "would destroy machine") {
			return fmt.Sprintf("Ready %+v", c)
		}
		return ""
	})
	if n := writes(h.sim.Calls()); n != 0 {
		t.Fatalf("%d Fly writes while paused: %v", n, h.sim.Calls())
	}
	m, _ := h.sim.Machine(app.Status.AppName, um.Status.MachineID)
	if m.State == "destroyed" || !strings.Contains(string(m.Config), "someone-else") {
		t.Fatalf("the paused machine was changed: state %s, config %s", m.State, m.Config)
	}

	// Unpaused, the deletion goes ahead at once.
	h.update(um, func() { delete(um.Annotations, flyv1alpha1.PausedAnnotation) })
	h.gone(um)
	if len(callsOf(h.sim.Calls(), "destroy_machine")) == 0 {
		t.Error("the machine was not destroyed after the pause was lifted")
	}
}

// Every write of FlyAPI is refused in a paused pass, without reaching Fly; reads go through.
func TestPauseGuardRefusesEveryWrite(t *testing.T) {
	inner := &countingFly{}
	guard := controllers.PauseGuard(inner)
	ctx := controllers.WithPaused(context.Background())
	d := controllers.DesiredMachine{Name: "m"}
	writes := map[string]func() error{
		"CreateApp":        func() error { _, err := guard.CreateApp(ctx, "o", "a", "n"); return err },
		"DeleteApp":        func() error { return guard.DeleteApp(ctx, "a") },
		"SetAppSecrets":    func() error { _, err := guard.SetAppSecrets(ctx, "a", nil, nil); return err },
		"EnsurePrivateIP":  func() error { _, err := guard.EnsurePrivateIP(ctx, "a", "n"); return err },
		"ReleasePrivateIP": func() error { return guard.ReleasePrivateIP(ctx, "a", "ip") },
		"CreateMachine":    func() error { _, err := guard.CreateMachine(ctx, "a", d); return err },
		"UpdateMachine":    func() error { _, err := guard.UpdateMachine(ctx, "a", "id", "v", d); return err },
		"StartMachine":     func() error { return guard.StartMachine(ctx, "a", "id") },
		"StopMachine":      func() error { return guard.StopMachine(ctx, "a", "id") },
		"SuspendMachine":   func() error { return guard.SuspendMachine(ctx, "a", "id") },
		"DestroyMachine":   func() error { return guard.DestroyMachine(ctx, "a", "id") },
	}
	for name, call := range writes {
		if err := call(); !controllers.IsPaused(err) {
			t.Errorf("%s in a paused pass: %v, want refused as paused", name, err)
		}
	}
	if inner.calls != 0 {
		t.Errorf("%d calls reached Fly in a paused pass", inner.calls)
	}
	if _, err := guard.GetApp(ctx, "a"); !errors.Is(err, errCounted) || inner.calls != 1 {
		t.Errorf("a read in a paused pass: %v after %d calls, want it passed through", err, inner.calls)
	}
	if err := guard.StartMachine(context.Background(), "a", "id"); !errors.Is(err, errCounted) {
		t.Errorf("a write outside a paused pass: %v, want it passed through", err)
	}
}

var errCounted = errors.New("counted")

// countingFly counts the calls that reach it; they fail with errCounted. A method it does not
// define panics (nil embedded FlyAPI): a write the guard let through in a paused pass shows.
type countingFly struct {
	controllers.FlyAPI
	calls int
}

func (c *countingFly) GetApp(context.Context, string) (controllers.FlyApp, error) {
	c.calls++
	return controllers.FlyApp{}, errCounted
}

func (c *countingFly) StartMachine(context.Context, string, string) error {
	c.calls++
	return errCounted
}
