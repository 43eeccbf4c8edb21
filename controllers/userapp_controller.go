package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// The UserApp controller's rights, generated into config/rbac/role.yaml by `make manifests`. It
// reads the Secrets named in spec.secrets and writes each app's connection Secret.
//
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapps,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapps/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapps/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch

// kindUserApp names the kind in metrics.
const kindUserApp = "UserApp"

// userAppReconciler makes a Fly app match each UserApp: the app in its org and network, its
// secrets, its Flycast address and the connection Secret the platform's coordinator reads.
type userAppReconciler struct {
	base
	fly  FlyAPI
	keys keys.Root
	// cache reads the metadata of connection Secrets (nil: always check them on the apiserver);
	// connections remembers what was written to them.
	cache       client.Reader
	connections *writtenSecrets
}

// appScope is what one pass over a UserApp works on.
type appScope struct {
	app *flyv1alpha1.UserApp
	// flyName, org and network are the Fly app's, after defaulting.
	flyName, org, network string
	// derivedName is true when flyName is the name hangar derives itself: an app of that name in
	// the same org is provably one hangar created.
	derivedName bool
}

// lifecycle declares the UserApp's phases, each owning the condition it names.
func (r *userAppReconciler) lifecycle() lifecycle[*flyv1alpha1.UserApp, *appScope] {
	return lifecycle[*flyv1alpha1.UserApp, *appScope]{
		kind:  kindUserApp,
		scope: r.scopeFor,
		phases: []phase[*appScope]{
			{flyv1alpha1.AppCreatedCondition, r.ensureApp},
			{flyv1alpha1.SecretsSyncedCondition, r.syncSecrets},
			{flyv1alpha1.PrivateIPReadyCondition, r.ensurePrivateIP},
			{flyv1alpha1.ConnectionSecretReadyCondition, r.writeConnectionSecret},
			{flyv1alpha1.HostsAcceptedCondition, r.acceptHosts}, // last: a host conflict never holds up Fly work (hosts.go)
		},
		finalize:     r.finalize,
		nextPass:     r.nextPass,
		readyMessage: appReadyMessage,
	}
}

// appReadyMessage says what a Ready UserApp has on Fly.
func appReadyMessage(s *appScope) string {
	st := &s.app.Status
	msg := fmt.Sprintf("Fly app %s on network %s", st.AppName, st.Network)
	if st.PrivateIP != "" {
		msg += ", Flycast " + st.PrivateIP
	}
	if r := s.app.Spec.Routing; r != nil && len(r.Hosts) > 0 {
		msg += fmt.Sprintf(", routing %d host(s)", len(r.Hosts))
	}
	return msg
}

func (r *userAppReconciler) scopeFor(app *flyv1alpha1.UserApp) *appScope {
	derived := flyv1alpha1.DefaultFlyAppName(r.options.AppNamePrefix, app.Namespace, app.Name)
	s := &appScope{app: app, flyName: app.Spec.AppName, org: app.Spec.Org, network: app.Spec.Network}
	switch {
	case s.flyName != "":
	case app.Status.AppName != "":
		// Keep the name in use even if the manager's prefix changed since.
		s.flyName = app.Status.AppName
	default:
		s.flyName = derived
	}
	s.derivedName = s.flyName == derived
	if s.org == "" {
		s.org = r.options.DefaultOrg
	}
	if s.network == "" {
		s.network = flyv1alpha1.IsolatedNetworkName(s.flyName)
	}
	return s
}

// nextPass comes back when the app is due for its drift check, or when a key rotation's overlap
// ends, whichever is first.
func (r *userAppReconciler) nextPass(s *appScope) time.Duration {
	next := r.untilDriftCheck(s.app)
	if until, rotating := untilRotationEnds(s.app, time.Now()); rotating {
		next = min(next, until)
	}
	return next
}

// untilDriftCheck is how long until the app is due to be read back from Fly (0 or less: now).
func (r *userAppReconciler) untilDriftCheck(app *flyv1alpha1.UserApp) time.Duration {
	return r.options.untilDriftCheck(app.Status.LastObservedTime, app.UID, time.Now())
}

// setupWithManager registers the controller and its watches; the indexes it uses are registered by
// Setup.
func (r *userAppReconciler) setupWithManager(mgr ctrl.Manager) error {
	return setupKind(mgr, r.base, r.lifecycle(), func(b *builder.Builder) *builder.Builder {
		b = r.watchHostClaims(b, func() client.ObjectList { return &flyv1alpha1.UserAppList{} }, indexAppHosts)
		return b.
			// Only metadata of Secrets is cached: the connection Secret we own, and the Secrets named
			// in spec.secrets (whose data is read from the API when needed).
			Owns(&corev1.Secret{}, builder.OnlyMetadata).
			WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.appsReferencingSecret)).
			// A UserApp refused a Fly app name or network is looked at again when the owner changes.
			Watches(&flyv1alpha1.UserApp{}, handler.EnqueueRequestsFromMapFunc(r.appsSharingClaims)).
			// A UserApp being deleted waits for its UserMachines to go.
			Watches(&flyv1alpha1.UserMachine{}, handler.EnqueueRequestsFromMapFunc(appOfMachine),
				builder.WithPredicates(predicate.Funcs{
					CreateFunc:  func(event.CreateEvent) bool { return false },
					UpdateFunc:  func(event.UpdateEvent) bool { return false },
					GenericFunc: func(event.GenericEvent) bool { return false },
				}))
	})
}

// appsReferencingSecret maps a Secret to the UserApps that take a value from it.
func (r *userAppReconciler) appsReferencingSecret(ctx context.Context, secret client.Object) []ctrl.Request {
	return requestsByIndex(ctx, r.client, &flyv1alpha1.UserAppList{}, indexAppSecretRefs, secret)
}

// appOfMachine maps a UserMachine to its UserApp.
func appOfMachine(_ context.Context, obj client.Object) []ctrl.Request {
	um, ok := obj.(*flyv1alpha1.UserMachine)
	if !ok {
		return nil
	}
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: um.Namespace, Name: um.Spec.AppRef.Name}}}
}
