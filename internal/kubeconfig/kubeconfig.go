// Package kubeconfig finds the cluster for hangar's binaries: a flag, else the usual places.
package kubeconfig

import (
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Load reads path, else $KUBECONFIG or ~/.kube/config, else the in-cluster service account.
//
// client-go's own rate limiter is turned off (QPS -1), as controller-runtime's config loader does:
// the apiserver's priority and fairness does the limiting. Left at client-go's default of 5
// requests per second, a manager with 2 000 UserMachines spent most of each pass waiting on its
// own client (test/scale measured 2.9 s per pass and a 3.6× slower convergence).
func Load(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	if cfg.QPS == 0 {
		cfg.QPS = -1
	}
	return cfg, nil
}
