package controllers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// Keys of the connection Secret written next to each UserApp for the platform's coordinator.
const (
	ConnectionAppName         = "appName"
	ConnectionOrg             = "org"
	ConnectionManagementToken = "managementToken"
	ConnectionPrivateIP       = "privateIP"
)

// connectionSecretName is the name of a UserApp's connection Secret.
func connectionSecretName(app *flyv1alpha1.UserApp) string { return app.Name + "-fly-connection" }

// ensureApp creates the Fly app, or adopts it when it is provably ours, and reads it back once per
// drift interval to recreate it if it was deleted outside hangar.
func (r *userAppReconciler) ensureApp(ctx context.Context, s *appScope) error {
	st := &s.app.Status
	if err := r.checkClaims(ctx, s); err != nil {
		return err
	}
	if observeOnly(s.app.Spec.ManagementPolicy) {
		return r.observeApp(ctx, s)
	}
	if st.AppID == "" {
		return r.createApp(ctx, s)
	}
	if r.untilDriftCheck(s.app) > 0 {
		r.markAppKnown(s)
		return nil
	}
	fa, err := r.fly.GetApp(ctx, s.flyName)
	switch {
	case isFlyKind(err, FlyNotFound):
		ctrl.LoggerFrom(ctx).Info("Fly app deleted outside hangar; creating it again", "flyApp", s.flyName)
		driftCorrections.WithLabelValues(kindUserApp, "app").Inc()
		r.events.normal(s.app, EventDriftCorrected, "Create", "Fly app %s was deleted outside hangar; creating it again", s.flyName)
		st.AppID = ""
		return r.createApp(ctx, s)
	case err != nil:
		return err
	case fa.ID != st.AppID:
		return r.nameTaken(s)
	}
	r.recordApp(s, fa)
	r.markAppKnown(s)
	return nil
}

// markAppKnown sets AppCreated True for the app found by its recorded ID.
func (r *userAppReconciler) markAppKnown(s *appScope) {
	markKnown(&s.app.Status.Conditions, s.app.Generation, flyv1alpha1.AppCreatedCondition,
		fmt.Sprintf("Fly app %s exists", s.app.Status.AppName))
}

func (r *userAppReconciler) createApp(ctx context.Context, s *appScope) error {
	// Recorded before the call: Fly makes apps asynchronously, and an app whose create answer was
	// lost may not be readable yet when the next pass finds its name taken.
	now := metav1.Now()
	s.app.Status.CreateRequestedTime = &now
	if err := persistStatus(ctx); err != nil {
		return err
	}
	ctrl.LoggerFrom(ctx).Info("Creating Fly app", "flyApp", s.flyName, "org", s.org, "network", s.network)
	fa, err := r.fly.CreateApp(ctx, s.org, s.flyName, s.network)
	if isFlyKind(err, FlyNameTaken) {
		return r.adoptApp(ctx, s)
	}
	if refusedOutright(err) {
		// Nothing was created: no app of ours can be on its way.
		s.app.Status.CreateRequestedTime = nil
	}
	if err != nil {
		return err
	}
	r.events.normal(s.app, EventCreated, "Create", "Created Fly app %s in org %s on network %s", fa.Name, fa.Org, fa.Network)
	r.recordApp(s, fa)
	markTrue(&s.app.Status.Conditions, s.app.Generation, flyv1alpha1.AppCreatedCondition, flyv1alpha1.CreatedReason,
		fmt.Sprintf("Fly app %s created", fa.Name))
	return nil
}

// adoptApp takes over an existing app of our name only when it is provably ours: in the same org,
// not marked by another hangar object or installation, and either marked as ours, named the way
// hangar names this UserApp's app (so hangar created it, perhaps before a crash lost the answer),
// or released to this UserApp on the Fly side (keys.ReleaseMarker, which takes the Fly token)
// and asked for with the adopt annotation. The annotation alone, which any author of a UserApp can
// write, never hands over an app.
func (r *userAppReconciler) adoptApp(ctx context.Context, s *appScope) error {
	fa, err := r.fly.GetApp(ctx, s.flyName)
	if isFlyKind(err, FlyNotFound) && r.options.untilConsistent(s.app.Status.CreateRequestedTime, time.Now()) > 0 {
		// Taken but not readable: most likely our own create, still on its way.
		return waitFor(r.options.TransitionPoll, flyv1alpha1.CreatePendingReason,
			"Fly app %s was created but cannot be read yet; looking again", s.flyName)
	}
	if isFlyKind(err, FlyForbidden) || isFlyKind(err, FlyNotFound) {
		return r.nameTaken(s)
	}
	if err != nil {
		return err
	}
	if fa.Org != s.org {
		return r.nameTaken(s)
	}
	owner, err := r.ownershipOf(ctx, s)
	if err != nil {
		return err
	}
	asked := s.app.Annotations[flyv1alpha1.AdoptAnnotation] == "true"
	switch {
	case owner == ownedByAnother:
		return waitFor(r.options.DriftInterval, flyv1alpha1.NameTakenReason,
			"Fly app %s is marked as owned by another hangar object or installation, and cannot be adopted: choose another spec.appName "+
				"(to hand an orphaned app over, remove its %s* secret on Fly first)", s.flyName, keys.OwnerMarkerPrefix)
	case owner == ownedByUs, s.derivedName, owner == released && asked:
	default:
		return r.nameTaken(s)
	}
	ctrl.LoggerFrom(ctx).Info("Adopting existing Fly app", "flyApp", fa.Name)
	r.events.normal(s.app, EventAdopted, "Adopt", "Adopted existing Fly app %s in org %s", fa.Name, fa.Org)
	r.recordApp(s, fa)
	markTrue(&s.app.Status.Conditions, s.app.Generation, flyv1alpha1.AppCreatedCondition, flyv1alpha1.AdoptedReason,
		fmt.Sprintf("existing Fly app %s adopted", fa.Name))
	return nil
}

// nameTaken stops the pass without a hot loop: the name will not free itself, so the app is looked
// at again only on a change (spec, annotation) or after a drift interval.
func (r *userAppReconciler) nameTaken(s *appScope) error {
	return waitFor(r.options.DriftInterval, flyv1alpha1.NameTakenReason,
		"Fly app name %q is taken by an app hangar cannot prove is its own: choose another spec.appName; if the app in org %s "+
			"is to be handed to this UserApp, whoever holds the Fly token sets the Fly secret %s on it (any value) "+
			"and the UserApp gets the annotation %s: \"true\"",
		s.flyName, s.org, keys.ReleaseMarker(s.app.Namespace, s.app.Name), flyv1alpha1.AdoptAnnotation)
}

func (r *userAppReconciler) recordApp(s *appScope, fa FlyApp) {
	st := &s.app.Status
	st.AppName, st.AppID, st.Org = fa.Name, fa.ID, fa.Org
	st.Network = fa.Network
	if st.Network == "" {
		st.Network = s.network
	}
	now := metav1.Now()
	st.LastObservedTime = &now
	st.CreateRequestedTime = nil
}

// syncSecrets sets the app's Fly secrets: hangar's two per-app keys plus every spec.secrets value,
// and unsets the names hangar set before but no longer wants. It calls Fly only when the values
// changed (compared through a keyed digest kept in status).
func (r *userAppReconciler) syncSecrets(ctx context.Context, s *appScope) error {
	st := &s.app.Status
	if observeOnly(s.app.Spec.ManagementPolicy) {
		markObserved(s.app, flyv1alpha1.SecretsSyncedCondition, "Fly secrets and keys left as they are")
		return nil
	}
	k := r.rotateKeys(s, time.Now())
	desired, err := r.desiredSecrets(ctx, s, k)
	if err != nil {
		return err
	}
	digest := secretsDigest(r.keys.ReplayKey(k.current), desired)
	if digest != st.SecretsDigest || st.SecretsVersion == 0 {
		var unset []string
		for _, name := range st.ManagedSecrets {
			if _, keep := desired[name]; !keep {
				unset = append(unset, name)
			}
		}
		ctrl.LoggerFrom(ctx).Info("Setting Fly app secrets", "count", len(desired), "unset", unset)
		version, err := r.fly.SetAppSecrets(ctx, st.AppName, desired, unset)
		if err != nil {
			return err
		}
		r.events.normal(s.app, EventUpdated, "SetSecrets", "Set %d Fly secrets (secrets version %d)", len(desired), version)
		st.SecretsVersion, st.SecretsDigest, st.ManagedSecrets = version, digest, sortedKeys(desired)
	}
	markTrue(&st.Conditions, s.app.Generation, flyv1alpha1.SecretsSyncedCondition, flyv1alpha1.ReadyReason,
		fmt.Sprintf("%d Fly secrets set, secrets version %d", len(st.ManagedSecrets), st.SecretsVersion))
	return nil
}

// desiredSecrets are the values the app's Fly secrets must hold. Secret data is read from the API,
// never from a cache.
func (r *userAppReconciler) desiredSecrets(ctx context.Context, s *appScope, k appKeys) (map[string]string, error) {
	desired := k.secrets(r.keys)
	// Its name marks the app as this UserApp's; the value only says who set it.
	desired[r.ownerMarker(s)] = "hangar"
	for i, ref := range s.app.Spec.Secrets {
		var secret corev1.Secret
		err := r.client.Get(ctx, client.ObjectKey{Namespace: s.app.Namespace, Name: ref.SecretKeyRef.Name}, &secret)
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, err
		}
		if apierrors.IsNotFound(err) || !sharedWithApps(&secret) {
			// One message for both: the author may have no right to read Secrets, and must not
			// learn from hangar which exist.
			return nil, waitFor(0, flyv1alpha1.SecretNotFoundReason,
				"Secret %q named in spec.secrets[%d] does not exist or is not shared with UserApps: create it with the label %s: \"true\", or fix the reference",
				ref.SecretKeyRef.Name, i, flyv1alpha1.AppSecretLabel)
		}
		value, ok := secret.Data[ref.SecretKeyRef.Key]
		if !ok {
			return nil, waitFor(0, flyv1alpha1.SecretNotFoundReason,
				"Secret %q has no key %q named in spec.secrets[%d]: add the key or fix the reference", ref.SecretKeyRef.Name, ref.SecretKeyRef.Key, i)
		}
		desired[ref.Name] = string(value)
	}
	return desired, nil
}

// sharedWithApps reports whether a Secret's owner shared it with the UserApps of its namespace: it
// carries the app-secret label with the value "true", and hangar did not write it (a connection
// Secret holds another app's management token).
func sharedWithApps(secret *corev1.Secret) bool {
	return secret.Labels[flyv1alpha1.AppSecretLabel] == "true" &&
		secret.Labels[managedByLabel] != managedByHangar && len(secret.OwnerReferences) == 0
}

// secretsDigest is a keyed hash of names and values: it changes with any value and, being keyed
// with the app's replay key, tells a reader of the status nothing about them.
func secretsDigest(key []byte, secrets map[string]string) string {
	mac := hmac.New(sha256.New, key)
	for _, name := range sortedKeys(secrets) {
		fmt.Fprintf(mac, "%d:%s=%d:%s;", len(name), name, len(secrets[name]), secrets[name])
	}
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

func sortedKeys(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// ensurePrivateIP allocates the Flycast address in the app's own network when spec.allocatePrivateIP asks
// for one, and releases it when it no longer does.
func (r *userAppReconciler) ensurePrivateIP(ctx context.Context, s *appScope) error {
	st := &s.app.Status
	if observeOnly(s.app.Spec.ManagementPolicy) {
		markObserved(s.app, flyv1alpha1.PrivateIPReadyCondition, "Flycast addresses left as they are")
		return nil
	}
	if !s.app.Spec.AllocatePrivateIP {
		if st.PrivateIP != "" {
			ctrl.LoggerFrom(ctx).Info("Releasing Flycast address", "ip", st.PrivateIP)
			if err := r.fly.ReleasePrivateIP(ctx, st.AppName, st.PrivateIP); err != nil {
				return err
			}
			st.PrivateIP = ""
		}
		markTrue(&st.Conditions, s.app.Generation, flyv1alpha1.PrivateIPReadyCondition, flyv1alpha1.ReadyReason, "no private IP requested")
		return nil
	}
	if st.PrivateIP == "" {
		// The network is named explicitly: Fly would otherwise put the address in the org's default
		// network, from which the app's isolated machines cannot be reached.
		ip, err := r.fly.EnsurePrivateIP(ctx, st.AppName, st.Network)
		if err != nil {
			return err
		}
		st.PrivateIP = ip
	}
	markTrue(&st.Conditions, s.app.Generation, flyv1alpha1.PrivateIPReadyCondition, flyv1alpha1.ReadyReason,
		fmt.Sprintf("Flycast address %s on network %s", st.PrivateIP, st.Network))
	return nil
}

// writeConnectionSecret keeps the Secret the platform's coordinator reads to reach the app: the Fly
// app name, the org, the management token and the Flycast address. It is owned by the UserApp, so
// Kubernetes deletes it with the app.
func (r *userAppReconciler) writeConnectionSecret(ctx context.Context, s *appScope) error {
	st := &s.app.Status
	if observeOnly(s.app.Spec.ManagementPolicy) {
		// The management token in it would be one hangar never set on the observed app.
		markObserved(s.app, flyv1alpha1.ConnectionSecretReadyCondition, "no connection Secret is written for an app hangar sets no keys on")
		return nil
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: connectionSecretName(s.app), Namespace: s.app.Namespace}}
	data := map[string][]byte{
		ConnectionAppName:         []byte(st.AppName),
		ConnectionOrg:             []byte(st.Org),
		ConnectionManagementToken: []byte(r.keys.ManagementToken(keys.App{FlyApp: st.AppName, Owner: string(s.app.UID), Generation: st.KeyGeneration})),
	}
	if st.PrivateIP != "" {
		data[ConnectionPrivateIP] = []byte(st.PrivateIP)
	}
	key, digest := client.ObjectKeyFromObject(secret), secretDigest(data)
	if r.connections.unchanged(ctx, r.cache, key, digest) {
		r.markConnectionSecretReady(s, secret.Name)
		return nil
	}
	_, err := controllerutil.CreateOrPatch(ctx, r.client, secret, func() error {
		if secret.Labels == nil {
			secret.Labels = map[string]string{}
		}
		secret.Labels[managedByLabel] = managedByHangar
		secret.Labels["fly.hangar.dev/userapp"] = s.app.Name
		// Seen by the manager's Secret cache, and never taken as an app secret.
		secret.Labels[flyv1alpha1.AppSecretLabel] = "false"
		secret.Type = corev1.SecretTypeOpaque
		secret.Data = data
		return controllerutil.SetControllerReference(s.app, secret, r.client.Scheme())
	})
	if err != nil {
		return fmt.Errorf("writing connection Secret %s: %w", secret.Name, err)
	}
	r.connections.record(key, secret.ResourceVersion, digest)
	r.markConnectionSecretReady(s, secret.Name)
	return nil
}

func (r *userAppReconciler) markConnectionSecretReady(s *appScope, name string) {
	s.app.Status.ConnectionSecretName = name
	markTrue(&s.app.Status.Conditions, s.app.Generation, flyv1alpha1.ConnectionSecretReadyCondition, flyv1alpha1.ReadyReason,
		"Secret "+name+" holds the app name, org, management token and private IP")
}

// finalize removes the Fly app (policy Delete) once every UserMachine of the app is gone, or leaves
// it (Orphan, ObserveOnly), then the app's activity Lease.
func (r *userAppReconciler) finalize(ctx context.Context, s *appScope) error {
	if err := r.removeApp(ctx, s); err != nil {
		return err
	}
	// The routers create and update the app's activity Lease (idle.go) but never delete it.
	return DeleteActivityLease(ctx, r.client, r.options.ActivityNamespace, s.app.UID)
}

// removeApp deletes or leaves the Fly app as the UserApp's policies say.
func (r *userAppReconciler) removeApp(ctx context.Context, s *appScope) error {
	app := s.app
	r.connections.forget(types.NamespacedName{Namespace: app.Namespace, Name: connectionSecretName(app)})
	if app.Status.AppName == "" {
		return nil
	}
	if observeOnly(app.Spec.ManagementPolicy) {
		r.events.normal(app, EventOrphaned, "Delete", "Left Fly app %s in place (managementPolicy ObserveOnly)", app.Status.AppName)
		return nil
	}
	if app.Spec.DeletionPolicy == flyv1alpha1.DeletionPolicyOrphan {
		r.events.normal(app, EventOrphaned, "Delete", "Left Fly app %s in place (deletionPolicy Orphan)", app.Status.AppName)
		return nil
	}
	var machines flyv1alpha1.UserMachineList
	if err := r.client.List(ctx, &machines, client.InNamespace(app.Namespace),
		client.MatchingFields{indexMachineAppRef: app.Name}); err != nil {
		return err
	}
	if n := len(machines.Items); n > 0 {
		// Their deletion enqueues this app; the requeue is a safety net.
		return waitFor(r.options.DriftInterval, flyv1alpha1.DeletingReason,
			"waiting for %d UserMachines of this app to be deleted first", n)
	}
	// Fly deletes apps asynchronously (202): the finalizer stays until the app is gone, so a UserApp
	// created again under the same name never adopts the app being deleted. An app another hangar
	// object or installation marked as its own is never deleted.
	owner, err := r.ownershipOf(ctx, s)
	switch {
	case isFlyKind(err, FlyNotFound):
		r.events.normal(app, EventDeleted, "Delete", "Deleted Fly app %s", app.Status.AppName)
		return nil
	case err != nil:
		return err
	case owner == ownedByAnother:
		r.events.warning(app, EventNotOwned, "Delete", "Left Fly app %s in place: it is marked as owned by another hangar object or installation", app.Status.AppName)
		return nil
	}
	ctrl.LoggerFrom(ctx).Info("Deleting Fly app", "flyApp", app.Status.AppName)
	if err := r.fly.DeleteApp(ctx, app.Status.AppName); err != nil {
		return err
	}
	return waitFor(r.options.TransitionPoll, flyv1alpha1.DeletingReason, "Fly app %s is being deleted", app.Status.AppName)
}
