package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// Dependencies are what the controllers need from the process that runs them.
type Dependencies struct {
	Fly     FlyAPI
	Keys    keys.Root
	Options Options
	// CredentialsChanged, when set, reports each change of the Fly credentials (e.g. from
	// flyapi.WatchTokenFile): objects waiting after Fly refused the token then run again at once.
	CredentialsChanged <-chan struct{}
	// FlyRouter enables the FlyRouter controller (when its Namespace is set); Fly must then
	// implement FlyRouterAPI too.
	FlyRouter FlyRouterOptions
}

// Finalizer holds every hangar object until its Fly resources are removed (or orphaned).
const Finalizer = "fly.hangar.dev/finalizer"

// Names of the cache's field indexes (registered by indexFields).
const (
	// indexMachineAppRef finds the UserMachines of a UserApp.
	indexMachineAppRef = "spec.appRef.name"
	// indexAppSecretRefs finds the UserApps that take a value from a Secret.
	indexAppSecretRefs = "spec.secrets.secretKeyRef.name"
	// indexAppHosts and indexMachineHosts find the objects that claim a canonical host
	// (spec.routing.hosts, and a UserApp's subdomain under the router's base domain).
	indexAppHosts     = "spec.routing.hosts"
	indexMachineHosts = "spec.routing.hosts"
)

// Setup registers hangar's controllers and their indexes with mgr. The manager must be built with
// ClientOptions so Secret data is never cached. A new kind adds its reconciler to the list below.
func Setup(mgr ctrl.Manager, deps Dependencies) error {
	if deps.Fly == nil || deps.Keys.IsZero() {
		return errors.New("controllers: a Fly client and the root key are required")
	}
	routerFly, _ := deps.Fly.(FlyRouterAPI)
	// Every Fly write of a pass over a paused object is refused at this seam (pause.go).
	deps.Fly = pauseGuard{deps.Fly}
	baseDomain, err := canonicalBaseDomain(deps.Options.RouterBaseDomain)
	if err != nil {
		return err
	}
	deps.Options.RouterBaseDomain = baseDomain
	if err := indexFields(mgr.GetFieldIndexer(), baseDomain); err != nil {
		return err
	}
	if err := indexClaims(mgr.GetFieldIndexer(), deps.Options.withDefaults()); err != nil {
		return err
	}
	registerMetrics()
	credentials := newCredentialWaits(deps.CredentialsChanged)
	known := newKnownVersions() // shared: a machine's pass reads its UserApp through it too
	shared := func(kind string) base {
		return base{
			client: mgr.GetClient(), reader: mgr.GetAPIReader(), known: known, options: deps.Options.withDefaults(),
			events:       eventer{mgr.GetEventRecorder("hangar-" + controllerName(kind))},
			unauthorized: credentials.forKind(),
		}
	}
	kinds := []struct {
		kind  string
		setup func(base) error
	}{
		{kindUserApp, func(b base) error {
			return (&userAppReconciler{base: b, fly: deps.Fly, keys: deps.Keys,
				cache: mgr.GetCache(), connections: newWrittenSecrets()}).setupWithManager(mgr)
		}},
		{kindUserMachine, func(b base) error {
			waits := newTransitionWaits(deps.Fly, b.options.TransitionPoll)
			if err := mgr.Add(waits); err != nil {
				return err
			}
			return (&userMachineReconciler{base: b, fly: deps.Fly, waits: waits}).setupWithManager(mgr)
		}},
		{kindUserAppPool, func(b base) error { return (&userAppPoolReconciler{base: b}).setupWithManager(mgr) }},
		{kindUserAppClaim, func(b base) error { return (&userAppClaimReconciler{base: b}).setupWithManager(mgr) }},
	}
	if deps.FlyRouter.Namespace != "" {
		kinds = append(kinds, flyRouterKind(mgr, deps, routerFly))
	}
	for _, k := range kinds {
		if err := k.setup(shared(k.kind)); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", k.kind, err)
		}
	}
	if deps.CredentialsChanged != nil {
		return mgr.Add(credentials)
	}
	return nil
}

// controllerName is a kind's controller name, as it appears in logs, metrics and the Events'
// reporting controller ("userapp").
func controllerName(kind string) string { return strings.ToLower(kind) }

// ClientOptions are the client settings the manager needs: Secrets are read from the API, never
// cached, so the manager holds no Secret data in memory.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}}
}

// CacheOptions are the cache settings the manager needs: the metadata of only the Secrets that
// carry the app-secret label (those shared with UserApps and the connection Secrets hangar
// writes), never the others; when namespace is set, only that namespace's objects; and no
// managedFields, which the manager never reads (test/scale: an eighth of the live heap per
// UserMachine).
func CacheOptions(namespace string) cache.Options {
	shared := labels.SelectorFromSet(nil)
	if req, err := labels.NewRequirement(flyv1alpha1.AppSecretLabel, selection.Exists, nil); err == nil {
		shared = shared.Add(*req)
	}
	secretMetadata := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}
	opts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			secretMetadata:   {Label: shared},
			&corev1.Secret{}: {Label: shared},
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	}
	if namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	return opts
}

// Labels hangar puts on what it writes.
const (
	managedByLabel  = "app.kubernetes.io/managed-by"
	managedByHangar = "hangar"
)

// indexFields registers the cache indexes the controllers look objects up by; baseDomain is the
// router's, canonical. A plan registers them with its own indexer (plan_client.go).
func indexFields(indexer client.FieldIndexer, baseDomain string) error {
	ctx := context.Background()
	if err := indexer.IndexField(ctx, &flyv1alpha1.UserMachine{}, indexMachineAppRef,
		func(obj client.Object) []string {
			return []string{obj.(*flyv1alpha1.UserMachine).Spec.AppRef.Name}
		}); err != nil {
		return fmt.Errorf("indexing UserMachines by app: %w", err)
	}
	if err := indexer.IndexField(ctx, &flyv1alpha1.UserApp{}, indexAppSecretRefs,
		func(obj client.Object) []string {
			app := obj.(*flyv1alpha1.UserApp)
			names := make([]string, 0, len(app.Spec.Secrets))
			for _, s := range app.Spec.Secrets {
				names = append(names, s.SecretKeyRef.Name)
			}
			return names
		}); err != nil {
		return fmt.Errorf("indexing UserApps by Secret: %w", err)
	}
	if err := indexer.IndexField(ctx, &flyv1alpha1.UserApp{}, indexAppHosts,
		func(obj client.Object) []string {
			return claimedHosts(obj, baseDomain)
		}); err != nil {
		return fmt.Errorf("indexing UserApps by host: %w", err)
	}
	if err := indexer.IndexField(ctx, &flyv1alpha1.UserMachine{}, indexMachineHosts,
		func(obj client.Object) []string {
			return claimedHosts(obj, baseDomain)
		}); err != nil {
		return fmt.Errorf("indexing UserMachines by host: %w", err)
	}
	return nil
}

// failureBackoff paces retries of failed passes: exponential per object from 500 ms to 5 min, so a
// spec Fly refuses is retried no faster than that, plus an overall bucket against storms.
func failureBackoff() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](500*time.Millisecond, 5*time.Minute),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(20), 200)},
	)
}

// EnsureRootKey returns the installation's root key from the Secret at key, creating the Secret with
// a fresh random key when it does not exist. Several managers may race to create it; the loser reads
// the winner's key. c must read Secrets from the API (not a cache that may not be started yet).
func EnsureRootKey(ctx context.Context, c client.Client, key types.NamespacedName) (keys.Root, error) {
	for attempt := 0; attempt < 2; attempt++ {
		var secret corev1.Secret
		err := c.Get(ctx, key, &secret)
		if err == nil {
			root, err := keys.ParseRoot(secret.Data[keys.RootKeySecretKey])
			if err != nil {
				return keys.Root{}, fmt.Errorf("root key Secret %s, key %s: %w", key, keys.RootKeySecretKey, err)
			}
			return root, nil
		}
		if !apierrors.IsNotFound(err) {
			return keys.Root{}, fmt.Errorf("reading root key Secret %s: %w", key, err)
		}
		secret = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace,
				Labels: map[string]string{managedByLabel: managedByHangar}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{keys.RootKeySecretKey: keys.GenerateRootKey()},
		}
		err = c.Create(ctx, &secret)
		if err == nil {
			ctrl.LoggerFrom(ctx).Info("Created the root key Secret", "secret", key.String())
			return keys.ParseRoot(secret.Data[keys.RootKeySecretKey])
		}
		if !apierrors.IsAlreadyExists(err) {
			return keys.Root{}, fmt.Errorf("creating root key Secret %s: %w", key, err)
		}
	}
	return keys.Root{}, fmt.Errorf("root key Secret %s: created and deleted concurrently; try again", key)
}
