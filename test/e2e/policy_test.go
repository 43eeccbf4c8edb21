package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// A paused user keeps serving while hangar writes nothing, and catches up when the pause is lifted;
// an ObserveOnly user keeps serving, is reported and is never written, not even on deletion.
func TestPausedAndObservedUsersServeWhileHangarWritesNothing(t *testing.T) {
	ctx := context.Background()
	c := stack.Env.Client
	carol := user{name: uniqueName("carol"), power: flyv1alpha1.PowerStateAuto}
	if err := carol.create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	serves := func() string {
		if code, body, _ := request(t, 80, "GET", carol.host(), "/", nil, nil); code != http.StatusOK {
			return fmt.Sprintf("%d %s", code, body)
		}
		return ""
	}
	eventually(t, "carol routed", time.Minute, serves)
	app, um := status(t, carol.name)
	flyConfig := func() string {
		m, _ := stack.Fly.Machine(app.Status.AppName, um.Status.MachineID)
		return string(m.Config)
	}
	readyReason := func(obj client.Object, conds func() []metav1.Condition) string {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err.Error()
		}
		if r := meta.FindStatusCondition(conds(), flyv1alpha1.ReadyCondition); r != nil {
			return r.Reason + ": " + r.Message
		}
		return "no Ready"
	}
	update := func(obj client.Object, mutate func()) {
		t.Helper()
		eventually(t, "update "+obj.GetName(), 30*time.Second, func() string {
			if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return err.Error()
			}
			mutate()
			if err := c.Update(ctx, obj); err != nil {
				return err.Error()
			}
			return ""
		})
	}

	// Paused: the new image is named in Ready, not applied, and the machine keeps serving.
	update(um, func() {
		um.Annotations = map[string]string{flyv1alpha1.PausedAnnotation: "true"}
		um.Spec.Image = "registry.fly.io/workspace:v2"
	})
	eventually(t, "carol's machine says it is paused", time.Minute, func() string {
		if r := readyReason(um, func() []metav1.Condition { return um.Status.Conditions }); !strings.HasPrefix(r, flyv1alpha1.PausedReason+": ") ||
			!strings.Contains(r, "would update machine") {
			return r
		}
		return ""
	})
	if strings.Contains(flyConfig(), "workspace:v2") {
		t.Fatal("a paused machine was updated")
	}
	if msg := serves(); msg != "" {
		t.Fatalf("a paused user does not serve: %s", msg)
	}
	update(um, func() { delete(um.Annotations, flyv1alpha1.PausedAnnotation) })
	eventually(t, "the new image applied once unpaused", time.Minute, func() string {
		if !strings.Contains(flyConfig(), "workspace:v2") {
			return "config " + flyConfig()
		}
		return ""
	})

	// ObserveOnly: reported with reason Observed, a spec change is not applied, it keeps serving.
	update(app, func() { app.Spec.ManagementPolicy = flyv1alpha1.ManagementPolicyObserveOnly })
	update(um, func() {
		um.Spec.ManagementPolicy = flyv1alpha1.ManagementPolicyObserveOnly
		um.Spec.Env = map[string]string{"ONLY_IF_MANAGED": "1"}
	})
	eventually(t, "carol observed", time.Minute, func() string {
		for _, o := range []struct {
			obj   client.Object
			conds func() []metav1.Condition
			cond  string
		}{
			{app, func() []metav1.Condition { return app.Status.Conditions }, flyv1alpha1.AppCreatedCondition},
			{um, func() []metav1.Condition { return um.Status.Conditions }, flyv1alpha1.ConfigSyncedCondition},
		} {
			if r := readyReason(o.obj, o.conds); !strings.HasPrefix(r, flyv1alpha1.ReadyReason+": ") {
				return o.obj.GetName() + " " + r
			}
			if got := meta.FindStatusCondition(o.conds(), o.cond); got == nil || got.Reason != flyv1alpha1.ObservedReason {
				return fmt.Sprintf("%s %s: %+v", o.obj.GetName(), o.cond, got)
			}
		}
		return ""
	})
	if strings.Contains(flyConfig(), "ONLY_IF_MANAGED") {
		t.Fatal("an observed machine was updated")
	}
	if msg := serves(); msg != "" {
		t.Fatalf("an observed user does not serve: %s", msg)
	}

	// Deleting observed objects leaves Fly as it is.
	for _, obj := range []client.Object{um, app} {
		if err := c.Delete(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "carol's objects gone", time.Minute, func() string {
		if err := c.Get(ctx, client.ObjectKeyFromObject(app), &flyv1alpha1.UserApp{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("UserApp: %v", err)
		}
		return ""
	})
	if info, ok := stack.Fly.App(app.Status.AppName); !ok || info.Deleted {
		t.Fatal("the observed Fly app was deleted with its UserApp")
	}
	if m, _ := stack.Fly.Machine(app.Status.AppName, um.Status.MachineID); m.State == "destroyed" {
		t.Fatal("the observed machine was destroyed with its UserMachine")
	}
}
