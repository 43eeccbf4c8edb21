package router

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/keys"

	"github.com/golang-jwt/jwt/v5"
)

func TestTokenVerifier(t *testing.T) {
	v := testVerifier(t)
	claims := func(mutate func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := jwt.RegisteredClaims{
			Audience:  jwt.ClaimStrings{"secure-app"},
			IssuedAt:  jwt.NewNumericDate(testNow),
			ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Minute)),
		}
		if mutate != nil {
			mutate(&c)
		}
		return c
	}
	valid := signToken(t, tokenKey, claims(nil))
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es256, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims(nil)).SignedString(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, claims(nil)).SignedString(tokenKey)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")

	tests := []struct {
		name  string
		token string
		aud   string
		want  error
	}{
		{"valid", valid, "secure-app", nil},
		{"one of several audiences", signToken(t, tokenKey, claims(func(c *jwt.RegisteredClaims) {
			c.Audience = jwt.ClaimStrings{"other", "secure-app"}
		})), "secure-app", nil},
		{"expiring within the leeway", signToken(t, tokenKey, claims(func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-2 * time.Second))
		})), "secure-app", nil},
		{"empty", "", "secure-app", ErrTokenMissing},
		{"another app", valid, "alice-app", ErrTokenAudience},
		{"no audience", signToken(t, tokenKey, claims(func(c *jwt.RegisteredClaims) { c.Audience = nil })), "secure-app", ErrTokenAudience},
		{"wrong key", signToken(t, []byte(strings.Repeat("w", 32)), claims(nil)), "secure-app", ErrTokenInvalid},
		{"right length, wrong signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), "secure-app", ErrTokenInvalid},
		{"payload swapped", parts[0] + "." + jwtSegment(`{"aud":"secure-app","exp":9999999999}`) + "." + parts[2], "secure-app", ErrTokenInvalid},
		{"expired", signToken(t, tokenKey, claims(func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Minute))
		})), "secure-app", ErrTokenInvalid},
		{"no expiry", signToken(t, tokenKey, claims(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })), "secure-app", ErrTokenInvalid},
		{"lives too long", signToken(t, tokenKey, claims(func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(time.Hour))
		})), "secure-app", ErrTokenLifetime},
		{"issued in the future", signToken(t, tokenKey, claims(func(c *jwt.RegisteredClaims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Minute))
		})), "secure-app", ErrTokenInvalid},
		{"not valid yet", signToken(t, tokenKey, claims(func(c *jwt.RegisteredClaims) {
			c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Minute))
		})), "secure-app", ErrTokenInvalid},
		{"alg none", none, "secure-app", ErrTokenInvalid},
		{"ES256", es256, "secure-app", ErrTokenInvalid},
		{"HS512 with the right key", hs512, "secure-app", ErrTokenInvalid},
		{"garbage", "a.b.c", "secure-app", ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(tt.token, tt.aud)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error %q quotes the token", err)
			}
		})
	}
}

func jwtSegment(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestTokenVerifierIssuer(t *testing.T) {
	v, err := NewTokenVerifier(tokenKey, TokenOptions{Issuer: "coordinator", Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.RegisteredClaims{Audience: jwt.ClaimStrings{"a"}, ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Minute))}
	if err := v.Verify(signToken(t, tokenKey, c), "a"); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("token without issuer: %v, want ErrTokenInvalid", err)
	}
	c.Issuer = "coordinator"
	if err := v.Verify(signToken(t, tokenKey, c), "a"); err != nil {
		t.Errorf("token with the issuer: %v", err)
	}
}

func TestTokenKeys(t *testing.T) {
	if _, err := NewTokenVerifier([]byte("short"), TokenOptions{}); !errors.Is(err, ErrTokenKey) {
		t.Errorf("short key: %v, want ErrTokenKey", err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, err := ReadTokenKeyFile(write("ok", string(tokenKey)+"\n"))
	if err != nil || string(key) != string(tokenKey) {
		t.Errorf("key with a newline: %q, %v", key, err)
	}
	if _, err := ReadTokenKeyFile(write("short", "secret-value\n")); !errors.Is(err, ErrTokenKey) || strings.Contains(err.Error(), "secret-value") {
		t.Errorf("short key file: %v, want ErrTokenKey without the content", err)
	}
	if _, err := ReadTokenKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER   abc.def-ghi_jkl~mno+p/q==", "abc.def-ghi_jkl~mno+p/q==", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer  ", "", false},
		{"Bearerabc", "", false},
		{"Basic abc", "", false},
		{"Bearer abc def", "", false},
		{"Bearer abc\t", "", false},
		{"Bearer =abc", "", false},
		{"Bearer ab=c", "", false},
		{"Bearer a,b", "", false},
		{"", "", false},
		{"abc", "", false},
	}
	for _, tt := range tests {
		got, ok := bearerToken(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestManagementTokenMatches(t *testing.T) {
	want := []byte(testRoot(t).ManagementToken(keys.App{FlyApp: "alice-app", Generation: 1}))
	other := testRoot(t).ManagementToken(keys.App{FlyApp: "bob-app", Generation: 1})
	sameLength := strings.Repeat("A", len(want))
	tests := []struct {
		name   string
		header string
		ok     bool
	}{
		{"right", "Bearer " + string(want), true},
		{"empty", "", false},
		{"empty bearer", "Bearer ", false},
		{"wrong", "Bearer wrong", false},
		{"right length, wrong token", "Bearer " + sameLength, false},
		{"last character changed", "Bearer " + string(want[:len(want)-1]) + "x", false},
		{"another app's token", "Bearer " + other, false},
		{"prefix of the token", "Bearer " + string(want[:20]), false},
		{"token and more", "Bearer " + string(want) + "AA", false},
		{"no scheme", string(want), false},
	}
	for _, tt := range tests {
		if got := managementTokenMatches(tt.header, want); got != tt.ok {
			t.Errorf("%s: match = %v, want %v", tt.name, got, tt.ok)
		}
	}
	if managementTokenMatches("Bearer x", nil) {
		t.Error("an app without a token accepted a request")
	}
}

// FuzzBearerToken: the token taken out of an Authorization value is a non-empty token68 that the
// value ends with, and the scheme is Bearer.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  a==", "Basic x", "Bearer", "Bearer =", "Bearer a b", "Bearer \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, ok := bearerToken(header)
		if !ok {
			if tok != "" {
				t.Fatalf("bearerToken(%q) failed but returned %q", header, tok)
			}
			return
		}
		if !validToken68(tok) || !strings.HasSuffix(header, tok) || !strings.EqualFold(header[:6], "bearer") {
			t.Fatalf("bearerToken(%q) = %q", header, tok)
		}
		if strings.TrimSpace(header[6:len(header)-len(tok)]) != "" {
			t.Fatalf("bearerToken(%q) skipped non-space bytes", header)
		}
	})
}

// FuzzTokenVerify throws arbitrary strings (and mutations of a valid token) at the verifier: no
// panic, only its own errors, and acceptance only for the one valid token (or a token the fuzzer
// cannot forge without the key).
func FuzzTokenVerify(f *testing.F) {
	v := testVerifier(f)
	valid := coordinatorToken(f, "secure-app")
	f.Add(valid)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJhdWQiOiJzZWN1cmUtYXBwIn0.")
	f.Add(valid + "x")
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Fuzz(func(t *testing.T, token string) {
		err := v.Verify(token, "secure-app")
		if err == nil {
			if token != valid {
				// Base64url's trailing bits allow a few spellings of the same signature; anything
				// accepted must at least carry the same header and claims.
				if p, q := strings.Split(token, "."), strings.Split(valid, "."); len(p) != 3 || p[0] != q[0] || p[1] != q[1] {
					t.Fatalf("accepted a token that is not the valid one: %q", token)
				}
			}
			return
		}
		for _, known := range []error{ErrTokenMissing, ErrTokenInvalid, ErrTokenLifetime, ErrTokenAudience} {
			if errors.Is(err, known) {
				return
			}
		}
		t.Fatalf("Verify(%q) = %v, not one of the router's token errors", token, err)
	})
}
