package controllers_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
)

// TestSecretsAreReadOnlyWhenShared: spec.secrets takes values only from Secrets labelled as shared
// with UserApps, never from one hangar wrote (another app's connection Secret, even relabelled),
// and a Secret that exists but is not shared reads exactly like one that does not exist.
func TestSecretsAreReadOnlyWhenShared(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice, _ := h.readyUser("alice")
	h.get(alice)
	h.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "private"}, StringData: map[string]string{"key": "not-for-apps"}})
	conn := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: alice.Status.ConnectionSecretName, Namespace: h.ns}}
	h.update(conn, func() { conn.Labels[flyv1alpha1.AppSecretLabel] = "true" })
	aliceToken := string(conn.Data[controllers.ConnectionManagementToken])

	messages := map[string]string{}
	for _, tc := range []struct{ name, secret, key string }{
		{"not shared", "private", "key"},
		{"another app's connection Secret", conn.Name, controllers.ConnectionManagementToken},
		{"missing", "no-such-secret", "key"},
	} {
		app := newApp(fmt.Sprintf("mallory-%d", len(messages)))
		app.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "STOLEN", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: tc.secret, Key: tc.key}}}
		h.create(app)
		c := h.condition(app, flyv1alpha1.SecretsSyncedCondition, metav1.ConditionFalse, flyv1alpha1.SecretNotFoundReason)
		messages[tc.name] = strings.ReplaceAll(c.Message, tc.secret, "<name>")
		values, _ := h.sim.Secrets(app.Status.AppName)
		for name, v := range values {
			if v == aliceToken || v == "not-for-apps" {
				t.Errorf("%s: the Fly app got %s from a Secret not shared with it", tc.name, name)
			}
		}
	}
	if messages["not shared"] != messages["missing"] || messages["another app's connection Secret"] != messages["missing"] {
		t.Errorf("an unshared Secret reads unlike a missing one: %q", messages)
	}
}
