package managers_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/testenv"
)

var (
	env *testenv.Env
	// managerBin is cmd/manager, built once for the run.
	managerBin string
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
	managerBin = filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", managerBin, "github.com/hangar-dev/hangar/cmd/manager")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building cmd/manager: %v\n%s", err, out)
		return 1
	}
	started, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env = started
	defer func() { _ = env.Stop() }()
	raw, err := env.Kubeconfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, raw, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// managerProcess is one run of the manager binary.
type managerProcess struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error     // how it exited; set before done is closed
	end  time.Time // when it exited; set before done is closed
	logs *logTail
}

// startManager starts the manager binary with args. When the test ends the process is stopped
// (SIGTERM) if it still runs, and its last log lines are shown if the test failed.
func startManager(t *testing.T, name string, args []string) *managerProcess {
	t.Helper()
	logs := &logTail{max: 300}
	cmd := exec.Command(managerBin, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting manager %s: %v", name, err)
	}
	p := &managerProcess{name: name, cmd: cmd, done: make(chan struct{}), logs: logs}
	go func() {
		p.err = cmd.Wait()
		p.end = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			if err := p.wait(30 * time.Second); err != nil {
				t.Errorf("manager %s: %v", name, err)
			}
		}
		if t.Failed() {
			t.Logf("manager %s log (last lines):\n%s", name, logs)
		}
	})
	return p
}

// kill ends the process with SIGKILL, as a node failure or an OOM kill would, and waits for it.
func (p *managerProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// terminate sends SIGTERM, as a rollout or a node drain does, without waiting.
func (p *managerProcess) terminate() { _ = p.cmd.Process.Signal(syscall.SIGTERM) }

// wait waits for the process to end and returns how it ended (nil: exit status 0).
func (p *managerProcess) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("did not stop within %s; killed", timeout)
	}
}

func (p *managerProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logTail keeps the last lines a process wrote.
type logTail struct {
	mu    sync.Mutex
	lines []string
	part  []byte
	max   int
}

func (l *logTail) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, b...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.part[:i]))
		l.part = l.part[i+1:]
		if len(l.lines) > l.max {
			l.lines = l.lines[len(l.lines)-l.max:]
		}
	}
	return len(b), nil
}

// contains reports whether a kept line holds s.
func (l *logTail) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
