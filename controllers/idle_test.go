package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/activity"
	"github.com/hangar-dev/hangar/internal/flysim"
)

// TestIdleTimeout runs a started machine with spec.idle (timeout 1m) past its timeout on the
// manager's clock and looks at what the pass that follows does to it.
func TestIdleTimeout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		action   flyv1alpha1.IdleAction
		paused   bool
		observed bool // managementPolicy ObserveOnly
		// requestAfter, when set, is a request the activity Lease shows this long after the start.
		requestAfter time.Duration
		wantState    string // the machine's state on Fly after the pass
		wantReason   string // PowerStateSynced's reason after the pass
		wantEvent    string // the Idle Event's message part, empty for none
	}{
		{name: "stopped after the timeout without a request", action: flyv1alpha1.IdleActionStop,
			wantState: flysim.StateStopped, wantReason: flyv1alpha1.IdleReason, wantEvent: "stopped: no request for 1m0s"},
		{name: "suspended with action Suspend", action: flyv1alpha1.IdleActionSuspend,
			wantState: flysim.StateSuspended, wantReason: flyv1alpha1.IdleReason, wantEvent: "suspended: no request for 1m0s"},
		{name: "not stopped while the Lease shows a request within the timeout", action: flyv1alpha1.IdleActionStop,
			requestAfter: 30 * time.Second, wantState: flysim.StateStarted, wantReason: flyv1alpha1.ReadyReason},
		{name: "never touched while paused", action: flyv1alpha1.IdleActionStop, paused: true,
			wantState: flysim.StateStarted, wantReason: flyv1alpha1.PausedReason},
		{name: "never touched under ObserveOnly", action: flyv1alpha1.IdleActionStop, observed: true,
			wantState: flysim.StateStarted, wantReason: flyv1alpha1.ObservedReason},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := clocktesting.NewFakeClock(time.Now())
			h := newHarness(t, harnessOptions{now: clock.Now})
			app := newApp("idler")
			um := newMachine("idler-ws", "idler")
			um.Spec.Idle = &flyv1alpha1.IdlePolicy{Timeout: metav1.Duration{Duration: time.Minute}, Action: tc.action}
			h.create(app)
			h.create(um)
			h.ready(app)
			h.settled(um, flysim.StateStarted)
			h.get(app)
			if tc.requestAfter > 0 {
				request := clock.Now().Add(tc.requestAfter)
				h.create(&coordinationv1.Lease{
					ObjectMeta: metav1.ObjectMeta{Name: activity.LeaseName(app.UID), Labels: activity.Labels(h.ns, app.Name),
						Annotations: map[string]string{activity.Annotation: activity.Times{um.Status.MachineID: request}.Encode()}},
				})
			}
			if tc.paused {
				h.update(um, func() { um.Annotations = map[string]string{flyv1alpha1.PausedAnnotation: "true"} })
			}
			if tc.observed {
				h.update(um, func() { um.Spec.ManagementPolicy = flyv1alpha1.ManagementPolicyObserveOnly })
			}
			clock.Step(time.Minute + 5*time.Second)
			// A pass now (an annotation change starts one), instead of the requeue at the deadline,
			// which runs on the real clock.
			h.update(um, func() { metav1.SetMetaDataAnnotation(&um.ObjectMeta, "test.hangar.dev/nudge", "1") })

			h.eventually("the pass after the timeout", func() string {
				h.get(um)
				c := meta.FindStatusCondition(um.Status.Conditions, flyv1alpha1.PowerStateSyncedCondition)
				switch {
				case c == nil || c.Reason != tc.wantReason:
					return fmt.Sprintf("PowerStateSynced %+v, want reason %s", c, tc.wantReason)
				case tc.requestAfter > 0 && (um.Status.LastActivityTime == nil || um.Status.LastActivityTime.Unix() != clock.Now().Add(tc.requestAfter-time.Minute-5*time.Second).Unix()):
					return fmt.Sprintf("status.lastActivityTime %v, want the Lease's request", um.Status.LastActivityTime)
				}
				m, _ := h.sim.Machine(um.Status.AppName, um.Status.MachineID)
				if m.State != tc.wantState {
					return fmt.Sprintf("machine %s on Fly, want %s", m.State, tc.wantState)
				}
				return ""
			})
			idleEvents := h.events(um.Name)[controllersEventIdle]
			switch {
			case tc.wantEvent == "" && len(idleEvents) > 0:
				t.Errorf("Idle Events %q, want none", idleEvents)
			case tc.wantEvent != "":
				h.eventually("the Idle Event", func() string {
					for _, e := range h.events(um.Name)[controllersEventIdle] {
						if strings.Contains(e, tc.wantEvent) {
							return ""
						}
					}
					return fmt.Sprintf("Events %v, want an Idle Event saying %q", h.events(um.Name), tc.wantEvent)
				})
				if um.Status.IdleActionTime == nil {
					t.Error("status.idleActionTime not set")
				}
			}
			if tc.paused || tc.observed || tc.requestAfter > 0 {
				for _, action := range []string{"stop_machine", "suspend_machine"} {
					if calls := h.sim.CallsFor(action, um.Status.MachineID); len(calls) > 0 {
						t.Errorf("%d %s calls, want none", len(calls), action)
					}
				}
			}
		})
	}
}

// controllersEventIdle is controllers.EventIdle, spelled out so a renamed reason fails here.
const controllersEventIdle = "Idle"

// The routers create and update a UserApp's activity Lease but never delete it: the UserApp's
// deletion does.
func TestActivityLeaseGoesWithItsUserApp(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	app := newApp("leaver")
	h.create(app)
	h.ready(app)
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: activity.LeaseName(app.UID), Labels: activity.Labels(h.ns, app.Name)}}
	h.create(lease)
	if err := env.Client.Delete(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	h.gone(app)
	h.gone(lease)
}
