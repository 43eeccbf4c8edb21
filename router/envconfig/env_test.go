package envconfig

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/router"
)

// configFromEnv builds the router's Config from args and env as a router machine does.
func configFromEnv(t *testing.T, env map[string]string, args ...string) (router.Config, error) {
	t.Helper()
	return FromEnv(args, func(name string) string { return env[name] }, logr.Discard())
}

// flyEnvironment is what a router machine of a FlyRouter sees: its settings as HANGAR_ROUTER_*
// variables and its credentials as Fly secrets (controllers/flyrouter_phases.go writes both).
func flyEnvironment(t *testing.T, rootKey []byte) map[string]string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["apiserver"] = &clientcmdapi.Cluster{Server: "https://192.0.2.1:6443", CertificateAuthorityData: []byte("ca")}
	kc.AuthInfos["router"] = &clientcmdapi.AuthInfo{Token: "minted-token"}
	kc.Contexts["router"] = &clientcmdapi.Context{Cluster: "apiserver", AuthInfo: "router"}
	kc.CurrentContext = "router"
	raw, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"HANGAR_ROUTER_KUBECONFIG_ENV":       "HANGAR_KUBECONFIG",
		"HANGAR_ROUTER_ROOT_KEY_ENV":         "HANGAR_ROOT_KEY",
		"HANGAR_ROUTER_PUBLIC_TOKEN_KEY_ENV": "HANGAR_PUBLIC_TOKEN_KEY",
		"HANGAR_ROUTER_BASE_DOMAIN":          "apps.test",
		"HANGAR_ROUTER_PUBLIC_TOKEN_ISSUER":  "https://coordinator.test",
		"HANGAR_KUBECONFIG":                  string(raw),
		"HANGAR_ROOT_KEY":                    base64.StdEncoding.EncodeToString(rootKey),
		"HANGAR_PUBLIC_TOKEN_KEY":            base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32))),
	}
}

func TestRouterConfigFromFlyEnvironment(t *testing.T) {
	rootKey := keys.GenerateRootKey()
	env := flyEnvironment(t, rootKey)
	cfg, err := configFromEnv(t, env, "--management-addr=", "--metrics-addr=", "--activity-interval=0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RESTConfig.Host != "https://192.0.2.1:6443" || cfg.RESTConfig.BearerToken != "minted-token" || string(cfg.RESTConfig.CAData) != "ca" {
		t.Errorf("REST config host %q token %q CA %q: want the kubeconfig of HANGAR_KUBECONFIG", cfg.RESTConfig.Host, cfg.RESTConfig.BearerToken, cfg.RESTConfig.CAData)
	}
	if cfg.RESTConfig.QPS != -1 {
		t.Errorf("QPS %v, want -1 (client-go's limiter off)", cfg.RESTConfig.QPS)
	}
	root, err := keys.ParseRoot(rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Root.ManagementToken(keys.App{FlyApp: "a"}) != root.ManagementToken(keys.App{FlyApp: "a"}) {
		t.Error("Config.Root is not the key of HANGAR_ROOT_KEY")
	}
	if cfg.Tokens == nil || cfg.BaseDomain != "apps.test" {
		t.Errorf("tokens %v, base domain %q: want a verifier and the base domain of the environment", cfg.Tokens, cfg.BaseDomain)
	}

	// A flag on the command line wins over its variable.
	cfg, err = configFromEnv(t, env, "--base-domain=other.test", "--activity-interval=0")
	if err != nil || cfg.BaseDomain != "other.test" {
		t.Errorf("with --base-domain: %q, %v; want the flag's value", cfg.BaseDomain, err)
	}
}

func TestRouterEnvironmentErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(env map[string]string)
		inError string
	}{
		{"root key not base64", func(e map[string]string) { e["HANGAR_ROOT_KEY"] = "%%%" }, "HANGAR_ROOT_KEY is not base64"},
		{"root key short", func(e map[string]string) { e["HANGAR_ROOT_KEY"] = base64.StdEncoding.EncodeToString([]byte("short")) }, "32 raw bytes"},
		{"root key missing", func(e map[string]string) { delete(e, "HANGAR_ROOT_KEY") }, "HANGAR_ROOT_KEY is empty or not set"},
		{"kubeconfig missing", func(e map[string]string) { delete(e, "HANGAR_KUBECONFIG") }, "HANGAR_KUBECONFIG is empty or not set"},
		{"kubeconfig unreadable", func(e map[string]string) { e["HANGAR_KUBECONFIG"] = "not: [a kubeconfig" }, "--kubeconfig-env HANGAR_KUBECONFIG"},
		{"token key short", func(e map[string]string) {
			e["HANGAR_PUBLIC_TOKEN_KEY"] = base64.StdEncoding.EncodeToString([]byte("short"))
		}, "--public-token-key-env HANGAR_PUBLIC_TOKEN_KEY"},
		{"bad flag value", func(e map[string]string) { e["HANGAR_ROUTER_STATE_TTL"] = "soon" }, "HANGAR_ROUTER_STATE_TTL"},
		{"invalid setting", func(e map[string]string) { e["HANGAR_ROUTER_REPLAY_FORM"] = "xml" }, "--replay-form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := flyEnvironment(t, keys.GenerateRootKey())
			tc.change(env)
			_, err := configFromEnv(t, env, "--activity-interval=0")
			if err == nil || !strings.Contains(err.Error(), tc.inError) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.inError)
			}
			if strings.Contains(err.Error(), "minted-token") {
				t.Error("the error quotes the token")
			}
		})
	}
}
