package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/flysim"
)

func TestFlyProfileFlags(t *testing.T) {
	base := []string{"--token", "t", "--org", "o"}
	tests := []struct {
		name      string
		args      []string
		wantErr   error
		wantName  string
		wantScale float64
		errHas    string
	}{
		{"flysim defaults to fast", base, nil, "fast", 1, ""},
		{"realistic", append(base, "--fly-profile", "realistic"), nil, "realistic", 1, ""},
		{"realistic shrunk", append(base, "--fly-profile", "realistic", "--fly-time-scale", "0.1"), nil, "realistic", 0.1, ""},
		{"fast keeps its delay flags", append(base, "--start-delay", "1s"), nil, "fast", 1, ""},
		{"unknown profile", append(base, "--fly-profile", "slow"), errUsage, "", 0, "fast, realistic"},
		{"zero time scale", append(base, "--fly-time-scale", "0"), errUsage, "", 0, "--fly-time-scale"},
		{"delays do not apply to realistic", append(base, "--fly-profile", "realistic", "--stop-delay", "1s"), errUsage, "", 0, "--stop-delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlysimFlags(tt.args, &bytes.Buffer{})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q does not mention %q", err, tt.errHas)
				}
				return
			}
			if p := cfg.opts.Profile; p.Name != tt.wantName || p.TimeScale != tt.wantScale {
				t.Errorf("profile %s at scale %v, want %s at %v", p.Name, p.TimeScale, tt.wantName, tt.wantScale)
			}
			if want, _ := flysim.ProfileByName(tt.wantName); cfg.opts.Profile.TypedConfig != want.TypedConfig {
				t.Errorf("profile %s is not %s's", cfg.opts.Profile.Name, tt.wantName)
			}
		})
	}
}

func TestDevFlyProfileFlag(t *testing.T) {
	cfg, err := parseDevFlags(nil, &bytes.Buffer{})
	if err != nil || cfg.stack.FlyProfile.Name != devProfile {
		t.Fatalf("default: %+v, %v", cfg.stack.FlyProfile, err)
	}
	cfg, err = parseDevFlags([]string{"--fly-profile", "realistic", "--fly-time-scale", "0.5"}, &bytes.Buffer{})
	if err != nil || !cfg.stack.FlyProfile.RequirePublicIP || cfg.stack.FlyProfile.TimeScale != 0.5 {
		t.Errorf("realistic: %+v, %v", cfg.stack.FlyProfile, err)
	}
	if _, err := parseDevFlags([]string{"--fly-profile", "kind"}, &bytes.Buffer{}); !errors.Is(err, errUsage) {
		t.Errorf("unknown profile: %v", err)
	}
}
