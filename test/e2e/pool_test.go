package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
)

// TestClaimedPoolUserServesItsHost: a pool of two fills on the local stack; a claim with a host
// binds one of its users; a request to that host goes through the Fly Proxy to the router, whose
// replay reaches the claimed machine with a state it verifies; the pool-time management token is
// refused by the router, the claim's new one accepted; and the pool refills.
func TestClaimedPoolUserServesItsHost(t *testing.T) {
	ctx := context.Background()
	c := stack.Env.Client
	pool := &flyv1alpha1.UserAppPool{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("pool"), Namespace: ns}, Spec: flyv1alpha1.UserAppPoolSpec{
		Replicas: 2,
		Template: flyv1alpha1.UserAppTemplate{Machines: []flyv1alpha1.MachineTemplate{{Name: "ws",
			Spec: flyv1alpha1.MachineTemplateSpec{Region: "ord", Image: "registry.fly.io/workspace:v1"}}}},
	}}
	if err := c.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, pool) })
	poolFull := func(what string, claimed int32) {
		eventually(t, what, 2*time.Minute, func() string {
			if err := c.Get(ctx, client.ObjectKeyFromObject(pool), pool); err != nil {
				return err.Error()
			}
			st := pool.Status
			if !isReady(st.Conditions) || st.ObservedGeneration != pool.Generation || st.ReadyReplicas != 2 || st.Claimed != claimed {
				return fmt.Sprintf("ready %d, claimed %d, conditions %v", st.ReadyReplicas, st.Claimed, st.Conditions)
			}
			return ""
		})
	}
	poolFull("the pool full", 0)

	// The management tokens the pooled users hold before any claim.
	var apps flyv1alpha1.UserAppList
	if err := c.List(ctx, &apps, client.InNamespace(ns), client.MatchingLabels{flyv1alpha1.PoolLabel: pool.Name}); err != nil {
		t.Fatal(err)
	}
	poolTimeTokens := map[string]string{}
	for _, app := range apps.Items {
		poolTimeTokens[app.Name] = connectionToken(t, &app)
	}

	host := uniqueName("claimed") + ".example.com"
	claim := &flyv1alpha1.UserAppClaim{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("claim"), Namespace: ns}, Spec: flyv1alpha1.UserAppClaimSpec{
		PoolRef: flyv1alpha1.PoolReference{Name: pool.Name},
		Routing: &flyv1alpha1.AppRouting{Hosts: []string{host}},
	}}
	if err := c.Create(ctx, claim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, claim) })
	eventually(t, "the claim Ready", 2*time.Minute, func() string {
		if err := c.Get(ctx, client.ObjectKeyFromObject(claim), claim); err != nil {
			return err.Error()
		}
		if !isReady(claim.Status.Conditions) || claim.Status.ObservedGeneration != claim.Generation {
			return fmt.Sprintf("conditions %v", claim.Status.Conditions)
		}
		return ""
	})
	if claim.Status.Source != flyv1alpha1.ClaimSourcePool || poolTimeTokens[claim.Status.UserAppName] == "" {
		t.Fatalf("claim status %+v: want a user of the pool", claim.Status)
	}
	um := &flyv1alpha1.UserMachine{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: claim.Status.UserAppName + "-ws"}, um); err != nil {
		t.Fatal(err)
	}

	code, body, answer := request(t, 80, "GET", host, "/hello", nil, nil)
	if code != http.StatusOK || answer == nil {
		t.Fatalf("request to the claimed host: %d %s", code, body)
	}
	if answer.App != claim.Status.AppName || answer.Machine != um.Status.MachineID || !answer.ReplayStateVerified {
		t.Fatalf("answered by %s/%s (state verified %v: %s), want the claimed machine %s/%s",
			answer.App, answer.Machine, answer.ReplayStateVerified, answer.ReplayStateError, claim.Status.AppName, um.Status.MachineID)
	}

	app := &flyv1alpha1.UserApp{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: claim.Status.UserAppName}, app); err != nil {
		t.Fatal(err)
	}
	newToken := connectionToken(t, app)
	if newToken == poolTimeTokens[app.Name] {
		t.Fatal("the connection Secret still holds the pool-time management token")
	}
	target := http.Header{"Hangar-Target": {ns + "/" + um.Name}}
	for name, tc := range map[string]struct {
		token string
		want  int
	}{"pool-time": {poolTimeTokens[app.Name], http.StatusUnauthorized}, "the claim's": {newToken, http.StatusOK}} {
		h := target.Clone()
		h.Set("Authorization", "Bearer "+tc.token)
		if code, body, _ := request(t, 9090, "GET", "mgmt.internal", "/status", nil, h); code != tc.want {
			t.Errorf("%s management token: %d %s, want %d", name, code, body, tc.want)
		}
	}

	poolFull("the pool refilled", 1)
	var after flyv1alpha1.UserAppList
	if err := c.List(ctx, &after, client.InNamespace(ns), client.MatchingLabels{flyv1alpha1.PoolLabel: pool.Name}); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(after.Items, func(a flyv1alpha1.UserApp) bool { return poolTimeTokens[a.Name] == "" }) {
		t.Error("no new pooled user after the claim")
	}
}

// connectionToken reads the management token of a UserApp's connection Secret.
func connectionToken(t *testing.T, app *flyv1alpha1.UserApp) string {
	t.Helper()
	var secret corev1.Secret
	if err := stack.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: app.Status.ConnectionSecretName}, &secret); err != nil {
		t.Fatal(err)
	}
	return string(secret.Data[controllers.ConnectionManagementToken])
}
