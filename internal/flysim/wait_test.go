package flysim

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

func TestWait(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Delays.Create = 50 * quickDelays.Create })
	h.CreateApp("wt")
	m := h.CreateMachine("wt", nil)
	base := "/v1/apps/wt/machines/" + m.ID + "/wait"

	type waitAnswer struct {
		OK      bool   `json:"ok"`
		State   string `json:"state"`
		Version string `json:"version"`
		EventID string `json:"event_id"`
	}
	var w waitAnswer
	// Default state is started.
	h.Do("GET", base, nil).Expect(t, 200, &w)
	if !w.OK || w.State != StateStarted || w.Version != m.Version || w.EventID == "" {
		t.Errorf("wait answer %+v", w)
	}
	got := h.GetMachine("wt", m.ID)
	if w.EventID != got.Events[0].ID {
		t.Errorf("event_id %s, latest event %s", w.EventID, got.Events[0].ID)
	}
	// Repeated and comma-separated states; settled.
	h.Do("GET", base+"?state=stopped&state=started&version="+m.Version, nil).Expect(t, 200, &w)
	h.Do("GET", base+"?state=suspended,started", nil).Expect(t, 200, &w)
	w = waitAnswer{} // the answer must say started itself, not inherit it from the previous one
	h.Do("GET", base+"?state=settled", nil).Expect(t, 200, &w)
	if w.State != StateStarted || w.EventID == "" {
		t.Errorf("settled answered %q", w.State)
	}
	// instance_id is the deprecated alias of version; timeouts above 60 are clamped, not refused.
	h.Do("GET", base+"?instance_id="+m.Version+"&timeout=600", nil).Expect(t, 200, nil)

	// from_event_id: a transition after that event is needed.
	stop := h.Do("POST", "/v1/apps/wt/machines/"+m.ID+"/stop", nil)
	stop.Expect(t, 200, nil)
	from := w.EventID
	w = waitAnswer{}
	h.Do("GET", base+"?state=stopped&version="+m.Version+"&from_event_id="+from, nil).Expect(t, 200, &w)
	if w.State != StateStopped {
		t.Errorf("from_event_id wait answered %q", w.State)
	}

	// An old version reads replaced and never reaches a wanted state.
	h.Do("POST", "/v1/apps/wt/machines/"+m.ID, map[string]any{"config": flysimtest.BaseConfig()}).Expect(t, 200, nil)
	e := h.Do("GET", base+"?state=started&version="+m.Version+"&timeout=1", nil).ExpectError(t, http.StatusRequestTimeout, "")
	if e.Error != "deadline_exceeded: machine failed to reach desired state, started, currently replaced" {
		t.Errorf("408 text %q", e.Error)
	}

	for _, q := range []string{"?state=bogus", "?timeout=soon", "?timeout=1.5", "?state=stopped", "?state=replaced"} {
		h.Do("GET", base+q, nil).ExpectError(t, 400, "")
	}
	h.Do("GET", base+"?version=01ARZ3NDEKTSV4RRFFQ69G5FAV", nil).ExpectError(t, 404, "")
	h.Do("GET", "/v1/apps/wt/machines/aaaaaaaaaaaaaa/wait", nil).ExpectError(t, 404, "machine not found")
}

func TestWaitTimesOutWithFlysMessage(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("slow")
	m := h.CreateMachine("slow", map[string]any{"skip_launch": true})
	e := h.Do("GET", "/v1/apps/slow/machines/"+m.ID+"/wait?state=started&timeout=0", nil).ExpectError(t, http.StatusRequestTimeout, "")
	if !strings.HasPrefix(e.Error, "deadline_exceeded: machine failed to reach desired state, started, currently created") {
		t.Errorf("408 text %q", e.Error)
	}
}

func TestWaitForDestroyed(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("gone")
	m := h.CreateMachine("gone", map[string]any{"skip_launch": true})
	h.Do("DELETE", "/v1/apps/gone/machines/"+m.ID, nil).Expect(t, 200, nil)
	h.Do("GET", "/v1/apps/gone/machines/"+m.ID+"/wait?state=destroyed", nil).Expect(t, 200, nil)
}
