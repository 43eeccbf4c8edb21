package argocd_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// TestPoolAndClaimHealth runs config/argocd's health check (registered for UserAppPool and
// UserAppClaim too) on pools and claims captured with the manager running: a full pool and a
// claim that got its user are Healthy, a claim naming no pool is Progressing and says why.
func TestPoolAndClaimHealth(t *testing.T) {
	ns := newNamespace(t, "argocd-pools", false)
	pool := &flyv1alpha1.UserAppPool{ObjectMeta: metav1.ObjectMeta{Name: "empty", Namespace: ns}, Spec: flyv1alpha1.UserAppPoolSpec{
		Replicas: 0,
		Template: flyv1alpha1.UserAppTemplate{Machines: []flyv1alpha1.MachineTemplate{{Name: "ws",
			Spec: flyv1alpha1.MachineTemplateSpec{Region: "ord", Image: testImage}}}},
	}}
	claim := func(name, poolName string) *flyv1alpha1.UserAppClaim {
		return &flyv1alpha1.UserAppClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: flyv1alpha1.UserAppClaimSpec{PoolRef: flyv1alpha1.PoolReference{Name: poolName}}}
	}
	create := func(t *testing.T, obj client.Object) client.Object {
		t.Helper()
		if err := stack.Env.Client.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
		return obj
	}
	cases := []struct {
		name    string
		capture func(t *testing.T) client.Object
		want    string
		message string
	}{
		{name: "UserAppPool Ready", capture: func(t *testing.T) client.Object {
			return waitFor(t, create(t, pool), isReady)
		}, want: "Healthy"},
		{name: "UserAppClaim cold-started and Ready", capture: func(t *testing.T) client.Object {
			return waitFor(t, create(t, claim("cold", pool.Name)), isReady)
		}, want: "Healthy", message: "ColdStart"},
		{name: "UserAppClaim naming no pool", capture: func(t *testing.T) client.Object {
			return waitFor(t, create(t, claim("lost", "nowhere")), hasReason(flyv1alpha1.ReconcilingCondition, flyv1alpha1.PoolNotFoundReason))
		}, want: "Progressing", message: "does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.capture(t)
			got, err := runHealthScript(appHealthScript, asUnstructured(t, obj))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", got.Status, got.Message)
			if got.Status != tc.want || !strings.Contains(strings.ToLower(got.Message), strings.ToLower(tc.message)) {
				t.Errorf("health = %s %q, want %s with a message containing %q\nconditions: %+v",
					got.Status, got.Message, tc.want, tc.message, conditionsOf(obj))
			}
		})
	}
}
