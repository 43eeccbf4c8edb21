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

// TransportError is a call that got no HTTP answer: the connection failed, was dropped, or the
// attempt timed out. For a mutation the outcome is unknown: Fly may have committed it.
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

// IsWaitTimeout reports that a wait ended before the machine reached the state (408).
func IsWaitTimeout(err error) bool { return hasStatus(err, http.StatusRequestTimeout) }

// IsInsufficientCapacity reports that Fly had no room for the machine (or its volume) in the
// region; retrying elsewhere or later may work.
func IsInsufficientCapacity(err error) bool {
	apiErr, ok := asAPIError(err)
	return ok && (apiErr.Code == codeInsufficientCapacity || apiErr.Code == codeVolumePlacementCapacity)
}

// IsUnavailable reports a transient failure: a 5xx answer or no answer at all (TransportError).
// For a mutation this means the outcome is unknown.
func IsUnavailable(err error) bool {
	if apiErr, ok := asAPIError(err); ok {
		return apiErr.Status >= 500
	}
	var transportErr *TransportError
	return errors.As(err, &transportErr)
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
// request: any echo of them in the body is redacted before the message is kept.
func newAPIError(action string, resp *http.Response, body []byte, now time.Time, secrets []string) *APIError {
	apiErr := &APIError{
		Status:     resp.StatusCode,
		Action:     action,
		RequestID:  resp.Header.Get("fly-request-id"),
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
		apiErr.Message = string(trimmed)
		if resp.StatusCode == http.StatusNotFound {
			apiErr.Code = CodeRouteNotFound
		}
	}
	apiErr.Message = redact(apiErr.Message, secrets)
	return apiErr
}

// redact replaces every occurrence of each secret in s.
func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
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
