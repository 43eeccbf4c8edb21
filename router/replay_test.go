package router

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/pkg/replayauth"
)

func TestReplayHeaderValue(t *testing.T) {
	tests := []struct {
		name string
		in   Replay
		want string
	}{
		{"app only", Replay{App: "a"}, "app=a"},
		{"pinned", Replay{App: "a", Instance: "m1"}, "app=a;instance=m1"},
		{"everything", Replay{App: "a", Instance: "m1", State: "v1.1.m1.x", Timeout: "10s", Fallback: "prefer_self"},
			"app=a;instance=m1;state=v1.1.m1.x;timeout=10s;fallback=prefer_self"},
		{"delete headers are JSON only", Replay{App: "a", DeleteHeaders: []string{"Authorization"}}, "app=a"},
	}
	for _, tt := range tests {
		if got := tt.in.HeaderValue(); got != tt.want {
			t.Errorf("%s: HeaderValue = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestReplayJSON(t *testing.T) {
	r := Replay{App: "a", Instance: "m1", State: "s", Timeout: "800ms", Fallback: "force_self", DeleteHeaders: []string{"Authorization"}}
	var got map[string]any
	if err := json.Unmarshal(r.JSON(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"app": "a", "instance": "m1", "state": "s", "timeout": "800ms", "fallback": "force_self",
		"transform": map[string]any{"delete_headers": []any{"Authorization"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON form (-want +got):\n%s", diff)
	}
	if s := string(Replay{App: "a"}.JSON()); s != `{"app":"a"}` {
		t.Errorf("minimal JSON = %s, want {\"app\":\"a\"}", s)
	}
}

func TestFormatTimeout(t *testing.T) {
	tests := map[time.Duration]string{
		0: "", 10 * time.Second: "10s", 800 * time.Millisecond: "800ms", 1500 * time.Millisecond: "1500ms",
		time.Minute: "60s", 1500 * time.Microsecond: "2ms",
	}
	for d, want := range tests {
		if got := formatTimeout(d); got != want {
			t.Errorf("formatTimeout(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestReplayOptionsValidate(t *testing.T) {
	tests := []struct {
		opts ReplayOptions
		ok   bool
	}{
		{ReplayOptions{}, true},
		{ReplayOptions{Form: FormJSON, Timeout: 10 * time.Second, Fallback: FallbackForceSelf}, true},
		{ReplayOptions{Fallback: FallbackPreferSelf}, true},
		{ReplayOptions{Form: 7}, false},
		{ReplayOptions{Timeout: -time.Second}, false},
		{ReplayOptions{Timeout: time.Microsecond}, false},
		{ReplayOptions{Timeout: 2 * time.Hour}, false},
		{ReplayOptions{Fallback: "elsewhere"}, false},
	}
	for _, tt := range tests {
		err := tt.opts.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrReplayOptions)) {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.opts, err, tt.ok)
		}
	}
	for in, want := range map[string]Form{"header": FormHeader, "json": FormJSON} {
		if got, err := ParseForm(in); err != nil || got != want || got.String() != in {
			t.Errorf("ParseForm(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseForm("xml"); err == nil {
		t.Error("ParseForm(xml) accepted")
	}
}

// FuzzReplayReadByTheProxy builds replays from arbitrary (valid) CR values and options, writes both
// forms and reads them with the Fly Proxy simulator's grammar (internal/flysim/proxy), which the
// router does not share: the proxy must read exactly what the router meant, nothing lost or added,
// and the header value must never hold a character that would break the header (a quote, a comma,
// white space, a control byte).
func FuzzReplayReadByTheProxy(f *testing.F) {
	f.Add("alice-app", "3d8d9e1a2b3c4d", int64(60), int64(0), uint8(0), true)
	f.Add("a", "", int64(1), int64(1500), uint8(1), false)
	f.Add(strings.Repeat("z", 63), strings.Repeat("0", 63), int64(1<<31), int64(3600000), uint8(2), true)
	f.Add("app-1", "0", int64(-5), int64(10000), uint8(1), true)
	f.Fuzz(func(t *testing.T, app, machine string, expiry, timeoutMS int64, fallback uint8, deleteAuth bool) {
		if !validReplayName(app) || (machine != "" && !validReplayName(machine)) {
			return
		}
		// The two grammars disagree on one point: the simulator wants a Fly name to start with a
		// letter or digit, replayauth (and so the router) also takes a leading dash. Fly's own
		// rule (docs/fly-api.md §2: numbers, lowercase letters and dashes) says nothing of it, and
		// the manager never derives such a name.
		if app[0] == '-' || (machine != "" && machine[0] == '-') {
			return
		}
		opts := ReplayOptions{Timeout: time.Duration(timeoutMS%3_600_001) * time.Millisecond}
		if opts.Timeout < 0 {
			opts.Timeout = -opts.Timeout
		}
		opts.Fallback = []string{"", FallbackForceSelf, FallbackPreferSelf}[fallback%3]
		if err := opts.Validate(); err != nil {
			t.Fatalf("generated options %+v invalid: %v", opts, err)
		}
		state := replayauth.Sign(testRootBytes, app, machine, time.Unix(expiry, 0))
		r := replayFor(app, machine, state, opts)
		want := proxy.Replay{App: app, Instance: machine, State: state, Timeout: opts.Timeout, Fallback: opts.Fallback}

		hv := r.HeaderValue()
		if strings.ContainsAny(hv, "\",' \t\r\n") {
			t.Fatalf("header value %q is not header-safe", hv)
		}
		fromHeader, err := proxy.ParseReplayHeader(hv)
		if err != nil {
			t.Fatalf("the proxy cannot read fly-replay %q: %v", hv, err)
		}
		if diff := cmp.Diff(want, fromHeader, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("fly-replay %q as the proxy reads it (-meant +read):\n%s", hv, diff)
		}

		if deleteAuth {
			r.DeleteHeaders = []string{headerAuthorization}
			want.Transform = &proxy.ReplayTransform{DeleteHeaders: []string{headerAuthorization}}
		}
		fromJSON, err := proxy.ParseReplayJSON(r.JSON())
		if err != nil {
			t.Fatalf("the proxy cannot read the JSON form %s: %v", r.JSON(), err)
		}
		if diff := cmp.Diff(want, fromJSON, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("JSON form %s as the proxy reads it (-meant +read):\n%s", r.JSON(), diff)
		}
	})
}
