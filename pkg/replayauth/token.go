package replayauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is the token format this package writes and reads.
const Version = "v1"

// MACSize is how many bytes of the HMAC-SHA256 a token carries (128 bits).
const MACSize = 16

// MinKeySize is the shortest replay key Sign and Verify accept. hangar's replay keys are 32 bytes.
const MinKeySize = 16

// maxNameLength bounds app names and machine IDs (Fly app names are at most 63 characters).
const maxNameLength = 63

// Bounds on how far ahead of the verifier's clock an accepted state may expire. hangar's router
// signs states that expire at most 1.25 × its --state-ttl after it hands them out (a signature
// serves a quarter of the TTL), and refuses a --state-ttl above 8 minutes, so no state it signs
// expires more than DefaultMaxLifetime ahead of the router's clock. DefaultSkew absorbs the
// difference between the router's clock and the machine's.
const (
	// DefaultMaxLifetime is the longest lifetime of a state hangar's router signs (1.25 × 8m).
	DefaultMaxLifetime = 10 * time.Minute
	// DefaultSkew is how far the signer's clock may be ahead of the verifier's.
	DefaultSkew = 30 * time.Second
)

// encodedMACLength is the length of the base64url form of the MAC.
var encodedMACLength = base64.RawURLEncoding.EncodedLen(MACSize)

// Errors returned by Verify and VerifyState. Test for them with errors.Is.
var (
	// ErrKey means the verifier has no usable key (missing or shorter than MinKeySize): a setup
	// error on the user machine, not the client's fault.
	ErrKey = errors.New("replayauth: replay key missing or shorter than 16 bytes")
	// ErrMissing means the request carries no fly-replay-src header or no state in it: it did not
	// come through a hangar replay.
	ErrMissing = errors.New("replayauth: no replay state")
	// ErrMalformed means the header or the token does not have the expected shape.
	ErrMalformed = errors.New("replayauth: malformed replay state")
	// ErrUnsupportedVersion means the token is of a format version this package does not know.
	ErrUnsupportedVersion = errors.New("replayauth: unsupported replay state version")
	// ErrBadMAC means the token was not signed with this app's replay key.
	ErrBadMAC = errors.New("replayauth: replay state signature does not match")
	// ErrExpired means the token was genuine but its expiry has passed.
	ErrExpired = errors.New("replayauth: replay state expired")
	// ErrFutureExpiry means the token is genuine but expires further ahead than any state hangar's
	// router signs (more than MaxLifetime + Skew after now): the signer's clock is far ahead of
	// this machine's, or this machine's is behind. Accepting it would let the state be replayed for
	// as long as the clocks disagree.
	ErrFutureExpiry = errors.New("replayauth: replay state expires too far in the future (check the clocks)")
	// ErrWrongMachine means the token is genuine but bound to another machine of the app.
	ErrWrongMachine = errors.New("replayauth: replay state is for another machine")
	// ErrMultipleSources means the request carries more than one fly-replay-src header, or one
	// whose value holds several (a field of the header appears twice). The Fly Proxy sends exactly
	// one; a second one came from elsewhere, and picking either could pick the forged one. It also
	// matches ErrMalformed.
	ErrMultipleSources = fmt.Errorf("%w: more than one fly-replay-src", ErrMalformed)
)

// Sign returns the state token for a replay to machine of app (machine empty: any machine of the
// app), valid until expiry (rounded down to the second; a time before 1970 gives an expired token).
//
// app and machine must be Fly names: lower-case letters, digits and dashes, at most 63 characters
// (machine may be empty), and key must hold at least MinKeySize bytes. The router checks both
// before it signs anything; Sign panics otherwise, because a token built from anything else could
// break the header it travels in.
func Sign(key []byte, app, machine string, expiry time.Time) string {
	if len(key) < MinKeySize {
		panic("replayauth.Sign: key shorter than MinKeySize")
	}
	if !validName(app, false) || !validName(machine, true) {
		panic("replayauth.Sign: app or machine is not a Fly name")
	}
	// A time before 1971 is already past: clamp it to 1, a valid token that has expired.
	exp := strconv.FormatInt(max(expiry.Unix(), 1), 10)
	mac := tokenMAC(key, app, machine, exp)
	var b strings.Builder
	b.Grow(len(Version) + len(exp) + len(machine) + encodedMACLength + 3)
	b.WriteString(Version)
	b.WriteByte('.')
	b.WriteString(exp)
	b.WriteByte('.')
	b.WriteString(machine)
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString(mac))
	return b.String()
}

// Verify checks the fly-replay-src header of a request that reached machineID of app: its state
// must be a token signed with key for app, for this machine (or any machine of the app), not expired
// at now and not expiring more than DefaultMaxLifetime + DefaultSkew after now. It returns nil or an
// error matching one of the Err values of this package. header is the one fly-replay-src value of
// the request: a request with several must be refused (StateFromHeaders and Config.Verify do).
func Verify(key []byte, header, app, machineID string, now time.Time) error {
	if len(key) < MinKeySize {
		return ErrKey
	}
	state, err := StateFromHeader(header)
	if err != nil {
		return err
	}
	return VerifyState(key, state, app, machineID, now)
}

// VerifyState is Verify for a token already taken out of its header.
func VerifyState(key []byte, state, app, machineID string, now time.Time) error {
	return verifyState(key, state, app, machineID, now, DefaultMaxLifetime+DefaultSkew)
}

// verifyState accepts a token expiring after now and at most maxAhead after it.
func verifyState(key []byte, state, app, machineID string, now time.Time, maxAhead time.Duration) error {
	if len(key) < MinKeySize {
		return ErrKey
	}
	tok, err := parseToken(state)
	if err != nil {
		return err
	}
	want := tokenMAC(key, app, tok.machine, tok.expiry)
	// hmac.Equal compares in constant time, so the answer time says nothing about how much of a
	// forged MAC was right.
	if !hmac.Equal(want, tok.mac) {
		return ErrBadMAC
	}
	expiry, err := strconv.ParseInt(tok.expiry, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: expiry: %w", ErrMalformed, err)
	}
	if now.Unix() >= expiry {
		return ErrExpired
	}
	if expiry > now.Add(maxAhead).Unix() {
		return ErrFutureExpiry
	}
	if tok.machine != "" && tok.machine != machineID {
		return ErrWrongMachine
	}
	return nil
}

// StateFromHeaders returns the state of the request's fly-replay-src header values (as
// http.Header.Values gives them): exactly one must be present (ErrMissing for none,
// ErrMultipleSources for more), and StateFromHeader must accept it.
func StateFromHeaders(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", ErrMissing
	case 1:
		return StateFromHeader(values[0])
	default:
		return "", ErrMultipleSources
	}
}

// StateFromHeader returns the state field of a fly-replay-src header
// (`instance=..;region=..;t=..;state=..`). Fields are separated by `;`; a `,` is accepted as a
// separator too, because some of Fly's samples split on it and a token never holds one. A value in
// double quotes is unquoted. Exactly one state field must be present, and none of the fields the
// Fly Proxy writes (instance, region, t, state) may appear twice: a value holding several
// fly-replay-src (two headers folded into one) is refused with ErrMultipleSources.
func StateFromHeader(header string) (string, error) {
	var state string
	found := false
	var seen [len(sourceFields)]bool
	for rest := header; rest != ""; {
		var field string
		if i := strings.IndexAny(rest, ";,"); i >= 0 {
			field, rest = rest[:i], rest[i+1:]
		} else {
			field, rest = rest, ""
		}
		name, value, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		for i, f := range sourceFields {
			if strings.EqualFold(name, f) {
				if seen[i] {
					return "", ErrMultipleSources
				}
				seen[i] = true
			}
		}
		if !strings.EqualFold(name, "state") {
			continue
		}
		found = true
		state = unquote(strings.TrimSpace(value))
	}
	if !found || state == "" {
		return "", ErrMissing
	}
	return state, nil
}

// sourceFields are the fields the Fly Proxy writes into fly-replay-src, once each.
var sourceFields = [...]string{"instance", "region", "t", "state"}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// token is a parsed, not yet verified, state token.
type token struct {
	expiry  string // decimal Unix seconds, exactly as signed
	machine string
	mac     []byte
}

func parseToken(s string) (token, error) {
	version, rest, ok := strings.Cut(s, ".")
	if !ok {
		return token{}, fmt.Errorf("%w: not a versioned token", ErrMalformed)
	}
	if version != Version {
		return token{}, ErrUnsupportedVersion
	}
	expiry, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return token{}, fmt.Errorf("%w: no expiry", ErrMalformed)
	}
	machine, encodedMAC, ok := strings.Cut(rest, ".")
	if !ok {
		return token{}, fmt.Errorf("%w: no MAC", ErrMalformed)
	}
	if !validExpiry(expiry) {
		return token{}, fmt.Errorf("%w: expiry is not a Unix time", ErrMalformed)
	}
	if !validName(machine, true) {
		return token{}, fmt.Errorf("%w: machine is not a Fly machine ID", ErrMalformed)
	}
	if len(encodedMAC) != encodedMACLength {
		return token{}, fmt.Errorf("%w: MAC has the wrong length", ErrMalformed)
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(encodedMAC)
	if err != nil {
		return token{}, fmt.Errorf("%w: MAC is not base64url", ErrMalformed)
	}
	return token{expiry: expiry, machine: machine, mac: mac}, nil
}

// tokenMAC is the truncated HMAC-SHA256 over "v1|app|machine|expiry".
func tokenMAC(key []byte, app, machine, expiry string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(Version))
	h.Write([]byte{'|'})
	h.Write([]byte(app))
	h.Write([]byte{'|'})
	h.Write([]byte(machine))
	h.Write([]byte{'|'})
	h.Write([]byte(expiry))
	return h.Sum(nil)[:MACSize]
}

// validExpiry accepts the decimal forms strconv.FormatInt writes for a positive int64: digits only,
// no leading zero, at most 19 of them. Anything else is refused before it is parsed.
func validExpiry(s string) bool {
	if s == "" || len(s) > 19 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validName reports whether s is a Fly app name or machine ID: lower-case letters, digits and
// dashes, at most 63 characters. Such a name cannot hold the `|` that separates the MAC's fields
// nor any character that needs quoting in a header.
func validName(s string, allowEmpty bool) bool {
	if s == "" {
		return allowEmpty
	}
	if len(s) > maxNameLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// ValidName reports whether s can be used as the app or the machine of Sign: lower-case letters,
// digits and dashes, 1 to 63 characters.
func ValidName(s string) bool { return validName(s, false) }
