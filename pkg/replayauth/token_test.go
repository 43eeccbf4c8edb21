package replayauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	testKey   = bytes.Repeat([]byte{0x42}, KeySize)
	otherKey  = bytes.Repeat([]byte{0x43}, KeySize)
	testNow   = time.Unix(1_800_000_000, 0)
	testExp   = testNow.Add(time.Minute)
	testApp   = "hangar-alice-3k2j"
	testMach  = "3d8d9e1a2b3c4d"
	otherMach = "9e9e9e9e9e9e9e"
)

func srcHeader(state string) string {
	return "instance=148ed193b95948;region=ord;t=1800000000000000;state=" + state
}

func TestSignFormat(t *testing.T) {
	tok := Sign(testKey, testApp, testMach, testExp)
	parts := strings.Split(tok, ".")
	if len(parts) != 4 {
		t.Fatalf("token %q has %d parts, want 4", tok, len(parts))
	}
	if parts[0] != "v1" || parts[1] != "1800000060" || parts[2] != testMach {
		t.Errorf("token %q: want v1.1800000060.%s.<mac>", tok, testMach)
	}
	// The MAC is recomputed here from the documented recipe, as another language would.
	h := hmac.New(sha256.New, testKey)
	h.Write([]byte("v1|" + testApp + "|" + testMach + "|1800000060"))
	want := base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
	if parts[3] != want {
		t.Errorf("mac = %q, want %q (the documented recipe)", parts[3], want)
	}
	if strings.ContainsAny(tok, ";,=\"' \t") {
		t.Errorf("token %q holds a character that is not header-safe", tok)
	}
	if len(tok) > 64 {
		t.Errorf("token is %d bytes, want it short (<= 64)", len(tok))
	}
}

func TestVerify(t *testing.T) {
	bound := Sign(testKey, testApp, testMach, testExp)
	anyMachine := Sign(testKey, testApp, "", testExp)
	parts := strings.Split(bound, ".")
	// A token whose expiry was moved later by an attacker: the MAC no longer matches.
	laterExpiry := strings.Join([]string{parts[0], "1900000000", parts[2], parts[3]}, ".")
	otherMachine := strings.Join([]string{parts[0], parts[1], otherMach, parts[3]}, ".")
	// Flip a character in the middle: the last one also carries padding bits strict base64 checks.
	flippedMAC := parts[3][:10] + flip(parts[3][10]) + parts[3][11:]

	tests := []struct {
		name    string
		key     []byte
		header  string
		app     string
		machine string
		now     time.Time
		want    error
	}{
		{name: "bound to this machine", header: srcHeader(bound), want: nil},
		{name: "any machine of the app", header: srcHeader(anyMachine), want: nil},
		{name: "any machine, another machine verifies", header: srcHeader(anyMachine), machine: otherMach, want: nil},
		{name: "state first, comma separated", header: "state=" + bound + ",instance=x,region=ord", want: nil},
		{name: "quoted state", header: `instance=x;state="` + bound + `"`, want: nil},
		{name: "spaces around fields", header: "instance=x ; state = " + bound + " ", want: nil},
		{name: "one second before expiry", header: srcHeader(bound), now: testExp.Add(-time.Second), want: nil},
		{name: "at expiry", header: srcHeader(bound), now: testExp, want: ErrExpired},
		{name: "long after expiry", header: srcHeader(bound), now: testExp.Add(time.Hour), want: ErrExpired},
		{name: "bound to another machine", header: srcHeader(bound), machine: otherMach, want: ErrWrongMachine},
		{name: "machine part swapped", header: srcHeader(otherMachine), machine: otherMach, want: ErrBadMAC},
		{name: "expiry moved later", header: srcHeader(laterExpiry), want: ErrBadMAC},
		{name: "mac flipped", header: srcHeader(strings.Join([]string{parts[0], parts[1], parts[2], flippedMAC}, ".")), want: ErrBadMAC},
		{name: "other app's key", key: otherKey, header: srcHeader(bound), want: ErrBadMAC},
		{name: "other app name", app: "hangar-bob-9x8y", header: srcHeader(bound), want: ErrBadMAC},
		{name: "no header", header: "", want: ErrMissing},
		{name: "no state field", header: "instance=x;region=ord;t=1", want: ErrMissing},
		{name: "empty state", header: "instance=x;state=", want: ErrMissing},
		{name: "two state fields", header: "state=" + bound + ";state=" + anyMachine, want: ErrMultipleSources},
		{name: "two state fields are malformed too", header: "state=" + bound + ";state=" + anyMachine, want: ErrMalformed},
		{name: "two sources folded into one value", header: srcHeader(bound) + ", " + srcHeader(anyMachine), want: ErrMultipleSources},
		{name: "folded, the state in the second only", header: "instance=a;region=ord;t=1, " + srcHeader(bound), want: ErrMultipleSources},
		{name: "folded, the state in the first only", header: srcHeader(bound) + ", instance=b;region=ams;t=2", want: ErrMultipleSources},
		{name: "instance twice", header: "instance=a;instance=b;state=" + bound, want: ErrMultipleSources},
		{name: "t twice in another case", header: "t=1;T=2;state=" + bound, want: ErrMultipleSources},
		{name: "a field Fly does not write, twice", header: "x=1;x=2;state=" + bound, want: nil},
		{name: "expires exactly max lifetime + skew ahead", header: srcHeader(Sign(testKey, testApp, testMach, testNow.Add(DefaultMaxLifetime+DefaultSkew))), want: nil},
		{name: "expires one second further", header: srcHeader(Sign(testKey, testApp, testMach, testNow.Add(DefaultMaxLifetime+DefaultSkew+time.Second))), want: ErrFutureExpiry},
		{name: "expires in 2100", header: srcHeader(Sign(testKey, testApp, "", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))), want: ErrFutureExpiry},
		{name: "machine clock an hour behind", header: srcHeader(bound), now: testNow.Add(-time.Hour), want: ErrFutureExpiry},
		{name: "machine clock behind by the skew", header: srcHeader(Sign(testKey, testApp, testMach, testNow.Add(DefaultMaxLifetime))), now: testNow.Add(-DefaultSkew), want: nil},
		{name: "future expiry on another key is a bad MAC", key: otherKey, header: srcHeader(Sign(testKey, testApp, testMach, testNow.Add(time.Hour))), want: ErrBadMAC},
		{name: "unversioned", header: srcHeader("garbage"), want: ErrMalformed},
		{name: "version 2", header: srcHeader("v2" + bound[2:]), want: ErrUnsupportedVersion},
		{name: "three parts", header: srcHeader("v1.1800000060." + parts[3]), want: ErrMalformed},
		{name: "five parts", header: srcHeader(bound + ".x"), want: ErrMalformed},
		{name: "expiry not a number", header: srcHeader("v1.18e8." + testMach + "." + parts[3]), want: ErrMalformed},
		{name: "expiry leading zero", header: srcHeader("v1.01800000060." + testMach + "." + parts[3]), want: ErrMalformed},
		{name: "expiry negative", header: srcHeader("v1.-1." + testMach + "." + parts[3]), want: ErrMalformed},
		{name: "expiry overflows", header: srcHeader("v1.99999999999999999999." + testMach + "." + parts[3]), want: ErrMalformed},
		{name: "machine upper case", header: srcHeader("v1.1800000060.ABC." + parts[3]), want: ErrMalformed},
		{name: "mac too short", header: srcHeader("v1.1800000060." + testMach + "." + parts[3][:20]), want: ErrMalformed},
		{name: "mac not base64url", header: srcHeader("v1.1800000060." + testMach + "." + strings.Repeat("+", 22)), want: ErrMalformed},
		{name: "no key", key: []byte{}, header: srcHeader(bound), want: ErrKey},
		{name: "short key", key: testKey[:15], header: srcHeader(bound), want: ErrKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, app, machine, now := testKey, testApp, testMach, testNow
			if tt.key != nil {
				key = tt.key
			}
			if tt.app != "" {
				app = tt.app
			}
			if tt.machine != "" {
				machine = tt.machine
			}
			if !tt.now.IsZero() {
				now = tt.now
			}
			err := Verify(key, tt.header, app, machine, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestVerifyErrorsNeverHoldTheKey(t *testing.T) {
	hexKey := hex.EncodeToString(testKey)
	for _, header := range []string{"", srcHeader("x"), srcHeader(Sign(otherKey, testApp, "", testExp))} {
		err := Verify(testKey, header, testApp, testMach, testNow)
		if err == nil {
			t.Fatalf("Verify(%q) = nil, want an error", header)
		}
		if strings.Contains(err.Error(), hexKey) || strings.Contains(err.Error(), string(testKey)) {
			t.Errorf("error %q holds the key", err)
		}
	}
}

func TestSignClampsTimesBefore1970(t *testing.T) {
	tok := Sign(testKey, testApp, "", time.Time{})
	if err := VerifyState(testKey, tok, testApp, testMach, testNow); !errors.Is(err, ErrExpired) {
		t.Fatalf("token for the zero time: Verify = %v, want ErrExpired", err)
	}
}

func TestSignPanicsOnNamesThatWouldBreakTheHeader(t *testing.T) {
	tests := []struct {
		name         string
		key          []byte
		app, machine string
	}{
		{name: "short key", key: testKey[:8], app: testApp},
		{name: "empty app", key: testKey, app: ""},
		{name: "semicolon in machine", key: testKey, app: testApp, machine: "a;b"},
		{name: "dot in machine", key: testKey, app: testApp, machine: "a.b"},
		{name: "pipe in app", key: testKey, app: "a|b"},
		{name: "app too long", key: testKey, app: strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("Sign did not panic")
				}
			}()
			Sign(tt.key, tt.app, tt.machine, testExp)
		})
	}
}

func TestValidName(t *testing.T) {
	tests := map[string]bool{
		"hangar-alice": true, "3d8d9e1a2b3c4d": true, "a": true, strings.Repeat("a", 63): true,
		"": false, "Alice": false, "a.b": false, "a_b": false, strings.Repeat("a", 64): false, "a b": false,
	}
	for name, want := range tests {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestLifetimeDefaultsMatchTheRouter pins the documented numbers of the recipe for other languages:
// a state may expire at most 630 seconds after now.
func TestLifetimeDefaultsMatchTheRouter(t *testing.T) {
	if DefaultMaxLifetime != 10*time.Minute || DefaultSkew != 30*time.Second {
		t.Fatalf("DefaultMaxLifetime %v, DefaultSkew %v; the package doc says 600 s and 30 s", DefaultMaxLifetime, DefaultSkew)
	}
}

func TestStateFromHeaders(t *testing.T) {
	tok := Sign(testKey, testApp, testMach, testExp)
	tests := []struct {
		name   string
		values []string
		want   error
	}{
		{name: "one", values: []string{srcHeader(tok)}},
		{name: "none", values: nil, want: ErrMissing},
		{name: "two, same value", values: []string{srcHeader(tok), srcHeader(tok)}, want: ErrMultipleSources},
		{name: "two, one empty", values: []string{srcHeader(tok), ""}, want: ErrMultipleSources},
		{name: "one holding two", values: []string{srcHeader(tok) + "," + srcHeader(tok)}, want: ErrMultipleSources},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, err := StateFromHeaders(tt.values)
			if tt.want == nil {
				if err != nil || state != tok {
					t.Fatalf("StateFromHeaders = %q, %v; want the token", state, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("StateFromHeaders = %v, want %v", err, tt.want)
			}
		})
	}
	if errors.Is(ErrMultipleSources, ErrMissing) || errors.Is(ErrMalformed, ErrMultipleSources) {
		t.Error("ErrMultipleSources must be told apart from ErrMissing and from other malformed states")
	}
}
