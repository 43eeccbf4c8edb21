package controllers_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
)

func TestAppChangesThatReachMachines(t *testing.T) {
	base := func() *flyv1alpha1.UserApp {
		return &flyv1alpha1.UserApp{
			ObjectMeta: metav1.ObjectMeta{Name: "una", Generation: 3},
			Status: flyv1alpha1.UserAppStatus{
				AppName: "hangar-una", Network: "net-una", SecretsVersion: 4, KeyGeneration: 1,
				Conditions: []metav1.Condition{
					{Type: flyv1alpha1.AppCreatedCondition, Status: metav1.ConditionTrue, Reason: "Created"},
					{Type: flyv1alpha1.SecretsSyncedCondition, Status: metav1.ConditionFalse, Reason: "Throttled", Message: "retrying in 2s"},
				},
			},
		}
	}
	now := metav1.NewTime(time.Unix(1_800_000_000, 0))
	tests := []struct {
		name   string
		change func(*flyv1alpha1.UserApp)
		want   bool
	}{
		{"nothing", func(*flyv1alpha1.UserApp) {}, false},
		{"a new message while throttled", func(a *flyv1alpha1.UserApp) { a.Status.Conditions[1].Message = "retrying in 3s" }, false},
		{"a drift check's time", func(a *flyv1alpha1.UserApp) { a.Status.LastObservedTime = &now }, false},
		{"a condition turning True", func(a *flyv1alpha1.UserApp) { a.Status.Conditions[1].Status = metav1.ConditionTrue }, true},
		{"a new condition", func(a *flyv1alpha1.UserApp) {
			a.Status.Conditions = append(a.Status.Conditions, metav1.Condition{Type: flyv1alpha1.ReadyCondition, Status: metav1.ConditionFalse})
		}, true},
		{"the spec", func(a *flyv1alpha1.UserApp) { a.Generation++ }, true},
		{"deletion", func(a *flyv1alpha1.UserApp) { a.DeletionTimestamp = &now }, true},
		{"an annotation", func(a *flyv1alpha1.UserApp) { a.Annotations = map[string]string{flyv1alpha1.RotateKeysAnnotation: "1"} }, true},
		{"the Fly app", func(a *flyv1alpha1.UserApp) { a.Status.AppName = "hangar-una-2" }, true},
		{"the secrets version", func(a *flyv1alpha1.UserApp) { a.Status.SecretsVersion++ }, true},
		{"the key generation", func(a *flyv1alpha1.UserApp) { a.Status.KeyGeneration++ }, true},
		{"the old keys' end", func(a *flyv1alpha1.UserApp) { a.Status.PreviousKeysValidUntil = &now }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			updated := base()
			tt.change(updated)
			if got := controllers.AppChangeConcernsMachines(base(), updated); got != tt.want {
				t.Errorf("passed = %v, want %v", got, tt.want)
			}
		})
	}
}
