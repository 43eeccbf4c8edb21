package flyapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Codes the client puts in APIError.Code. Fly's own codes (its "status" or lease "code" member,
// e.g. name_taken, insufficient_capacity, invalid) are passed through unchanged; these two are set
// by the client and never come from Fly.
const (
	// CodeRouteNotFound marks a 404 whose body is not JSON: Fly's router answers an unknown path
	// with a plain "404 page not found", which means the client called a route Fly does not have
	// (an API change or a bad base URL), not that a resource is missing.
	CodeRouteNotFound = "route_not_found"
	// CodeClientThrottled marks a call the client-side limiter refused because it would have had
	// to wait longer than Options.MaxLimiterWait. Nothing was sent to Fly.
	CodeClientThrottled = "client_throttled"
)

// Fly error codes the Is… helpers look for.
const (
	codeNameTaken               = "name_taken"
	codeInsufficientCapacity    = "insufficient_capacity"
	codeVolumePlacementCapacity = "volume_placement_capacity"
	failedPreconditionPrefix    = "failed_precondition"
	nameTakenText               = "Name has already been taken"
)

// APIError is an error answer from the Machines API (or a refusal by the client's own limiter,
// Status 0 and Code CodeClientThrottled). It keeps Fly's message and request ID so that a
// failure can be looked up with Fly support.
type APIError struct {
	Status     int           // HTTP status; 0 when the client refused the call itself
	Code       string        // Fly's status/code member, or one of the Code… constants
	Message    string        // Fly's message, with any echo of the token redacted
	RequestID  string        // the fly-request-id response header
	Action     string        // the call, e.g. "create_machine"
	RetryAfter time.Duration // from Retry-After (429, 503) or the limiter's wait; 0 if unknown
}

// Error formats the error without any credential.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("flyapi: ")
	b.WriteString(e.Action)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [fly-request-id %s]", e.RequestID)
	}
	return b.String()
}

// TransportError is a call that got no HTTP answer: the connection failed, was dropped, the answer
// was cut off, or the attempt timed out or was cancelled (the caller's context ended while the
// request was out; Err then wraps the context's error). For a call with side effects the outcome
// is unknown (IsOutcomeUnknown), unless the connection was never opened: Fly may have committed it.
type TransportError struct {
	Action string
	Err    error
}

// Error formats the error; the underlying error of net/http names the URL, never headers.
func (e *TransportError) Error() string {
	return "flyapi: " + e.Action + ": no response: " + e.Err.Error()
}

// Unwrap returns the network error.
func (e *TransportError) Unwrap() error { return e.Err }

// notSent reports whether the request certainly never reached Fly (the connection could not be
// opened), which makes resending it safe for any call.
func (e *TransportError) notSent() bool {
	var dnsErr *net.DNSError
	if errors.As(e.Err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(e.Err, &opErr) && opErr.Op == "dial"
}

func asAPIError(err error) (*APIError, bool) {
	var apiErr *APIError
	ok := errors.As(err, &apiErr)
	return apiErr, ok
}

func hasStatus(err error, status int) bool {
	apiErr, ok := asAPIError(err)
	return ok && apiErr.Status == status
}

// IsNotFound reports a missing resource (a JSON 404: app, machine, lease, metadata key...). A
// plain-text 404 for an unknown route is not a missing resource and does not count.
func IsNotFound(err error) bool {
	apiErr, ok := asAPIError(err)
	return ok && apiErr.Status == http.StatusNotFound && apiErr.Code != CodeRouteNotFound
}

// IsRouteNotFound reports a 404 for a path Fly does not serve (see CodeRouteNotFound).
func IsRouteNotFound(err error) bool {
	apiErr, ok := asAPIError(err)
	return ok && apiErr.Code == CodeRouteNotFound
}

// IsBadRequest reports a 400: bad parameters, or a missing or wrong lease nonce on release.
func IsBadRequest(err error) bool { return hasStatus(err, http.StatusBadRequest) }

// IsUnauthorized reports a missing, invalid or revoked token (401).
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// IsForbidden reports a resource the token may not read, e.g. an app of another org (403).
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsNameTaken reports an app or machine name already in use. Fly marks it with status
// "name_taken" (422); its older answers only carry the text, and a create race has been seen
// answered 409 (an unconfirmed report), so a 409 to create_app counts too.
func IsNameTaken(err error) bool {
	apiErr, ok := asAPIError(err)
	if !ok {
		return false
	}
	switch {
	case apiErr.Code == codeNameTaken:
		return true
	case apiErr.Code == "" && strings.Contains(apiErr.Message, nameTakenText):
		return true
	case apiErr.Status == http.StatusConflict && apiErr.Action == ActionCreateApp:
		return true
	}
	return false
}

// IsConflict reports a 409: a lease held by someone else, a missing lease nonce, or a
// current_version that no longer matches.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsFailedPrecondition reports an action that is illegal in the machine's current state, or a
// metadata machine_version mismatch (412, or a message starting "failed_precondition").
func IsFailedPrecondition(err error) bool {
	apiErr, ok := asAPIError(err)
	return ok && (apiErr.Status == http.StatusPreconditionFailed ||
		strings.HasPrefix(apiErr.Message, failedPreconditionPrefix))
}

// IsRateLimited reports a 429 from Fly or a refusal by the client's limiter; RateLimitedAfter
// says how long to wait.
func IsRateLimited(err error) bool {
	apiErr, ok := asAPIError(err)
	return ok && (apiErr.Status == http.StatusTooManyRequests || apiErr.Code == CodeClientThrottled)
}

// RateLimitedAfter returns how long to wait before retrying a rate-limited call (0 when err is
// not rate limited or Fly gave no Retry-After).
func RateLimitedAfter(err error) time.Duration {
	if !IsRateLimited(err) {
		return 0
	}
	apiErr, _ := asAPIError(err)
	return apiErr.RetryAfter
}

// IsWaitTimeout reports that a machine wait ended before the machine reached the state: Fly's 408
// to wait_machine, which means only that the wait's own timeout passed. A 408 to any other call is
// not a wait timeout: it is Fly giving up on the call, and for a call with side effects the
// outcome is unknown (see IsOutcomeUnknown).
func IsWaitTimeout(err error) bool {
	apiErr, ok := asAPIError(err)
	return ok && apiErr.Status == http.StatusRequestTimeout && apiErr.Action == ActionWaitMachine
}

// IsInsufficientCapacity reports that Fly had no room for the machine (or its volume) in the
// region; retrying elsewhere or later may work.
func IsInsufficientCapacity(err error) bool {
	apiErr, ok := asAPIError(err)
	return ok && (apiErr.Code == codeInsufficientCapacity || apiErr.Code == codeVolumePlacementCapacity)
}

// IsUnavailable reports a transient failure: a 5xx answer, a 408 to anything but a wait (Fly gave
// up on the call, e.g. flyd's timeout propagated through a create), or no answer at all
// (TransportError). For a call with side effects this means the outcome is unknown
// (IsOutcomeUnknown tells those apart).
func IsUnavailable(err error) bool {
	if apiErr, ok := asAPIError(err); ok {
		return gaveUp(apiErr)
	}
	var transportErr *TransportError
	return errors.As(err, &transportErr)
}

// gaveUp reports an answer that says nothing about whether the call took effect: a 5xx, or a 408
// that is not a wait's own timeout.
func gaveUp(apiErr *APIError) bool {
	return apiErr.Status >= 500 ||
		(apiErr.Status == http.StatusRequestTimeout && apiErr.Action != ActionWaitMachine)
}

// IsOutcomeUnknown reports a call with side effects (a create, update, lease, start, stop,
// suspend, destroy, secrets change, IP assignment...) that may or may not have taken effect:
//
//   - Fly answered 408 (flyd's timeout propagated through the API: a create or launch can answer
//     408 after committing the machine, §11) or a 5xx (a 503 can follow a committed create);
//   - no answer came back: the connection dropped, the attempt timed out, or the caller's context
//     ended while the request was out (a TransportError), unless the connection was never opened;
//   - Fly answered 2xx, so the call took effect, but the answer could not be read
//     (BadResponseError), so what it made (the machine's ID, the lease's nonce) is unknown.
//
// The client never resends such a call by itself (destroy and lease release excepted: repeating
// them converges). The caller looks before acting again: finds the machine by name or metadata,
// reads the app, lists the addresses, waits for a lease's TTL.
//
// It is false for reads (a failed read changes nothing), for a wait's 408 (IsWaitTimeout), for
// every 4xx refusal (the call definitely did not take effect: 400, 401, 403, 404, 409, 412, 422,
// 429) and for a call refused by the client's own limiter.
func IsOutcomeUnknown(err error) bool {
	var badResponse *BadResponseError
	if errors.As(err, &badResponse) {
		return hasSideEffects(badResponse.Action)
	}
	if apiErr, ok := asAPIError(err); ok {
		return hasSideEffects(apiErr.Action) && gaveUp(apiErr)
	}
	var transportErr *TransportError
	if errors.As(err, &transportErr) {
		return hasSideEffects(transportErr.Action) && !transportErr.notSent()
	}
	return false
}

// BadResponseError is a 2xx answer the client could not use: a body that is not JSON (an HTML page
// from a proxy), truncated or of the wrong shape, an empty body where one is needed, or one that
// lacks what the call must return (a machine without an ID, a lease without a nonce). The call
// took effect on Fly (for a call with side effects IsOutcomeUnknown is true: what it made is
// unknown).
type BadResponseError struct {
	Action    string
	Status    int
	RequestID string // the fly-request-id response header
	// Body is the start of the answer (at most maxKeptBody bytes, valid UTF-8), with every trace
	// of the token redacted.
	Body string
	Err  error // what was wrong with it
}

// Error formats the error without any credential.
func (e *BadResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flyapi: %s: unreadable %d answer: %v", e.Action, e.Status, e.Err)
	if e.Body == "" {
		b.WriteString(" (empty body)")
	} else {
		fmt.Fprintf(&b, "; body: %q", e.Body)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [fly-request-id %s]", e.RequestID)
	}
	return b.String()
}

// Unwrap returns what was wrong with the answer (e.g. a *json.SyntaxError).
func (e *BadResponseError) Unwrap() error { return e.Err }

// IsBadResponse reports a 2xx answer the client could not use (BadResponseError).
func IsBadResponse(err error) bool {
	var badResponse *BadResponseError
	return errors.As(err, &badResponse)
}

// maxErrorBody bounds how much of an error body is read and kept.
const maxErrorBody = 64 << 10

// flyErrorBody covers both error shapes: {"error","status"} and the lease form
// {"status":"error","message","code"}.
type flyErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Code    string `json:"code"`
}

// newAPIError builds the error for a non-2xx answer. secrets are the token parts sent with the
// request: any trace of them in the answer is redacted before anything is kept (see redact), and
// the message is cut to maxKeptBody bytes.
func newAPIError(action string, resp *http.Response, body []byte, now time.Time, secrets []string) *APIError {
	apiErr := &APIError{
		Status:     resp.StatusCode,
		Action:     action,
		RequestID:  keep(resp.Header.Get("fly-request-id"), maxKeptCode, secrets),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now),
	}
	trimmed := bytes.TrimSpace(body)
	var parsed flyErrorBody
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &parsed) == nil {
		apiErr.Message = parsed.Error
		if parsed.Message != "" {
			apiErr.Message = parsed.Message
		}
		switch {
		case parsed.Status != "" && parsed.Status != "error":
			apiErr.Code = parsed.Status
		case parsed.Code != "":
			apiErr.Code = parsed.Code
		}
	} else {
		// Not Fly's JSON (an HTML page from a proxy, plain text, JSON cut short): its start is kept
		// as the message.
		apiErr.Message = string(trimmed)
		if resp.StatusCode == http.StatusNotFound {
			apiErr.Code = CodeRouteNotFound
		}
	}
	apiErr.Message = keep(apiErr.Message, maxKeptBody, secrets)
	apiErr.Code = keep(apiErr.Code, maxKeptCode, secrets)
	return apiErr
}

// Bounds on what an error keeps of Fly's answer: enough to read the failure in a condition or a
// log line, never a whole page.
const (
	maxKeptBody = 512
	maxKeptCode = 128
)

// keep makes s fit for an error: whitespace trimmed, invalid UTF-8 replaced, every trace of the
// secrets redacted, and cut to at most limit bytes (on a character boundary, ending in "…").
func keep(s string, limit int, secrets []string) string {
	// Cut before redacting, so that redact works on a short text; cut again after, since the
	// replacements may have made it longer.
	s = shorten(strings.TrimSpace(s), limit)
	return shorten(redact(strings.ToValidUTF8(s, "\uFFFD"), secrets), limit)
}

// shorten cuts s to at most limit bytes, on a character boundary, ending the cut text with "…".
func shorten(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := max(limit-len("…"), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// minRedactedRun is the shortest piece of a secret that redact removes. A secret shorter than this
// is removed only where it appears whole.
const minRedactedRun = 8

// redact replaces every trace of each secret in s with "[redacted]": the secret itself and any
// piece of it at least minRedactedRun bytes long (an echo Fly cut short, or one an error's length
// limit cut), compared without regard to ASCII case (an echo that changed the token's case). It
// runs in O(len(s) × len(secret)) time, and s is at most a few hundred bytes when it is called.
func redact(s string, secrets []string) string {
	if s == "" {
		return s
	}
	hidden := make([]bool, len(s))
	found := false
	for _, secret := range secrets {
		found = markSecret(hidden, s, secret) || found
	}
	if !found {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if !hidden[i] {
			b.WriteByte(s[i])
			continue
		}
		b.WriteString("[redacted]")
		for i+1 < len(s) && hidden[i+1] {
			i++
		}
	}
	return b.String()
}

// markSecret marks in hidden the bytes of s that belong to a trace of secret (see redact) and
// reports whether it found any. It keeps, for each byte of s, the longest run ending there that
// also occurs in secret (the longest-common-substring table, one row at a time).
func markSecret(hidden []bool, s, secret string) bool {
	if secret == "" {
		return false
	}
	minRun := min(minRedactedRun, len(secret))
	prev := make([]int, len(secret)+1)
	cur := make([]int, len(secret)+1)
	found := false
	for i := 0; i < len(s); i++ {
		longest := 0
		for j := 0; j < len(secret); j++ {
			if lowerASCII(s[i]) == lowerASCII(secret[j]) {
				cur[j+1] = prev[j] + 1
				longest = max(longest, cur[j+1])
			} else {
				cur[j+1] = 0
			}
		}
		if longest >= minRun {
			found = true
			for k := i - longest + 1; k <= i; k++ {
				hidden[k] = true
			}
		}
		prev, cur = cur, prev
	}
	return found
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// maxRetryAfterSeconds caps a Retry-After so that an absurd value cannot overflow a Duration.
const maxRetryAfterSeconds = 24 * 60 * 60

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or unreadable.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(min(secs, maxRetryAfterSeconds)) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}
