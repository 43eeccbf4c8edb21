package flysim

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors returned by the inspection and out-of-band methods; match them with errors.Is.
var (
	ErrAppNotFound        = errors.New("flysim: app not found")
	ErrMachineNotFound    = errors.New("flysim: machine not found")
	ErrFailedPrecondition = errors.New("flysim: failed precondition")
	ErrInvalidConfig      = errors.New("flysim: invalid machine config")
)

// apiError is an error answer of the API: an HTTP status and Fly's `{"error","status"}` body. The same
// value is returned by the out-of-band methods, where it unwraps to the matching sentinel above.
type apiError struct {
	httpStatus int
	message    string
	code       string // the body's `status` field (e.g. "name_taken"); omitted when empty
}

func (e *apiError) Error() string { return e.message }

// Unwrap maps the HTTP status to the package's sentinel errors, so out-of-band callers can use errors.Is.
func (e *apiError) Unwrap() error {
	switch e.httpStatus {
	case http.StatusNotFound:
		if e.message == msgAppNotFound {
			return ErrAppNotFound
		}
		return ErrMachineNotFound
	case http.StatusPreconditionFailed:
		return ErrFailedPrecondition
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return ErrInvalidConfig
	}
	return nil
}

func newAPIError(status int, format string, args ...any) *apiError {
	return &apiError{httpStatus: status, message: fmt.Sprintf(format, args...)}
}

const (
	msgAppNotFound     = "app not found"
	msgMachineNotFound = "machine not found"
)

// errorBody is Fly's error body (§7).
type errorBody struct {
	Error  string `json:"error"`
	Status string `json:"status,omitempty"`
}

// leaseErrorBody is the different shape the lease endpoints use for errors (§7, §4.6).
type leaseErrorBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Code    string `json:"code"`
}

// reply is a handler's answer, written by the request pipeline (which may replace it with a fault).
type reply struct {
	status int
	body   any // JSON-encoded; nil means no body
	header map[string]string
}

func jsonReply(status int, body any) reply { return reply{status: status, body: body} }

func emptyReply(status int) reply { return reply{status: status} }

func errReply(e *apiError) reply {
	return reply{status: e.httpStatus, body: errorBody{Error: e.message, Status: e.code}}
}

func errorf(status int, format string, args ...any) reply {
	return errReply(newAPIError(status, format, args...))
}

func leaseErrorf(status int, code, format string, args ...any) reply {
	return reply{status: status, body: leaseErrorBody{Status: "error", Message: fmt.Sprintf(format, args...), Code: code}}
}
