package flyapi

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCredentialFor(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		want    string
		wantErr error
	}{
		{name: "user token", token: "abc123", want: "Bearer abc123"},
		{name: "user token with Bearer", token: "Bearer abc123", want: "Bearer abc123"},
		{name: "fm2 macaroon", token: "fm2_lJPECAAAA", want: "FlyV1 fm2_lJPECAAAA"},
		{name: "fm1r macaroon", token: "fm1r_xyz", want: "FlyV1 fm1r_xyz"},
		{name: "fm1a macaroon", token: "fm1a_xyz", want: "FlyV1 fm1a_xyz"},
		{name: "macaroon printed with its scheme", token: "FlyV1 fm2_abc", want: "FlyV1 fm2_abc"},
		{name: "nested schemes", token: "Bearer FlyV1 fm2_abc", want: "FlyV1 fm2_abc"},
		{name: "nested schemes, any case and spacing", token: "bearer \tFLYV1  BeArEr fm2_abc", want: "FlyV1 fm2_abc"},
		{name: "macaroon under Bearer", token: "Bearer fm2_abc", want: "FlyV1 fm2_abc"},
		{name: "user token under FlyV1", token: "FlyV1 abc123", want: "Bearer abc123"},
		{name: "several macaroons", token: "FlyV1 fm2_a,fm1r_b", want: "FlyV1 fm2_a,fm1r_b"},
		{name: "several macaroons, spaced and each prefixed", token: "fm2_a , FlyV1 fm2_b", want: "FlyV1 fm2_a,fm2_b"},
		{name: "unknown prefix is not a macaroon", token: "fm3_abc", want: "Bearer fm3_abc"},
		{name: "prefix must be before the first underscore", token: "x_fm2_abc", want: "Bearer x_fm2_abc"},
		{name: "surrounding whitespace", token: "  abc123\n", want: "Bearer abc123"},
		{name: "empty", token: "", wantErr: ErrNoToken},
		{name: "whitespace only", token: " \n", wantErr: ErrNoToken},
		{name: "scheme only", token: "Bearer", wantErr: ErrNoToken},
		{name: "nested schemes only", token: "Bearer FlyV1 ", wantErr: ErrNoToken},
		{name: "commas only", token: "FlyV1 , ,", wantErr: ErrNoToken},
		{name: "newline inside", token: "abc\ndef", wantErr: errMalformedToken},
		{name: "non-ASCII", token: "abcé", wantErr: errMalformedToken},
		{name: "macaroon mixed with user token", token: "fm2_a,abc", wantErr: errMixedToken},
		{name: "two user tokens", token: "abc,def", wantErr: errMixedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := credentialFor(tt.token)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("credentialFor(%q) error = %v, want %v", tt.token, err, tt.wantErr)
			}
			if got.header != tt.want {
				t.Errorf("credentialFor(%q) = %q, want %q", tt.token, got.header, tt.want)
			}
			if err != nil {
				for _, part := range tokenParts(tt.token) {
					if strings.Contains(err.Error(), part) {
						t.Errorf("error %q quotes the token (%q)", err, part)
					}
				}
			}
		})
	}
}

// tokenParts returns what of a token must never appear in an error: each credential in it (as
// written and as Go would quote it, so an escaped newline is caught too), without the schemes.
func tokenParts(token string) []string {
	var parts []string
	for _, f := range strings.FieldsFunc(token, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		f = strings.TrimSpace(f)
		if len(f) < 3 || strings.EqualFold(f, "Bearer") || strings.EqualFold(f, "FlyV1") {
			continue
		}
		parts = append(parts, f, strings.Trim(strconv.Quote(f), `"`))
	}
	return parts
}

// authRecorder answers every request with an app and remembers the Authorization headers.
type authRecorder struct {
	mu      sync.Mutex
	headers []string
}

func (r *authRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Get("Authorization"))
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"id":"a1","name":"app"}`)) // a failed write fails the client's call
}

func (r *authRecorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.headers) == 0 {
		return ""
	}
	return r.headers[len(r.headers)-1]
}

func TestAuthorizationHeaderSent(t *testing.T) {
	tests := []struct {
		token string
		want  string
	}{
		{"abc123", "Bearer abc123"},
		{"FlyV1 fm2_abc", "FlyV1 fm2_abc"},
		{"Bearer FlyV1 fm2_abc,fm2_def", "FlyV1 fm2_abc,fm2_def"},
	}
	for _, tt := range tests {
		rec := &authRecorder{}
		c, _ := newTestClient(t, rec, func(o *Options) { o.Token = StaticToken(tt.token) })
		if _, err := c.GetApp(context.Background(), "app"); err != nil {
			t.Fatalf("GetApp: %v", err)
		}
		if got := rec.last(); got != tt.want {
			t.Errorf("token %q sent as %q, want %q", tt.token, got, tt.want)
		}
	}
}

func TestFileTokenRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &authRecorder{}
	c, _ := newTestClient(t, rec, func(o *Options) { o.Token = FileToken(path) })
	ctx := context.Background()

	mustGet := func(want string) {
		t.Helper()
		if _, err := c.GetApp(ctx, "app"); err != nil {
			t.Fatalf("GetApp: %v", err)
		}
		if got := rec.last(); got != want {
			t.Fatalf("sent %q, want %q", got, want)
		}
	}
	mustGet("Bearer first-token")
	mustGet("Bearer first-token") // unchanged file: cached

	// Rewritten in place (same inode, same size): the new modification time gives it away.
	if err := os.WriteFile(path, []byte("other-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	mustGet("Bearer other-token")

	// Swapped atomically the way a Kubernetes Secret volume does: a new file renamed over it.
	tmp := filepath.Join(dir, "token.new")
	if err := os.WriteFile(tmp, []byte("  FlyV1 fm2_rotated  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, later, later); err != nil { // same mtime: only the inode differs
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	mustGet("FlyV1 fm2_rotated")
}

func TestTokenSourceErrors(t *testing.T) {
	rec := &authRecorder{}
	missing := filepath.Join(t.TempDir(), "absent")
	errVault := errors.New("vault sealed")
	tests := []struct {
		name   string
		source TokenSource
		want   func(error) bool
	}{
		{"missing file", FileToken(missing), func(err error) bool { return errors.Is(err, os.ErrNotExist) }},
		{"func error", TokenFunc(func() (string, error) { return "", errVault }), func(err error) bool { return errors.Is(err, errVault) }},
		{"empty token", StaticToken("  "), func(err error) bool { return errors.Is(err, ErrNoToken) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, rec, func(o *Options) { o.Token = tt.source })
			_, err := c.GetApp(context.Background(), "app")
			if !tt.want(err) {
				t.Fatalf("GetApp error = %v", err)
			}
		})
	}
	if len(rec.headers) != 0 {
		t.Errorf("requests were sent without a token: %d", len(rec.headers))
	}
}

func TestNewRequiresToken(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, ErrNoTokenSource) {
		t.Fatalf("New without token: %v", err)
	}
}

func TestWatchTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	write := func(name, token string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(name, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(name, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now().Add(-time.Hour)
	write(path, "first-token", start)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := WatchTokenFile(ctx, path, 10*time.Millisecond)

	expect := func(what string, want bool) {
		t.Helper()
		if want {
			// A write and the Chtimes after it are two changes; the watcher may see either or both.
			time.Sleep(50 * time.Millisecond)
		}
		select {
		case <-changed:
			if !want {
				t.Fatalf("%s: reported a change", what)
			}
		case <-time.After(300 * time.Millisecond): // thirty looks at the file
			if want {
				t.Fatalf("%s: no change reported", what)
			}
		}
		if want { // the second report of a two-step write, if the watcher saw both steps
			select {
			case <-changed:
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	expect("the file as it was", false)

	write(path, "other-token", start.Add(time.Minute)) // in place: same inode, same size
	expect("rewritten in place", true)
	expect("nothing since", false)

	tmp := filepath.Join(dir, "token.new")
	write(tmp, "third-token", start.Add(time.Minute)) // same size and mtime: only the inode differs
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	expect("swapped in like a Secret volume", true)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	expect("missing for a while", false)
	write(path, "fourth-token", start.Add(2*time.Minute))
	expect("back with new contents", true)

	cancel()
	time.Sleep(50 * time.Millisecond) // the watcher returns at its next look
	write(path, "after-the-end", start.Add(3*time.Minute))
	expect("after ctx ended", false)
}
