package replayauth

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary fly-replay-src headers to Verify. It must never panic, must answer one
// of the package's errors, and may accept a header only when its state is exactly the token Sign
// writes for this app and key: nothing else can pass.
func FuzzVerify(f *testing.F) {
	good := Sign(testKey, testApp, testMach, testExp)
	anyMachine := Sign(testKey, testApp, "", testExp)
	for _, seed := range []string{
		"", "state=", srcHeader(good), srcHeader(anyMachine), "state=" + good + ",region=ord",
		`state="` + good + `"`, srcHeader("v1..."), srcHeader("v1.1.."), srcHeader("v2.1.a.b"),
		srcHeader(strings.Replace(good, "v1.", "v1.0", 1)), "state=a;state=b", ";;;===,,,",
		srcHeader(Sign(otherKey, testApp, testMach, testExp)), "state=v1.9223372036854775807..AAAAAAAAAAAAAAAAAAAAAA",
		srcHeader(good) + "," + srcHeader(anyMachine), "instance=a;INSTANCE=b;state=" + good,
		srcHeader(Sign(testKey, testApp, testMach, testNow.Add(time.Hour))),
		srcHeader(Sign(testKey, testApp, "", testNow.Add(DefaultMaxLifetime+DefaultSkew))),
	} {
		f.Add(seed, int64(0))
	}
	known := []error{ErrMissing, ErrMalformed, ErrUnsupportedVersion, ErrBadMAC, ErrExpired, ErrFutureExpiry, ErrWrongMachine}
	f.Fuzz(func(t *testing.T, header string, skew int64) {
		now := testNow.Add(time.Duration(skew%3600) * time.Second)
		err := Verify(testKey, header, testApp, testMach, now)
		if err == nil {
			state, serr := StateFromHeader(header)
			if serr != nil {
				t.Fatalf("accepted %q but StateFromHeader fails: %v", header, serr)
			}
			tok, perr := parseToken(state)
			if perr != nil {
				t.Fatalf("accepted %q but its token does not parse: %v", header, perr)
			}
			expiry, perr := strconv.ParseInt(tok.expiry, 10, 64)
			if perr != nil {
				t.Fatalf("accepted %q with expiry %q: %v", header, tok.expiry, perr)
			}
			if want := Sign(testKey, testApp, tok.machine, time.Unix(expiry, 0)); state != want {
				t.Fatalf("accepted state %q, which Sign would write as %q", state, want)
			}
			if tok.machine != "" && tok.machine != testMach {
				t.Fatalf("accepted a token for machine %q", tok.machine)
			}
			if limit := now.Add(DefaultMaxLifetime + DefaultSkew).Unix(); expiry <= now.Unix() || expiry > limit {
				t.Fatalf("accepted expiry %d at %d: want it in (now, now+%d]", expiry, now.Unix(), limit-now.Unix())
			}
			return
		}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("Verify(%q) = %v, not one of the package's errors", header, err)
	})
}

// FuzzSignVerify signs arbitrary valid names and checks the token is header-safe and verifies while
// its lifetime is within DefaultMaxLifetime + DefaultSkew (and is refused as ErrFutureExpiry beyond).
func FuzzSignVerify(f *testing.F) {
	f.Add(testApp, testMach, int64(60))
	f.Add("a", "", int64(1))
	f.Add("a", "", int64(630))
	f.Add("a", "", int64(631))
	f.Add(strings.Repeat("z", 63), strings.Repeat("9", 63), int64(1<<32))
	f.Fuzz(func(t *testing.T, app, machine string, ttl int64) {
		if !ValidName(app) || (machine != "" && !ValidName(machine)) || ttl <= 0 || ttl > 1<<32 {
			return
		}
		tok := Sign(testKey, app, machine, testNow.Add(time.Duration(ttl)*time.Second))
		if strings.ContainsAny(tok, ";,=\" \t\r\n") {
			t.Fatalf("token %q is not header-safe", tok)
		}
		verifier := machine
		if verifier == "" {
			verifier = testMach
		}
		err := Verify(testKey, srcHeader(tok), app, verifier, testNow)
		if time.Duration(ttl)*time.Second > DefaultMaxLifetime+DefaultSkew {
			if !errors.Is(err, ErrFutureExpiry) {
				t.Fatalf("token for %q/%q living %ds: %v, want ErrFutureExpiry", app, machine, ttl, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("fresh token for %q/%q: %v", app, machine, err)
		}
	})
}

// FuzzConfigVerify sends one or two fly-replay-src headers through Config.Verify: two are always
// refused with ErrMultipleSources, and one gets exactly Verify's answer.
func FuzzConfigVerify(f *testing.F) {
	good := srcHeader(Sign(testKey, testApp, testMach, testExp))
	f.Add(good, good, true)
	f.Add(good, "", true)
	f.Add("instance=x;state=forged", good, true)
	f.Add(good, "", false)
	f.Add(good+","+good, "", false)
	cfg := Config{Key: testKey, App: testApp, MachineID: testMach, Now: func() time.Time { return testNow }}
	f.Fuzz(func(t *testing.T, first, second string, two bool) {
		req, err := http.NewRequest(http.MethodGet, "http://machine/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Add(HeaderSource, first)
		if two {
			req.Header.Add(HeaderSource, second)
		}
		got := cfg.Verify(req)
		if two {
			if !errors.Is(got, ErrMultipleSources) {
				t.Fatalf("two headers %q, %q: Verify = %v, want ErrMultipleSources", first, second, got)
			}
			return
		}
		want := Verify(testKey, first, testApp, testMach, testNow)
		if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
			t.Fatalf("header %q: Config.Verify = %v, Verify = %v; want the same answer", first, got, want)
		}
	})
}
