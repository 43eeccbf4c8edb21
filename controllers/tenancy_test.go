package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/keys"
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

// TestAnotherTenantCannotTakeAnApp: a UserApp in another namespace that names alice's Fly app,
// with the adopt annotation, is refused without learning whose app it is, gets none of her keys,
// and deleting it leaves her app and machine running.
func TestAnotherTenantCannotTakeAnApp(t *testing.T) {
	h := newHarness(t, harnessOptions{tenants: 1})
	alice, aliceWS := h.readyUser("alice")
	h.get(alice)
	mallory := newApp("mallory")
	mallory.Namespace = h.tenants[0]
	mallory.Spec.AppName = alice.Status.AppName
	mallory.Annotations = map[string]string{flyv1alpha1.AdoptAnnotation: "true"}
	h.create(mallory)
	c := h.condition(mallory, flyv1alpha1.AppCreatedCondition, metav1.ConditionFalse, flyv1alpha1.NameTakenReason)
	// The message repeats the Fly app name mallory asked for, and names no UserApp.
	if !strings.Contains(c.Message, "in another namespace") || strings.Contains(c.Message, "("+alice.Name+")") {
		t.Errorf("refusal message %q should say another namespace and name no UserApp", c.Message)
	}
	if h.get(mallory); mallory.Status.AppName != "" || mallory.Status.ConnectionSecretName != "" {
		t.Fatalf("mallory recorded %q and a connection Secret %q", mallory.Status.AppName, mallory.Status.ConnectionSecretName)
	}

	if err := env.Client.Delete(context.Background(), mallory); err != nil {
		t.Fatal(err)
	}
	h.gone(mallory)
	if info, ok := h.sim.App(alice.Status.AppName); !ok || info.Deleted {
		t.Fatal("deleting mallory deleted alice's Fly app")
	}
	h.settled(aliceWS, "started")
}

// TestOwnerMarkerGuardsAppsOutsideTheCluster: a Fly app marked as another hangar object's (an
// orphaned app whose UserApp is gone, or an app another installation marked) is never adopted,
// even under the adopt annotation, and never deleted.
func TestOwnerMarkerGuardsAppsOutsideTheCluster(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	carol := newApp("carol")
	carol.Spec.DeletionPolicy = flyv1alpha1.DeletionPolicyOrphan
	h.create(carol)
	h.ready(carol)
	h.get(carol)
	orphaned := carol.Status.AppName
	if err := env.Client.Delete(context.Background(), carol); err != nil {
		t.Fatal(err)
	}
	h.gone(carol)

	// The same name again is a new object: it derives the same Fly app name, but may not take it.
	again := newApp("carol")
	again.Annotations = map[string]string{flyv1alpha1.AdoptAnnotation: "true"}
	h.create(again)
	c := h.condition(again, flyv1alpha1.AppCreatedCondition, metav1.ConditionFalse, flyv1alpha1.NameTakenReason)
	if !strings.Contains(c.Message, "marked as owned by another") {
		t.Errorf("refusal message %q does not say the app is another's", c.Message)
	}
	if info, ok := h.sim.App(orphaned); !ok || info.Deleted {
		t.Fatal("the orphaned app is gone")
	}

	// bob's app gets another installation's marker; deleting bob leaves the app in place.
	bob := newApp("bob")
	h.create(bob)
	h.ready(bob)
	h.get(bob)
	fly, err := flyapi.New(flyapi.Options{BaseURL: h.flyURL, Token: flyapi.StaticToken(testToken)})
	if err != nil {
		t.Fatal(err)
	}
	foreign := keys.OwnerMarkerPrefix + "0123456789ABCDEF"
	if _, err := fly.SetSecrets(context.Background(), bob.Status.AppName, map[string]string{foreign: "another"}); err != nil {
		t.Fatal(err)
	}
	// Fly's secrets reads lag behind writes: the app is "marked long ago" once the list shows it.
	h.eventually("the foreign marker listed", func() string {
		secrets, err := fly.ListSecrets(context.Background(), bob.Status.AppName, 0)
		if err != nil {
			return err.Error()
		}
		for _, s := range secrets {
			if s.Name == foreign {
				return ""
			}
		}
		return "not listed yet"
	})
	if err := env.Client.Delete(context.Background(), bob); err != nil {
		t.Fatal(err)
	}
	h.gone(bob)
	if info, ok := h.sim.App(bob.Status.AppName); !ok || info.Deleted {
		t.Fatal("deleting bob deleted an app another owner marked")
	}
	if got := h.events("bob")[controllers.EventNotOwned]; len(got) != 1 {
		t.Errorf("NotOwned events = %v, want one", got)
	}
}

// TestNetworksAreNotShared: a network used by an older UserApp is refused, in the same namespace
// unless both share it, and always across namespaces.
func TestNetworksAreNotShared(t *testing.T) {
	h := newHarness(t, harnessOptions{tenants: 1})
	owner := newApp("netowner")
	owner.Spec.Network = "team-net"
	h.create(owner)
	h.ready(owner)
	sharer := newApp("sharer")
	sharer.Spec.Network, sharer.Spec.ShareNetwork = "shared-net", true
	h.create(sharer)
	h.ready(sharer)

	cases := []struct {
		name, ns, network string
		share             bool
		wantIn            string // "" when the app may join
	}{
		{"same namespace, not shared", h.ns, "team-net", false, "(netowner)"},
		{"same namespace, only the newcomer shares", h.ns, "team-net", true, "(netowner)"},
		{"same namespace, both share", h.ns, "shared-net", true, ""},
		{"another namespace", h.tenants[0], "team-net", false, "in another namespace"},
		{"another namespace, both share", h.tenants[0], "shared-net", true, "in another namespace"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := newApp(fmt.Sprintf("joiner-%d", i))
			app.Namespace = tc.ns
			app.Spec.Network, app.Spec.ShareNetwork = tc.network, tc.share
			h.create(app)
			if tc.wantIn == "" {
				h.ready(app)
				return
			}
			c := h.condition(app, flyv1alpha1.AppCreatedCondition, metav1.ConditionFalse, flyv1alpha1.NetworkInUseReason)
			if !strings.Contains(c.Message, tc.wantIn) {
				t.Errorf("message %q should say %q", c.Message, tc.wantIn)
			}
			if h.get(app); app.Status.AppName != "" {
				t.Errorf("the refused app got Fly app %s", app.Status.AppName)
			}
		})
	}
}

// TestKeysRotatePerApp: an app's keys are bound to its UserApp's UID; the rotate-keys annotation
// starts a new generation whose keys reach Fly and the connection Secret at once, while the
// previous generation stays on Fly (both replay keys, both tokens) until the overlap ends; the
// machine is rolled onto the new secrets; other apps keep their keys.
func TestKeysRotatePerApp(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	app, um := h.readyUser("rita")
	other, _ := h.readyUser("otto")
	h.get(app)
	h.get(other)
	keysOf := func(a *flyv1alpha1.UserApp, gen int64) keys.App {
		return keys.App{FlyApp: a.Status.AppName, Owner: string(a.UID), Generation: gen}
	}
	otherToken := h.root.ManagementToken(keysOf(other, 1))
	if app.Status.KeyGeneration != 1 || h.root.ManagementToken(keysOf(app, 1)) == h.root.ManagementToken(keys.App{FlyApp: app.Status.AppName, Generation: 1}) {
		t.Fatalf("new app: key generation %d; keys must be bound to the UserApp", app.Status.KeyGeneration)
	}

	h.update(app, func() { app.Annotations = map[string]string{flyv1alpha1.RotateKeysAnnotation: "2026-12-01"} })
	h.eventually("a second key generation on Fly, the previous kept", func() string {
		h.get(app)
		values, _ := h.sim.Secrets(app.Status.AppName)
		switch {
		case app.Status.KeyGeneration != 2 || app.Status.PreviousKeysValidUntil == nil:
			return fmt.Sprintf("generation %d, previous until %v", app.Status.KeyGeneration, app.Status.PreviousKeysValidUntil)
		case values[keys.ManagementTokenSecret] != h.root.ManagementToken(keysOf(app, 2)),
			values[keys.PreviousManagementTokenSecret] != h.root.ManagementToken(keysOf(app, 1)),
			values[keys.ReplayKeySecret] != keys.EncodeReplayKey(h.root.ReplayKey(keysOf(app, 2))),
			values[keys.PreviousReplayKeySecret] != keys.EncodeReplayKey(h.root.ReplayKey(keysOf(app, 1))):
			return "Fly secrets do not hold both generations yet"
		case string(h.connectionToken(app)) != h.root.ManagementToken(keysOf(app, 2)):
			return "the connection Secret does not hold the new token yet"
		}
		return ""
	})
	h.eventually("the machine rolled onto the new secrets", func() string {
		h.get(app)
		m, _ := h.sim.Machine(app.Status.AppName, um.Status.MachineID)
		if int64(m.SecretsVersion) < app.Status.SecretsVersion {
			return fmt.Sprintf("machine secrets version %d, app %d", m.SecretsVersion, app.Status.SecretsVersion)
		}
		return ""
	})
	// The overlap (3 s in this harness) ends: the previous generation is dropped from Fly.
	h.eventually("the previous keys dropped", func() string {
		h.get(app)
		values, _ := h.sim.Secrets(app.Status.AppName)
		_, token := values[keys.PreviousManagementTokenSecret]
		_, key := values[keys.PreviousReplayKeySecret]
		if app.Status.PreviousKeysValidUntil != nil || token || key {
			return "previous keys still valid"
		}
		return ""
	})
	if values, _ := h.sim.Secrets(other.Status.AppName); values[keys.ManagementTokenSecret] != otherToken {
		t.Error("rotating one app's keys changed another's")
	}
}

// connectionToken reads the management token of a UserApp's connection Secret.
func (h *harness) connectionToken(app *flyv1alpha1.UserApp) []byte {
	h.t.Helper()
	var secret corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: app.Namespace, Name: app.Status.ConnectionSecretName}, &secret); err != nil {
		h.t.Fatal(err)
	}
	return secret.Data[controllers.ConnectionManagementToken]
}

// TestRootKeyRotation: after the root key changes and the manager restarts, every app's keys are
// derived anew, set on Fly and in the connection Secret, and the machines rolled onto them.
func TestRootKeyRotation(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	app, um := h.readyUser("rory")
	h.get(app)
	oldToken := h.root.ManagementToken(keys.App{FlyApp: app.Status.AppName, Owner: string(app.UID), Generation: 1})

	h.stopManager()
	fresh, err := keys.ParseRoot(keys.GenerateRootKey())
	if err != nil {
		t.Fatal(err)
	}
	h.root = fresh
	h.startManager()

	current := keys.App{FlyApp: app.Status.AppName, Owner: string(app.UID), Generation: 1}
	h.eventually("the new root's keys on Fly, in the connection Secret and on the machine", func() string {
		h.get(app)
		values, version := h.sim.Secrets(app.Status.AppName)
		m, _ := h.sim.Machine(app.Status.AppName, um.Status.MachineID)
		switch {
		case values[keys.ManagementTokenSecret] != fresh.ManagementToken(current) || values[keys.ManagementTokenSecret] == oldToken:
			return "Fly still holds the old root's token"
		case string(h.connectionToken(app)) != fresh.ManagementToken(current):
			return "the connection Secret still holds the old token"
		case m.SecretsVersion < version:
			return fmt.Sprintf("machine on secrets version %d, Fly at %d", m.SecretsVersion, version)
		}
		return ""
	})
	h.settled(um, "started")
}
