// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest) with hangar's
// CRDs installed, for tests that need the Kubernetes API. It never fakes the apiserver: when the
// binaries are missing it fails and says how to get them (make test builds them).
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
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
	// certDir holds the apiserver's serving certificates, its service-account keys and the client
	// CA. It is ours, not envtest's: envtest deletes a directory it made itself on every stop and
	// a restart then mints new certificates, which every existing client would refuse.
	certDir string
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
	certDir, err := os.MkdirTemp("", "hangar-apiserver-")
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		ControlPlane: envtest.ControlPlane{APIServer: &envtest.APIServer{CertDir: certDir}},
		// kube-apiserver stops only once its open watches end, which a manager's caches keep open;
		// after this long it is killed, which is also what an outage looks like to its clients.
		// (envtest copies this over the APIServer's own StopTimeout, so it is set here.)
		ControlPlaneStopTimeout: processStopTimeout,
		BinaryAssetsDirectory:   assets,
		CRDDirectoryPaths:       []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:   true,
		Scheme:                  scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		_ = os.RemoveAll(certDir)
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		_ = os.RemoveAll(certDir)
		return nil, err
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, RepoRoot: root, env: env, certDir: certDir}, nil
}

// Stop stops the apiserver and etcd and removes their data.
func (e *Env) Stop() error {
	err := ignoreKilled(e.env.Stop())
	return errors.Join(err, os.RemoveAll(e.certDir))
}

// processStopTimeout bounds a graceful stop of kube-apiserver or etcd before it is killed.
const processStopTimeout = 3 * time.Second

// StopAPIServer stops only kube-apiserver (etcd keeps running), to test behaviour while the
// Kubernetes API is away. A server that does not stop within a few seconds is killed, which is
// fine for that purpose. It returns once the secure port is closed, so the API is away when it
// returns. StartAPIServer brings the same server back.
func (e *Env) StopAPIServer() error {
	if err := ignoreKilled(e.env.ControlPlane.APIServer.Stop()); err != nil {
		return err
	}
	// A killed process may still hold its port for a moment.
	return waitPortFree(e.apiserverAddr(), portWait)
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, as the same server: the same
// port, serving certificates, client CA and etcd data, so every client made before the outage
// (Config, Client, AddUser's, a manager's or a router's) reconnects by itself. It returns once
// hangar's CRDs are served again. The port stays unbound while the server is down; on loopback
// nothing else is expected to take it.
func (e *Env) StartAPIServer() error {
	addr := e.apiserverAddr()
	if err := waitPortFree(addr, portWait); err != nil {
		return err
	}
	if err := e.env.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("restarting kube-apiserver on %s: %w", addr, err)
	}
	// /healthz answers before the CRDs' endpoints are installed again; a test acting right after
	// the restart would otherwise meet a 404 that no real outage ends with.
	ctx, cancel := context.WithTimeout(context.Background(), servingWait)
	defer cancel()
	for {
		err := e.Client.List(ctx, &flyv1alpha1.UserMachineList{}, client.Limit(1))
		if err == nil {
			err = e.Client.List(ctx, &flyv1alpha1.UserAppList{}, client.Limit(1))
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver restarted but hangar's CRDs are not served: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

const (
	// portWait bounds how long a stopped apiserver's port may stay bound.
	portWait = 30 * time.Second
	// servingWait bounds how long a restarted apiserver may take to serve the CRDs again.
	servingWait = time.Minute
)

// apiserverAddr is the apiserver's secure (and only) listening address.
func (e *Env) apiserverAddr() string { return e.env.ControlPlane.APIServer.HostPort() }

// ignoreKilled drops envtest's errors for a process killed after its graceful stop timed out (for
// a test, a killed process is stopped) and keeps any other. envtest gives them no type, only text.
func ignoreKilled(err error) error { return kerrors.FilterOut(err, isKilled) }

func isKilled(err error) bool { return strings.Contains(err.Error(), "timeout waiting for process") }

// waitPortFree waits until addr can be bound, i.e. no process listens there any more.
func waitPortFree(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %s still in use after %s: %w", addr, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
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

// WriteKubeconfig writes Kubeconfig to path (mode 0600), for processes the test starts.
func (e *Env) WriteKubeconfig(path string) error {
	raw, err := e.Kubeconfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
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
