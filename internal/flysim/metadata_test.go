package flysim

import (
	"net/http"
	"testing"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

func TestMetadata(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("meta")
	cfg := flysimtest.BaseConfig()
	cfg["metadata"] = map[string]any{"a": "1", "b": "2"}
	m := h.CreateMachine("meta", map[string]any{"config": cfg, "skip_launch": true})
	base := "/v1/apps/meta/machines/" + m.ID + "/metadata"

	read := func() map[string]string {
		t.Helper()
		var md map[string]string
		h.Do("GET", base, nil).Expect(t, 200, &md)
		return md
	}
	if md := read(); len(md) != 2 || md["a"] != "1" {
		t.Errorf("initial metadata %v", md)
	}
	var v struct{ Value string }
	h.Do("GET", base+"/a", nil).Expect(t, 200, &v)
	if v.Value != "1" {
		t.Errorf("get key %+v", v)
	}
	h.Do("GET", base+"/zzz", nil).ExpectError(t, 404, "")

	if r := h.Do("POST", base+"/c", map[string]any{"value": "3"}).Expect(t, http.StatusNoContent, nil); len(r.Body) != 0 {
		t.Errorf("204 with body %s", r.Body)
	}
	h.Do("DELETE", base+"/a", nil).Expect(t, http.StatusNoContent, nil)
	h.Do("DELETE", base+"/a", nil).Expect(t, http.StatusNoContent, nil)
	if md := read(); len(md) != 2 || md["c"] != "3" || md["a"] != "" {
		t.Errorf("after set/delete %v", md)
	}

	// PATCH: only listed keys change; null and "" remove.
	h.Do("PATCH", base, map[string]any{"metadata": map[string]any{"b": nil, "c": "", "d": "4"}, "machine_version": m.Version}).Expect(t, http.StatusNoContent, nil)
	if md := read(); len(md) != 1 || md["d"] != "4" {
		t.Errorf("after patch %v", md)
	}
	h.Do("PUT", base, map[string]any{"metadata": map[string]any{"e": "5"}}).Expect(t, http.StatusNoContent, nil)
	h.Do("PATCH", base, map[string]any{"metadata": map[string]any{"x": "y"}, "machine_version": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}).ExpectError(t, http.StatusPreconditionFailed, "")

	// Metadata lives in config.metadata, is filterable, and does not bump the version.
	got := h.GetMachine("meta", m.ID)
	if got.Version != m.Version {
		t.Errorf("metadata writes bumped the version %s → %s", m.Version, got.Version)
	}
	var ms []flysimtest.Machine
	h.Do("GET", "/v1/apps/meta/machines?metadata.e=5", nil).Expect(t, 200, &ms)
	if len(ms) != 1 || ms[0].ID != m.ID {
		t.Errorf("filter on written metadata: %d machines", len(ms))
	}

	h.Do("POST", base+"/k", map[string]any{}).ExpectError(t, 400, "")
	h.Do("POST", base+"/k", map[string]any{"value": 1}).ExpectError(t, 400, "")
	h.Do("PATCH", base, `{"metadata":{"k":1}}`).ExpectError(t, 400, "")
	h.Do("GET", "/v1/apps/meta/machines/aaaaaaaaaaaaaa/metadata", nil).ExpectError(t, 404, "machine not found")

	h.Do("DELETE", "/v1/apps/meta/machines/"+m.ID, nil).Expect(t, 200, nil)
	h.WaitFor("meta", m.ID, StateDestroyed)
	h.Do("POST", base+"/k", map[string]any{"value": "v"}).ExpectError(t, http.StatusPreconditionFailed, "")
}
