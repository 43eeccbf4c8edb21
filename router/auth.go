package router

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Public Token auth: the platform's coordinator signs a short-lived HS256 JWT whose audience is the
// Fly app name; the client sends it as `Authorization: Bearer <jwt>`; the router checks it and has
// the Fly Proxy delete the Authorization header before the user machine sees the request.

// Token verification defaults.
const (
	// DefaultTokenMaxTTL is the longest remaining lifetime a public token may have: a token that
	// claims to be valid for longer is refused, so a leaked one is useful only briefly.
	DefaultTokenMaxTTL = 5 * time.Minute
	// DefaultTokenLeeway absorbs clock skew between the coordinator and the router.
	DefaultTokenLeeway = 5 * time.Second
	// MinTokenKeySize is the shortest HS256 key accepted (RFC 7518 §3.2: at least the hash size).
	MinTokenKeySize = 32
)

// Errors of public token verification. ErrTokenAudience is answered 403 (a genuine token for
// another app); every other one 401.
var (
	ErrTokenMissing  = errors.New("no bearer token")
	ErrTokenInvalid  = errors.New("token is not a valid HS256 token of the coordinator")
	ErrTokenLifetime = errors.New("token lives longer than the router accepts")
	ErrTokenAudience = errors.New("token is for another app")
	ErrTokenKey      = errors.New("public token key must be at least 32 bytes")
)

// TokenOptions tune a TokenVerifier.
type TokenOptions struct {
	// MaxTTL bounds exp - now (DefaultTokenMaxTTL when zero).
	MaxTTL time.Duration
	// Leeway absorbs clock skew on exp, nbf and iat (DefaultTokenLeeway when zero).
	Leeway time.Duration
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Now tells the time (time.Now when nil).
	Now func() time.Time
}

// TokenVerifier checks the coordinator's tokens. It is safe for concurrent use.
type TokenVerifier struct {
	key    []byte
	parser *jwt.Parser
	maxTTL time.Duration
	leeway time.Duration
	now    func() time.Time
}

// NewTokenVerifier returns a verifier for tokens signed with key (HS256).
func NewTokenVerifier(key []byte, opts TokenOptions) (*TokenVerifier, error) {
	if len(key) < MinTokenKeySize {
		return nil, fmt.Errorf("%w: got %d", ErrTokenKey, len(key))
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = DefaultTokenMaxTTL
	}
	if opts.Leeway <= 0 {
		opts.Leeway = DefaultTokenLeeway
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	parserOpts := []jwt.ParserOption{
		// Only HS256: a token naming "none" or an asymmetric algorithm is refused before any key
		// is used, which closes the algorithm-confusion hole.
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(opts.Now),
		jwt.WithStrictDecoding(),
	}
	if opts.Issuer != "" {
		parserOpts = append(parserOpts, jwt.WithIssuer(opts.Issuer))
	}
	return &TokenVerifier{
		key:    bytes.Clone(key),
		parser: jwt.NewParser(parserOpts...),
		maxTTL: opts.MaxTTL,
		leeway: opts.Leeway,
		now:    opts.Now,
	}, nil
}

// ReadTokenKeyFile reads an HS256 key from a file (a mounted Secret). The file holds the key
// bytes as they are; one trailing newline is dropped, because editors and `echo` add one.
func ReadTokenKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the public token key: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) < MinTokenKeySize {
		return nil, fmt.Errorf("public token key file %s: %w: got %d", path, ErrTokenKey, len(b))
	}
	return b, nil
}

// Verify checks that token is a valid, unexpired, short-lived token for the Fly app audience.
func (v *TokenVerifier) Verify(token, audience string) error {
	if token == "" {
		return ErrTokenMissing
	}
	var claims jwt.RegisteredClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		// jwt's message may quote parts of the token; keep only our sentinel.
		return ErrTokenInvalid
	}
	if claims.ExpiresAt == nil || claims.ExpiresAt.Sub(v.now()) > v.maxTTL+v.leeway {
		return ErrTokenLifetime
	}
	if !slices.Contains(claims.Audience, audience) {
		return ErrTokenAudience
	}
	return nil
}

// bearerToken takes the token out of an Authorization header value: the scheme "Bearer" in any
// letter case, one or more spaces, then a token68 (RFC 7235/6750). It never allocates.
func bearerToken(authorization string) (string, bool) {
	const scheme = "bearer"
	if len(authorization) <= len(scheme) || !strings.EqualFold(authorization[:len(scheme)], scheme) {
		return "", false
	}
	rest := authorization[len(scheme):]
	if rest[0] != ' ' {
		return "", false
	}
	token := strings.TrimLeft(rest, " ")
	if !validToken68(token) {
		return "", false
	}
	return token, true
}

// validToken68: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/", then any number of "=".
func validToken68(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// managementTokenMatches compares a presented bearer token with the app's management token in
// constant time (for equal lengths; the length of a derived token is public).
func managementTokenMatches(authorization string, want []byte) bool {
	got, ok := bearerToken(authorization)
	if !ok || len(want) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), want) == 1
}
