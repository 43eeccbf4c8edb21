// Package version says which build of hangar is running: version, commit and build date.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at link time by the Makefile and the Dockerfile:
//
//	-ldflags "-X github.com/hangar-dev/hangar/internal/version.version=v0.3.0
//	          -X github.com/hangar-dev/hangar/internal/version.commit=<sha>
//	          -X github.com/hangar-dev/hangar/internal/version.date=<RFC 3339>"
//
// A plain `go build` or `go install` leaves them empty, and Get falls back to what the Go toolchain
// recorded in the binary.
var (
	version string
	commit  string
	date    string
)

// Dev is the version of a build that says nothing better: a `go build` outside a tagged module.
const Dev = "dev"

// Info identifies a build.
type Info struct {
	// Version is the release (v0.3.0, or what git describe says between releases), else the module
	// version `go install` recorded, else Dev.
	Version string
	// Commit is the source revision, with "-dirty" when the tree had uncommitted changes and the
	// toolchain recorded it; empty when unknown.
	Commit string
	// Date is when the binary was built (or, without link-time flags, when its commit was made),
	// RFC 3339; empty when unknown.
	Date string
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// Get returns this binary's build information: the link-time values where set, else the module
// version and VCS settings the Go toolchain recorded, else Dev.
func Get() Info {
	info := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		fillFromBuildInfo(&info, bi)
	}
	if info.Version == "" {
		info.Version = Dev
	}
	return info
}

// fillFromBuildInfo fills what the link-time flags left empty from bi.
func fillFromBuildInfo(info *Info, bi *debug.BuildInfo) {
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	var revision, modified, vcsTime string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		case "vcs.time":
			vcsTime = s.Value
		}
	}
	if info.Commit == "" && revision != "" {
		info.Commit = revision
		if modified == "true" {
			info.Commit += "-dirty"
		}
	}
	if info.Date == "" {
		info.Date = vcsTime
	}
}

// String is the one line `hangar version` prints and the binaries log at start.
func (i Info) String() string {
	return fmt.Sprintf("version %s, commit %s, built %s with %s", i.Version, orUnknown(i.Commit), orUnknown(i.Date), i.GoVersion)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// MetricName is the build information gauge the manager and the router export.
const MetricName = "hangar_build_info"

// NewCollector returns the gauge hangar_build_info{version,commit,go_version}, always 1: joined
// (`* on(instance) group_left(version)`) or plotted, it tells which build each process runs.
// client_golang's own build info collector reports the main module's version only, which is
// "(devel)" for a binary built from a checkout; this one carries the link-time version.
func NewCollector() prometheus.Collector {
	info := Get()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricName,
		Help: "Always 1; the labels say which build of hangar this process runs (version, commit, go_version).",
		ConstLabels: prometheus.Labels{
			"version":    info.Version,
			"commit":     info.Commit,
			"go_version": info.GoVersion,
		},
	}, func() float64 { return 1 })
}
