package flyapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// predicates are the Is… helpers; each error-table case names the ones that must hold.
var predicates = map[string]func(error) bool{
	"NotFound":             IsNotFound,
	"RouteNotFound":        IsRouteNotFound,
	"BadRequest":           IsBadRequest,
	"Unauthorized":         IsUnauthorized,
	"Forbidden":            IsForbidden,
	"NameTaken":            IsNameTaken,
	"Conflict":             IsConflict,
	"FailedPrecondition":   IsFailedPrecondition,
	"RateLimited":          IsRateLimited,
	"WaitTimeout":          IsWaitTimeout,
	"InsufficientCapacity": IsInsufficientCapacity,
	"Unavailable":          IsUnavailable,
	"OutcomeUnknown":       IsOutcomeUnknown,
	"BadResponse":          IsBadResponse,
}

func holdingPredicates(err error) []string {
	var names []string
	for name, is := range predicates {
		if is(err) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func TestAPIErrorParsing(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		action     string
		status     int
		body       string
		retryAfter string
		want       APIError
		holds      []string
	}{
		{
			name: "machine not found", action: ActionGetMachine, status: 404,
			body:  `{"error":"machine not found"}`,
			want:  APIError{Status: 404, Message: "machine not found"},
			holds: []string{"NotFound"},
		},
		{
			name: "unknown route is plain text", action: ActionGetMachine, status: 404,
			body:  "404 page not found\n",
			want:  APIError{Status: 404, Code: CodeRouteNotFound, Message: "404 page not found"},
			holds: []string{"RouteNotFound"},
		},
		{
			name: "name taken with status", action: ActionCreateApp, status: 422,
			body:  `{"error":"Validation failed: Name has already been taken","status":"name_taken"}`,
			want:  APIError{Status: 422, Code: "name_taken", Message: "Validation failed: Name has already been taken"},
			holds: []string{"NameTaken"},
		},
		{
			name: "name taken by text only", action: ActionCreateMachine, status: 422,
			body:  `{"error":"Validation failed: Name has already been taken"}`,
			want:  APIError{Status: 422, Message: "Validation failed: Name has already been taken"},
			holds: []string{"NameTaken"},
		},
		{
			name: "other validation error", action: ActionCreateApp, status: 422,
			body:  `{"error":"Validation failed: Name under 63 chars using numbers, lowercase letters and dashes","status":"unknown"}`,
			want:  APIError{Status: 422, Code: "unknown", Message: "Validation failed: Name under 63 chars using numbers, lowercase letters and dashes"},
			holds: nil,
		},
		{
			name: "create app race answered 409", action: ActionCreateApp, status: 409,
			body:  `{"error":"uniqueness constraint violated"}`,
			want:  APIError{Status: 409, Message: "uniqueness constraint violated"},
			holds: []string{"Conflict", "NameTaken"},
		},
		{
			name: "lease held (lease error form)", action: ActionAcquireLease, status: 409,
			body:  `{"status":"error","message":"machine ID 3d8d413b29d089 lease currently held by hello@fly.io, expires at 2022-10-20 19:59:06 +0000 UTC","code":"invalid"}`,
			want:  APIError{Status: 409, Code: "invalid", Message: "machine ID 3d8d413b29d089 lease currently held by hello@fly.io, expires at 2022-10-20 19:59:06 +0000 UTC"},
			holds: []string{"Conflict"},
		},
		{
			name: "version conflict", action: ActionUpdateMachine, status: 409,
			body:  `{"error":"machine version mismatch"}`,
			want:  APIError{Status: 409, Message: "machine version mismatch"},
			holds: []string{"Conflict"},
		},
		{
			name: "illegal state", action: ActionStartMachine, status: 412,
			body:  `{"error":"failed_precondition: unable to start machine from current state: 'stopping'"}`,
			want:  APIError{Status: 412, Message: "failed_precondition: unable to start machine from current state: 'stopping'"},
			holds: []string{"FailedPrecondition"},
		},
		{
			name: "failed_precondition text under another status", action: ActionDestroyMachine, status: 400,
			body:  `{"error":"failed_precondition: unable to destroy machine, not currently stopped"}`,
			want:  APIError{Status: 400, Message: "failed_precondition: unable to destroy machine, not currently stopped"},
			holds: []string{"BadRequest", "FailedPrecondition"},
		},
		{
			name: "rate limited with seconds", action: ActionCreateMachine, status: 429,
			body: `{"error":"rate limited"}`, retryAfter: "3",
			want:  APIError{Status: 429, Message: "rate limited", RetryAfter: 3 * time.Second},
			holds: []string{"RateLimited"},
		},
		{
			name: "rate limited with a date", action: ActionCreateMachine, status: 429,
			body: `{"error":"rate limited"}`, retryAfter: now.Add(90 * time.Second).Format(http.TimeFormat),
			want:  APIError{Status: 429, Message: "rate limited", RetryAfter: 90 * time.Second},
			holds: []string{"RateLimited"},
		},
		{
			name: "rate limited with a date in the past", action: ActionCreateMachine, status: 429,
			body: `{"error":"rate limited"}`, retryAfter: now.Add(-time.Minute).Format(http.TimeFormat),
			want:  APIError{Status: 429, Message: "rate limited"},
			holds: []string{"RateLimited"},
		},
		{
			name: "wait timeout", action: ActionWaitMachine, status: 408,
			body:  `{"error":"deadline_exceeded: machine failed to reach desired state, started, currently stopped"}`,
			want:  APIError{Status: 408, Message: "deadline_exceeded: machine failed to reach desired state, started, currently stopped"},
			holds: []string{"WaitTimeout"},
		},
		{
			name: "create answered 408 by flyd: outcome unknown, not a wait timeout", action: ActionCreateMachine, status: 408,
			body:  `{"error":"deadline_exceeded: timed out waiting for the machine to be created"}`,
			want:  APIError{Status: 408, Message: "deadline_exceeded: timed out waiting for the machine to be created"},
			holds: []string{"OutcomeUnknown", "Unavailable"},
		},
		{
			name: "lease answered 408", action: ActionAcquireLease, status: 408,
			body:  `{"error":"request timed out"}`,
			want:  APIError{Status: 408, Message: "request timed out"},
			holds: []string{"OutcomeUnknown", "Unavailable"},
		},
		{
			name: "read answered 408: transient, no effect to be unknown", action: ActionGetMachine, status: 408,
			body:  `{"error":"request timed out"}`,
			want:  APIError{Status: 408, Message: "request timed out"},
			holds: []string{"Unavailable"},
		},
		{
			name: "update answered 503: outcome unknown", action: ActionUpdateMachine, status: 503,
			body:  `{"error":"service unavailable"}`,
			want:  APIError{Status: 503, Message: "service unavailable"},
			holds: []string{"OutcomeUnknown", "Unavailable"},
		},
		{
			name: "destroy answered 500: outcome unknown", action: ActionDestroyMachine, status: 500,
			body:  `{"error":"internal error"}`,
			want:  APIError{Status: 500, Message: "internal error"},
			holds: []string{"OutcomeUnknown", "Unavailable"},
		},
		{
			name: "create refused 422: definitely failed", action: ActionCreateMachine, status: 422,
			body:  `{"error":"invalid_argument: bad image"}`,
			want:  APIError{Status: 422, Message: "invalid_argument: bad image"},
			holds: nil,
		},
		{
			name: "insufficient capacity", action: ActionCreateMachine, status: 412,
			body:  `{"error":"insufficient resources to create new machine","status":"insufficient_capacity"}`,
			want:  APIError{Status: 412, Code: "insufficient_capacity", Message: "insufficient resources to create new machine"},
			holds: []string{"FailedPrecondition", "InsufficientCapacity"},
		},
		{
			name: "volume placement capacity", action: ActionCreateMachine, status: 422,
			body:  `{"error":"no room for the volume","status":"volume_placement_capacity"}`,
			want:  APIError{Status: 422, Code: "volume_placement_capacity", Message: "no room for the volume"},
			holds: []string{"InsufficientCapacity"},
		},
		{
			name: "unavailable, plain text", action: ActionGetMachine, status: 503,
			body:  "upstream connect error\n",
			want:  APIError{Status: 503, Message: "upstream connect error"},
			holds: []string{"Unavailable"},
		},
		{
			name: "server error with empty JSON", action: ActionListMachines, status: 500,
			body:  `{}`,
			want:  APIError{Status: 500},
			holds: []string{"Unavailable"},
		},
		{
			name: "gateway timeout, empty body", action: ActionListMachines, status: 504,
			body:  "",
			want:  APIError{Status: 504},
			holds: []string{"Unavailable"},
		},
		{
			name: "unauthorized", action: ActionListApps, status: 401,
			body:  `{"error":"unauthorized"}`,
			want:  APIError{Status: 401, Message: "unauthorized"},
			holds: []string{"Unauthorized"},
		},
		{
			name: "app of another org", action: ActionGetApp, status: 403,
			body:  `{"error":"forbidden"}`,
			want:  APIError{Status: 403, Message: "forbidden"},
			holds: []string{"Forbidden"},
		},
		{
			name: "bad nonce", action: ActionReleaseLease, status: 400,
			body:  `{"status":"error","message":"invalid nonce","code":"invalid"}`,
			want:  APIError{Status: 400, Code: "invalid", Message: "invalid nonce"},
			holds: []string{"BadRequest"},
		},
		{
			name: "message wins over error", action: ActionGetLease, status: 404,
			body:  `{"error":"generic","message":"lease not found"}`,
			want:  APIError{Status: 404, Message: "lease not found"},
			holds: []string{"NotFound"},
		},
		{
			name: "html from a proxy", action: ActionGetApp, status: 502,
			body:  "<html><body>Bad Gateway</body></html>",
			want:  APIError{Status: 502, Message: "<html><body>Bad Gateway</body></html>"},
			holds: []string{"Unavailable"},
		},
		{
			name: "a long html page is cut", action: ActionCreateApp, status: 502,
			body:  "<html>" + strings.Repeat("x", 2000) + "</html>",
			want:  APIError{Status: 502, Message: "<html>" + strings.Repeat("x", maxKeptBody-len("<html>…")) + "…"},
			holds: []string{"OutcomeUnknown", "Unavailable"},
		},
		{
			name: "a long message is cut on a character boundary", action: ActionGetMachine, status: 400,
			body:  `{"error":"` + strings.Repeat("x", maxKeptBody-len("…")-1) + `é and more"}`, // é straddles the cut
			want:  APIError{Status: 400, Message: strings.Repeat("x", maxKeptBody-len("…")-1) + "…"},
			holds: []string{"BadRequest"},
		},
		{
			name: "JSON cut short is kept as text", action: ActionGetMachine, status: 500,
			body:  `{"error":"internal`,
			want:  APIError{Status: 500, Message: `{"error":"internal`},
			holds: []string{"Unavailable"},
		},
		{
			name: "invalid UTF-8 is replaced", action: ActionGetMachine, status: 500,
			body:  "bad \xff byte",
			want:  APIError{Status: 500, Message: "bad \uFFFD byte"},
			holds: []string{"Unavailable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			resp.Header.Set("fly-request-id", "01REQUESTID")
			if tt.retryAfter != "" {
				resp.Header.Set("Retry-After", tt.retryAfter)
			}
			got := newAPIError(tt.action, resp, []byte(tt.body), now, nil)
			want := tt.want
			want.Action = tt.action
			want.RequestID = "01REQUESTID"
			if diff := cmp.Diff(want, *got); diff != "" {
				t.Errorf("APIError mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.holds, holdingPredicates(got)); diff != "" {
				t.Errorf("Is… helpers mismatch (-want +got):\n%s", diff)
			}
			wrapped := errorsJoinContext(got)
			if diff := cmp.Diff(tt.holds, holdingPredicates(wrapped)); diff != "" {
				t.Errorf("Is… helpers on a wrapped error mismatch (-want +got):\n%s", diff)
			}
			if !strings.Contains(got.Error(), "01REQUESTID") || !strings.Contains(got.Error(), tt.action) {
				t.Errorf("Error() = %q lacks the request ID or action", got.Error())
			}
		})
	}
}

// errorsJoinContext wraps err the way a caller would.
func errorsJoinContext(err error) error {
	return errors.Join(errors.New("reconciling machine"), err)
}

func TestPredicatesOnOtherErrors(t *testing.T) {
	others := []struct {
		name  string
		err   error
		holds []string
	}{
		{"create lost its answer", &TransportError{Action: ActionCreateMachine, Err: io.ErrUnexpectedEOF}, []string{"OutcomeUnknown", "Unavailable"}},
		{"update whose caller gave up while it was out", &TransportError{Action: ActionUpdateMachine, Err: context.Canceled}, []string{"OutcomeUnknown", "Unavailable"}},
		{"create never sent (dial failed)", &TransportError{Action: ActionCreateMachine, Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, []string{"Unavailable"}},
		{"read lost its answer", &TransportError{Action: ActionGetMachine, Err: io.ErrUnexpectedEOF}, []string{"Unavailable"}},
		{"create answered 200 unreadably", &BadResponseError{Action: ActionCreateMachine, Status: 200, Err: errEmptyAnswer}, []string{"BadResponse", "OutcomeUnknown"}},
		{"read answered 200 unreadably", &BadResponseError{Action: ActionListMachines, Status: 200, Err: errEmptyAnswer}, []string{"BadResponse"}},
		{"cursor loop", fmt.Errorf("%w: list_machines", ErrPaging), nil},
	}
	for _, o := range others {
		if diff := cmp.Diff(o.holds, holdingPredicates(o.err)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", o.name, diff)
		}
		if diff := cmp.Diff(o.holds, holdingPredicates(errorsJoinContext(o.err))); diff != "" {
			t.Errorf("%s, wrapped (-want +got):\n%s", o.name, diff)
		}
	}
	if got := holdingPredicates(context.Canceled); len(got) != 0 {
		t.Errorf("context.Canceled satisfies %v", got)
	}
	throttled := &APIError{Action: ActionGetMachine, Code: CodeClientThrottled, RetryAfter: time.Second}
	if diff := cmp.Diff([]string{"RateLimited"}, holdingPredicates(throttled)); diff != "" {
		t.Errorf("client throttled (-want +got):\n%s", diff)
	}
	if got := RateLimitedAfter(throttled); got != time.Second {
		t.Errorf("RateLimitedAfter = %v", got)
	}
	if got := RateLimitedAfter(&APIError{Status: 503, RetryAfter: time.Second}); got != 0 {
		t.Errorf("RateLimitedAfter on a 503 = %v, want 0", got)
	}
}

// TestTokenNeverLeaks checks that the token appears in no error and no metric, even when Fly
// echoes it back in an error body.
func TestTokenNeverLeaks(t *testing.T) {
	const secret = "fm2_TopSecretMacaroonValue"
	const userToken = "UserTokenValue12345"
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"token rejected: `+r.Header.Get("Authorization")+`"}`) // a failed write fails the client's call
	})
	for _, token := range []string{"FlyV1 " + secret + ",fm2_second", userToken} {
		reg := prometheus.NewRegistry()
		c, _ := newTestClient(t, echo, func(o *Options) {
			o.Token = StaticToken(token)
			o.Metrics = reg
		})
		_, err := c.GetApp(context.Background(), "my-app")
		if !IsUnauthorized(err) {
			t.Fatalf("GetApp error = %v, want unauthorized", err)
		}
		for _, part := range []string{secret, "fm2_second", userToken} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("error %q contains the token", err)
			}
		}
		if !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("error %q: the echoed token was not marked as redacted", err)
		}
		assertNoSecretInMetrics(t, reg, secret, userToken, "my-app")
	}

	// No answer at all: the transport error names the URL, never the header.
	c, _ := newTestClient(t, echo, func(o *Options) {
		o.Token = StaticToken(secret)
		o.BaseURL = "http://127.0.0.1:1" // nothing listens there
		o.Retry.MaxAttempts = 1
	})
	_, err := c.GetApp(context.Background(), "my-app")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("transport error = %v", err)
	}
}

func assertNoSecretInMetrics(t *testing.T, reg *prometheus.Registry, forbidden ...string) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	if len(families) == 0 {
		t.Fatal("no metrics were recorded")
	}
	for _, family := range families {
		for _, metric := range family.GetMetric() {
			for _, label := range metric.GetLabel() {
				if name := label.GetName(); name != "action" && name != "status_class" {
					t.Errorf("%s has label %q; only action and status_class are allowed", family.GetName(), name)
				}
				for _, f := range forbidden {
					if strings.Contains(label.GetValue(), f) {
						t.Errorf("%s label %s=%q contains %q", family.GetName(), label.GetName(), label.GetValue(), f)
					}
				}
			}
		}
	}
}
