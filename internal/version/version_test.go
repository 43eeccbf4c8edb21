package version

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestFillFromBuildInfo(t *testing.T) {
	vcs := func(revision, modified, at string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: revision},
			{Key: "vcs.time", Value: at}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name     string
		linked   Info
		mainVer  string
		settings []debug.BuildSetting
		want     Info
	}{
		{"link-time values win", Info{Version: "v1.2.3", Commit: "abc", Date: "2026-01-02T03:04:05Z"}, "v0.9.0",
			vcs("def", "true", "2025-01-01T00:00:00Z"), Info{Version: "v1.2.3", Commit: "abc", Date: "2026-01-02T03:04:05Z"}},
		{"go install of a tagged module", Info{}, "v0.9.0", nil, Info{Version: "v0.9.0"}},
		{"checkout: devel version, VCS settings", Info{}, "(devel)", vcs("def", "false", "2025-01-01T00:00:00Z"),
			Info{Commit: "def", Date: "2025-01-01T00:00:00Z"}},
		{"uncommitted changes", Info{}, "(devel)", vcs("def", "true", "2025-01-01T00:00:00Z"),
			Info{Commit: "def-dirty", Date: "2025-01-01T00:00:00Z"}},
		{"only the version linked", Info{Version: "v1.2.3"}, "(devel)", vcs("def", "false", "2025-01-01T00:00:00Z"),
			Info{Version: "v1.2.3", Commit: "def", Date: "2025-01-01T00:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.linked
			fillFromBuildInfo(&got, &debug.BuildInfo{Main: debug.Module{Version: tt.mainVer}, Settings: tt.settings})
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestGet: a test binary carries no link-time values and no VCS settings, so Get says Dev and
// names the toolchain.
func TestGet(t *testing.T) {
	info := Get()
	if info.Version != Dev || info.GoVersion == "" || !strings.HasPrefix(info.GoVersion, "go") {
		t.Errorf("Get() = %+v, want version %q and a Go version", info, Dev)
	}
	if s := info.String(); !strings.Contains(s, "version dev") || !strings.Contains(s, info.GoVersion) {
		t.Errorf("String() = %q", s)
	}
}

func TestCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 1 || families[0].GetName() != MetricName || len(families[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one %s series", families, MetricName)
	}
	m := families[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	info := Get()
	want := map[string]string{"version": info.Version, "commit": info.Commit, "go_version": info.GoVersion}
	if len(labels) != len(want) || labels["version"] != want["version"] || labels["commit"] != want["commit"] || labels["go_version"] != want["go_version"] {
		t.Errorf("labels %v, want %v", labels, want)
	}
	if m.GetGauge().GetValue() != 1 {
		t.Errorf("value %g, want 1", m.GetGauge().GetValue())
	}
}
