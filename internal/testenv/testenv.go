// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest) with hangar's
// CRDs installed, for tests that need the Kubernetes API. It never fakes the apiserver: when the
// binaries are missing it fails and says how to get them (make test builds them).
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// K8sVersion is the kube-apiserver version the tests are written against.
const K8sVersion = "1.37.2"

// Env is a running kube-apiserver + etcd with hangar's CRDs installed.
type Env struct {
	// Config reaches the apiserver as an administrator.
	Config *rest.Config
	// Client is a client without a cache, so tests read what the apiserver holds right now.
	Client client.Client
	// Scheme knows the built-in kinds and hangar's.
	Scheme *k8sruntime.Scheme
	// RepoRoot is the module root, for tests that read config/ or testdata.
	RepoRoot string

	env *envtest.Environment
}

// ErrNoAssets means kube-apiserver and etcd were not found.
var ErrNoAssets = errors.New("kube-apiserver and etcd not found: run `make test`, or export " +
	"KUBEBUILDER_ASSETS=\"$(hack/envtest-assets.sh)\" before `go test`")

// Start starts kube-apiserver and etcd and installs the CRDs of config/crd/bases.
func Start() (*Env, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := assetsDir()
	if err != nil {
		return nil, err
	}
	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := flyv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		// kube-apiserver stops only once its open watches end, which a manager's caches keep open;
		// after this long it is killed, which is also what an outage looks like to its clients.
		ControlPlane:          envtest.ControlPlane{APIServer: &envtest.APIServer{StopTimeout: apiserverStopTimeout}},
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, RepoRoot: root, env: env}, nil
}

// Stop stops the apiserver and etcd and removes their data.
func (e *Env) Stop() error { return e.env.Stop() }

// apiserverStopTimeout bounds a graceful kube-apiserver stop before it is killed.
const apiserverStopTimeout = 3 * time.Second

// StopAPIServer stops only kube-apiserver (etcd keeps running), to test behaviour while the
// Kubernetes API is away. A server that does not stop within a few seconds is killed, which is
// fine for that purpose. It cannot be brought back: a restarted envtest apiserver gets new
// certificates that existing clients would refuse.
func (e *Env) StopAPIServer() error {
	err := e.env.ControlPlane.APIServer.Stop()
	if err != nil && strings.Contains(err.Error(), "timeout waiting for process") {
		return nil // killed after the graceful stop timed out
	}
	return err
}

// assetsDir finds the folder holding kube-apiserver and etcd: $KUBEBUILDER_ASSETS, else the per-user
// cache that hack/envtest-assets.sh fills.
func assetsDir() (string, error) {
	candidates := []string{os.Getenv("KUBEBUILDER_ASSETS")}
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		if home, err := os.UserHomeDir(); err == nil {
			data = filepath.Join(home, ".local", "share")
		}
	}
	if data != "" {
		candidates = append(candidates, filepath.Join(data, "kubebuilder-envtest", "k8s",
			K8sVersion+"-"+runtime.GOOS+"-"+runtime.GOARCH))
	}
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if isExecutable(filepath.Join(dir, "kube-apiserver")) && isExecutable(filepath.Join(dir, "etcd")) {
			return dir, nil
		}
	}
	return "", ErrNoAssets
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}

// repoRoot walks up from the working directory (a package folder under go test) to go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Kubeconfig returns a kubeconfig for a cluster administrator (group system:masters) of this
// apiserver, for kubectl and for processes started next to the tests.
func (e *Env) Kubeconfig() ([]byte, error) {
	user, err := e.env.AddUser(envtest.User{Name: "hangar-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding an admin user: %w", err)
	}
	return user.KubeConfig()
}

// AddUser returns a rest.Config that authenticates to this apiserver as user name in groups (a
// client certificate), with no rights but what RBAC bindings give it, so tests can act as a tenant
// does. For a ServiceAccount-like user pass name "system:serviceaccount:<ns>:<sa>" and the groups
// the apiserver would give it ("system:serviceaccounts", "system:serviceaccounts:<ns>",
// "system:authenticated").
func (e *Env) AddUser(name string, groups ...string) (*rest.Config, error) {
	user, err := e.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding user %s: %w", name, err)
	}
	return rest.CopyConfig(user.Config()), nil
}

// RunTests is the body of a package's TestMain when its tests share one apiserver: it starts the
// apiserver into *env, runs the tests, stops it, and returns the exit code for os.Exit.
func RunTests(m interface{ Run() int }, env **Env) int {
	started, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*env = started
	code := m.Run()
	if err := started.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	return code
}
