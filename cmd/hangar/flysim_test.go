package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
)

func TestParseFlysimFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr error
		check   func(t *testing.T, cfg flysimConfig)
	}{
		{"pairs in order", []string{"--token", "a", "--org", "one", "--token", "b", "--org", "two", "--seed", "9", "--no-rate-limits", "--start-delay", "2s"}, nil,
			func(t *testing.T, cfg flysimConfig) {
				want := []flysim.OrgToken{{Token: "a", Org: "one"}, {Token: "b", Org: "two"}}
				if len(cfg.opts.Orgs) != 2 || cfg.opts.Orgs[0] != want[0] || cfg.opts.Orgs[1] != want[1] {
					t.Errorf("orgs %+v", cfg.opts.Orgs)
				}
				if cfg.opts.Seed != 9 || !cfg.opts.DisableRateLimits || cfg.opts.Delays.Start != 2*time.Second || cfg.listen != "127.0.0.1:4280" {
					t.Errorf("config %+v", cfg)
				}
			}},
		{"seed defaults to something", []string{"--token", "a", "--org", "one"}, nil, func(t *testing.T, cfg flysimConfig) {
			if cfg.opts.Seed == 0 {
				t.Error("seed left at 0")
			}
		}},
		{"no token", nil, errUsage, nil},
		{"unpaired", []string{"--token", "a", "--token", "b", "--org", "one"}, errUsage, nil},
		{"empty org", []string{"--token", "a", "--org", ""}, errUsage, nil},
		{"stray argument", []string{"--token", "a", "--org", "one", "extra"}, errUsage, nil},
		{"bad delay", []string{"--token", "a", "--org", "one", "--stop-delay", "soon"}, errUsage, nil},
		{"help", []string{"-h"}, flag.ErrHelp, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cfg, err := parseFlysimFlags(tt.args, &stderr)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

func TestFlagErrorsNeverShowTokens(t *testing.T) {
	const token = "tok-very-secret"
	for _, args := range [][]string{
		{"--token", token},
		{"--token", token, "--org", "o", "--stop-delay", "soon"},
		{"--token", token, "--org", "o", "stray"},
	} {
		var stderr bytes.Buffer
		_, err := parseFlysimFlags(args, &stderr)
		if err == nil || strings.Contains(err.Error(), token) || strings.Contains(stderr.String(), token) {
			t.Errorf("args %d: err %v, output %q", len(args), err, stderr.String())
		}
	}
}

func TestRunFlysimServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- runFlysim(ctx, []string{"--listen", "127.0.0.1:0", "--token", "secret-token", "--org", "personal", "--log-level", "error"},
			io.Discard, func(a net.Addr) { addrs <- a })
	}()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("flysim ended early: %v", err)
	}

	req, _ := http.NewRequest("POST", base+"/v1/apps", strings.NewReader(`{"app_name":"cli-app","org_slug":"personal"}`))
	req.Header.Set("Authorization", "Bearer secret-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("fly-request-id") == "" {
		t.Errorf("create app: %d, request id %q", resp.StatusCode, resp.Header.Get("fly-request-id"))
	}
	resp, err = http.Get(base + "/v1/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 404 || string(body) != "404 page not found\n" {
		t.Errorf("unknown route: %d %q", resp.StatusCode, body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestRunExitCodes(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"help"}, 0},
		{[]string{"nope"}, 2},
		{[]string{"flysim"}, 2},
		{[]string{"flysim", "-h"}, 0},
		{[]string{"flysim", "--token", "t", "--org", "o", "--listen", "256.0.0.1:99999"}, 1},
	} {
		var stderr bytes.Buffer
		if got := run(ctx, tt.args, &stderr); got != tt.code {
			t.Errorf("hangar %v: exit %d, want %d (%s)", tt.args, got, tt.code, stderr.String())
		}
	}
}
