package hostclaim

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Host limits of DNS (RFC 1035): a name of at most 253 characters (without the trailing dot) made of
// labels of 1 to 63.
const (
	maxHostLength  = 253
	maxLabelLength = 63
	maxPortDigits  = 5
	punycodePrefix = "xn--"
)

// ErrInvalidHost means a host is not a DNS name (or IP literal) the router could ever serve.
var ErrInvalidHost = errors.New("invalid host")

// idnaProfile maps internationalised names to their xn-- form the way a browser looks them up
// (UTS #46, non-transitional), with the hyphen rule left to validLabel: DNS allows labels such as
// "r3---sn" that UTS #46's CheckHyphens would refuse, and the CRDs accept them.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(false),
)

// Normalize returns the canonical form of a Host header or a configured host name: lower-case
// ASCII, internationalised labels in their xn-- form, no port, no trailing dot. IP literals are kept
// (IPv6 in brackets, in its canonical spelling) so that they simply match no route. Anything that
// cannot be a host gives ErrInvalidHost. The result of Normalize is a fixed point: normalising
// it again returns it unchanged.
func Normalize(host string) (string, error) {
	if h, ok := CanonicalKey(host); ok {
		return h, nil
	}
	h, ok := StripPortAndDot(host)
	if !ok {
		return "", fmt.Errorf("%w: bad port or empty name", ErrInvalidHost)
	}
	if strings.HasPrefix(h, "[") {
		return normalizeIPv6Literal(h)
	}
	if needsIDNA(h) {
		if !utf8.ValidString(h) {
			return "", fmt.Errorf("%w: not UTF-8", ErrInvalidHost)
		}
		mapped, err := idnaProfile.ToASCII(h)
		if err != nil {
			return "", fmt.Errorf("%w: not a valid internationalised name", ErrInvalidHost)
		}
		// A full-width or ideographic full stop at the end maps to a trailing dot.
		h = strings.TrimSuffix(mapped, ".")
	} else {
		h = strings.ToLower(h)
	}
	if !validHostName(h, true) {
		return "", fmt.Errorf("%w: labels must be 1-63 letters, digits or inner dashes, 253 characters at most", ErrInvalidHost)
	}
	return h, nil
}

// CanonicalKey is the request fast path: when host is already canonical apart from a port or a
// trailing dot, it returns the canonical part as a substring of host, without allocating. Otherwise
// (upper case, non-ASCII, xn-- labels, anything odd) it reports false and the caller uses
// Normalize, which gives the same answer for every host this function accepts.
func CanonicalKey(host string) (string, bool) {
	h, ok := StripPortAndDot(host)
	if !ok || !validHostName(h, false) {
		return "", false
	}
	return h, true
}

// StripPortAndDot removes a ":port" suffix (1-5 digits; an empty port after the colon is tolerated
// as URLs allow) and one trailing dot.
func StripPortAndDot(host string) (string, bool) {
	h := host
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false
		}
		if rest := h[end+1:]; rest != "" && !validPortSuffix(rest) {
			return "", false
		}
		return h[:end+1], true
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !validPortSuffix(h[i:]) {
			return "", false
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", false
	}
	return h, true
}

// validPortSuffix accepts ":" followed by at most five digits.
func validPortSuffix(s string) bool {
	if len(s) == 0 || s[0] != ':' || len(s)-1 > maxPortDigits {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validHostName reports whether h is a canonical DNS name: at most 253 characters of labels that
// are 1-63 lower-case letters, digits and dashes, not starting or ending with a dash. xn-- labels
// pass only when allowPunycode is set, i.e. after the IDNA mapping has checked them.
func validHostName(h string, allowPunycode bool) bool {
	if h == "" || len(h) > maxHostLength {
		return false
	}
	for start := 0; start <= len(h); {
		end := strings.IndexByte(h[start:], '.')
		if end < 0 {
			end = len(h)
		} else {
			end += start
		}
		if !validLabel(h[start:end], allowPunycode) {
			return false
		}
		start = end + 1
	}
	return true
}

func validLabel(l string, allowPunycode bool) bool {
	if l == "" || len(l) > maxLabelLength || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	if !allowPunycode && strings.HasPrefix(l, punycodePrefix) {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// needsIDNA reports whether h holds anything only the IDNA mapping can judge: non-ASCII bytes or a
// label starting with xn-- (in any letter case).
func needsIDNA(h string) bool {
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			return true
		}
	}
	lower := strings.ToLower(h)
	return strings.HasPrefix(lower, punycodePrefix) || strings.Contains(lower, "."+punycodePrefix)
}

func normalizeIPv6Literal(h string) (string, error) {
	addr, err := netip.ParseAddr(h[1 : len(h)-1])
	if err != nil || !addr.Is6() || addr.Zone() != "" {
		return "", fmt.Errorf("%w: bad IPv6 literal", ErrInvalidHost)
	}
	return "[" + addr.String() + "]", nil
}
