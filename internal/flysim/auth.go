package flysim

import (
	"fmt"
	"net/http"
	"strings"
)

// tokenInfo is what a token grants: one org, and an owner identity used as lease holder.
type tokenInfo struct {
	org   string
	owner string
}

// tokensFromHeader extracts the tokens of an Authorization header. Like fly-go it accepts `Bearer X` and
// `FlyV1 X`, strips nested schemes case-insensitively (`Bearer FlyV1 fm2_…`) and splits comma-separated
// token lists (macaroon bundles).
func tokensFromHeader(header string) []string {
	var tokens []string
	for part := range strings.SplitSeq(stripSchemes(header), ",") {
		if t := stripSchemes(part); t != "" {
			tokens = append(tokens, t)
		}
	}
	return tokens
}

func stripSchemes(v string) string {
	v = strings.TrimSpace(v)
	for {
		lower := strings.ToLower(v)
		switch {
		case strings.HasPrefix(lower, "bearer "):
			v = strings.TrimSpace(v[len("bearer "):])
		case strings.HasPrefix(lower, "flyv1 "):
			v = strings.TrimSpace(v[len("flyv1 "):])
		default:
			return v
		}
	}
}

// authenticate returns what the request's token grants, or the 401 answer. The answer never repeats
// the token.
func (s *Server) authenticate(r *http.Request) (tokenInfo, *apiError) {
	header := r.Header.Get("Authorization")
	if strings.TrimSpace(header) == "" {
		return tokenInfo{}, newAPIError(http.StatusUnauthorized, "missing authorization header")
	}
	s.authMu.RLock()
	defer s.authMu.RUnlock()
	for _, t := range tokensFromHeader(header) {
		if info, ok := s.tokens[t]; ok && !s.revoked[t] {
			return info, nil
		}
	}
	return tokenInfo{}, newAPIError(http.StatusUnauthorized, "unauthorized: invalid or revoked token")
}

// RevokeToken makes every later request with token answer 401, as after a revocation at Fly.
func (s *Server) RevokeToken(token string) {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	s.revoked[token] = true
}

// RestoreToken undoes RevokeToken.
func (s *Server) RestoreToken(token string) {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	delete(s.revoked, token)
}

// ownerFor is the lease owner shown for the i-th configured token: an email-like identity that says
// which token holds a lease without revealing it.
func ownerFor(i int, org string) string { return fmt.Sprintf("token%d@%s.flysim.invalid", i+1, org) }

// CallerOf is the Call.Caller of the token at index i of Options.Orgs, whose org is org.
func CallerOf(i int, org string) string { return ownerFor(i, org) }
