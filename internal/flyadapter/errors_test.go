package flyadapter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
)

func TestClassify(t *testing.T) {
	apiErr := func(status int, code, msg string) error {
		return &flyapi.APIError{Status: status, Code: code, Message: msg, Action: "create_machine"}
	}
	cases := []struct {
		name string
		err  error
		want controllers.FlyErrorKind
	}{
		{"not found", apiErr(http.StatusNotFound, "", "machine not found"), controllers.FlyNotFound},
		{"unknown route", &flyapi.APIError{Status: 404, Code: flyapi.CodeRouteNotFound, Message: "404 page not found"}, controllers.FlyRejected},
		{"name taken", apiErr(422, "name_taken", "Validation failed: Name has already been taken"), controllers.FlyNameTaken},
		{"invalid config", apiErr(422, "", "invalid_argument: bad image"), controllers.FlyRejected},
		{"bad request", apiErr(400, "", "bad"), controllers.FlyRejected},
		{"unauthorized", apiErr(401, "", "unauthorized"), controllers.FlyUnauthorized},
		{"forbidden", apiErr(403, "", "forbidden"), controllers.FlyForbidden},
		{"rate limited", &flyapi.APIError{Status: 429, RetryAfter: 3 * time.Second}, controllers.FlyThrottled},
		{"limiter refused", &flyapi.APIError{Code: flyapi.CodeClientThrottled, RetryAfter: time.Second}, controllers.FlyThrottled},
		{"lease conflict", apiErr(409, "", "lease currently held"), controllers.FlyConflict},
		{"bad state", apiErr(412, "", "failed_precondition: unable to start machine from current state: 'created'"), controllers.FlyPrecondition},
		{"server error", apiErr(503, "", "unavailable"), controllers.FlyUnavailable},
		{"capacity", apiErr(422, "insufficient_capacity", "no capacity"), controllers.FlyUnavailable},
		{"no answer", &flyapi.TransportError{Action: "create_machine", Err: errors.New("EOF")}, controllers.FlyUnavailable},
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), controllers.FlyUnavailable},
		{"create answered 408", apiErr(408, "", "deadline_exceeded"), controllers.FlyUnavailable},
		{"wait timed out", &flyapi.APIError{Status: 408, Action: "wait_machine"}, controllers.FlyUnavailable},
		{"create answered unreadably", &flyapi.BadResponseError{Action: "create_machine", Status: 200, Err: errors.New("no id")}, controllers.FlyUnavailable},
		{"read answered unreadably", &flyapi.BadResponseError{Action: "get_machine", Status: 200, Err: errors.New("no id")}, controllers.FlyUnavailable},
		{"paging loop", fmt.Errorf("%w: list_machines", flyapi.ErrPaging), controllers.FlyUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fe *controllers.FlyError
			if err := classify(tc.err); !errors.As(err, &fe) || fe.Kind != tc.want {
				t.Fatalf("classify(%v) = %v, want kind %s", tc.err, err, tc.want)
			}
			if !errors.Is(classify(tc.err), tc.err) {
				t.Fatal("the client error is not kept for errors.Is")
			}
		})
	}
	if classify(nil) != nil {
		t.Fatal("classify(nil) != nil")
	}
	var fe *controllers.FlyError
	if !errors.As(classify(&flyapi.APIError{Status: 429, RetryAfter: 3 * time.Second}), &fe) || fe.RetryAfter != 3*time.Second {
		t.Fatalf("classify of a 429 = %+v, want RetryAfter 3s", fe)
	}
}

// TestClassifyMessage: the condition shows Fly's own message, not the client's wrapping of it,
// except for a URL that is not the Machines API, which gets advice instead.
func TestClassifyMessage(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"Fly's message", fmt.Errorf("updating: %w", &flyapi.APIError{Status: 422, Message: "invalid_argument: bad image", Action: "update_machine", RequestID: "01REQ"}), "invalid_argument: bad image"},
		{"no message from Fly", &flyapi.APIError{Status: 503, Action: "get_machine"}, (&flyapi.APIError{Status: 503, Action: "get_machine"}).Error()},
		{"not an API error", context.DeadlineExceeded, context.DeadlineExceeded.Error()},
		{"unknown route", &flyapi.APIError{Status: 404, Code: flyapi.CodeRouteNotFound, Message: "404 page not found"}, "the Fly API URL does not serve the Machines API (404 page not found): check --fly-api-url"},
		{"create answered 408", &flyapi.APIError{Status: 408, Message: "deadline_exceeded", Action: "create_machine"}, "outcome unknown: Fly may have carried out create_machine: deadline_exceeded"},
		{"lease answer lost", &flyapi.TransportError{Action: "acquire_lease", Err: errors.New("EOF")}, "outcome unknown: Fly may have carried out acquire_lease: flyapi: acquire_lease: no response: EOF"},
		{"wait timed out", &flyapi.APIError{Status: 408, Message: "deadline_exceeded", Action: "wait_machine"}, "deadline_exceeded"},
		{"app created, not yet visible", &flyapi.AppNotVisibleError{App: "a", Waited: time.Minute, Last: &flyapi.APIError{Status: 404, Message: "app not found", Action: "get_app"}},
			`flyapi: create_app: app "a" was created but is not readable yet after 1m0s (last read: flyapi: get_app: 404 Not Found: app not found)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fe *controllers.FlyError
			if !errors.As(classify(tc.err), &fe) {
				t.Fatalf("classify(%v) is not a FlyError", tc.err)
			}
			if fe.Message != tc.want {
				t.Errorf("message %q, want %q", fe.Message, tc.want)
			}
		})
	}
}
