package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// Event reasons. Events are emitted on transitions only: when hangar acts on Fly or when an object
// enters a failing state, never on a pass that changes nothing. A failing state's Event takes the
// Ready condition's reason (see warnedReasons).
const (
	EventCreated = "Created"
	EventAdopted = "Adopted"
	// EventObserved: an ObserveOnly object found the Fly app or machine it names.
	EventObserved = "Observed"
	// EventDuplicateDestroyed: a second machine carrying the object's UID was found and destroyed.
	EventDuplicateDestroyed = "DuplicateDestroyed"
	EventUpdated            = "Updated"
	EventStarted            = "Started"
	EventStopped            = "Stopped"
	EventSuspended          = "Suspended"
	EventDriftCorrected     = "DriftCorrected"
	EventThrottled          = "Throttled"
	EventDeleted            = "Deleted"
	EventOrphaned           = "Orphaned"
	// EventNotOwned: a deletion left a Fly app in place because another owner's marker is on it.
	EventNotOwned = "NotOwned"
	// EventHostsAccepted: an object that lost a host to another UserApp owns all its hosts again.
	EventHostsAccepted = "HostsAccepted"
	// EventRecovered: an object that was stalled (see stalledReasons) is Ready again.
	EventRecovered = "Recovered"
)

// eventer emits hangar's Events. Its methods are the only way reconcilers emit them, so reasons and
// types stay consistent.
type eventer struct {
	rec events.EventRecorder
}

func (e eventer) normal(obj runtime.Object, reason, action, note string, args ...any) {
	if e.rec != nil {
		e.rec.Eventf(obj, nil, corev1.EventTypeNormal, reason, action, note, args...)
	}
}

func (e eventer) warning(obj runtime.Object, reason, action, note string, args ...any) {
	if e.rec != nil {
		e.rec.Eventf(obj, nil, corev1.EventTypeWarning, reason, action, note, args...)
	}
}

// warnedReasons are the Ready reasons that deserve a Warning Event when an object enters them: the
// failures a person may have to act on. Waiting and transient reasons are left to the condition.
var warnedReasons = map[string]bool{
	flyv1alpha1.ThrottledReason:      true,
	flyv1alpha1.FlyRejectedReason:    true,
	flyv1alpha1.UnauthorizedReason:   true,
	flyv1alpha1.NameTakenReason:      true,
	flyv1alpha1.NetworkInUseReason:   true,
	flyv1alpha1.SecretNotFoundReason: true,
	flyv1alpha1.HostConflictReason:   true,
	flyv1alpha1.InvalidHostReason:    true,
	flyv1alpha1.NotFoundReason:       true,
}

// failureEvent announces that an object entered a failing state: a Warning with the Ready reason
// when it changes to one of warnedReasons, never again while it stays.
func (e eventer) failureEvent(obj runtime.Object, oldReason, newReason, message string) {
	if oldReason != newReason && warnedReasons[newReason] {
		e.warning(obj, newReason, "Reconcile", "%s", message)
	}
}

// recoveryEvent announces that an object which was stalled is Ready again, so the Warning that
// announced the failure is followed by the news that it is over.
func (e eventer) recoveryEvent(obj runtime.Object, oldReason, newReason string) {
	if stalledReasons[oldReason] && oldReason != flyv1alpha1.PausedReason && newReason == flyv1alpha1.ReadyReason {
		e.normal(obj, EventRecovered, "Reconcile", "Ready again after %s", oldReason)
	}
}
