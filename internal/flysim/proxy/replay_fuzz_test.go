package proxy

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http/httpguts"
)

// FuzzParseReplayHeader: the header parser never panics, fails only with ErrReplayMalformed, and
// whatever it accepts is header-safe and survives a write and a second parse unchanged.
func FuzzParseReplayHeader(f *testing.F) {
	for _, seed := range []string{
		"app=alice;instance=3d8d413b29d089;state=v1.1.m.x", `region="sjc,any";app=a`, "region=sjc,any;app=a",
		"app=a,state=s", "timeout=800ms;fallback=force_self", `state="a;b\"c"`, "elsewhere=true", ";;", `"`,
		"=", "app=a;app=b", `state="\`, "prefer_instance=x;elsewhere=false;timeout=1h",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseReplayHeader(in)
		if err != nil {
			if !errors.Is(err, ErrReplayMalformed) {
				t.Fatalf("ParseReplayHeader(%q) = %v, not ErrReplayMalformed", in, err)
			}
			return
		}
		checkAccepted(t, r)
		back, err := ParseReplayHeader(r.HeaderValue())
		if err != nil {
			t.Fatalf("accepted %q but its rewrite %q fails: %v", in, r.HeaderValue(), err)
		}
		if diff := cmp.Diff(r, back); diff != "" {
			t.Fatalf("rewrite of %q changed it (-first +second):\n%s", in, diff)
		}
	})
}

// FuzzParseReplayJSON: the same for the JSON form, transform included.
func FuzzParseReplayJSON(f *testing.F) {
	for _, seed := range []string{
		`{"app":"a","instance":"i","state":"s"}`, `{"region":"iad,us","elsewhere":true,"timeout":"10s","fallback":"prefer_self"}`,
		`{"transform":{"path":"/x?y","delete_headers":["c"],"set_headers":[{"name":"n","value":"v"}]}}`,
		`{"cache":{"ttl":10},"allow_bypass":true}`, `null`, `{}`, `{"app":"a"}{}`, `[`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseReplayJSON(in)
		if err != nil {
			if !errors.Is(err, ErrReplayMalformed) {
				t.Fatalf("ParseReplayJSON(%q) = %v, not ErrReplayMalformed", in, err)
			}
			return
		}
		checkAccepted(t, r)
		back, err := ParseReplayJSON(r.JSON())
		if err != nil {
			t.Fatalf("accepted %q but its rewrite %s fails: %v", in, r.JSON(), err)
		}
		if diff := cmp.Diff(r, back); diff != "" {
			t.Fatalf("rewrite of %q changed it (-first +second):\n%s", in, diff)
		}
	})
}

// checkAccepted: everything an accepted replay carries into request headers must be header-safe.
func checkAccepted(t *testing.T, r Replay) {
	t.Helper()
	if !httpguts.ValidHeaderFieldValue(r.State) || !httpguts.ValidHeaderFieldValue(r.HeaderValue()) {
		t.Fatalf("accepted a state that is not header-safe: %q", r.State)
	}
	if r.Fallback != "" && r.Fallback != FallbackForceSelf && r.Fallback != FallbackPreferSelf {
		t.Fatalf("accepted fallback %q", r.Fallback)
	}
	if r.Transform != nil {
		for _, h := range r.Transform.SetHeaders {
			if !httpguts.ValidHeaderFieldName(h.Name) || !httpguts.ValidHeaderFieldValue(h.Value) {
				t.Fatalf("accepted header %q: %q", h.Name, h.Value)
			}
		}
	}
}
