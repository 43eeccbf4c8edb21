package flysim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

// hold is a delay long enough that a transition never completes during a test.
const hold = time.Hour

// stateSetups put a fresh machine of app "tbl" in each state of §5 and keep it there.
var stateSetups = []struct {
	state string
	hold  func(d *Delays) // which transition to hold, if the state is transient
	reach func(h *harness) string
}{
	{"created (skip_launch)", nil, func(h *harness) string {
		return h.CreateMachine("tbl", map[string]any{"skip_launch": true}).ID
	}},
	{"created (launching)", func(d *Delays) { d.Create = hold }, func(h *harness) string {
		return h.CreateMachine("tbl", nil).ID
	}},
	{StateStarting, func(d *Delays) { d.Start = hold }, func(h *harness) string {
		id := h.CreateMachine("tbl", nil).ID
		h.waitSettledState(id, StateStarting)
		return id
	}},
	{StateStarted, nil, func(h *harness) string { return h.StartedMachine("tbl").ID }},
	{StateStopping, func(d *Delays) { d.Stop = hold }, func(h *harness) string {
		return h.startedThen("stop", StateStopping)
	}},
	{StateStopped, nil, func(h *harness) string { return h.startedThen("stop", StateStopped) }},
	{StateSuspending, func(d *Delays) { d.Suspend = hold }, func(h *harness) string {
		return h.startedThen("suspend", StateSuspending)
	}},
	{StateSuspended, nil, func(h *harness) string { return h.startedThen("suspend", StateSuspended) }},
	{StateRestarting, func(d *Delays) { d.Restart = hold }, func(h *harness) string {
		return h.startedThen("restart", StateRestarting)
	}},
	{StateReplacing, func(d *Delays) { d.Update = hold }, func(h *harness) string {
		id := h.StartedMachine("tbl").ID
		h.Do("POST", "/v1/apps/tbl/machines/"+id, map[string]any{"config": flysimtest.BaseConfig()}).Expect(h.t, 200, nil)
		h.waitSettledState(id, StateReplacing)
		return id
	}},
	{StateDestroying, func(d *Delays) { d.Destroy = hold }, func(h *harness) string {
		id := h.CreateMachine("tbl", map[string]any{"skip_launch": true}).ID
		h.Do("DELETE", "/v1/apps/tbl/machines/"+id, nil).Expect(h.t, 200, nil)
		h.waitSettledState(id, StateDestroying)
		return id
	}},
	{StateDestroyed, nil, func(h *harness) string {
		id := h.CreateMachine("tbl", map[string]any{"skip_launch": true}).ID
		h.Do("DELETE", "/v1/apps/tbl/machines/"+id, nil).Expect(h.t, 200, nil)
		h.WaitFor("tbl", id, StateDestroyed)
		return id
	}},
	{StateFailed, nil, func(h *harness) string {
		id := h.StartedMachine("tbl").ID
		if err := h.srv.FailOutOfBand("tbl", id); err != nil {
			h.t.Fatal(err)
		}
		return id
	}},
}

// waitSettledState waits until the machine shows state (it may still have a transition pending).
func (h *harness) waitSettledState(id, state string) {
	h.t.Helper()
	flysimtest.Eventually(h.t, id+" to reach "+state, func() bool {
		m, _ := h.srv.Machine("tbl", id)
		return m.State == state
	})
}

// startedThen starts a machine, runs action on it and waits for state.
func (h *harness) startedThen(action, state string) string {
	id := h.StartedMachine("tbl").ID
	h.Do("POST", "/v1/apps/tbl/machines/"+id+"/"+action, nil).Expect(h.t, 200, nil)
	h.waitSettledState(id, state)
	return id
}

// tableActions are the actions of the legal-action table, each as one request.
var tableActions = []struct {
	name, method, suffix string
	body                 any
}{
	{"start", "POST", "/start", nil},
	{"stop", "POST", "/stop", nil},
	{"suspend", "POST", "/suspend", nil},
	{"restart", "POST", "/restart", nil},
	{"signal", "POST", "/signal", map[string]any{"signal": "SIGUSR1"}},
	{"cordon", "POST", "/cordon", nil},
	{"uncordon", "POST", "/uncordon", nil},
	{"update", "POST", "", map[string]any{"config": map[string]any{"image": "nginx:2"}}},
	{"destroy", "DELETE", "", nil},
	{"destroy force", "DELETE", "?force=true", nil},
	{"lease", "POST", "/lease", nil},
	{"metadata", "POST", "/metadata/k", map[string]any{"value": "v"}},
	{"get", "GET", "", nil},
}

// TestLegalActionTable checks every action against every machine state (§5). The cells the sheet marks
// "?" take the stricter answer (start on started, stop on stopped, suspend or restart when not started: 412).
func TestLegalActionTable(t *testing.T) {
	const (
		ok  = http.StatusOK
		cr  = http.StatusCreated
		nc  = http.StatusNoContent
		bad = http.StatusPreconditionFailed
	)
	//                       start stop susp rest sig  cord uncd upd  dest forc lease meta get
	want := map[string][13]int{
		"created (skip_launch)": {ok, ok, bad, bad, bad, ok, ok, ok, ok, ok, cr, nc, ok},
		"created (launching)":   {bad, ok, bad, bad, bad, ok, ok, ok, ok, ok, cr, nc, ok},
		StateStarting:           {bad, bad, bad, bad, bad, ok, ok, ok, bad, ok, cr, nc, ok},
		StateStarted:            {bad, ok, ok, ok, ok, ok, ok, ok, bad, ok, cr, nc, ok},
		StateStopping:           {bad, bad, bad, bad, bad, ok, ok, ok, bad, ok, cr, nc, ok},
		StateStopped:            {ok, bad, bad, bad, bad, ok, ok, ok, ok, ok, cr, nc, ok},
		StateSuspending:         {bad, bad, bad, bad, bad, ok, ok, ok, bad, ok, cr, nc, ok},
		StateSuspended:          {ok, ok, bad, bad, bad, ok, ok, ok, ok, ok, cr, nc, ok},
		StateRestarting:         {bad, bad, bad, bad, bad, ok, ok, ok, bad, ok, cr, nc, ok},
		StateReplacing:          {bad, bad, bad, bad, bad, ok, ok, ok, bad, ok, cr, nc, ok},
		StateDestroying:         {bad, bad, bad, bad, bad, bad, bad, bad, bad, ok, bad, bad, ok},
		StateDestroyed:          {bad, bad, bad, bad, bad, bad, bad, bad, bad, bad, bad, bad, ok},
		StateFailed:             {ok, ok, bad, bad, bad, ok, ok, ok, ok, ok, cr, nc, ok},
	}
	if len(want) != len(stateSetups) { // a row without a setup would never be checked
		t.Fatalf("%d rows of expectations for %d state setups", len(want), len(stateSetups))
	}
	for _, setup := range stateSetups {
		row, found := want[setup.state]
		if !found {
			t.Fatalf("no expectations for state %q", setup.state)
		}
		for i, action := range tableActions {
			t.Run(setup.state+"/"+action.name, func(t *testing.T) {
				h := newHarness(t, func(o *Options) {
					if setup.hold != nil {
						setup.hold(&o.Delays)
					}
				})
				h.CreateApp("tbl")
				id := setup.reach(h)
				before, _ := h.srv.Machine("tbl", id)
				r := h.Do(action.method, "/v1/apps/tbl/machines/"+id+action.suffix, action.body)
				if r.Status != row[i] {
					t.Fatalf("%s on %s: status %d, want %d; body %s", action.name, setup.state, r.Status, row[i], r.Body)
				}
				if r.Status != bad {
					return
				}
				e := r.ExpectError(t, bad, "")
				if !strings.HasPrefix(e.Error, "failed_precondition: ") {
					t.Errorf("412 text %q lacks the failed_precondition prefix", e.Error)
				}
				if action.name == "start" && setup.state == StateReplacing && e.Error != "failed_precondition: machine getting replaced, refusing to start" {
					t.Errorf("start while replacing: %q", e.Error)
				}
				if action.name == "start" && setup.state == StateStopping && e.Error != "failed_precondition: unable to start machine from current state: 'stopping'" {
					t.Errorf("start while stopping: %q", e.Error)
				}
				after, _ := h.srv.Machine("tbl", id)
				if after.State != before.State || after.Version != before.Version {
					t.Errorf("refused %s changed the machine: %s/%s → %s/%s", action.name, before.State, before.Version, after.State, after.Version)
				}
			})
		}
	}
}
