package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/activity"
)

// A machine with spec.idle serves while requests come (the router publishes them to the app's
// activity Lease), is stopped by the manager once none came for the timeout, and the next request
// wakes it through the Fly Proxy. It takes the real minute of the shortest timeout allowed.
func TestIdleMachineIsStoppedAndWokenByTheNextRequest(t *testing.T) {
	ctx := context.Background()
	c := stack.Env.Client
	ivy := user{name: uniqueName("ivy"), power: flyv1alpha1.PowerStateAuto}
	if err := ivy.create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	app, um := &flyv1alpha1.UserApp{}, &flyv1alpha1.UserMachine{}
	eventually(t, "spec.idle set", 30*time.Second, func() string {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ivy.machine()}, um); err != nil {
			return err.Error()
		}
		um.Spec.Idle = &flyv1alpha1.IdlePolicy{Timeout: metav1.Duration{Duration: time.Minute}, Action: flyv1alpha1.IdleActionStop}
		if err := c.Update(ctx, um); err != nil {
			return err.Error()
		}
		return ""
	})
	serves := func() string {
		code, body, answer := request(t, 80, "GET", ivy.host(), "/", nil, nil)
		if code != http.StatusOK || answer == nil {
			return fmt.Sprintf("%d %s", code, body)
		}
		return ""
	}
	eventually(t, "ivy routed", time.Minute, serves)
	if err := c.Get(ctx, client.ObjectKeyFromObject(um), um); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ivy.name}, app); err != nil {
		t.Fatal(err)
	}

	// The router publishes the requests to the app's activity Lease.
	eventually(t, "the activity Lease lists ivy's machine", 30*time.Second, func() string {
		if msg := serves(); msg != "" {
			return msg
		}
		lease := &coordinationv1.Lease{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: activity.DefaultNamespace, Name: activity.LeaseName(app.UID)}, lease); err != nil {
			return err.Error()
		}
		times, err := activity.Decode(lease.Annotations[activity.Annotation])
		if err != nil {
			return err.Error()
		}
		if times.LastFor(um.Status.MachineID).IsZero() {
			return fmt.Sprintf("Lease %v", lease.Annotations)
		}
		return ""
	})

	// No request for the timeout: the manager stops the machine and says why.
	eventually(t, "ivy's machine stopped for idleness", 3*time.Minute, func() string {
		if err := c.Get(ctx, client.ObjectKeyFromObject(um), um); err != nil {
			return err.Error()
		}
		m, _ := stack.Fly.Machine(app.Status.AppName, um.Status.MachineID)
		synced := meta.FindStatusCondition(um.Status.Conditions, flyv1alpha1.PowerStateSyncedCondition)
		if m.State != "stopped" || synced == nil || synced.Reason != flyv1alpha1.IdleReason || um.Status.IdleActionTime == nil {
			return fmt.Sprintf("machine %s, PowerStateSynced %+v", m.State, synced)
		}
		return ""
	})

	// The next request wakes it.
	if msg := serves(); msg != "" {
		t.Fatalf("the request after the idle stop: %s", msg)
	}
	if m, _ := stack.Fly.Machine(app.Status.AppName, um.Status.MachineID); m.State != "started" {
		t.Fatalf("machine %s after the request that should have woken it", m.State)
	}
}
