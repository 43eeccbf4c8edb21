package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDevTakenPortNamedByFlag checks that hangar dev refuses a port it cannot listen on before it
// starts anything, and names the flag to change. The stack creates its state folder first thing, so
// a missing state folder shows it was never started.
func TestDevTakenPortNamedByFlag(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	busy := taken.Addr().String()

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fly api", []string{"--fly-api", busy},
			"hangar dev: --fly-api " + busy + ": address in use; choose another with --fly-api\n"},
		{"proxy port 80", []string{"--proxy-http", busy},
			"hangar dev: --proxy-http " + busy + ": address in use; choose another with --proxy-http\n"},
		{"proxy port 9090", []string{"--proxy-management", busy},
			"hangar dev: --proxy-management " + busy + ": address in use; choose another with --proxy-management\n"},
		{"one address for two flags", []string{"--proxy-http", "127.0.0.1:1", "--proxy-management", "127.0.0.1:1"},
			"hangar dev: --proxy-management 127.0.0.1:1: the same address as --proxy-http; choose another with --proxy-management\n"},
		{"not an address", []string{"--fly-api", "nowhere"},
			"hangar dev: --fly-api nowhere: listen tcp: address nowhere: missing port in address; choose another with --fly-api\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stateDir := filepath.Join(t.TempDir(), "state")
			args := append([]string{"dev", "--state-dir", stateDir, "--samples", "",
				"--fly-api", "127.0.0.1:0", "--proxy-http", "127.0.0.1:0", "--proxy-management", "127.0.0.1:0"}, tt.args...)
			var stderr bytes.Buffer
			if code := run(context.Background(), args, &stderr); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if stderr.String() != tt.want {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), tt.want)
			}
			if _, err := os.Stat(stateDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the stack was started (its state folder exists: %v)", err)
			}
		})
	}
}

// TestFlagErrorPrintedOnce runs the command's entry point with a bad flag: the error is printed
// once, with a pointer to -h rather than the whole usage, and -h prints the usage once.
func TestFlagErrorPrintedOnce(t *testing.T) {
	for _, cmd := range []string{"dev", "flysim"} {
		t.Run(cmd, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(context.Background(), []string{cmd, "--no-such-flag"}, &stderr); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			want := "hangar " + cmd + ": usage error: flag provided but not defined: -no-such-flag\n" +
				"Run 'hangar " + cmd + " -h' for its flags.\n"
			if stderr.String() != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
			}

			stderr.Reset()
			if code := run(context.Background(), []string{cmd, "-h"}, &stderr); code != 0 {
				t.Errorf("-h: exit %d, want 0", code)
			}
			if n := strings.Count(stderr.String(), "Usage of hangar "+cmd); n != 1 || !strings.Contains(stderr.String(), "-fly-profile") {
				t.Errorf("-h printed the usage %d times:\n%s", n, stderr.String())
			}
		})
	}
}

// TestDevBrokenSamplesBeforeStart checks that --samples is built before the stack starts: a broken
// kustomization fails at once, naming its file, and nothing was started.
func TestDevBrokenSamplesBeforeStart(t *testing.T) {
	root := t.TempDir()
	samples := filepath.Join(root, "samples")
	if err := os.MkdirAll(samples, 0o700); err != nil {
		t.Fatal(err)
	}
	kustomization := filepath.Join(samples, "kustomization.yaml")
	if err := os.WriteFile(kustomization, []byte("resources:\n  - missing.yaml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(root, "state")
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"dev", "--state-dir", stateDir, "--samples", samples,
		"--fly-api", "127.0.0.1:0", "--proxy-http", "127.0.0.1:0", "--proxy-management", "127.0.0.1:0"}, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if want := "hangar dev: --samples: " + kustomization + ": "; !strings.HasPrefix(stderr.String(), want) || !strings.Contains(stderr.String(), "missing.yaml") {
		t.Errorf("stderr %q, want it to start with %q and name missing.yaml", stderr.String(), want)
	}
	if _, err := os.Stat(stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stack was started (its state folder exists: %v)", err)
	}
}
