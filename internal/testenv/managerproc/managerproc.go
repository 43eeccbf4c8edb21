// Package managerproc runs the manager binary (cmd/manager) as a separate process for tests.
package managerproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is a built cmd/manager.
type Binary struct{ path string }

// Build compiles cmd/manager into dir. A test package builds it once (in TestMain, or once per
// test) and starts it as often as it likes: building takes seconds, starting milliseconds.
func Build(dir string) (Binary, error) {
	path := filepath.Join(dir, "manager")
	out, err := exec.Command("go", "build", "-o", path, "github.com/hangar-dev/hangar/cmd/manager").CombinedOutput()
	if err != nil {
		return Binary{}, fmt.Errorf("building cmd/manager: %w\n%s", err, out)
	}
	return Binary{path: path}, nil
}

// Config is how one process is started.
type Config struct {
	// Name tells the processes of a test apart in errors; "manager" when empty.
	Name string
	Args []string
	// Env is added to the test's own environment (KEY=value), so the process finds what the
	// test's does (PATH, HOME, KUBEBUILDER_ASSETS) and a later entry overrides an inherited one.
	Env []string
	// Logs receives the process's stdout and stderr; a new Tail of DefaultLogLines when nil. Pass
	// the same Tail to each start of a restarted manager to keep one log across its runs.
	Logs *Tail
}

// DefaultLogLines is how many lines a Tail made by Start keeps: enough to show what a manager did
// just before a failure, small enough for a test log.
const DefaultLogLines = 200

// Process is one run of the binary.
type Process struct {
	name string
	cmd  *exec.Cmd
	logs *Tail
	done chan struct{}
	err  error     // how it ended; written before done is closed
	end  time.Time // when it ended; written before done is closed
}

// Start starts the binary with cfg.
func (b Binary) Start(cfg Config) (*Process, error) {
	if b.path == "" {
		return nil, errors.New("managerproc: the binary was not built (use Build)")
	}
	name := cfg.Name
	if name == "" {
		name = "manager"
	}
	logs := cfg.Logs
	if logs == nil {
		logs = NewTail(DefaultLogLines)
	}
	cmd := exec.Command(b.path, cfg.Args...)
	cmd.Env = append(os.Environ(), cfg.Env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.end = time.Now()
		close(p.done)
	}()
	return p, nil
}

// StopTimeout is how long StartForTest's cleanup waits after SIGTERM: the manager's own graceful
// shutdown gives passes in flight up to 30 s.
const StopTimeout = 35 * time.Second

// StartForTest starts the binary for t: a failure to start ends the test, the process is stopped
// with SIGTERM when the test ends (an error if it does not stop cleanly within StopTimeout), and
// its log tail is shown when the test failed.
func (b Binary) StartForTest(t testing.TB, cfg Config) *Process {
	t.Helper()
	p, err := b.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.Exited() {
			if err := p.Stop(StopTimeout); err != nil {
				t.Error(err)
			}
		}
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", p.name, p.logs)
		}
	})
	return p
}

// Name is Config.Name.
func (p *Process) Name() string { return p.name }

// PID is the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Logs holds the last lines the process wrote.
func (p *Process) Logs() *Tail { return p.logs }

// Kill ends the process with SIGKILL, as a node failure or an OOM kill would, and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Terminate sends SIGTERM, as a rollout or a node drain does, without waiting.
func (p *Process) Terminate() { _ = p.cmd.Process.Signal(syscall.SIGTERM) }

// ErrNotStopped is wrapped by Wait's error when the process had to be killed after the timeout.
var ErrNotStopped = errors.New("not stopped in time")

// Wait waits up to timeout for the process to end and returns how it ended (nil: exit status 0).
// A process still running after timeout is killed, and the error wraps ErrNotStopped.
func (p *Process) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w", p.name, p.err)
		}
		return nil
	case <-t.C:
		p.Kill()
		return fmt.Errorf("%s: %w: still running %s after it was asked to stop; killed", p.name, ErrNotStopped, timeout)
	}
}

// Stop sends SIGTERM and waits as Wait does: a manager that stops cleanly exits with status 0. One
// started moments ago may not handle SIGTERM yet and ends by the signal (an *exec.ExitError).
func (p *Process) Stop(timeout time.Duration) error {
	p.Terminate()
	return p.Wait(timeout)
}

// Exited reports whether the process has ended (stopped, killed, or crashed on its own).
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// EndedAt is when the process ended (the zero time while it runs).
func (p *Process) EndedAt() time.Time {
	if !p.Exited() {
		return time.Time{}
	}
	return p.end
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended (nil: exit status 0, or still running).
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// RSS is the process's resident set size in bytes, VmRSS of /proc/<pid>/status (Linux only).
func (p *Process) RSS() (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(p.PID()), "status"))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// VmRSS:	   12345 kB
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS %q: %w", fields[0], err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status (a zombie has none)", p.PID())
}

// maxLineBytes bounds one kept line, and the unfinished line, so a process writing without
// newlines cannot grow a Tail without bound.
const maxLineBytes = 64 << 10

// Tail keeps the last lines written to it; a process's stdout and stderr go to one.
type Tail struct {
	mu    sync.Mutex
	lines []string
	part  []byte // the unfinished last line
	max   int
}

// NewTail keeps the last maxLines lines.
func NewTail(maxLines int) *Tail { return &Tail{max: max(1, maxLines)} }

// Write splits p into lines and keeps the last ones.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(truncate(t.part[:i])))
		t.part = t.part[i+1:]
	}
	t.part = truncate(t.part)
	if over := len(t.lines) - t.max; over > 0 {
		t.lines = append(t.lines[:0:0], t.lines[over:]...)
	}
	return len(p), nil
}

func truncate(line []byte) []byte {
	if len(line) <= maxLineBytes {
		return line
	}
	return line[len(line)-maxLineBytes:]
}

// Contains reports whether a kept line, or the unfinished one, holds s. Lines that scrolled out
// are not searched.
func (t *Tail) Contains(s string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, line := range t.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return bytes.Contains(t.part, []byte(s))
}

// Lines is a copy of the kept lines, oldest first, without the unfinished one.
func (t *Tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.lines)
}

// String is the kept lines, then the unfinished one (a process killed mid-line).
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := strings.Join(t.lines, "\n")
	if len(t.part) > 0 {
		out += "\n" + string(t.part)
	}
	return out
}
