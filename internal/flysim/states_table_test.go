package flysim

import (
	"net/http"
	"strings"
	"testing"
	"time"
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
		return h.createMachine("tbl", map[string]any{"skip_launch": true}).ID
	}},
	{"created (launching)", func(d *Delays) { d.Create = hold }, func(h *harness) string {
		return h.createMachine("tbl", nil).ID
	}},
	{stateStarting, func(d *Delays) { d.Start = hold }, func(h *harness) string {
		id := h.createMachine("tbl", nil).ID
		h.waitSettledState(id, stateStarting)
		return id
	}},
	{stateStarted, nil, func(h *harness) string { return h.startedMachine("tbl").ID }},
	{stateStopping, func(d *Delays) { d.Stop = hold }, func(h *harness) string {
		return h.startedThen("stop", stateStopping)
	}},
	{stateStopped, nil, func(h *harness) string { return h.startedThen("stop", stateStopped) }},
	{stateSuspending, func(d *Delays) { d.Suspend = hold }, func(h *harness) string {
		return h.startedThen("suspend", stateSuspending)
	}},
	{stateSuspended, nil, func(h *harness) string { return h.startedThen("suspend", stateSuspended) }},
	{stateRestarting, func(d *Delays) { d.Restart = hold }, func(h *harness) string {
		return h.startedThen("restart", stateRestarting)
	}},
	{stateReplacing, func(d *Delays) { d.Update = hold }, func(h *harness) string {
		id := h.startedMachine("tbl").ID
		h.do("POST", "/v1/apps/tbl/machines/"+id, map[string]any{"config": baseConfig()}).expect(h.t, 200, nil)
		h.waitSettledState(id, stateReplacing)
		return id
	}},
	{stateDestroying, func(d *Delays) { d.Destroy = hold }, func(h *harness) string {
		id := h.createMachine("tbl", map[string]any{"skip_launch": true}).ID
		h.do("DELETE", "/v1/apps/tbl/machines/"+id, nil).expect(h.t, 200, nil)
		h.waitSettledState(id, stateDestroying)
		return id
	}},
	{stateDestroyed, nil, func(h *harness) string {
		id := h.createMachine("tbl", map[string]any{"skip_launch": true}).ID
		h.do("DELETE", "/v1/apps/tbl/machines/"+id, nil).expect(h.t, 200, nil)
		h.waitFor("tbl", id, stateDestroyed)
		return id
	}},
	{stateFailed, nil, func(h *harness) string {
		id := h.startedMachine("tbl").ID
		if err := h.srv.FailOutOfBand("tbl", id); err != nil {
			h.t.Fatal(err)
		}
		return id
	}},
}

// waitSettledState waits until the machine shows state (it may still have a transition pending).
func (h *harness) waitSettledState(id, state string) {
	h.t.Helper()
	eventually(h.t, id+" to reach "+state, func() bool {
		m, _ := h.srv.Machine("tbl", id)
		return m.State == state
	})
}

// startedThen starts a machine, runs action on it and waits for state.
func (h *harness) startedThen(action, state string) string {
	id := h.startedMachine("tbl").ID
	h.do("POST", "/v1/apps/tbl/machines/"+id+"/"+action, nil).expect(h.t, 200, nil)
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
		stateStarting:           {bad, bad, bad, bad, bad, ok, ok, ok, bad, ok, cr, nc, ok},
		stateStarted:            {bad, ok, ok, ok, ok, ok, ok, ok, bad, ok, cr, nc, ok},
		stateStopping:           {bad, bad, bad, bad, bad, ok, ok, ok, bad, ok, cr, nc, ok},
		stateStopped:            {ok, bad, bad, bad, bad, ok, ok, ok, ok, ok, cr, nc, ok},
		stateSuspending:         {bad, bad, bad, bad, bad, ok, ok, ok, bad, ok, cr, nc, ok},
		stateSuspended:          {ok, ok, bad, bad, bad, ok, ok, ok, ok, ok, cr, nc, ok},
		stateRestarting:         {bad, bad, bad, bad, bad, ok, ok, ok, bad, ok, cr, nc, ok},
		stateReplacing:          {bad, bad, bad, bad, bad, ok, ok, ok, bad, ok, cr, nc, ok},
		stateDestroying:         {bad, bad, bad, bad, bad, bad, bad, bad, bad, ok, bad, bad, ok},
		stateDestroyed:          {bad, bad, bad, bad, bad, bad, bad, bad, bad, bad, bad, bad, ok},
		stateFailed:             {ok, ok, bad, bad, bad, ok, ok, ok, ok, ok, cr, nc, ok},
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
				h.createApp("tbl")
				id := setup.reach(h)
				before, _ := h.srv.Machine("tbl", id)
				r := h.do(action.method, "/v1/apps/tbl/machines/"+id+action.suffix, action.body)
				if r.status != row[i] {
					t.Fatalf("%s on %s: status %d, want %d; body %s", action.name, setup.state, r.status, row[i], r.body)
				}
				if r.status != bad {
					return
				}
				e := r.expectError(t, bad, "")
				if !strings.HasPrefix(e.Error, "failed_precondition: ") {
					t.Errorf("412 text %q lacks the failed_precondition prefix", e.Error)
				}
				if action.name == "start" && setup.state == stateReplacing && e.Error != "failed_precondition: machine getting replaced, refusing to start" {
					t.Errorf("start while replacing: %q", e.Error)
				}
				if action.name == "start" && setup.state == stateStopping && e.Error != "failed_precondition: unable to start machine from current state: 'stopping'" {
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
