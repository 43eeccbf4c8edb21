package flysim

import (
	"net/http"
	"testing"
)

func TestLifecycleEndpoints(t *testing.T) {
	h := newHarness(t)
	h.createApp("life")
	m := h.startedMachine("life")
	base := "/v1/apps/life/machines/" + m.ID

	ok := func(r response) {
		t.Helper()
		var body map[string]any
		r.expect(t, 200, &body)
		if body["ok"] != true {
			t.Errorf("body %v, want ok:true", body)
		}
	}

	ok(h.do("POST", base+"/signal", map[string]any{"signal": "SIGUSR1"}))
	ok(h.do("POST", base+"/signal", map[string]any{"signal": 9})) // fly-go's Kill
	h.do("POST", base+"/signal", map[string]any{"signal": "SIGNOPE"}).expectError(t, 400, "")
	h.do("POST", base+"/signal", map[string]any{"signal": 99}).expectError(t, 400, "")
	h.do("POST", base+"/signal", nil).expectError(t, 400, "")

	ok(h.do("POST", base+"/cordon", nil))
	if !h.getMachine("life", m.ID).Cordoned {
		t.Error("cordon did not set cordoned")
	}
	ok(h.do("POST", base+"/uncordon", nil))
	if h.getMachine("life", m.ID).Cordoned {
		t.Error("uncordon did not clear cordoned")
	}

	ok(h.do("POST", base+"/restart?force_stop=true&timeout=10s&signal=SIGTERM", nil))
	h.waitSettled("life", m.ID, stateStarted)
	h.do("POST", base+"/restart?timeout=soon", nil).expectError(t, 400, "")
	h.do("POST", base+"/restart?signal=SIGNOPE", nil).expectError(t, 400, "")

	ok(h.do("POST", base+"/suspend", nil))
	h.waitFor("life", m.ID, stateSuspended)

	var started struct {
		PreviousState string `json:"previous_state"`
		Migrated      *bool  `json:"migrated"`
		NewHost       *string
	}
	h.do("POST", base+"/start", nil).expect(t, 200, &started)
	if started.PreviousState != stateSuspended || started.Migrated == nil || *started.Migrated {
		t.Errorf("start answer %+v", started)
	}
	h.waitFor("life", m.ID, stateStarted)

	h.do("POST", base+"/stop", map[string]any{"signal": "SIGBOGUS"}).expectError(t, 400, "")
	h.do("POST", base+"/stop", map[string]any{"timeout": "later"}).expectError(t, 422, "")
	ok(h.do("POST", base+"/stop", map[string]any{"signal": "SIGTERM", "timeout": "10s"}))
	h.waitFor("life", m.ID, stateStopped)

	// Destroy: asynchronous, then gone from the list, still readable as destroyed.
	ok(h.do("DELETE", base, nil))
	h.waitFor("life", m.ID, stateDestroyed)
	if got := h.getMachine("life", m.ID); got.State != stateDestroyed {
		t.Errorf("destroyed machine reads %q", got.State)
	}
	var list []wireMachine
	h.do("GET", "/v1/apps/life/machines", nil).expect(t, 200, &list)
	if len(list) != 0 {
		t.Errorf("destroyed machine listed: %+v", list)
	}
	h.do("POST", base+"/start", nil).expectError(t, http.StatusPreconditionFailed, "failed_precondition: unable to start machine from current state: 'destroyed'")

	// Destroying a running machine needs force (or fly-go's kill).
	for _, flag := range []string{"force", "kill"} {
		r := h.startedMachine("life")
		h.do("DELETE", "/v1/apps/life/machines/"+r.ID, nil).expectError(t, http.StatusPreconditionFailed,
			"failed_precondition: unable to destroy machine, not currently stopped, suspended, failed or created")
		ok(h.do("DELETE", "/v1/apps/life/machines/"+r.ID+"?"+flag+"=true", nil))
		h.waitFor("life", r.ID, stateDestroyed)
	}
	h.do("DELETE", base+"?force=yes", nil).expectError(t, 400, "")

	for _, action := range []string{"start", "stop", "suspend", "restart", "cordon", "uncordon"} {
		h.do("POST", "/v1/apps/life/machines/aaaaaaaaaaaaaa/"+action, nil).expectError(t, 404, "machine not found")
	}
	h.do("DELETE", "/v1/apps/life/machines/aaaaaaaaaaaaaa", nil).expectError(t, 404, "machine not found")
}

func TestSuspendRequirements(t *testing.T) {
	h := newHarness(t)
	h.createApp("susp")
	for name, mut := range map[string]func(map[string]any){
		"swap":     func(c map[string]any) { c["init"] = map[string]any{"swap_size_mb": 512} },
		"schedule": func(c map[string]any) { c["schedule"] = "daily" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := baseConfig()
			mut(cfg)
			m := h.createMachine("susp", map[string]any{"config": cfg})
			h.waitFor("susp", m.ID, stateStarted)
			h.do("POST", "/v1/apps/susp/machines/"+m.ID+"/suspend", nil).expectError(t, http.StatusPreconditionFailed, "")
		})
	}
}
