package flyadapter

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
)

// classify turns a client error into the controllers' FlyError kinds. Fly's own message is kept
// (the client has already removed any echo of the token). An unknown outcome is FlyUnavailable
// with a message starting "outcome unknown" (see the package comment).
func classify(err error) error {
	if err == nil {
		return nil
	}
	fe := &controllers.FlyError{Kind: controllers.FlyUnavailable, Err: err, Message: err.Error()}
	var apiErr *flyapi.APIError
	if errors.As(err, &apiErr) && apiErr.Message != "" {
		fe.Message = apiErr.Message
	}
	switch {
	case flyapi.IsAppNotVisible(err):
		// Created: a read of the app did not see it in time. Not missing, not failed.
		fe.Kind, fe.Message = controllers.FlyUnavailable, err.Error()
	case flyapi.IsOutcomeUnknown(err):
		fe.Kind, fe.Message = controllers.FlyUnavailable, fmt.Sprintf("outcome unknown: Fly may have carried out %s: %s", actionOf(err), fe.Message)
	case flyapi.IsRouteNotFound(err):
		// A plain "404 page not found": the URL is not the Machines API, which no retry will fix.
		fe.Kind, fe.Message = controllers.FlyRejected, "the Fly API URL does not serve the Machines API (404 page not found): check --fly-api-url"
	case flyapi.IsNotFound(err):
		fe.Kind = controllers.FlyNotFound
	case flyapi.IsNameTaken(err):
		fe.Kind = controllers.FlyNameTaken
	case flyapi.IsUnauthorized(err):
		fe.Kind = controllers.FlyUnauthorized
	case flyapi.IsForbidden(err):
		fe.Kind = controllers.FlyForbidden
	case flyapi.IsRateLimited(err):
		fe.Kind, fe.RetryAfter = controllers.FlyThrottled, flyapi.RateLimitedAfter(err)
	case flyapi.IsConflict(err):
		fe.Kind = controllers.FlyConflict
	case flyapi.IsFailedPrecondition(err):
		fe.Kind = controllers.FlyPrecondition
	case flyapi.IsInsufficientCapacity(err), flyapi.IsUnavailable(err), flyapi.IsWaitTimeout(err):
		fe.Kind = controllers.FlyUnavailable
	case errors.As(err, &apiErr) && (apiErr.Status == http.StatusBadRequest || apiErr.Status == http.StatusUnprocessableEntity):
		fe.Kind = controllers.FlyRejected
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		fe.Kind = controllers.FlyUnavailable
	}
	return fe
}

// ignoreNotFound treats "already gone" as done, for deletes.
func ignoreNotFound(err error) error {
	var fe *controllers.FlyError
	if errors.As(err, &fe) && fe.Kind == controllers.FlyNotFound {
		return nil
	}
	return err
}

// actionOf names the client call an error came from.
func actionOf(err error) string {
	var apiErr *flyapi.APIError
	var transportErr *flyapi.TransportError
	var badResponse *flyapi.BadResponseError
	switch {
	case errors.As(err, &badResponse):
		return badResponse.Action
	case errors.As(err, &apiErr):
		return apiErr.Action
	case errors.As(err, &transportErr):
		return transportErr.Action
	}
	return "the call"
}
