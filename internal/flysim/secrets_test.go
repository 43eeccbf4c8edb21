package flysim

import (
	"net/http"
	"strings"
	"testing"
)

type wireSecret struct {
	Name      string  `json:"name"`
	Digest    string  `json:"digest"`
	Value     *string `json:"value"`
	CreatedAt string  `json:"created_at"`
	UpdatedAt string  `json:"updated_at"`
	Version   uint64  `json:"version"`
}

type wireSecrets struct {
	Secrets []wireSecret `json:"secrets"`
	Version uint64       `json:"version"`
}

func TestSecrets(t *testing.T) {
	h := newHarness(t)
	h.createApp("sec")
	var set wireSecrets
	h.do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{"A": "alpha-value", "B": "beta-value"}}).expect(t, 200, &set)
	if set.Version != 1 || len(set.Secrets) != 2 {
		t.Fatalf("first set: %+v", set)
	}
	for _, s := range set.Secrets {
		if s.Value != nil || s.Digest == "" || strings.Contains(s.Digest, "value") {
			t.Errorf("set answer exposes or lacks a digest: %+v", s)
		}
	}
	h.do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{"B": nil, "C": "gamma"}}).expect(t, 200, &set)
	if set.Version != 2 || len(set.Secrets) != 2 || set.Secrets[0].Name != "A" || set.Secrets[1].Name != "C" {
		t.Fatalf("unset B, set C: %+v", set)
	}

	var list wireSecrets
	h.do("GET", "/v1/apps/sec/secrets", nil).expect(t, 200, &list)
	if len(list.Secrets) != 2 || list.Secrets[0].Value != nil {
		t.Errorf("list without show_secrets: %+v", list)
	}
	h.do("GET", "/v1/apps/sec/secrets?show_secrets=true", nil).expect(t, 200, &list)
	if v := list.Secrets[0].Value; v == nil || *v != "alpha-value" {
		t.Errorf("show_secrets value %v", v)
	}
	// Same value, same digest; other value, other digest.
	h.do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{"D": "alpha-value"}}).expect(t, 200, &set)
	digests := map[string]string{}
	for _, s := range set.Secrets {
		digests[s.Name] = s.Digest
	}
	if digests["A"] != digests["D"] || digests["A"] == digests["C"] {
		t.Errorf("digests %v", digests)
	}

	// Both spellings of the version filter: satisfied versions answer, future ones are refused.
	for _, q := range []string{"min_version", "version"} {
		h.do("GET", "/v1/apps/sec/secrets?"+q+"=3", nil).expect(t, 200, nil)
		h.do("GET", "/v1/apps/sec/secrets?"+q+"=4", nil).expectError(t, http.StatusPreconditionFailed, "")
		h.do("GET", "/v1/apps/sec/secrets?"+q+"=x", nil).expectError(t, 400, "")
	}

	values, version := h.srv.Secrets("sec")
	if version != 3 || values["C"] != "gamma" || len(values) != 3 {
		t.Errorf("Secrets() = %v, %d", values, version)
	}

	h.do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{}}).expectError(t, 400, "")
	h.do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{"bad-name": "x"}}).expectError(t, 400, "")
	h.do("POST", "/v1/apps/sec/secrets", `{"values":{"A":5}}`).expectError(t, 400, "")
	h.do("GET", "/v1/apps/none/secrets", nil).expectError(t, 404, "app not found")
	h.as(tokenB).do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{"X": "y"}}).expectError(t, 403, "")
}

func TestSingleSecret(t *testing.T) {
	h := newHarness(t)
	h.createApp("one")
	var s wireSecret
	h.do("POST", "/v1/apps/one/secrets/TOKEN", map[string]any{"value": "hunter2"}).expect(t, http.StatusCreated, &s)
	if s.Name != "TOKEN" || s.Version != 1 || s.Value != nil || s.Digest == "" {
		t.Errorf("set one: %+v", s)
	}
	h.do("GET", "/v1/apps/one/secrets/TOKEN", nil).expect(t, 200, &s)
	if s.Value != nil {
		t.Errorf("value shown without show_secrets")
	}
	h.do("GET", "/v1/apps/one/secrets/TOKEN?show_secrets=1", nil).expect(t, 200, &s)
	if s.Value == nil || *s.Value != "hunter2" {
		t.Errorf("show_secrets: %+v", s)
	}
	h.do("GET", "/v1/apps/one/secrets/TOKEN?min_version=2", nil).expectError(t, http.StatusPreconditionFailed, "")
	var del struct {
		Version uint64 `json:"version"`
	}
	h.do("DELETE", "/v1/apps/one/secrets/TOKEN", nil).expect(t, 200, &del)
	if del.Version != 2 {
		t.Errorf("delete version %d, want 2", del.Version)
	}
	h.do("GET", "/v1/apps/one/secrets/TOKEN", nil).expectError(t, 404, "secret not found")
	h.do("DELETE", "/v1/apps/one/secrets/TOKEN", nil).expectError(t, 404, "secret not found")
	h.do("POST", "/v1/apps/one/secrets/TOKEN", map[string]any{}).expectError(t, 400, "")
	h.do("POST", "/v1/apps/one/secrets/not-ok", map[string]any{"value": "x"}).expectError(t, 400, "")
}
