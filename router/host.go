package router

import "github.com/hangar-dev/hangar/internal/hostclaim"

// ErrInvalidHost means a host is not a DNS name (or IP literal) the router could ever serve.
var ErrInvalidHost = hostclaim.ErrInvalidHost

// NormalizeHost returns the canonical form of a Host header or a configured host name: lower-case
// ASCII, internationalised labels in their xn-- form, no port, no trailing dot (hostclaim.Normalize,
// which the manager uses too, so both compare claimed hosts alike). Anything that cannot be a host
// gives ErrInvalidHost.
func NormalizeHost(host string) (string, error) { return hostclaim.Normalize(host) }

// canonicalHostKey is the request fast path (hostclaim.CanonicalKey): the canonical part of an
// already canonical host, without allocating; false sends the caller to NormalizeHost.
func canonicalHostKey(host string) (string, bool) { return hostclaim.CanonicalKey(host) }

// stripPortAndDot cuts a ":port" suffix and one trailing dot (hostclaim.StripPortAndDot).
func stripPortAndDot(host string) (string, bool) { return hostclaim.StripPortAndDot(host) }
