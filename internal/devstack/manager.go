package devstack

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/activity"
	"github.com/hangar-dev/hangar/internal/flyadapter"
	"github.com/hangar-dev/hangar/internal/flyapi"
)

// startManager runs the controllers against the apiserver and the emulated Machines API, reading
// the Fly token from the state folder as the real manager reads its mounted token file.
func (s *Stack) startManager(ctx context.Context) error {
	log := s.cfg.Logger.WithName("manager")
	mgr, err := ctrl.NewManager(s.Env.Config, ctrl.Options{
		Scheme:                 s.Env.Scheme,
		Logger:                 log,
		Client:                 controllers.ClientOptions(),
		Cache:                  controllers.ActivityCacheOptions(controllers.CacheOptions(""), activity.DefaultNamespace),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Tests run more than one stack in a process; the controllers' names then repeat.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return err
	}
	fly, err := flyapi.New(flyapi.Options{
		BaseURL:   s.FlyURL,
		Token:     flyapi.FileToken(filepath.Join(s.cfg.StateDir, "fly-token")),
		UserAgent: "hangar-manager",
	})
	if err != nil {
		return err
	}
	deps := controllers.Dependencies{
		Fly: flyadapter.New(fly, flyadapter.Options{}), Keys: s.Root,
		Options: controllers.Options{DefaultOrg: Org, DefaultRegion: "ord", AppNamePrefix: "hangar-", DriftInterval: s.cfg.DriftInterval,
			// The router's base domain, so subdomain claims are checked the way the router routes them.
			RouterBaseDomain: s.cfg.BaseDomain, ActivityNamespace: activity.DefaultNamespace},
	}
	if s.cfg.RouterOnFly {
		// The system namespace is the manager's: the router's ServiceAccount and the root key
		// Secret are there.
		deps.FlyRouter = controllers.FlyRouterOptions{
			Namespace:     SystemNamespace,
			RootKeySecret: types.NamespacedName{Namespace: SystemNamespace, Name: RootKeySecret},
			RenewAfter:    s.cfg.FlyRouter.RenewAfter,
			DrainDelay:    s.cfg.FlyRouter.DrainDelay,
		}
	}
	if err := controllers.Setup(mgr, deps); err != nil {
		return err
	}
	mgrCtx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), log))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	s.stops = append(s.stops, func() error {
		cancel()
		return <-done
	})
	// Wait for the caches, so objects applied next are seen at once.
	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	defer cancelSync()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		return errors.New("the manager's caches did not sync")
	}
	return nil
}
