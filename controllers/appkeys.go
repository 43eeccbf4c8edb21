package controllers

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// Per-tenant keys. An app's replay key and management token are derived from the root key, its
// Fly app name, the UID of its UserApp and a key generation (keys.App), so they end with their
// tenant. The rotate-keys annotation starts a new generation; the previous one stays valid for
// Options.KeyRotationOverlap: the machines get both replay keys at once (they accept either), the
// router keeps signing with the previous one and accepts both management tokens, and the
// connection Secret moves to the new token. Then the previous keys are dropped. A rotation asked
// by the UserAppClaim that binds a pooled app has no overlap (docs/warm-pools.md).

// appKeys are the keys an app's secrets and connection Secret hold in this pass: the current
// generation, and the previous one while a rotation overlaps.
type appKeys struct {
	current  keys.App
	previous *keys.App
}

// rotateKeys keeps status.keyGeneration in step with the rotate-keys annotation and ends the
// overlap of a finished rotation, then says which keys the app holds now.
func (r *userAppReconciler) rotateKeys(s *appScope, now time.Time) appKeys {
	st := &s.app.Status
	asked := s.app.Annotations[flyv1alpha1.RotateKeysAnnotation]
	switch {
	case st.KeyGeneration == 0:
		// A new app: its first keys answer whatever the annotation says.
		st.KeyGeneration, st.KeyRotation = 1, asked
	case asked != st.KeyRotation && asked != "" && asked == bindingRotation(s.app):
		// A claim bound this pooled app to an end user: the pool-time keys end now, with no
		// overlap, so none of them is valid for the end user's traffic.
		st.KeyGeneration++
		st.KeyRotation = asked
		st.PreviousKeysValidUntil = nil
	case asked != st.KeyRotation:
		st.KeyGeneration++
		st.KeyRotation = asked
		until := metav1.NewTime(now.Add(r.options.KeyRotationOverlap))
		st.PreviousKeysValidUntil = &until
	}
	if st.PreviousKeysValidUntil != nil && !now.Before(st.PreviousKeysValidUntil.Time) {
		st.PreviousKeysValidUntil = nil
	}
	k := appKeys{current: keys.App{FlyApp: st.AppName, Owner: string(s.app.UID), Generation: st.KeyGeneration}}
	if st.PreviousKeysValidUntil != nil && st.KeyGeneration > 1 {
		previous := k.current
		previous.Generation--
		k.previous = &previous
	}
	return k
}

// secrets are the Fly app secrets that carry the keys.
func (k appKeys) secrets(root keys.Root) map[string]string {
	out := map[string]string{
		keys.ReplayKeySecret:       keys.EncodeReplayKey(root.ReplayKey(k.current)),
		keys.ManagementTokenSecret: root.ManagementToken(k.current),
	}
	if k.previous != nil {
		out[keys.PreviousReplayKeySecret] = keys.EncodeReplayKey(root.ReplayKey(*k.previous))
		out[keys.PreviousManagementTokenSecret] = root.ManagementToken(*k.previous)
	}
	return out
}

// bindingRotation is the rotate-keys value of the claim that controls app (see claimKeyRotation),
// or "" when no claim does.
func bindingRotation(app *flyv1alpha1.UserApp) string {
	owner := metav1.GetControllerOf(app)
	if owner == nil || owner.Kind != kindUserAppClaim || owner.APIVersion != flyv1alpha1.GroupVersion.String() {
		return ""
	}
	return claimKeyRotation(owner.UID)
}

// untilRotationEnds is how long until the overlap of a rotation ends (no limit when none runs).
func untilRotationEnds(app *flyv1alpha1.UserApp, now time.Time) (time.Duration, bool) {
	if app.Status.PreviousKeysValidUntil == nil {
		return 0, false
	}
	return app.Status.PreviousKeysValidUntil.Sub(now), true
}
