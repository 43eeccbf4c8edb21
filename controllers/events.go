package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// Event reasons. Events are emitted on transitions only: when hangar acts on Fly or when an object
// enters a failing state, never on a pass that changes nothing.
const (
	EventCreated        = "Created"
	EventAdopted        = "Adopted"
	EventUpdated        = "Updated"
	EventStarted        = "Started"
	EventStopped        = "Stopped"
	EventSuspended      = "Suspended"
	EventDriftCorrected = "DriftCorrected"
	EventThrottled      = "Throttled"
	EventFlyRejected    = "FlyRejected"
	EventUnauthorized   = "Unauthorized"
	EventNameTaken      = "NameTaken"
	EventDeleted        = "Deleted"
	EventOrphaned       = "Orphaned"
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

// failureEvent announces that an object entered a failing state: emitted when the Ready reason
// changes to one of these, never again while it stays.
func (e eventer) failureEvent(obj runtime.Object, oldReason, newReason, message string) {
	if oldReason == newReason {
		return
	}
	switch newReason {
	case EventThrottled, EventFlyRejected, EventUnauthorized, EventNameTaken:
		e.warning(obj, newReason, "Reconcile", "%s", message)
	}
}
