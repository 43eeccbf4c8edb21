package controllers

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// waitError stops a pass that cannot go on until something else happens (a UserApp becoming
// ready, a machine finishing a transition). It is not a failure: the pass ends with RequeueAfter.
type waitError struct {
	after   time.Duration
	reason  string
	message string
}

func (e *waitError) Error() string { return e.message }

// waitFor ends the pass and tries again after d (0: only when a watched object changes).
func waitFor(d time.Duration, reason, format string, args ...any) error {
	return &waitError{after: d, reason: reason, message: fmt.Sprintf(format, args...)}
}

// outcome is how a failed phase shows on the object and what the pass returns.
type outcome struct {
	reason  string
	message string
	result  ctrl.Result
	err     error
	// label names the outcome in the reconcile metrics.
	label string
}

// failed reports whether the pass stopped short of its last phase.
func (o outcome) failed() bool { return o.reason != "" }

// outcomeOf sorts an error into its class (docs/architecture.md, "Errors"): waiting (RequeueAfter),
// contended (someone else holds or changed the machine: RequeueAfter, soon), permanent (a
// condition, retried no faster than the workqueue backoff, or slowly when only a person can fix it)
// and transient (returned for backoff).
func outcomeOf(err error, o Options) outcome {
	var pause *pausedError
	if errors.As(err, &pause) {
		return pausedOutcome(pause, o)
	}
	var wait *waitError
	if errors.As(err, &wait) {
		return outcome{reason: wait.reason, message: wait.message, result: ctrl.Result{RequeueAfter: wait.after}, label: "waiting"}
	}
	var fe *FlyError
	if !errors.As(err, &fe) {
		return outcome{reason: flyv1alpha1.ReconcilingReason, message: err.Error(), err: err, label: "error"}
	}
	switch fe.Kind {
	case FlyThrottled:
		after := max(fe.RetryAfter, time.Second)
		// The message leaves out when the retry comes, so a pass throttled again does not rewrite
		// the status for nothing.
		return outcome{reason: flyv1alpha1.ThrottledReason,
			message: "Fly rate limits delayed this change; retrying when Fly's Retry-After allows",
			result:  ctrl.Result{RequeueAfter: after}, label: "throttled"}
	case FlyUnauthorized:
		return outcome{reason: flyv1alpha1.UnauthorizedReason,
			message: fmt.Sprintf("Fly refused the API token: check the manager's token Secret (retrying every %s)", o.UnauthorizedRetry),
			result:  ctrl.Result{RequeueAfter: o.UnauthorizedRetry}, label: "unauthorized"}
	case FlyConflict:
		after := max(fe.RetryAfter, o.TransitionPoll)
		return outcome{reason: flyv1alpha1.ConflictReason,
			message: fmt.Sprintf("another client holds the machine's lease or changed it first (%s); retrying in %s", fe.Message, after),
			result:  ctrl.Result{RequeueAfter: after}, label: "conflict"}
	case FlyPrecondition:
		after := max(fe.RetryAfter, o.TransitionPoll)
		return outcome{reason: flyv1alpha1.PreconditionFailedReason,
			message: fmt.Sprintf("the machine's state does not allow this yet (%s); retrying in %s", fe.Message, after),
			result:  ctrl.Result{RequeueAfter: after}, label: "precondition"}
	case FlyRejected, FlyForbidden:
		return outcome{reason: flyv1alpha1.FlyRejectedReason, message: "Fly refused the request: " + fe.Message, err: err, label: "rejected"}
	default:
		return outcome{reason: flyv1alpha1.FlyUnavailableReason, message: fe.Error(), err: err, label: "error"}
	}
}

// setCondition records a condition for the object's current generation.
func setCondition(conds *[]metav1.Condition, generation int64, condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: condType, Status: status, Reason: reason, Message: message, ObservedGeneration: generation,
	})
}

// markTrue and markFalse are the two common cases of setCondition.
func markTrue(conds *[]metav1.Condition, generation int64, condType, reason, message string) {
	setCondition(conds, generation, condType, metav1.ConditionTrue, reason, message)
}

func markFalse(conds *[]metav1.Condition, generation int64, condType, reason, message string) {
	setCondition(conds, generation, condType, metav1.ConditionFalse, reason, message)
}

// markKnown sets a condition True for something found again (an app or machine by its recorded
// ID), keeping the reason and message of the pass that first created or adopted it.
func markKnown(conds *[]metav1.Condition, generation int64, condType, message string) {
	if !isTrue(*conds, condType) {
		markTrue(conds, generation, condType, flyv1alpha1.ReadyReason, message)
	}
}

// summarizeReady sets Ready from the named conditions: True with readyMessage when all are True,
// else False with the reason and message of the first that is not.
func summarizeReady(conds *[]metav1.Condition, generation int64, readyMessage string, parts ...string) {
	for _, t := range parts {
		c := meta.FindStatusCondition(*conds, t)
		if c == nil {
			markFalse(conds, generation, flyv1alpha1.ReadyCondition, flyv1alpha1.ReconcilingReason, t+" is not known yet")
			return
		}
		if c.Status != metav1.ConditionTrue {
			markFalse(conds, generation, flyv1alpha1.ReadyCondition, c.Reason, c.Message)
			return
		}
	}
	markTrue(conds, generation, flyv1alpha1.ReadyCondition, flyv1alpha1.ReadyReason, readyMessage)
}

// stalledReasons are the Ready reasons that no retry fixes: someone has to change the object, a
// Secret, another tenant's claim or the Fly token. They make Stalled True; every other reason of a
// Ready that is not True means work under way (Reconciling).
var stalledReasons = map[string]bool{
	flyv1alpha1.FlyRejectedReason:    true,
	flyv1alpha1.NameTakenReason:      true,
	flyv1alpha1.NetworkInUseReason:   true,
	flyv1alpha1.SecretNotFoundReason: true,
	flyv1alpha1.UnauthorizedReason:   true,
	flyv1alpha1.HostConflictReason:   true,
	flyv1alpha1.InvalidHostReason:    true,
	flyv1alpha1.PausedReason:         true,
	flyv1alpha1.NotFoundReason:       true,
	// A FlyRouter's ServiceAccount, CA or token key is missing.
	flyv1alpha1.CredentialsInvalidReason: true,
}

// summarizeProgress sets the kstatus conditions from Ready (see api/v1alpha1/conditions.go): at
// most one of Reconciling and Stalled is True, with Ready's reason and message; both are False
// once Ready is True.
func summarizeProgress(conds *[]metav1.Condition, generation int64) {
	ready := meta.FindStatusCondition(*conds, flyv1alpha1.ReadyCondition)
	switch {
	case ready == nil:
		return
	case ready.Status == metav1.ConditionTrue:
		markFalse(conds, generation, flyv1alpha1.ReconcilingCondition, flyv1alpha1.ReadyReason, "nothing left to do")
		markFalse(conds, generation, flyv1alpha1.StalledCondition, flyv1alpha1.ReadyReason, "nothing is stuck")
	case stalledReasons[ready.Reason]:
		markTrue(conds, generation, flyv1alpha1.StalledCondition, ready.Reason, ready.Message)
		markFalse(conds, generation, flyv1alpha1.ReconcilingCondition, ready.Reason, "waiting for a change (see Stalled)")
	default:
		markTrue(conds, generation, flyv1alpha1.ReconcilingCondition, ready.Reason, ready.Message)
		markFalse(conds, generation, flyv1alpha1.StalledCondition, ready.Reason, "nothing is stuck")
	}
}

// readyReason is the reason of the Ready condition, or "" when there is none.
func readyReason(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, flyv1alpha1.ReadyCondition); c != nil {
		return c.Reason
	}
	return ""
}

// isTrue reports whether the condition is present and True.
func isTrue(conds []metav1.Condition, condType string) bool {
	return meta.IsStatusConditionTrue(conds, condType)
}
