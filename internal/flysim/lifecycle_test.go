package flysim

import (
	"net/http"
	"testing"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

func TestLifecycleEndpoints(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("life")
	m := h.StartedMachine("life")
	base := "/v1/apps/life/machines/" + m.ID

	ok := func(r flysimtest.Response) {
		t.Helper()
		var body map[string]any
		r.Expect(t, 200, &body)
		if body["ok"] != true {
			t.Errorf("body %v, want ok:true", body)
		}
	}

	ok(h.Do("POST", base+"/signal", map[string]any{"signal": "SIGUSR1"}))
	ok(h.Do("POST", base+"/signal", map[string]any{"signal": 9})) // fly-go's Kill
	h.Do("POST", base+"/signal", map[string]any{"signal": "SIGNOPE"}).ExpectError(t, 400, "")
	h.Do("POST", base+"/signal", map[string]any{"signal": 99}).ExpectError(t, 400, "")
	h.Do("POST", base+"/signal", nil).ExpectError(t, 400, "")

	ok(h.Do("POST", base+"/cordon", nil))
	if !h.GetMachine("life", m.ID).Cordoned {
		t.Error("cordon did not set cordoned")
	}
	ok(h.Do("POST", base+"/uncordon", nil))
	if h.GetMachine("life", m.ID).Cordoned {
		t.Error("uncordon did not clear cordoned")
	}

	ok(h.Do("POST", base+"/restart?force_stop=true&timeout=10s&signal=SIGTERM", nil))
	h.WaitSettled("life", m.ID, StateStarted)
	h.Do("POST", base+"/restart?timeout=soon", nil).ExpectError(t, 400, "")
	h.Do("POST", base+"/restart?signal=SIGNOPE", nil).ExpectError(t, 400, "")

	ok(h.Do("POST", base+"/suspend", nil))
	h.WaitFor("life", m.ID, StateSuspended)

	var started struct {
		PreviousState string `json:"previous_state"`
		Migrated      *bool  `json:"migrated"`
		NewHost       *string
	}
	h.Do("POST", base+"/start", nil).Expect(t, 200, &started)
	if started.PreviousState != StateSuspended || started.Migrated == nil || *started.Migrated {
		t.Errorf("start answer %+v", started)
	}
	h.WaitFor("life", m.ID, StateStarted)

	h.Do("POST", base+"/stop", map[string]any{"signal": "SIGBOGUS"}).ExpectError(t, 400, "")
	h.Do("POST", base+"/stop", map[string]any{"timeout": "later"}).ExpectError(t, 422, "")
	ok(h.Do("POST", base+"/stop", map[string]any{"signal": "SIGTERM", "timeout": "10s"}))
	h.WaitFor("life", m.ID, StateStopped)

	// Destroy: asynchronous, then gone from the list, still readable as destroyed.
	ok(h.Do("DELETE", base, nil))
	h.WaitFor("life", m.ID, StateDestroyed)
	if got := h.GetMachine("life", m.ID); got.State != StateDestroyed {
		t.Errorf("destroyed machine reads %q", got.State)
	}
	var list []flysimtest.Machine
	h.Do("GET", "/v1/apps/life/machines", nil).Expect(t, 200, &list)
	if len(list) != 0 {
		t.Errorf("destroyed machine listed: %+v", list)
	}
	h.Do("POST", base+"/start", nil).ExpectError(t, http.StatusPreconditionFailed, "failed_precondition: unable to start machine from current state: 'destroyed'")

	// Destroying a running machine needs force (or fly-go's kill).
	for _, flag := range []string{"force", "kill"} {
		r := h.StartedMachine("life")
		h.Do("DELETE", "/v1/apps/life/machines/"+r.ID, nil).ExpectError(t, http.StatusPreconditionFailed,
			"failed_precondition: unable to destroy machine, not currently stopped, suspended, failed or created")
		ok(h.Do("DELETE", "/v1/apps/life/machines/"+r.ID+"?"+flag+"=true", nil))
		h.WaitFor("life", r.ID, StateDestroyed)
	}
	h.Do("DELETE", base+"?force=yes", nil).ExpectError(t, 400, "")

	for _, action := range []string{"start", "stop", "suspend", "restart", "cordon", "uncordon"} {
		h.Do("POST", "/v1/apps/life/machines/aaaaaaaaaaaaaa/"+action, nil).ExpectError(t, 404, "machine not found")
	}
	h.Do("DELETE", "/v1/apps/life/machines/aaaaaaaaaaaaaa", nil).ExpectError(t, 404, "machine not found")
}

func TestSuspendRequirements(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("susp")
	for name, mut := range map[string]func(map[string]any){
		"swap":     func(c map[string]any) { c["init"] = map[string]any{"swap_size_mb": 512} },
		"schedule": func(c map[string]any) { c["schedule"] = "daily" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := flysimtest.BaseConfig()
			mut(cfg)
			m := h.CreateMachine("susp", map[string]any{"config": cfg})
			h.WaitFor("susp", m.ID, StateStarted)
			h.Do("POST", "/v1/apps/susp/machines/"+m.ID+"/suspend", nil).ExpectError(t, http.StatusPreconditionFailed, "")
		})
	}
}
