package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hangar-dev/hangar/internal/devstack"
)

// TestPlanOnTheSamples runs the hangar binary's plan against a local stack of its own (the suite's
// users claim the samples' hosts) on config/samples: before they are applied it plans their
// creation, once they are applied and Ready it plans no change; neither run writes to Fly.
func TestPlanOnTheSamples(t *testing.T) {
	ctx := context.Background()
	s, stop, err := startStack(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	const planNS = "plan"
	if err := s.Env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: planNS}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hangar := filepath.Join(dir, "hangar")
	if out, err := exec.Command("go", "build", "-o", hangar, "github.com/hangar-dev/hangar/cmd/hangar").CombinedOutput(); err != nil {
		t.Fatalf("building hangar: %v\n%s", err, out)
	}
	tokenFile := filepath.Join(dir, "fly-token")
	if err := os.WriteFile(tokenFile, []byte(s.FlyToken), 0o600); err != nil {
		t.Fatal(err)
	}
	plan := func() (string, int) {
		t.Helper()
		writesBefore := flyWrites(s)
		cmd := exec.Command(hangar, "plan", "-f", "../../config/samples", "--kubeconfig", s.Kubeconfig, "--namespace", planNS,
			"--fly-api-url", s.FlyURL, "--fly-token-file", tokenFile, "--router-base-domain", "localhost")
		cmd.Env = append(os.Environ(), "FLY_API_TOKEN=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if n := flyWrites(s) - writesBefore; n != 0 {
			t.Errorf("hangar plan made %d Fly writes, want none", n)
		}
		if strings.Contains(stdout.String(), "sk-sample-not-a-real-key") {
			t.Errorf("the plan shows a secret value:\n%s", stdout.String())
		}
		return stdout.String() + stderr.String(), code
	}

	before, code := plan()
	if code != 0 {
		t.Fatalf("plan before applying: exit %d\n%s", code, before)
	}
	for _, want := range []string{
		"+ create app hangar-plan-alice", "+ create machine in app hangar-plan-alice",
		"OPENAI_API_KEY (value from Secret plan/alice-credentials key openai-api-key)",
		"Plan: 4 to create, 0 to update, 0 to destroy; 0 refused",
	} {
		if !strings.Contains(before, want) {
			t.Errorf("plan before applying does not say %q:\n%s", want, before)
		}
	}

	if err := s.ApplySamples(ctx, "../../config/samples", planNS); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(ctx, planNS, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	after, code := plan()
	if code != 0 {
		t.Fatalf("plan after convergence: exit %d\n%s", code, after)
	}
	if strings.Count(after, "= no changes") != 4 || !strings.Contains(after, "Plan: 0 to create, 0 to update, 0 to destroy; 0 refused") {
		t.Errorf("plan after convergence is not all no changes:\n%s", after)
	}
}

// flyWrites counts the calls of every client to the stack's Fly that change something.
func flyWrites(s *devstack.Stack) int {
	n := 0
	for _, c := range s.Fly.Calls() {
		if c.Method != "GET" {
			n++
		}
	}
	return n
}
