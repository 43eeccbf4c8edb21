package keys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/pkg/replayauth"
)

var rootBytes = bytes.Repeat([]byte{7}, RootKeySize)

func mustRoot(t *testing.T) Root {
	t.Helper()
	r, err := ParseRoot(rootBytes)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseRootSize(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{name: "32 bytes", in: rootBytes, ok: true},
		{name: "empty", in: nil},
		{name: "31 bytes", in: rootBytes[:31]},
		{name: "33 bytes (trailing newline)", in: append(bytes.Clone(rootBytes), '\n')},
		{name: "64 hex characters", in: []byte(strings.Repeat("07", 32))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRoot(tt.in)
			if tt.ok {
				if err != nil || r.IsZero() {
					t.Fatalf("ParseRoot = %v, zero=%v; want a root", err, r.IsZero())
				}
				return
			}
			if !errors.Is(err, ErrRootKeySize) {
				t.Fatalf("ParseRoot = %v, want ErrRootKeySize", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("got %d bytes", len(tt.in))) {
				t.Errorf("error %q does not say how many bytes it got", err)
			}
		})
	}
}

func TestReadRootFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, RootKeySecretKey)
	if err := os.WriteFile(good, rootBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := ReadRootFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.ReplayKey(App{FlyApp: "app"}), mustRoot(t).ReplayKey(App{FlyApp: "app"})) {
		t.Error("a root read from a file derives other keys than the same bytes parsed")
	}

	secretText := "this-is-secret-material-of-wrong-size"
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte(secretText), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadRootFile(bad)
	if !errors.Is(err, ErrRootKeySize) {
		t.Fatalf("ReadRootFile(wrong size) = %v, want ErrRootKeySize", err)
	}
	if strings.Contains(err.Error(), secretText) || !strings.Contains(err.Error(), bad) {
		t.Errorf("error %q should name the file and never its content", err)
	}

	_, err = ReadRootFile(filepath.Join(dir, "missing"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadRootFile(missing) = %v, want os.ErrNotExist", err)
	}
}

// hkdfSHA256 is RFC 5869 written out with crypto/hmac only, to check crypto/hkdf is used as
// documented (salt, info, length) without trusting the code under test.
func hkdfSHA256(secret, salt []byte, info string, n int) []byte {
	ext := hmac.New(sha256.New, salt)
	ext.Write(secret)
	prk := ext.Sum(nil)
	var out, prev []byte
	for i := byte(1); len(out) < n; i++ {
		h := hmac.New(sha256.New, prk)
		h.Write(prev)
		h.Write([]byte(info))
		h.Write([]byte{i})
		prev = h.Sum(nil)
		out = append(out, prev...)
	}
	return out[:n]
}

func TestDerivationsFollowRFC5869(t *testing.T) {
	r := mustRoot(t)
	app := App{FlyApp: "alice-app", Owner: "0b7c4d2e-uid", Generation: 3}
	wantReplay := hkdfSHA256(rootBytes, []byte("hangar.dev/keys/v1"), "hangar.dev/v2 replay-key alice-app 0b7c4d2e-uid 3", 32)
	if got := r.ReplayKey(app); !bytes.Equal(got, wantReplay) {
		t.Errorf("ReplayKey = %x, want %x", got, wantReplay)
	}
	wantToken := base64.RawURLEncoding.EncodeToString(
		hkdfSHA256(rootBytes, []byte("hangar.dev/keys/v1"), "hangar.dev/v2 management-token alice-app 0b7c4d2e-uid 3", 32))
	if got := r.ManagementToken(app); got != wantToken {
		t.Errorf("ManagementToken = %q, want %q", got, wantToken)
	}
}

func TestDerivationsAreDistinctAndStable(t *testing.T) {
	r := mustRoot(t)
	other, err := ParseRoot(bytes.Repeat([]byte{8}, RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	record := func(what, v string) {
		if prev, dup := seen[v]; dup {
			t.Errorf("%s equals %s", what, prev)
		}
		seen[v] = what
	}
	// Every part of an app's identity separates its keys: the Fly app, the owning UserApp (a
	// recreated UserApp, or another tenant reusing the name) and the generation (a rotation).
	for _, app := range []App{
		{FlyApp: "alice", Owner: "uid-1", Generation: 1},
		{FlyApp: "bob", Owner: "uid-1", Generation: 1},
		{FlyApp: "alice", Owner: "uid-2", Generation: 1},
		{FlyApp: "alice", Owner: "uid-1", Generation: 2},
		{FlyApp: "a", Owner: "", Generation: 0},
	} {
		name := fmt.Sprintf("%+v", app)
		record("replay key of "+name, string(r.ReplayKey(app)))
		record("management token of "+name, r.ManagementToken(app))
		record("other root's replay key of "+name, string(other.ReplayKey(app)))
		if !bytes.Equal(r.ReplayKey(app), mustRoot(t).ReplayKey(app)) || r.ManagementToken(app) != mustRoot(t).ManagementToken(app) {
			t.Errorf("derivations for %s are not stable", name)
		}
	}
	// The raw management token bytes must also differ from the replay key of the same app.
	raw, err := base64.RawURLEncoding.DecodeString(r.ManagementToken(App{FlyApp: "alice"}))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(raw, r.ReplayKey(App{FlyApp: "alice"})) {
		t.Error("management token and replay key share their bytes")
	}
}

func TestManagementTokenShape(t *testing.T) {
	tok := mustRoot(t).ManagementToken(App{FlyApp: "alice"})
	raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil {
		t.Fatalf("token %q is not unpadded base64url: %v", tok, err)
	}
	if len(raw)*8 < 256 {
		t.Errorf("token carries %d bits, want >= 256", len(raw)*8)
	}
	if strings.ContainsAny(tok, "+/= ") {
		t.Errorf("token %q is not URL-safe", tok)
	}
}

func TestReplayKeyWorksWithReplayauth(t *testing.T) {
	key := mustRoot(t).ReplayKey(App{FlyApp: "alice"})
	if len(key) != ReplayKeySize {
		t.Fatalf("replay key has %d bytes, want %d", len(key), ReplayKeySize)
	}
	text := EncodeReplayKey(key)
	t.Setenv(ReplayKeySecret, text)
	t.Setenv(replayauth.EnvApp, "alice")
	t.Setenv(replayauth.EnvMachineID, "3d8d9e1a2b3c4d")
	cfg, err := replayauth.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	state := replayauth.Sign(key, "alice", "3d8d9e1a2b3c4d", now.Add(time.Minute))
	if err := replayauth.VerifyState(cfg.Key, state, cfg.App, cfg.MachineID, now); err != nil {
		t.Fatalf("a state signed with the derived key does not verify from the Fly secret: %v", err)
	}
	decoded, err := DecodeReplayKey(text)
	if err != nil || !bytes.Equal(decoded, key) {
		t.Fatalf("DecodeReplayKey(EncodeReplayKey(k)) = %x, %v", decoded, err)
	}
}

func TestRootNeverPrintsItsKey(t *testing.T) {
	r := mustRoot(t)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, r)
		if out != "keys.Root(redacted)" {
			t.Errorf("Sprintf(%q, root) = %q, want the placeholder", format, out)
		}
	}
	if r.MarshalLog() != "keys.Root(redacted)" {
		t.Error("MarshalLog does not hide the key")
	}
}

func TestZeroRootPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a zero Root derived a key")
		}
	}()
	var r Root
	r.ReplayKey(App{FlyApp: "alice"})
}

func TestGenerateRootKey(t *testing.T) {
	a, b := GenerateRootKey(), GenerateRootKey()
	if len(a) != RootKeySize || bytes.Equal(a, b) {
		t.Fatalf("GenerateRootKey gave %d bytes, equal twice: %v", len(a), bytes.Equal(a, b))
	}
	if _, err := ParseRoot(a); err != nil {
		t.Fatal(err)
	}
}
