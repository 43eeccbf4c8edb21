package controllers_test

import (
	"testing"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// TestUpdateSwapIsWaitedOnNotPolled: the end of an update's swap (replacing) is learnt from Fly's
// wait endpoint, as a boot's or a stop's is, not by reading the machine every poll. A claimed
// pooled machine waits through one such update (its new secrets) before it starts.
func TestUpdateSwapIsWaitedOnNotPolled(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	app := newApp("una")
	um := newMachine("una-ws", "una")
	um.Spec.PowerState = flyv1alpha1.PowerStateStopped
	h.create(app)
	h.create(um)
	h.settled(um, "stopped")
	h.get(um)
	h.sim.ResetCalls()

	h.update(um, func() { um.Spec.Image = "registry.fly.io/workspace:v2" })
	h.eventually("the stopped machine updated", func() string {
		h.get(um)
		m, _ := h.sim.Machine(um.Status.AppName, um.Status.MachineID)
		if machineConfig(t, m)["image"] != "registry.fly.io/workspace:v2" || m.State != "stopped" || um.Status.State != "stopped" || !readyNow(um, um.Status.Conditions, um.Status.ObservedGeneration) {
			return "machine " + m.State + ", status " + um.Status.State
		}
		return ""
	})
	var afterUpdate []string
	seen := false
	for _, c := range h.sim.CallsFor("", um.Status.MachineID) {
		if c.Action == "update_machine" {
			seen = true
			continue
		}
		if seen {
			afterUpdate = append(afterUpdate, c.Action)
		}
	}
	waits, reads := 0, 0
	for _, a := range afterUpdate {
		switch a {
		case "wait_machine":
			waits++
		case "get_machine":
			reads++
		}
	}
	if !seen || waits == 0 || reads > 1 {
		t.Errorf("calls after the update: %v; want a wait for the swap's end and at most one read", afterUpdate)
	}
}
