package controllers_test

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/testenv/benchreport"
)

// TestReportPoolClaim measures, under the realistic Fly profile with Fly's rate limits, how long a
// claim on a warm pool takes to give a user running machines (claim-to-Ready) against a cold user
// (a UserApp and its UserMachine created directly, create-to-Ready), started at the same moment in
// each round, and the Fly calls each costs. Before each round the pool is full, so every claim
// binds a pooled user. Where a claim's time goes is printed from the call log: when its app's
// secrets were set, its machine updated (Fly gives a machine new secrets only through an update)
// and started. It only reports: it prints BENCH lines for `make bench` and checks nothing.
func TestReportPoolClaim(t *testing.T) {
	if os.Getenv("HANGAR_BENCH") == "" {
		t.Skip("benchmark: run with HANGAR_BENCH=1 (make bench)")
	}
	const rounds = 10
	profile := flysim.Realistic()
	h := newHarness(t, harnessOptions{withRateLimits: true, driftInterval: 5 * time.Minute, profile: &profile,
		transitionPoll: controllers.DefaultTransitionPoll})
	pool := newPool("bench", 2)
	h.create(pool)

	var claimTimes, coldTimes []time.Duration
	var claimCalls, coldCalls []int
	phases := map[string][]time.Duration{}
	for i := range rounds {
		h.poolFullWithin(pool, 2, 3*time.Minute)
		coldName := fmt.Sprintf("cold-%d", i)
		h.sharedSecret(coldName+"-creds", "v")
		cold := newApp(coldName)
		cold.Spec.Routing.Hosts = []string{claimHost(coldName, h.ns)}
		cold.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "UPSTREAM_KEY", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: coldName + "-creds", Key: "key"}}}
		coldMachine := newMachine(coldName+"-ws", coldName)
		coldMachine.Spec.PowerState = flyv1alpha1.PowerStateStarted

		claimName := fmt.Sprintf("claim-%d", i)
		h.sharedSecret(claimName+"-creds", "v")
		start := time.Now()
		claim := newClaim(claimName, h.ns, "bench")
		h.create(claim)
		h.create(cold)
		h.create(coldMachine)

		var claimDone, coldDone time.Duration
		h.pollUntil("claim and cold user Ready", 50*time.Millisecond, 3*time.Minute, func() string {
			if claimDone == 0 {
				h.get(claim)
				if readyNow(claim, claim.Status.Conditions, claim.Status.ObservedGeneration) {
					claimDone = time.Since(start)
				}
			}
			if coldDone == 0 {
				h.get(cold)
				h.get(coldMachine)
				if readyNow(cold, cold.Status.Conditions, cold.Status.ObservedGeneration) &&
					readyNow(coldMachine, coldMachine.Status.Conditions, coldMachine.Status.ObservedGeneration) &&
					coldMachine.Status.State == "started" {
					coldDone = time.Since(start)
				}
			}
			if claimDone == 0 || coldDone == 0 {
				return fmt.Sprintf("claim %v, cold %v", claimDone, coldDone)
			}
			return ""
		})
		if claim.Status.Source != flyv1alpha1.ClaimSourcePool {
			t.Logf("round %d: the claim cold-started although the pool was full", i)
		}
		claimTimes, coldTimes = append(claimTimes, claimDone), append(coldTimes, coldDone)
		calls := h.sim.Calls()
		claimCalls = append(claimCalls, len(callsSince(calls, claim.Status.AppName, start)))
		coldCalls = append(coldCalls, len(callsSince(calls, cold.Status.AppName, start)))
		for _, action := range []string{"set_secrets", "update_machine", "start_machine"} {
			if c := callsSince(callsOf(calls, action), claim.Status.AppName, start); len(c) > 0 {
				phases[action] = append(phases[action], c[0].Time.Sub(start))
			}
		}
		t.Logf("round %d: claim %v (%d Fly calls), cold %v (%d Fly calls); the claim's calls: %s", i, claimDone.Round(time.Millisecond),
			claimCalls[i], coldDone.Round(time.Millisecond), coldCalls[i], timeline(callsSince(calls, claim.Status.AppName, start), start))
	}

	claimP50, coldP50 := quantile(claimTimes, 0.5), quantile(coldTimes, 0.5)
	for _, action := range []string{"set_secrets", "update_machine", "start_machine"} {
		t.Logf("claim: first %s after %v (p50 of %d rounds)", action, quantile(phases[action], 0.5).Round(time.Millisecond), len(phases[action]))
	}
	benchreport.Print("pool_claim_to_ready_p50_seconds", claimP50.Seconds(), "s", "<=", fmt.Sprintf("%.2f", coldP50.Seconds()/4))
	benchreport.Print("pool_claim_to_ready_p99_seconds", quantile(claimTimes, 0.99).Seconds(), "s", "<=", fmt.Sprintf("%.2f", quantile(coldTimes, 0.99).Seconds()))
	benchreport.Print("pool_cold_create_to_ready_p50_seconds", coldP50.Seconds(), "s", ">=", "0")
	benchreport.Print("pool_cold_create_to_ready_p99_seconds", quantile(coldTimes, 0.99).Seconds(), "s", ">=", "0")
	benchreport.Print("pool_claim_to_cold_p50_ratio", claimP50.Seconds()/coldP50.Seconds(), "x", "<=", "0.25")
	benchreport.Print("pool_fly_calls_per_claim", mean(claimCalls), "calls", "<", fmt.Sprintf("%.1f", mean(coldCalls)))
	benchreport.Print("pool_fly_calls_per_cold_user", mean(coldCalls), "calls", ">=", "0")
}

// sharedSecret creates a Secret shared with UserApps holding value under "key".
func (h *harness) sharedSecret(name, value string) {
	h.t.Helper()
	h.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: appSecretLabels()}, StringData: map[string]string{"key": value}})
}

// readyNow reports whether obj's Ready is True for its current generation.
func readyNow(obj interface{ GetGeneration() int64 }, conds []metav1.Condition, observed int64) bool {
	return meta.IsStatusConditionTrue(conds, flyv1alpha1.ReadyCondition) && observed == obj.GetGeneration()
}

// callsSince keeps the calls about app made at or after start.
func callsSince(calls []flysim.Call, app string, start time.Time) []flysim.Call {
	return slices.DeleteFunc(slices.Clone(calls), func(c flysim.Call) bool { return c.App != app || c.Time.Before(start) })
}

// timeline lists calls as action@offset from start, for reading where the time went.
func timeline(calls []flysim.Call, start time.Time) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "%s@%.2fs ", c.Action, c.Time.Sub(start).Seconds())
	}
	return b.String()
}

// poolFullWithin is poolFull with its own timeout.
func (h *harness) poolFullWithin(pool *flyv1alpha1.UserAppPool, want int32, timeout time.Duration) {
	h.t.Helper()
	h.eventuallyWithin(fmt.Sprintf("pool %s full", pool.Name), timeout, func() string {
		h.get(pool)
		st := pool.Status
		if !meta.IsStatusConditionTrue(st.Conditions, flyv1alpha1.ReadyCondition) || st.ReadyReplicas != want {
			return fmt.Sprintf("ready %d, conditions %v", st.ReadyReplicas, st.Conditions)
		}
		return ""
	})
}

// quantile is the q-quantile of ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Clone(ds)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func mean(xs []int) float64 {
	if len(xs) == 0 {
		return 0
	}
	total := 0
	for _, x := range xs {
		total += x
	}
	return float64(total) / float64(len(xs))
}
