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
	h.CreateApp("sec")
	var set wireSecrets
	h.Do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{"A": "alpha-value", "B": "beta-value"}}).Expect(t, 200, &set)
	if set.Version != 1 || len(set.Secrets) != 2 {
		t.Fatalf("first set: %+v", set)
	}
	for _, s := range set.Secrets {
		if s.Value != nil || s.Digest == "" || strings.Contains(s.Digest, "value") {
			t.Errorf("set answer exposes or lacks a digest: %+v", s)
		}
	}
	h.Do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{"B": nil, "C": "gamma"}}).Expect(t, 200, &set)
	if set.Version != 2 || len(set.Secrets) != 2 || set.Secrets[0].Name != "A" || set.Secrets[1].Name != "C" {
		t.Fatalf("unset B, set C: %+v", set)
	}

	var list wireSecrets
	h.Do("GET", "/v1/apps/sec/secrets", nil).Expect(t, 200, &list)
	if len(list.Secrets) != 2 || list.Secrets[0].Value != nil {
		t.Errorf("list without show_secrets: %+v", list)
	}
	h.Do("GET", "/v1/apps/sec/secrets?show_secrets=true", nil).Expect(t, 200, &list)
	if v := list.Secrets[0].Value; v == nil || *v != "alpha-value" {
		t.Errorf("show_secrets value %v", v)
	}
	// Same value, same digest; other value, other digest.
	h.Do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{"D": "alpha-value"}}).Expect(t, 200, &set)
	digests := map[string]string{}
	for _, s := range set.Secrets {
		digests[s.Name] = s.Digest
	}
	if digests["A"] != digests["D"] || digests["A"] == digests["C"] {
		t.Errorf("digests %v", digests)
	}

	// Both spellings of the version filter: satisfied versions answer, future ones are refused.
	for _, q := range []string{"min_version", "version"} {
		h.Do("GET", "/v1/apps/sec/secrets?"+q+"=3", nil).Expect(t, 200, nil)
		h.Do("GET", "/v1/apps/sec/secrets?"+q+"=4", nil).ExpectError(t, http.StatusPreconditionFailed, "")
		h.Do("GET", "/v1/apps/sec/secrets?"+q+"=x", nil).ExpectError(t, 400, "")
	}

	values, version := h.srv.Secrets("sec")
	if version != 3 || values["C"] != "gamma" || len(values) != 3 {
		t.Errorf("Secrets() = %v, %d", values, version)
	}

	h.Do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{}}).ExpectError(t, 400, "")
	h.Do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{"bad-name": "x"}}).ExpectError(t, 400, "")
	h.Do("POST", "/v1/apps/sec/secrets", `{"values":{"A":5}}`).ExpectError(t, 400, "")
	h.Do("GET", "/v1/apps/none/secrets", nil).ExpectError(t, 404, "app not found")
	h.As(tokenB).Do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{"X": "y"}}).ExpectError(t, 403, "")
}

func TestSingleSecret(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("one")
	var s wireSecret
	h.Do("POST", "/v1/apps/one/secrets/TOKEN", map[string]any{"value": "hunter2"}).Expect(t, http.StatusCreated, &s)
	if s.Name != "TOKEN" || s.Version != 1 || s.Value != nil || s.Digest == "" {
		t.Errorf("set one: %+v", s)
	}
	h.Do("GET", "/v1/apps/one/secrets/TOKEN", nil).Expect(t, 200, &s)
	if s.Value != nil {
		t.Errorf("value shown without show_secrets")
	}
	h.Do("GET", "/v1/apps/one/secrets/TOKEN?show_secrets=1", nil).Expect(t, 200, &s)
	if s.Value == nil || *s.Value != "hunter2" {
		t.Errorf("show_secrets: %+v", s)
	}
	h.Do("GET", "/v1/apps/one/secrets/TOKEN?min_version=2", nil).ExpectError(t, http.StatusPreconditionFailed, "")
	var del struct {
		Version uint64 `json:"version"`
	}
	h.Do("DELETE", "/v1/apps/one/secrets/TOKEN", nil).Expect(t, 200, &del)
	if del.Version != 2 {
		t.Errorf("delete version %d, want 2", del.Version)
	}
	h.Do("GET", "/v1/apps/one/secrets/TOKEN", nil).ExpectError(t, 404, "secret not found")
	h.Do("DELETE", "/v1/apps/one/secrets/TOKEN", nil).ExpectError(t, 404, "secret not found")
	h.Do("POST", "/v1/apps/one/secrets/TOKEN", map[string]any{}).ExpectError(t, 400, "")
	h.Do("POST", "/v1/apps/one/secrets/not-ok", map[string]any{"value": "x"}).ExpectError(t, 400, "")
}
