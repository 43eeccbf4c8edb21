package proxy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseReplayHeader(t *testing.T) {
	tests := []struct {
		in      string
		want    Replay
		wantErr string // substring of the error; "" means success
	}{
		{in: "app=alice", want: Replay{App: "alice"}},
		{in: "app=alice;instance=3d8d413b29d089;state=v1.1767225660.3d8d413b29d089.AAAAAAAAAAAAAAAAAAAAAA",
			want: Replay{App: "alice", Instance: "3d8d413b29d089", State: "v1.1767225660.3d8d413b29d089.AAAAAAAAAAAAAAAAAAAAAA"}},
		{in: ` app = alice ; prefer_instance=00bb33ff `, want: Replay{App: "alice", PreferInstance: "00bb33ff"}},
		{in: `region="sjc,any";app=target-app`, want: Replay{Regions: []string{"sjc", "any"}, App: "target-app"}},
		{in: `region="iad, ord ,us"`, want: Replay{Regions: []string{"iad", "ord", "us"}}},
		{in: "region=sjc,any;app=a", want: Replay{Regions: []string{"sjc", "any"}, App: "a"}}, // unquoted list: lenient
		{in: "app=a,state=s", want: Replay{App: "a", State: "s"}},                             // the guide's comma form
		{in: "APP=a;Elsewhere=true", want: Replay{App: "a", Elsewhere: true}},
		{in: "elsewhere=false", want: Replay{}},
		{in: "app=my-worker;timeout=800ms;fallback=force_self", want: Replay{App: "my-worker", Timeout: 800 * time.Millisecond, Fallback: FallbackForceSelf}},
		{in: "timeout=10s;fallback=prefer_self", want: Replay{Timeout: 10 * time.Second, Fallback: FallbackPreferSelf}},
		{in: `state="a;b,c=d \"q\" \\"`, want: Replay{State: `a;b,c=d "q" \`}},
		{in: "state=abc==", want: Replay{State: "abc=="}},

		{in: "", wantErr: "empty value"},
		{in: "   ", wantErr: "empty value"},
		{in: "app", wantErr: "not key=value"},
		{in: "=alice", wantErr: "not key=value"},
		{in: "app=alice;", wantErr: "not key=value"},
		{in: "app=", wantErr: `"app" is empty`},
		{in: "app=a;app=b", wantErr: "given twice"},
		{in: "app=a;App=b", wantErr: "given twice"},
		{in: "bogus=1", wantErr: `unknown field "bogus"`},
		{in: "cache=/x/*", wantErr: "unknown field"}, // the cache is a response header of its own, not a field
		{in: "app=Alice", wantErr: "not a Fly name"},
		{in: "app=a_b", wantErr: "not a Fly name"},
		{in: "instance=" + strings.Repeat("a", 64), wantErr: "not a Fly name"},
		{in: "region=sjc1", wantErr: "region codes"},
		{in: `region="sjc,,any"`, wantErr: "region codes"},
		{in: "timeout=10", wantErr: "positive duration"},
		{in: "timeout=-1s", wantErr: "positive duration"},
		{in: "timeout=0s", wantErr: "positive duration"},
		{in: "fallback=self", wantErr: "force_self or prefer_self"},
		{in: "elsewhere=yes", wantErr: "true or false"},
		{in: `state="unterminated`, wantErr: "unterminated"},
		{in: `state="a"b"c"`, wantErr: "bad quoting"},
		{in: `state=a"b"`, wantErr: "must be quoted"},
		{in: "state=a b", wantErr: "must be quoted"},
		{in: "state=\"a\x01b\"", wantErr: "not header-safe"},
		{in: "state=" + strings.Repeat("s", maxReplayFieldLength+1), wantErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseReplayHeader(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestParseReplayJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Replay
		wantErr string
	}{
		{name: "full", in: `{"region":"iad,us","instance":"i1","prefer_instance":"i2","app":"a","state":"s","elsewhere":true,
			"timeout":"10s","fallback":"force_self",
			"transform":{"path":"/new?x=y","delete_headers":["cookie"],"set_headers":[{"name":"X-A","value":"b"}]},
			"cache":{"prefix":"/some/path/*","ttl":60},"allow_bypass":true}`,
			want: Replay{Regions: []string{"iad", "us"}, Instance: "i1", PreferInstance: "i2", App: "a", State: "s", Elsewhere: true,
				Timeout: 10 * time.Second, Fallback: FallbackForceSelf,
				Transform: &ReplayTransform{Path: "/new?x=y", DeleteHeaders: []string{"cookie"}, SetHeaders: []ReplayHeader{{Name: "X-A", Value: "b"}}}}},
		{name: "app only", in: `{"app":"alice"}`, want: Replay{App: "alice"}},
		{name: "empty object", in: `{}`, want: Replay{}},
		{name: "state with separators needs no quoting", in: `{"state":"a;b,c"}`, want: Replay{State: "a;b,c"}},
		{name: "white space around", in: " \n{\"app\":\"a\"}\n ", want: Replay{App: "a"}},

		{name: "empty", in: ``, wantErr: "not a replay object"},
		{name: "null", in: `null`, wantErr: "not a replay object"},
		{name: "array", in: `[]`, wantErr: "not a replay object"},
		{name: "truncated", in: `{"app":"a"`, wantErr: "not a replay object"},
		{name: "unknown field", in: `{"app":"a","ap":"b"}`, wantErr: "not a replay object"},
		{name: "unknown transform field", in: `{"transform":{"paths":"/"}}`, wantErr: "not a replay object"},
		{name: "wrong type", in: `{"elsewhere":"true"}`, wantErr: "not a replay object"},
		{name: "timeout as number", in: `{"timeout":10}`, wantErr: "not a replay object"},
		{name: "trailing object", in: `{"app":"a"}{}`, wantErr: "data after the object"},
		{name: "trailing garbage", in: `{"app":"a"} x`, wantErr: "data after the object"},
		{name: "bad app", in: `{"app":"A"}`, wantErr: "not a Fly name"},
		{name: "bad timeout", in: `{"timeout":"soon"}`, wantErr: "positive duration"},
		{name: "bad fallback", in: `{"fallback":"self"}`, wantErr: "force_self or prefer_self"},
		{name: "relative path", in: `{"transform":{"path":"new"}}`, wantErr: "transform.path"},
		{name: "absolute URL", in: `{"transform":{"path":"http://evil/x"}}`, wantErr: "transform.path"},
		{name: "path with fragment", in: `{"transform":{"path":"/a#b"}}`, wantErr: "transform.path"},
		{name: "bad header name", in: `{"transform":{"delete_headers":["bad header"]}}`, wantErr: "delete_headers"},
		{name: "bad header value", in: `{"transform":{"set_headers":[{"name":"X","value":"a\nb"}]}}`, wantErr: "set_headers"},
		{name: "state with newline", in: `{"state":"a\r\nX-Injected: 1"}`, wantErr: "not header-safe"},
		{name: "too large", in: `{"state":"` + strings.Repeat("s", maxReplayJSON) + `"}`, wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReplayJSON([]byte(tt.in))
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func checkParse(t *testing.T, got Replay, err error, want Replay, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if !errors.Is(err, ErrReplayMalformed) || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error %v, want ErrReplayMalformed mentioning %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("parsed (-want +got):\n%s", diff)
	}
}

func TestReplayErrorsNeverQuoteTheState(t *testing.T) {
	const secret = "v1.1767225660.3d8d413b29d089.SECRETSECRETSECRETSECR"
	for _, in := range []string{"state=" + secret + ";state=" + secret, "state=" + secret + ";bogus=" + secret, `state="` + secret} {
		if _, err := ParseReplayHeader(in); err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("ParseReplayHeader(%q) error %v", in, err)
		}
	}
}

func TestReplayFormsRoundTrip(t *testing.T) {
	replays := []Replay{
		{App: "alice", Instance: "3d8d413b29d089", State: "v1.1.m.x"},
		{Regions: []string{"sjc", "any"}, PreferInstance: "a1", Elsewhere: true, Timeout: 1500 * time.Millisecond, Fallback: FallbackPreferSelf},
		{State: `quoted; "state", with=all \ kinds`},
	}
	for _, r := range replays {
		back, err := ParseReplayHeader(r.HeaderValue())
		if err != nil {
			t.Fatalf("header %q: %v", r.HeaderValue(), err)
		}
		if diff := cmp.Diff(r, back); diff != "" {
			t.Errorf("header round trip of %q (-want +got):\n%s", r.HeaderValue(), diff)
		}
		r.Transform = &ReplayTransform{Path: "/x?y=z", DeleteHeaders: []string{"Cookie"}, SetHeaders: []ReplayHeader{{Name: "X", Value: "1"}}}
		back, err = ParseReplayJSON(r.JSON())
		if err != nil {
			t.Fatalf("JSON %s: %v", r.JSON(), err)
		}
		if diff := cmp.Diff(r, back); diff != "" {
			t.Errorf("JSON round trip of %s (-want +got):\n%s", r.JSON(), diff)
		}
	}
}
