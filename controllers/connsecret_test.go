package controllers_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hangar-dev/hangar/controllers"
)

// A settled UserApp's passes check its connection Secret without reading it from the apiserver,
// yet a change made to the Secret by someone else is still undone.
func TestConnectionSecretCheckedFromTheCacheAndRestoredWhenChanged(t *testing.T) {
	h := newHarness(t, harnessOptions{driftInterval: time.Second})
	app, _ := h.readyUser("cora")
	conn := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: app.Status.ConnectionSecretName, Namespace: h.ns}}
	h.get(conn)
	token := conn.Data[controllers.ConnectionManagementToken]

	// Drift checks every second send the app round (each records lastObservedTime); its
	// connection Secret is unchanged.
	h.get(app)
	since := app.Status.LastObservedTime.Add(2 * time.Second)
	before := h.secretGets.Load()
	h.eventually("two more drift checks of the UserApp", func() string {
		h.get(app)
		if app.Status.LastObservedTime.Time.Before(since) {
			return "last observed " + app.Status.LastObservedTime.String()
		}
		return ""
	})
	if got := h.secretGets.Load() - before; got != 0 {
		t.Errorf("settled passes read Secrets from the apiserver %d times, want 0", got)
	}

	// Someone overwrites the token: the manager writes it back.
	h.update(conn, func() { conn.Data[controllers.ConnectionManagementToken] = []byte("tampered") })
	h.eventually("connection Secret restored", func() string {
		got := &corev1.Secret{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(conn), got); err != nil {
			return err.Error()
		}
		if !bytes.Equal(got.Data[controllers.ConnectionManagementToken], token) {
			return "still tampered"
		}
		return ""
	})
}
