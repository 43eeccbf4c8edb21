package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
)

// kstatusOf reads obj from the apiserver as unstructured, the way kstatus-based waiters (Flux, kpt,
// cli-utils) see it, and computes its status with kstatus itself.
func (h *harness) kstatusOf(obj client.Object, kind string) *status.Result {
	h.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: flyv1alpha1.GroupVersion.Group, Version: flyv1alpha1.GroupVersion.Version, Kind: kind})
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), u); err != nil {
		h.t.Fatalf("reading %s: %v", obj.GetName(), err)
	}
	res, err := status.Compute(u)
	if err != nil {
		h.t.Fatalf("kstatus of %s: %v", obj.GetName(), err)
	}
	return res
}

// eventuallyKstatus waits until kstatus reads want for obj, and returns what it read.
func (h *harness) eventuallyKstatus(obj client.Object, kind string, want status.Status) *status.Result {
	h.t.Helper()
	var res *status.Result
	h.eventually(fmt.Sprintf("%s %s reads %s", kind, obj.GetName(), want), func() string {
		res = h.kstatusOf(obj, kind)
		if res.Status != want {
			return fmt.Sprintf("kstatus %s: %s", res.Status, res.Message)
		}
		return ""
	})
	return res
}

func TestKstatusReadsEveryState(t *testing.T) {
	h := newHarness(t, harnessOptions{})

	// Current: Ready objects whose Ready message says what runs.
	app, um := h.readyUser("kate")
	h.eventuallyKstatus(app, "UserApp", status.CurrentStatus)
	h.eventuallyKstatus(um, "UserMachine", status.CurrentStatus)
	h.get(app)
	h.get(um)
	for _, msg := range []string{
		findCondition(app.Status.Conditions, flyv1alpha1.ReadyCondition).Message,
		findCondition(um.Status.Conditions, flyv1alpha1.ReadyCondition).Message,
	} {
		if !strings.Contains(msg, app.Status.AppName) && !strings.Contains(msg, um.Status.MachineID) {
			t.Errorf("Ready message %q names neither the Fly app nor the machine", msg)
		}
	}

	// InProgress: a machine whose UserApp does not exist yet waits, and says so.
	waiting := newMachine("kate-orphan", "nobody")
	h.create(waiting)
	res := h.eventuallyKstatus(waiting, "UserMachine", status.InProgressStatus)
	if !strings.Contains(res.Message, flyv1alpha1.WaitingForAppReason) && !strings.Contains(res.Message, "nobody") {
		t.Errorf("InProgress message %q does not say what it waits for", res.Message)
	}

	// Failed, for a new object whose first pass fails: Fly refuses the image.
	refused := newMachine("kate-bad-image", "kate")
	refused.Spec.Image = "registry.fly.io/Not_A_Valid/Image:v1"
	h.create(refused)
	res = h.eventuallyKstatus(refused, "UserMachine", status.FailedStatus)
	h.get(refused)
	if refused.Status.ObservedGeneration != refused.Generation {
		t.Errorf("failed object: observedGeneration %d, generation %d", refused.Status.ObservedGeneration, refused.Generation)
	}
	if !strings.Contains(res.Message, "Fly refused") {
		t.Errorf("Failed message %q does not carry Fly's refusal", res.Message)
	}

	// Failed, for an update that fails: the Ready app is asked for a Secret that does not exist.
	// The generation the failure describes is recorded, so no waiter keeps reading the old Current.
	h.update(app, func() {
		app.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "API_KEY", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: "kate-creds", Key: "key"}}}
	})
	h.eventuallyKstatus(app, "UserApp", status.FailedStatus)
	h.get(app)
	if app.Status.ObservedGeneration != app.Generation {
		t.Errorf("failed update: observedGeneration %d, generation %d", app.Status.ObservedGeneration, app.Generation)
	}
	if c := findCondition(app.Status.Conditions, flyv1alpha1.ReconcilingCondition); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("Reconciling = %+v while Stalled; the two are never True together", c)
	}
	if got := h.events(app.Name)[flyv1alpha1.SecretNotFoundReason]; len(got) != 1 {
		t.Errorf("SecretNotFound Warning events = %v, want one", got)
	}

	// The Secret appears: Current again, and a Normal Event says the failure is over.
	h.create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "kate-creds", Labels: appSecretLabels()},
		StringData: map[string]string{"key": "v1"},
	})
	h.eventuallyKstatus(app, "UserApp", status.CurrentStatus)
	h.eventually("Recovered event", func() string {
		if got := h.events(app.Name)[controllers.EventRecovered]; len(got) != 1 {
			return fmt.Sprintf("Recovered events %v, want one", got)
		}
		return ""
	})

	// Terminating: deletion held by another finalizer (someone else's cleanup) shows as such.
	h.update(um, func() { um.Finalizers = append(um.Finalizers, "test.hangar.dev/hold") })
	if err := env.Client.Delete(context.Background(), um); err != nil {
		t.Fatal(err)
	}
	h.eventuallyKstatus(um, "UserMachine", status.TerminatingStatus)
	h.update(um, func() {
		um.Finalizers = slices.DeleteFunc(um.Finalizers, func(f string) bool { return f == "test.hangar.dev/hold" })
	})
	h.gone(um)
}
