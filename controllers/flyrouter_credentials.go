package controllers

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// The router's credentials: a ServiceAccount token the manager mints with the TokenRequest API,
// bound to a Secret the FlyRouter owns (deleting the Secret, or the FlyRouter, revokes every token
// minted so), written into a kubeconfig that goes to the router app as a Fly secret. The token
// exists only in the request's answer and in Fly's secrets: never in spec, status, logs or Events.

// bindingSecretName is the Secret, in the manager's namespace, a FlyRouter's tokens are bound to.
func bindingSecretName(fr *flyv1alpha1.FlyRouter) string {
	return "hangar-flyrouter-" + fr.Name + "-token-binding"
}

// tokenLifetime is spec.tokenLifetime or its default.
func tokenLifetime(fr *flyv1alpha1.FlyRouter) time.Duration {
	if fr.Spec.TokenLifetime != nil {
		return fr.Spec.TokenLifetime.Duration
	}
	return flyv1alpha1.DefaultRouterTokenLifetime
}

// credentialsInvalid stops the pass on a setting only a person can fix.
func credentialsInvalid(format string, args ...any) error {
	return &waitError{after: time.Minute, reason: flyv1alpha1.CredentialsInvalidReason, message: fmt.Sprintf(format, args...)}
}

// ensureCredentials keeps the router app's Fly secrets holding a fresh kubeconfig, the root key and
// the token key. A new token is minted when the renewal time has come, when the settings behind
// the secrets changed, or when the bound Secret was deleted; each new set of secrets rolls the
// machines (their config names the secrets version).
func (r *flyRouterReconciler) ensureCredentials(ctx context.Context, s *routerScope) error {
	st := &s.fr.Status
	binding, err := r.ensureBinding(ctx, s)
	if err != nil {
		return err
	}
	settings, err := r.routerSettings(ctx, s)
	if err != nil {
		return err
	}
	digestKey := r.keys.ReplayKey(keys.App{FlyApp: st.AppName, Owner: string(s.fr.UID)})
	settings["binding"] = string(binding.UID)
	settings["lifetime"] = tokenLifetime(s.fr).String()
	digest := secretsDigest(digestKey, settings)
	delete(settings, "binding")
	delete(settings, "lifetime")

	now := time.Now()
	due := st.SecretsVersion == 0 || st.SecretsDigest != digest || st.CredentialRenewalTime == nil || !now.Before(st.CredentialRenewalTime.Time)
	if due {
		renewing := st.SecretsVersion != 0
		if err := r.mintAndSet(ctx, s, binding, settings, digest); err != nil {
			return err
		}
		if renewing {
			r.events.normal(s.fr, EventCredentialsRenewed, "Renew",
				"Minted a new token for ServiceAccount %s/%s (expires %s) and set it on Fly app %s (secrets version %d); machines roll onto it",
				r.opts.Namespace, serviceAccountOf(s.fr), st.CredentialExpiry.UTC().Format(time.RFC3339), st.AppName, st.SecretsVersion)
		}
	}
	s.desired = desiredRouterMachine(s.fr, r.opts.Namespace)
	markTrue(&st.Conditions, s.fr.Generation, flyv1alpha1.CredentialsReadyCondition, flyv1alpha1.ReadyReason,
		fmt.Sprintf("token for ServiceAccount %s/%s expires %s, renewed at %s; Fly secrets version %d",
			r.opts.Namespace, serviceAccountOf(s.fr), st.CredentialExpiry.UTC().Format(time.RFC3339),
			st.CredentialRenewalTime.UTC().Format(time.RFC3339), st.SecretsVersion))
	return nil
}

// EventCredentialsRenewed is the reason of the Event saying a FlyRouter's token was renewed and set on Fly.
const EventCredentialsRenewed = "CredentialsRenewed"

func serviceAccountOf(fr *flyv1alpha1.FlyRouter) string {
	if fr.Spec.ServiceAccountName != "" {
		return fr.Spec.ServiceAccountName
	}
	return flyv1alpha1.DefaultRouterServiceAccount
}

// mintAndSet mints a token, writes the kubeconfig and the other secrets to Fly and records the
// expiry and the renewal time.
func (r *flyRouterReconciler) mintAndSet(ctx context.Context, s *routerScope, binding *corev1.Secret, settings map[string]string, digest string) error {
	st := &s.fr.Status
	lifetime := tokenLifetime(s.fr)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: r.opts.Namespace, Name: serviceAccountOf(s.fr)}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To(int64(lifetime / time.Second)),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: binding.Name, UID: binding.UID},
	}}
	ctrl.LoggerFrom(ctx).Info("Minting a router token", "serviceAccount", sa.Name, "lifetime", lifetime.String())
	if err := r.client.SubResource("token").Create(ctx, sa, tr); err != nil {
		if apierrors.IsNotFound(err) {
			return credentialsInvalid("ServiceAccount %s/%s does not exist: create it (config/router) or fix spec.serviceAccountName", sa.Namespace, sa.Name)
		}
		return fmt.Errorf("minting a token for ServiceAccount %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	kubeconfig, err := routerKubeconfig(s.fr.Spec.APIServer.URL, []byte(settings["ca"]), tr.Status.Token)
	if err != nil {
		return err
	}
	secrets := map[string]string{
		RouterSecretKubeconfig:                          string(kubeconfig),
		RouterSecretRootKey:                             settings[RouterSecretRootKey],
		r.keys.OwnerMarker(s.flyName, string(s.fr.UID)): "hangar",
	}
	if v, ok := settings[RouterSecretTokenKey]; ok {
		secrets[RouterSecretTokenKey] = v
	}
	ctrl.LoggerFrom(ctx).Info("Setting router app secrets", "flyApp", st.AppName, "count", len(secrets))
	version, err := r.fly.SetAppSecrets(ctx, st.AppName, secrets, nil)
	if err != nil {
		return err
	}
	issued := time.Now()
	expiry := tr.Status.ExpirationTimestamp
	renewAfter := r.opts.RenewAfter
	if renewAfter <= 0 {
		renewAfter = expiry.Sub(issued) * 2 / 3
	}
	renewal := metav1.NewTime(issued.Add(renewAfter))
	st.CredentialExpiry, st.CredentialRenewalTime = &expiry, &renewal
	st.SecretsVersion, st.SecretsDigest = version, digest
	return nil
}

// routerKubeconfig is the kubeconfig the router on Fly reads: the apiserver, its CA and the token.
func routerKubeconfig(server string, ca []byte, token string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["apiserver"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["hangar-router"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["hangar-router"] = &clientcmdapi.Context{Cluster: "apiserver", AuthInfo: "hangar-router"}
	cfg.CurrentContext = "hangar-router"
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("writing the router's kubeconfig: %w", err)
	}
	return out, nil
}

// routerSettings reads what the router's secrets are made of besides the token: the root key, the
// token key and the CA bundle (key "ca"), plus the apiserver URL (key "url"), all from the
// manager's namespace. Secret data is read from the API, never cached.
func (r *flyRouterReconciler) routerSettings(ctx context.Context, s *routerScope) (map[string]string, error) {
	out := map[string]string{"url": s.fr.Spec.APIServer.URL}
	var root corev1.Secret
	if err := r.client.Get(ctx, r.opts.RootKeySecret, &root); err != nil {
		return nil, fmt.Errorf("reading the root key Secret %s: %w", r.opts.RootKeySecret, err)
	}
	if _, err := keys.ParseRoot(root.Data[keys.RootKeySecretKey]); err != nil {
		return nil, fmt.Errorf("root key Secret %s: %w", r.opts.RootKeySecret, err)
	}
	out[RouterSecretRootKey] = base64.StdEncoding.EncodeToString(root.Data[keys.RootKeySecretKey])
	if t := s.fr.Spec.PublicTokens; t != nil {
		var secret corev1.Secret
		err := r.client.Get(ctx, client.ObjectKey{Namespace: r.opts.Namespace, Name: t.KeySecretRef.Name}, &secret)
		if apierrors.IsNotFound(err) {
			return nil, credentialsInvalid("Secret %s/%s of spec.publicTokens.keySecretRef does not exist", r.opts.Namespace, t.KeySecretRef.Name)
		}
		if err != nil {
			return nil, err
		}
		key, ok := secret.Data[t.KeySecretRef.Key]
		if !ok || len(key) < 32 {
			return nil, credentialsInvalid("Secret %s/%s has no key %q of at least 32 bytes (spec.publicTokens.keySecretRef)",
				r.opts.Namespace, t.KeySecretRef.Name, t.KeySecretRef.Key)
		}
		out[RouterSecretTokenKey] = base64.StdEncoding.EncodeToString(key)
	}
	out["ca"] = s.fr.Spec.APIServer.CAData
	if ref := s.fr.Spec.APIServer.CAConfigMapRef; ref != nil {
		var cm corev1.ConfigMap
		err := r.client.Get(ctx, client.ObjectKey{Namespace: r.opts.Namespace, Name: ref.Name}, &cm)
		if apierrors.IsNotFound(err) {
			return nil, credentialsInvalid("ConfigMap %s/%s of spec.apiServer.caConfigMapRef does not exist", r.opts.Namespace, ref.Name)
		}
		if err != nil {
			return nil, err
		}
		ca, ok := cm.Data[ref.Key]
		if !ok {
			return nil, credentialsInvalid("ConfigMap %s/%s has no key %q (spec.apiServer.caConfigMapRef)", r.opts.Namespace, ref.Name, ref.Key)
		}
		out["ca"] = ca
	}
	return out, nil
}

// ensureBinding returns the Secret the tokens are bound to, creating it (owned by the FlyRouter,
// so it goes with it) when missing.
func (r *flyRouterReconciler) ensureBinding(ctx context.Context, s *routerScope) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: r.opts.Namespace, Name: bindingSecretName(s.fr)}
	err := r.client.Get(ctx, key, secret)
	if err == nil {
		return secret, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	secret = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{
			managedByLabel: managedByHangar,
			// Seen by the manager's Secret cache, and never taken as an app secret.
			flyv1alpha1.AppSecretLabel: "false",
		}},
		Type: corev1.SecretTypeOpaque,
	}
	if err := controllerutil.SetControllerReference(s.fr, secret, r.client.Scheme()); err != nil {
		return nil, err
	}
	if err := r.client.Create(ctx, secret); err != nil {
		return nil, fmt.Errorf("creating the Secret the router's tokens are bound to: %w", err)
	}
	return secret, nil
}
