// Package benchreport holds what the `make bench` reports share: the BENCH line and the least time
// Fly's published rate limits allow a fleet to converge in.
package benchreport

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hangar-dev/hangar/internal/flyapi"
)

// Print writes one line of the BENCH table to stdout, where `make bench` reads it: name, value,
// unit and the target the value is judged against.
func Print(name string, value float64, unit, op, target string) {
	Fprint(os.Stdout, name, value, unit, op, target)
}

// Fprint writes one BENCH line to w.
func Fprint(w io.Writer, name string, value float64, unit, op, target string) {
	fmt.Fprintf(w, "BENCH %s %.3f %s target %s %s\n", name, value, unit, op, target)
}

// MinimumConvergeTime is the least time Fly's published buckets allow for the calls a fleet of
// apps in one org needs, with unlimited parallelism and zero latency: app creates share one bucket
// per org, so the last app is created (apps − burst) / rate seconds in; its machines' lists and
// creates share that app's buckets, so its last machine is created (machinesPerApp − burst) / rate
// seconds later.
func MinimumConvergeTime(apps, machinesPerApp int) time.Duration {
	limit := flyapi.PublishedLimits().Default
	after := func(n int) time.Duration {
		if n <= limit.Burst {
			return 0
		}
		return time.Duration(float64(n-limit.Burst) / float64(limit.Rate) * float64(time.Second))
	}
	return after(apps) + after(machinesPerApp)
}
