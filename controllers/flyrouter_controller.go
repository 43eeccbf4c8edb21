package controllers

import (
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// The FlyRouter controller's rights. It reads FlyRouters cluster-wide; in the manager's own
// namespace (a Role, bound by config/rbac/flyrouter_role_binding.yaml) it mints tokens for the
// router's ServiceAccount and no other, reads the CA ConfigMap and deletes the Secret the tokens
// are bound to. Secrets are read and created under the UserApp controller's rights.
//
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=flyrouters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=flyrouters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=flyrouters/finalizers,verbs=update
// +kubebuilder:rbac:groups="",namespace=hangar-system,resources=serviceaccounts/token,verbs=create,resourceNames=hangar-router
// +kubebuilder:rbac:groups="",namespace=hangar-system,resources=secrets,verbs=delete
// +kubebuilder:rbac:groups="",namespace=hangar-system,resources=configmaps,verbs=get

// kindFlyRouter names the kind in metrics.
const kindFlyRouter = "FlyRouter"

// Fly secret names the router app gets. The router reads them from its environment (cmd/router's
// --kubeconfig-env, --root-key-env and --public-token-key-env).
const (
	RouterSecretKubeconfig = "HANGAR_KUBECONFIG"
	RouterSecretRootKey    = "HANGAR_ROOT_KEY"
	RouterSecretTokenKey   = "HANGAR_PUBLIC_TOKEN_KEY"
)

// Router machine ports: the router's public listener behind 80/443, its management listener
// (Flycast 9090: Fly matches replays by port, so the internal port is 9090 too) and its health
// listener, which the machines' readiness check calls.
const (
	routerPublicPort     = 8080
	routerManagementPort = 9090
	routerHealthPort     = 8082
)

// Fly machine metadata of router machines: which slot of which region a machine fills, so a
// replacement is matched with the machine it replaces.
const metadataRouterSlot = "hangar.dev/router-slot"

// FlyRouterOptions enable and tune the FlyRouter controller.
type FlyRouterOptions struct {
	// Namespace is the manager's namespace: the router's ServiceAccount, the token key Secret, the
	// CA ConfigMap and the Secrets tokens are bound to live there. Empty turns the controller off.
	Namespace string
	// RootKeySecret holds the root key (key keys.RootKeySecretKey) the router app gets, the one the
	// manager derives every app's keys from.
	RootKeySecret types.NamespacedName
	// RenewAfter is how long after minting a token the manager mints the next (0: two thirds of
	// its lifetime). Tests shorten it.
	RenewAfter time.Duration
	// DrainDelay is how long a cordoned machine keeps answering the requests it already has
	// before it is destroyed (DefaultRouterDrainDelay when zero).
	DrainDelay time.Duration
}

// DefaultRouterDrainDelay is FlyRouterOptions.DrainDelay's default: longer than the router's
// answers take (a replay answer is immediate) and than the Fly Proxy needs to see the cordon.
const DefaultRouterDrainDelay = 5 * time.Second

// flyRouterReconciler makes a Fly app run the router for each FlyRouter.
type flyRouterReconciler struct {
	base
	fly       FlyAPI
	routerFly FlyRouterAPI
	keys      keys.Root
	opts      FlyRouterOptions
	// cordoned remembers when each machine was cordoned, so it is destroyed only after the drain
	// delay (lost with the process: a restarted manager destroys cordoned machines at once).
	cordoned sync.Map // machine ID → time.Time
	// created remembers when each machine was created, by name: Fly's lists lag behind creates and
	// Fly does not keep machine names unique, so a slot whose new machine is not listed yet waits
	// for the list instead of getting a second one. (Lost with the process: a duplicate made after
	// a restart is retired like any extra machine of its slot.)
	created sync.Map // machine name → time.Time
}

// routerScope is what one pass over a FlyRouter works on.
type routerScope struct {
	fr *flyv1alpha1.FlyRouter
	// flyName and org are the router app's, after defaulting; derivedName says flyName is the one
	// hangar derives, so an unmarked app of that name in the org is one hangar created.
	flyName, org string
	derivedName  bool
	// desired is the machine config of every slot (name and slot metadata aside); set by the
	// credentials phase, which knows the secrets version.
	desired DesiredMachine
}

func (r *flyRouterReconciler) lifecycle() lifecycle[*flyv1alpha1.FlyRouter, *routerScope] {
	return lifecycle[*flyv1alpha1.FlyRouter, *routerScope]{
		kind:  kindFlyRouter,
		scope: r.scopeFor,
		phases: []phase[*routerScope]{
			{flyv1alpha1.AppCreatedCondition, r.ensureApp},
			{flyv1alpha1.AddressesReadyCondition, r.ensureAddresses},
			{flyv1alpha1.CredentialsReadyCondition, r.ensureCredentials},
			{flyv1alpha1.MachinesReadyCondition, r.rollOut},
		},
		finalize:     r.finalize,
		nextPass:     r.nextPass,
		readyMessage: routerReadyMessage,
	}
}

func routerReadyMessage(s *routerScope) string {
	st := &s.fr.Status
	msg := fmt.Sprintf("router app %s runs %s in %d region(s); public %s, Flycast %s",
		st.AppName, st.Image, len(st.Regions), strings.Join(st.PublicIPs, ", "), st.PrivateIP)
	if st.CredentialExpiry != nil {
		msg += "; credentials expire " + st.CredentialExpiry.UTC().Format(time.RFC3339)
	}
	return msg
}

func (r *flyRouterReconciler) scopeFor(fr *flyv1alpha1.FlyRouter) *routerScope {
	derived := routerAppName(r.options.AppNamePrefix, fr.Name)
	s := &routerScope{fr: fr, flyName: fr.Spec.AppName, org: fr.Spec.Org}
	switch {
	case s.flyName != "":
	case fr.Status.AppName != "":
		s.flyName = fr.Status.AppName
	default:
		s.flyName = derived
	}
	s.derivedName = s.flyName == derived
	if s.org == "" {
		s.org = r.options.DefaultOrg
	}
	return s
}

// routerAppName derives the router app's name: the manager's prefix, "router-" and the
// FlyRouter's name, cut to Fly's 63 characters.
func routerAppName(prefix, name string) string {
	n := prefix + "router-" + name
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-.")
	}
	return strings.ReplaceAll(n, ".", "-")
}

// nextPass comes back at the drift check or when the credentials are due, whichever is first.
func (r *flyRouterReconciler) nextPass(s *routerScope) time.Duration {
	next := r.options.driftIntervalFor(s.fr.UID)
	if renew := s.fr.Status.CredentialRenewalTime; renew != nil {
		next = min(next, time.Until(renew.Time))
	}
	return next
}

func (r *flyRouterReconciler) setupWithManager(mgr ctrl.Manager) error {
	return setupKind(mgr, r.base, r.lifecycle(), func(b *builder.Builder) *builder.Builder {
		// The Secret the tokens are bound to: deleting it by hand revokes them, and the next pass
		// mints new ones.
		return b.Owns(&corev1.Secret{}, builder.OnlyMetadata)
	})
}

// flyRouterKind is the FlyRouter entry of Setup's list of kinds.
func flyRouterKind(mgr ctrl.Manager, deps Dependencies, routerFly FlyRouterAPI) struct {
	kind  string
	setup func(base) error
} {
	return struct {
		kind  string
		setup func(base) error
	}{kindFlyRouter, func(b base) error {
		if routerFly == nil {
			return fmt.Errorf("the Fly client does not implement FlyRouterAPI, which the FlyRouter controller needs")
		}
		return (&flyRouterReconciler{base: b, fly: deps.Fly, routerFly: routerFlyGuard{routerFly}, keys: deps.Keys,
			opts: deps.FlyRouter}).setupWithManager(mgr)
	}}
}
