package envconfig

import (
	"encoding/base64"
	"flag"
	"fmt"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/router"
)

// EnvPrefix starts the variable of every flag.
const EnvPrefix = "HANGAR_ROUTER_"

// EnvName is the variable that sets flag name: HANGAR_ROUTER_ and the name in upper case, dashes
// as underscores.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// ApplyEnv sets every flag of fs not given on the command line from its variable, if set.
func ApplyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(EnvName(f.Name))
		if err != nil || given[f.Name] || v == "" {
			return
		}
		if setErr := fs.Set(f.Name, v); setErr != nil {
			err = fmt.Errorf("%s: %w", EnvName(f.Name), setErr)
		}
	})
	return err
}

// envSecret reads the variable name holding a base64 value (Fly secrets are strings).
func envSecret(getenv func(string) string, flagName, name string) ([]byte, error) {
	v := getenv(name)
	if v == "" {
		return nil, fmt.Errorf("--%s: the environment variable %s is empty or not set", flagName, name)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return nil, fmt.Errorf("--%s: %s is not base64", flagName, name)
	}
	return b, nil
}

// rootFromEnv reads the root key from the variable --root-key-env names.
func rootFromEnv(getenv func(string) string, name string) (keys.Root, error) {
	b, err := envSecret(getenv, "root-key-env", name)
	if err != nil {
		return keys.Root{}, err
	}
	defer clear(b)
	root, err := keys.ParseRoot(b)
	if err != nil {
		return keys.Root{}, fmt.Errorf("--root-key-env %s: %w", name, err)
	}
	return root, nil
}

// tokenKeyFromEnv reads the public token key from the variable --public-token-key-env names.
func tokenKeyFromEnv(getenv func(string) string, name string) ([]byte, error) {
	b, err := envSecret(getenv, "public-token-key-env", name)
	if err != nil {
		return nil, err
	}
	if len(b) < router.MinTokenKeySize {
		return nil, fmt.Errorf("--public-token-key-env %s: %w: got %d", name, router.ErrTokenKey, len(b))
	}
	return b, nil
}

// kubeconfigFromEnv reads a whole kubeconfig from the variable --kubeconfig-env names. As
// kubeconfig.Load does, client-go's own rate limiter is off.
func kubeconfigFromEnv(getenv func(string) string, name string) (*rest.Config, error) {
	v := getenv(name)
	if v == "" {
		return nil, fmt.Errorf("--kubeconfig-env: the environment variable %s is empty or not set", name)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig-env %s: %w", name, err)
	}
	if cfg.QPS == 0 {
		cfg.QPS = -1
	}
	return cfg, nil
}
