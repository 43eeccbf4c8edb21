package managers_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hangar-dev/hangar/internal/testenv"
	"github.com/hangar-dev/hangar/internal/testenv/managerproc"
)

var (
	env *testenv.Env
	// managerBin is cmd/manager, built once for the run.
	managerBin managerproc.Binary
	// kubeconfig reaches the test apiserver as an administrator.
	kubeconfig string
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hangar-managers-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if managerBin, err = managerproc.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	started, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env = started
	defer func() { _ = env.Stop() }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := env.WriteKubeconfig(kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startManager starts the manager binary with args; managerproc stops it when the test ends and
// shows its last log lines if the test failed.
func startManager(t *testing.T, name string, args []string) *managerproc.Process {
	t.Helper()
	return managerBin.StartForTest(t, managerproc.Config{Name: name, Args: args, Logs: managerproc.NewTail(300)})
}
