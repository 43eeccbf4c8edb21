package install_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/hangar-dev/hangar/internal/testenv"
)

// env is the apiserver every test applies to; it holds hangar's CRDs from the start.
var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	started, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env = started
	defer func() { _ = env.Stop() }()
	return m.Run()
}
