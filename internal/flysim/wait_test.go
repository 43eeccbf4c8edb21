package flysim

import (
	"net/http"
	"strings"
	"testing"
)

func TestWait(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Delays.Create = 50 * quickDelays.Create })
	h.createApp("wt")
	m := h.createMachine("wt", nil)
	base := "/v1/apps/wt/machines/" + m.ID + "/wait"

	var w struct {
		OK      bool   `json:"ok"`
		State   string `json:"state"`
		Version string `json:"version"`
		EventID string `json:"event_id"`
	}
	// Default state is started.
	h.do("GET", base, nil).expect(t, 200, &w)
	if !w.OK || w.State != stateStarted || w.Version != m.Version || w.EventID == "" {
		t.Errorf("wait answer %+v", w)
	}
	got := h.getMachine("wt", m.ID)
	if w.EventID != got.Events[0].ID {
		t.Errorf("event_id %s, latest event %s", w.EventID, got.Events[0].ID)
	}
	// Repeated and comma-separated states; settled.
	h.do("GET", base+"?state=stopped&state=started&version="+m.Version, nil).expect(t, 200, &w)
	h.do("GET", base+"?state=suspended,started", nil).expect(t, 200, &w)
	h.do("GET", base+"?state=settled", nil).expect(t, 200, &w)
	if w.State != stateStarted {
		t.Errorf("settled answered %q", w.State)
	}
	// instance_id is the deprecated alias of version; timeouts above 60 are clamped, not refused.
	h.do("GET", base+"?instance_id="+m.Version+"&timeout=600", nil).expect(t, 200, nil)

	// from_event_id: a transition after that event is needed.
	stop := h.do("POST", "/v1/apps/wt/machines/"+m.ID+"/stop", nil)
	stop.expect(t, 200, nil)
	h.do("GET", base+"?state=stopped&version="+m.Version+"&from_event_id="+w.EventID, nil).expect(t, 200, &w)
	if w.State != stateStopped {
		t.Errorf("from_event_id wait answered %q", w.State)
	}

	// An old version reads replaced and never reaches a wanted state.
	h.do("POST", "/v1/apps/wt/machines/"+m.ID, map[string]any{"config": baseConfig()}).expect(t, 200, nil)
	e := h.do("GET", base+"?state=started&version="+m.Version+"&timeout=1", nil).expectError(t, http.StatusRequestTimeout, "")
	if e.Error != "deadline_exceeded: machine failed to reach desired state, started, currently replaced" {
		t.Errorf("408 text %q", e.Error)
	}

	for _, q := range []string{"?state=bogus", "?timeout=soon", "?timeout=1.5", "?state=stopped", "?state=replaced"} {
		h.do("GET", base+q, nil).expectError(t, 400, "")
	}
	h.do("GET", base+"?version=01ARZ3NDEKTSV4RRFFQ69G5FAV", nil).expectError(t, 404, "")
	h.do("GET", "/v1/apps/wt/machines/aaaaaaaaaaaaaa/wait", nil).expectError(t, 404, "machine not found")
}

func TestWaitTimesOutWithFlysMessage(t *testing.T) {
	h := newHarness(t)
	h.createApp("slow")
	m := h.createMachine("slow", map[string]any{"skip_launch": true})
	e := h.do("GET", "/v1/apps/slow/machines/"+m.ID+"/wait?state=started&timeout=0", nil).expectError(t, http.StatusRequestTimeout, "")
	if !strings.HasPrefix(e.Error, "deadline_exceeded: machine failed to reach desired state, started, currently created") {
		t.Errorf("408 text %q", e.Error)
	}
}

func TestWaitForDestroyed(t *testing.T) {
	h := newHarness(t)
	h.createApp("gone")
	m := h.createMachine("gone", map[string]any{"skip_launch": true})
	h.do("DELETE", "/v1/apps/gone/machines/"+m.ID, nil).expect(t, 200, nil)
	h.do("GET", "/v1/apps/gone/machines/"+m.ID+"/wait?state=destroyed", nil).expect(t, 200, nil)
}
