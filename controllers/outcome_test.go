package controllers

import (
	"errors"
	"testing"
	"time"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

func TestOutcomeOf(t *testing.T) {
	o := Options{UnauthorizedRetry: time.Minute, TransitionPoll: 2 * time.Second}
	cases := []struct {
		name       string
		err        error
		reason     string
		requeue    time.Duration
		returnsErr bool
	}{
		{"waiting", waitFor(5*time.Second, flyv1alpha1.WaitingForAppReason, "app"), flyv1alpha1.WaitingForAppReason, 5 * time.Second, false},
		{"throttled", &FlyError{Kind: FlyThrottled, RetryAfter: 3 * time.Second}, flyv1alpha1.ThrottledReason, 3 * time.Second, false},
		{"throttled without a hint", &FlyError{Kind: FlyThrottled}, flyv1alpha1.ThrottledReason, time.Second, false},
		{"unauthorized", &FlyError{Kind: FlyUnauthorized}, flyv1alpha1.UnauthorizedReason, time.Minute, false},
		{"rejected", &FlyError{Kind: FlyRejected, Message: "bad image"}, flyv1alpha1.FlyRejectedReason, 0, true},
		{"unavailable", &FlyError{Kind: FlyUnavailable}, flyv1alpha1.FlyUnavailableReason, 0, true},
		{"lease held by another client", &FlyError{Kind: FlyConflict, Message: "lease currently held"}, flyv1alpha1.ConflictReason, 2 * time.Second, false},
		{"conflict with a longer hint", &FlyError{Kind: FlyConflict, RetryAfter: 9 * time.Second}, flyv1alpha1.ConflictReason, 9 * time.Second, false},
		{"state does not allow it yet", &FlyError{Kind: FlyPrecondition}, flyv1alpha1.PreconditionFailedReason, 2 * time.Second, false},
		{"kubernetes error", errors.New("conflict"), flyv1alpha1.ReconcilingReason, 0, true},
	}
	for _, tc := range cases {
		oc := outcomeOf(tc.err, o)
		if oc.reason != tc.reason || oc.result.RequeueAfter != tc.requeue || (oc.err != nil) != tc.returnsErr || !oc.failed() {
			t.Errorf("%s: outcome %+v", tc.name, oc)
		}
	}
}
