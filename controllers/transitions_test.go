package controllers

import (
	"testing"
	"time"
)

func TestTransitionWaitsHandOutWhatTheySawOnce(t *testing.T) {
	w := newTransitionWaits(nil, time.Second)
	w.seen["stale"] = sawState{machine: FlyMachine{Version: "v1"}, at: time.Now().Add(-2 * time.Second)}
	w.seen["fresh"] = sawState{machine: FlyMachine{Version: "v1", State: MachineStarted}, at: time.Now()}
	w.seen["replaced"] = sawState{machine: FlyMachine{Version: "v1"}, at: time.Now()}

	w.dropStale()
	if _, ok := w.seen["stale"]; ok {
		t.Error("a sight older than a poll was kept")
	}
	if m, ok := w.take("fresh", "v1"); !ok || m.State != MachineStarted {
		t.Errorf("take(fresh) = %+v, %v", m, ok)
	}
	if _, ok := w.take("fresh", "v1"); ok {
		t.Error("the same sight was handed out twice")
	}
	if _, ok := w.take("replaced", "v2"); ok {
		t.Error("a sight of another version was handed out")
	}
	var none *transitionWaits
	if none.start(nil, nil, MachineStarting) {
		t.Error("no waits, yet a wait started")
	}
}
