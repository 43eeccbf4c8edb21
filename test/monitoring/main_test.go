package monitoring_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hangar-dev/hangar/internal/testenv"
)

// The build identity the binaries under test are linked with, as make build links it.
const (
	testVersion = "v0.0.0-monitoring-test"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	testDate    = "2026-01-02T03:04:05Z"
)

var (
	env *testenv.Env
	// bins holds cmd/manager, cmd/router and cmd/hangar, built once for the run with testVersion.
	bins string
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hangar-monitoring-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	bins = dir
	const pkg = "github.com/hangar-dev/hangar/internal/version"
	ldflags := fmt.Sprintf("-X %s.version=%s -X %s.commit=%s -X %s.date=%s", pkg, testVersion, pkg, testCommit, pkg, testDate)
	for _, cmd := range []string{"manager", "router", "hangar"} {
		build := exec.Command("go", "build", "-ldflags", ldflags, "-o", filepath.Join(dir, cmd), "github.com/hangar-dev/hangar/cmd/"+cmd)
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building cmd/%s: %v\n%s", cmd, err, out)
			return 1
		}
	}
	ctrllog.SetLogger(logr.Discard()) // envtest logs through controller-runtime's logger
	started, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env = started
	defer func() { _ = env.Stop() }()
	return m.Run()
}
