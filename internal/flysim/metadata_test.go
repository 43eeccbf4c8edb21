package flysim

import (
	"net/http"
	"testing"
)

func TestMetadata(t *testing.T) {
	h := newHarness(t)
	h.createApp("meta")
	cfg := baseConfig()
	cfg["metadata"] = map[string]any{"a": "1", "b": "2"}
	m := h.createMachine("meta", map[string]any{"config": cfg, "skip_launch": true})
	base := "/v1/apps/meta/machines/" + m.ID + "/metadata"

	read := func() map[string]string {
		t.Helper()
		var md map[string]string
		h.do("GET", base, nil).expect(t, 200, &md)
		return md
	}
	if md := read(); len(md) != 2 || md["a"] != "1" {
		t.Errorf("initial metadata %v", md)
	}
	var v struct{ Value string }
	h.do("GET", base+"/a", nil).expect(t, 200, &v)
	if v.Value != "1" {
		t.Errorf("get key %+v", v)
	}
	h.do("GET", base+"/zzz", nil).expectError(t, 404, "")

	if r := h.do("POST", base+"/c", map[string]any{"value": "3"}).expect(t, http.StatusNoContent, nil); len(r.body) != 0 {
		t.Errorf("204 with body %s", r.body)
	}
	h.do("DELETE", base+"/a", nil).expect(t, http.StatusNoContent, nil)
	h.do("DELETE", base+"/a", nil).expect(t, http.StatusNoContent, nil)
	if md := read(); len(md) != 2 || md["c"] != "3" || md["a"] != "" {
		t.Errorf("after set/delete %v", md)
	}

	// PATCH: only listed keys change; null and "" remove.
	h.do("PATCH", base, map[string]any{"metadata": map[string]any{"b": nil, "c": "", "d": "4"}, "machine_version": m.Version}).expect(t, http.StatusNoContent, nil)
	if md := read(); len(md) != 1 || md["d"] != "4" {
		t.Errorf("after patch %v", md)
	}
	h.do("PUT", base, map[string]any{"metadata": map[string]any{"e": "5"}}).expect(t, http.StatusNoContent, nil)
	h.do("PATCH", base, map[string]any{"metadata": map[string]any{"x": "y"}, "machine_version": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}).expectError(t, http.StatusPreconditionFailed, "")

	// Metadata lives in config.metadata, is filterable, and does not bump the version.
	got := h.getMachine("meta", m.ID)
	if got.Version != m.Version {
		t.Errorf("metadata writes bumped the version %s → %s", m.Version, got.Version)
	}
	var ms []wireMachine
	h.do("GET", "/v1/apps/meta/machines?metadata.e=5", nil).expect(t, 200, &ms)
	if len(ms) != 1 || ms[0].ID != m.ID {
		t.Errorf("filter on written metadata: %d machines", len(ms))
	}

	h.do("POST", base+"/k", map[string]any{}).expectError(t, 400, "")
	h.do("POST", base+"/k", map[string]any{"value": 1}).expectError(t, 400, "")
	h.do("PATCH", base, `{"metadata":{"k":1}}`).expectError(t, 400, "")
	h.do("GET", "/v1/apps/meta/machines/aaaaaaaaaaaaaa/metadata", nil).expectError(t, 404, "machine not found")

	h.do("DELETE", "/v1/apps/meta/machines/"+m.ID, nil).expect(t, 200, nil)
	h.waitFor("meta", m.ID, stateDestroyed)
	h.do("POST", base+"/k", map[string]any{"value": "v"}).expectError(t, http.StatusPreconditionFailed, "")
}
