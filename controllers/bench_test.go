package controllers_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/testenv/benchreport"
)

// TestReportControllerConverge measures how fast 200 UserMachines in 50 UserApps converge against
// the emulator with Fly's published rate limits on, against the least time those limits allow,
// under the fast profile and the realistic one (list lag, unclear failures, asynchronous apps,
// seconds-long transitions), and what a converged fleet costs per drift interval. It only reports:
// it prints BENCH lines for `make bench` and checks nothing (performance goals are read from the
// table, never asserted).
func TestReportControllerConverge(t *testing.T) {
	if os.Getenv("HANGAR_BENCH") == "" {
		t.Skip("benchmark: run with HANGAR_BENCH=1 (make bench)")
	}
	for _, run := range []struct {
		suffix  string
		profile flysim.Profile
		target  string
	}{
		{"", flysim.Fast(), "1.2"},
		{"_realistic", flysim.Realistic(), "1.3"},
	} {
		t.Run(run.profile.Name, func(t *testing.T) { reportConverge(t, run.suffix, run.profile, run.target) })
	}
}

func reportConverge(t *testing.T, suffix string, profile flysim.Profile, ratioTarget string) {
	const (
		apps           = 50
		machinesPerApp = 4
		driftInterval  = 5 * time.Second
	)
	// Converge with the default drift interval, so the call count is what convergence costs.
	// The manager's own defaults for how often transitions are looked at: the call count is what
	// a real installation pays.
	h := newHarness(t, harnessOptions{withRateLimits: true, driftInterval: 5 * time.Minute, profile: &profile,
		transitionPoll: controllers.DefaultTransitionPoll})
	start := time.Now()
	var machines []*flyv1alpha1.UserMachine
	for a := range apps {
		user := fmt.Sprintf("u%02d", a)
		app := newApp(user)
		app.Spec.AllocatePrivateIP = true
		h.create(app)
		for m := range machinesPerApp {
			um := newMachine(fmt.Sprintf("%s-%d", user, m), user)
			h.create(um)
			machines = append(machines, um)
		}
	}
	h.eventuallyWithin("fleet converged", 10*time.Minute, func() string {
		var list flyv1alpha1.UserMachineList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(h.ns)); err != nil {
			return err.Error()
		}
		ready := 0
		for _, um := range list.Items {
			if meta.IsStatusConditionTrue(um.Status.Conditions, flyv1alpha1.ReadyCondition) && um.Status.MachineID != "" &&
				um.Status.State == "started" {
				ready++
			}
		}
		if ready < len(machines) {
			return fmt.Sprintf("%d/%d ready", ready, len(machines))
		}
		return ""
	})
	wall := time.Since(start)
	calls := h.sim.Calls()
	limited := 0
	for _, c := range calls {
		if c.RateLimited {
			limited++
		}
	}
	byAction := map[string]int{}
	for _, c := range calls {
		byAction[c.Action]++
	}
	t.Logf("%s: Fly calls by action: %v", profile.Name, byAction)
	minimum := benchreport.MinimumConvergeTime(apps, machinesPerApp)
	benchreport.Print("controller_converge_wall_ratio"+suffix, wall.Seconds()/minimum.Seconds(), "x", "<=", ratioTarget)
	benchreport.Print("controller_converge_wall_seconds"+suffix, wall.Seconds(), "s", ">=", fmt.Sprintf("%.1f", minimum.Seconds()))
	benchreport.Print("controller_fly_calls_per_machine"+suffix, float64(len(calls))/float64(len(machines)), "calls", "<=", "5")
	benchreport.Print("controller_fly_429s"+suffix, float64(limited), "responses", "==", "0")

	// Steady state: several (shortened) drift intervals of a quiet, converged fleet, under a
	// manager restarted with that interval.
	h.stopManager()
	h.opts.driftInterval = driftInterval
	h.startManager()
	time.Sleep(driftInterval + 2*time.Second) // let the restart's first passes and reads settle
	h.sim.ResetCalls()
	getsBefore := h.objectGets.Load()
	quiet := time.Now()
	time.Sleep(3 * driftInterval)
	intervals := time.Since(quiet).Seconds() / driftInterval.Seconds()
	steady := h.sim.Calls()
	objects := float64(len(machines) + apps)
	benchreport.Print("controller_steady_apiserver_gets_per_object_interval"+suffix, float64(h.objectGets.Load()-getsBefore)/objects/intervals, "requests", "<=", "0.1")
	reads := len(callsOf(steady, "get_machine"))
	benchreport.Print("controller_steady_writes_per_machine_interval"+suffix, float64(writes(steady))/float64(len(machines))/intervals, "calls", "==", "0")
	benchreport.Print("controller_steady_reads_per_machine_interval"+suffix, float64(reads)/float64(len(machines))/intervals, "calls", "<=", "1")
}
