package managerproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary act as the child process of a test instead of running tests:
// the process tests need a process whose behaviour they know, and this one needs no build.
const childEnv = "MANAGERPROC_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

// child is the child process: it says it started and then, by mode, exits at once, stops cleanly
// on SIGTERM, or ignores SIGTERM.
func child(mode string) int {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM)
	fmt.Printf("child started, GREETING=%s\n", os.Getenv("GREETING"))
	fmt.Fprint(os.Stderr, "an unfinished line on stderr")
	switch mode {
	case "exit3":
		return 3
	case "term":
		<-signals
		fmt.Println("\nstopping on SIGTERM")
		return 0
	case "ignore-term":
		for range signals {
			fmt.Println("\nSIGTERM ignored")
		}
	}
	return 1
}

// self starts the test binary as a child in mode.
func self(t *testing.T, mode string) *Process {
	t.Helper()
	p, err := Binary{path: os.Args[0]}.Start(Config{Name: "child-" + mode, Env: []string{childEnv + "=" + mode, "GREETING=hello"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.Exited() {
			p.Kill()
		}
	})
	return p
}

// waitLog waits until the process's log holds s.
func waitLog(t *testing.T, p *Process, s string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !p.Logs().Contains(s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never held %q; it holds:\n%s", s, p.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStopEndsOnSIGTERMWithStatusZero(t *testing.T) {
	p := self(t, "term")
	// The environment reached the child: Config.Env on top of the test's own.
	waitLog(t, p, "child started, GREETING=hello")
	if p.Exited() || p.Err() != nil || !p.EndedAt().IsZero() {
		t.Fatalf("exited before SIGTERM (err %v, ended at %v)", p.Err(), p.EndedAt())
	}
	asked := time.Now()
	if rss, err := p.RSS(); err != nil || rss < 1<<20 {
		t.Errorf("RSS of a running Go process = %d bytes, %v; want at least 1 MiB", rss, err)
	}
	if err := p.Stop(time.Minute); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !p.Exited() {
		t.Error("Exited is false after Stop")
	}
	if p.EndedAt().Before(asked) {
		t.Errorf("EndedAt %v, before it was asked to stop at %v", p.EndedAt(), asked)
	}
	if !p.Logs().Contains("stopping on SIGTERM") {
		t.Errorf("the child never saw SIGTERM; log:\n%s", p.Logs())
	}
	// Unfinished lines are kept too: stdout and stderr share the log.
	if !p.Logs().Contains("an unfinished line on stderr") {
		t.Errorf("stderr missing from the log:\n%s", p.Logs())
	}
}

func TestWaitKillsAfterTimeout(t *testing.T) {
	p := self(t, "ignore-term")
	waitLog(t, p, "child started")
	p.Terminate()
	waitLog(t, p, "SIGTERM ignored")
	err := p.Wait(200 * time.Millisecond)
	if !errors.Is(err, ErrNotStopped) || !strings.Contains(err.Error(), "still running 200ms after it was asked to stop; killed") {
		t.Fatalf("Wait = %v, want ErrNotStopped naming the kill", err)
	}
	if !p.Exited() {
		t.Fatal("still running after Wait killed it")
	}
	var exit *exec.ExitError
	if !errors.As(p.Err(), &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("Err = %v, want killed by SIGKILL", p.Err())
	}
}

func TestKillAndExitStatus(t *testing.T) {
	p := self(t, "term")
	waitLog(t, p, "child started")
	p.Kill()
	if !p.Exited() {
		t.Fatal("still running after Kill")
	}
	var exit *exec.ExitError
	if !errors.As(p.Err(), &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("Err = %v, want killed by SIGKILL", p.Err())
	}
	if _, err := p.RSS(); err == nil {
		t.Error("RSS of an ended process answered")
	}

	q := self(t, "exit3")
	<-q.Done()
	err := q.Wait(time.Second)
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.HasPrefix(err.Error(), "child-exit3: ") {
		t.Errorf("Wait = %v, want exit status 3 named by the process", err)
	}
}

func TestStartUnbuilt(t *testing.T) {
	if _, err := (Binary{}).Start(Config{}); err == nil {
		t.Error("an unbuilt Binary started")
	}
}

func TestTailKeepsTheLastLines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		max    int
		want   string
	}{
		{"lines split across writes", []string{"one\ntw", "o\nthr", "ee\n"}, 5, "one\ntwo\nthree"},
		{"only the last max", []string{"1\n2\n3\n4\n", "5\n"}, 2, "4\n5"},
		{"unfinished line shown last", []string{"a\nb"}, 5, "a\nb"},
		{"at least one line", []string{"a\nb\n"}, 0, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tail := NewTail(tc.max)
			for _, w := range tc.writes {
				if n, err := tail.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := tail.String(); got != tc.want {
				t.Errorf("String = %q, want %q", got, tc.want)
			}
		})
	}

	tail := NewTail(2)
	_, _ = tail.Write([]byte("alpha\nbeta\ngamma\ndel"))
	for s, want := range map[string]bool{"alpha": false, "beta": true, "gamma": true, "del": true, "omega": false} {
		if got := tail.Contains(s); got != want {
			t.Errorf("Contains(%q) = %v, want %v", s, got, want)
		}
	}

	if got := tail.Lines(); !slices.Equal(got, []string{"beta", "gamma"}) {
		t.Errorf("Lines = %q, want the two last finished lines", got)
	}

	long := NewTail(3)
	_, _ = long.Write([]byte(strings.Repeat("x", 3*maxLineBytes)))
	_, _ = long.Write([]byte(strings.Repeat("y", 2*maxLineBytes) + "\n"))
	if got := len(long.String()); got > maxLineBytes {
		t.Errorf("a line without end grew the tail to %d bytes, want at most %d", got, maxLineBytes)
	}
}

// TestBuildRunsTheManager builds cmd/manager and runs it with -h, which prints its flags and exits
// cleanly without needing a cluster.
func TestBuildRunsTheManager(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/manager")
	}
	bin, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := bin.StartForTest(t, Config{Args: []string{"-h"}})
	if err := p.Wait(time.Minute); err != nil {
		t.Fatalf("manager -h: %v\n%s", err, p.Logs())
	}
	if !p.Logs().Contains("-fly-api-url") {
		t.Errorf("manager -h did not list its flags:\n%s", p.Logs())
	}
}
