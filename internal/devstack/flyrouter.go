package devstack

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/flysim/images"
)

// The FlyRouter path (Config.RouterOnFly): the manager deploys the router onto the emulator as
// users deploy it onto Fly, and the emulator's router machines run the real router in process
// (flysim/images), reaching this apiserver with the token the manager mints.

// FlyRouterName is the FlyRouter the stack creates on the FlyRouter path; its Fly app is RouterApp.
const FlyRouterName = "hangar"

// FlyRouterConfig tunes the FlyRouter path. Zero values take the defaults.
type FlyRouterConfig struct {
	// Image is the FlyRouter's spec.image (default registry.fly.io/hangar-router:dev); any tag of
	// images.RouterImage runs the router.
	Image string
	// Regions are the FlyRouter's regions (default one machine in ord).
	Regions []flyv1alpha1.RouterRegion
	// TokenLifetime is spec.tokenLifetime (default the FlyRouter's, 1h; at least 10m).
	TokenLifetime time.Duration
	// RenewAfter shortens the credential renewal (the manager's FlyRouterOptions.RenewAfter; 0:
	// two thirds of the lifetime). Tests set it to see renewals.
	RenewAfter time.Duration
	// DrainDelay is how long a replaced router machine is cordoned before it is destroyed (default
	// the manager's, 5 s).
	DrainDelay time.Duration
}

func (c FlyRouterConfig) withDefaults() FlyRouterConfig {
	if c.Image == "" {
		c.Image = images.RouterImage + ":dev"
	}
	if len(c.Regions) == 0 {
		c.Regions = []flyv1alpha1.RouterRegion{{Region: "ord", Machines: 1}}
	}
	return c
}

// startRouterImages makes the emulator run the real router on machines of the router image.
func (s *Stack) startRouterImages() {
	runner := images.Start(s.Fly, s.Machines, images.Options{
		Images: []images.Image{images.Router(images.RouterOptions{Logger: s.cfg.Logger.WithName("router")})},
		Logger: s.cfg.Logger.WithName("images"),
	})
	s.stops = append(s.stops, runner.Close)
}

// installRouterRBAC gives the router's ServiceAccount what config/router gives it: read the two
// kinds cluster-wide, write the activity Leases of the system namespace. The manager mints the
// router's tokens for it.
func (s *Stack) installRouterRBAC(ctx context.Context) error {
	sa := flyv1alpha1.DefaultRouterServiceAccount
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: SystemNamespace}}
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: SystemNamespace}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "hangar-router-role"}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{flyv1alpha1.GroupVersion.Group},
			Resources: []string{"userapps", "usermachines", "userapps/status", "usermachines/status"},
			Verbs:     []string{"get", "list", "watch"},
		}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "hangar-router-rolebinding"}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "hangar-router-role"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "hangar-router-activity-role", Namespace: SystemNamespace}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update"},
		}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "hangar-router-activity-rolebinding", Namespace: SystemNamespace}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "hangar-router-activity-role"}},
	}
	for _, obj := range objs {
		if err := s.Env.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating the router's %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return nil
}

// deployFlyRouter creates the FlyRouter (app RouterApp, the proxy's entry app) and waits until
// it is Ready: every machine started with its checks passing.
func (s *Stack) deployFlyRouter(ctx context.Context) error {
	c := s.cfg.FlyRouter
	fr := &flyv1alpha1.FlyRouter{
		ObjectMeta: metav1.ObjectMeta{Name: FlyRouterName},
		Spec: flyv1alpha1.FlyRouterSpec{
			Org: Org, AppName: RouterApp, Regions: c.Regions, Image: c.Image, BaseDomain: s.cfg.BaseDomain,
			// The router runs in this process, so the envtest apiserver's address is reachable from
			// "Fly", as a public endpoint would be.
			APIServer: flyv1alpha1.RouterAPIServer{URL: s.Env.Config.Host, CAData: string(s.Env.Config.CAData)},
		},
	}
	if c.TokenLifetime > 0 {
		fr.Spec.TokenLifetime = &metav1.Duration{Duration: c.TokenLifetime}
	}
	s.cfg.Logger.Info("Deploying the router onto the emulator", "flyRouter", FlyRouterName, "image", c.Image)
	if err := s.Env.Client.Create(ctx, fr); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating FlyRouter %s: %w", FlyRouterName, err)
	}
	return s.WaitFlyRouterReady(ctx, 2*time.Minute)
}

// WaitFlyRouterReady waits until the stack's FlyRouter is Ready for its current generation.
func (s *Stack) WaitFlyRouterReady(ctx context.Context, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var fr flyv1alpha1.FlyRouter
		if err := s.Env.Client.Get(ctx, client.ObjectKey{Name: FlyRouterName}, &fr); err != nil {
			return false, nil //nolint:nilerr // the apiserver may be briefly away; keep polling
		}
		ready := meta.FindStatusCondition(fr.Status.Conditions, flyv1alpha1.ReadyCondition)
		if ready != nil {
			last = ready.Reason + ": " + ready.Message
		}
		return ready != nil && ready.Status == metav1.ConditionTrue && fr.Status.ObservedGeneration == fr.Generation, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for FlyRouter %s to be Ready (last: %s): %w", FlyRouterName, last, err)
	}
	return nil
}
