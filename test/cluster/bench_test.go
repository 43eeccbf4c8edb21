package cluster

import (
	"fmt"
	"os"
	"testing"
)

// TestReportAPIServerOutage runs a 60 s outage and reports how many requests for a known host the
// router failed through it and how soon after the restart it routed a change. It prints BENCH
// lines for `make bench` and checks nothing.
func TestReportAPIServerOutage(t *testing.T) {
	if os.Getenv("HANGAR_BENCH") != "1" {
		t.Skip("benchmark: set HANGAR_BENCH=1 (make bench)")
	}
	o := throughOutage(t, benchOutage)
	report("apiserver_outage_router_errors", float64(o.errors), "errors", "==", 0)
	report("apiserver_outage_router_requests", float64(o.requests), "requests", ">=", float64(benchOutage/requestEvery/4))
	freshness := o.freshness
	if freshness < 0 {
		freshness = freshnessBound // not routed within the bound: report the bound, far past the goal
	}
	report("router_freshness_after_restart_ms", float64(freshness.Milliseconds()), "ms", "<=", 1000)
}

// report prints one line of the BENCH table: name, value, unit and the target it is judged against.
func report(name string, value float64, unit, op string, target float64) {
	fmt.Printf("BENCH %s %g %s target %s %g\n", name, value, unit, op, target)
}
