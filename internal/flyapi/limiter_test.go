package flyapi

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// The fake clock's Sleep advances time by exactly what the client asks, so the total slept is the
// minimum time the calls could have taken: these tests check that minimum equals the published
// limit (never less), without measuring real time.

func okServer(t *testing.T) *script {
	return &script{t: t, steps: []step{{status: 200, body: `{"id":"m1","state":"started"}`}}}
}

// newLimiterTestClient uses the published limits exactly, so the expected waits are exact.
func newLimiterTestClient(t *testing.T, srv *script) (*Client, *fakeClock) {
	return newTestClient(t, srv, func(o *Options) {
		o.Limiter = NewLimiter(PublishedLimits())
		o.MaxLimiterWait = time.Hour
	})
}

// assertSlept checks the total fake sleep: at least want (the limit is never beaten) and not
// noticeably more (the limiter does not over-throttle); the slack covers float rounding in
// x/time/rate.
func assertSlept(t *testing.T, clock *fakeClock, want time.Duration) {
	t.Helper()
	got := clock.Slept()
	if got < want || got > want+time.Millisecond {
		t.Errorf("calls took %v of limiter waits, want %v", got, want)
	}
}

func TestLimiterCreatesInOneApp(t *testing.T) {
	for _, n := range []int{1, 3, 4, 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			srv := okServer(t)
			c, clock := newLimiterTestClient(t, srv)
			var stats CallStats
			ctx := WithCallStats(context.Background(), &stats)
			for i := 0; i < n; i++ {
				if _, err := c.CreateMachine(ctx, "app", CreateMachineRequest{}); err != nil {
					t.Fatalf("create %d: %v", i, err)
				}
			}
			// Burst 3, then one per second.
			want := time.Duration(max(0, n-3)) * time.Second
			assertSlept(t, clock, want)
			if stats.LimiterWait() != clock.Slept() || stats.LimiterWaits() != max(0, n-3) {
				t.Errorf("stats: waited %v in %d waits", stats.LimiterWait(), stats.LimiterWaits())
			}
			if srv.requests() != n {
				t.Errorf("%d requests, want %d", srv.requests(), n)
			}
		})
	}
}

func TestLimiterGetMachine(t *testing.T) {
	srv := okServer(t)
	c, clock := newLimiterTestClient(t, srv)
	for i := 0; i < 25; i++ {
		if _, err := c.GetMachine(context.Background(), "app", "m1"); err != nil {
			t.Fatal(err)
		}
	}
	// Burst 10, then 5 per second: 15 more calls need 3 s.
	assertSlept(t, clock, 3*time.Second)
}

func TestLimiterDeleteApp(t *testing.T) {
	srv := &script{t: t, steps: []step{{status: 202}}}
	c, clock := newLimiterTestClient(t, srv)
	for i := 0; i < 101; i++ {
		if err := c.DeleteApp(context.Background(), fmt.Sprintf("app-%d", i), false); err != nil {
			t.Fatal(err)
		}
	}
	// 100 per minute, shared by all apps: 101 deletions span at least a minute.
	assertSlept(t, clock, time.Minute)
}

func TestLimiterScopes(t *testing.T) {
	srv := okServer(t)
	c, clock := newLimiterTestClient(t, srv)
	ctx := context.Background()
	// Three starts on each of three machines: each machine has its own burst of 3.
	for _, id := range []string{"m1", "m2", "m3"} {
		for i := 0; i < 3; i++ {
			if _, err := c.StartMachine(ctx, "app", id, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Other actions on the same machine have their own buckets too.
	for i := 0; i < 3; i++ {
		if err := c.StopMachine(ctx, "app", "m1", StopOptions{}, ""); err != nil {
			t.Fatal(err)
		}
	}
	// Creates are per app, app creation per org.
	for _, app := range []string{"a", "b"} {
		for i := 0; i < 3; i++ {
			if _, err := c.CreateMachine(ctx, app, CreateMachineRequest{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, org := range []string{"org1", "org2"} {
		for i := 0; i < 3; i++ {
			if _, err := c.CreateApp(ctx, org, fmt.Sprintf("app-%d", i), ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	assertSlept(t, clock, 0)

	// The fourth start on m1 waits a second.
	if _, err := c.StartMachine(ctx, "app", "m1", ""); err != nil {
		t.Fatal(err)
	}
	assertSlept(t, clock, time.Second)
}

// TestDefaultLimitsKeepHeadroom checks the limiter a client gets by default: never faster than
// the published limits, and a tenth slower.
func TestDefaultLimitsKeepHeadroom(t *testing.T) {
	srv := okServer(t)
	c, clock := newTestClient(t, srv, func(o *Options) { o.MaxLimiterWait = time.Hour })
	for i := 0; i < 12; i++ {
		if _, err := c.CreateMachine(context.Background(), "app", CreateMachineRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	// Published: burst 3 then 1/s, so 9 s for 12 creates; the default runs at 0.9/s: 10 s.
	got := clock.Slept()
	if got < 10*time.Second-time.Millisecond || got > 10*time.Second+time.Millisecond {
		t.Errorf("12 creates took %v of limiter waits, want 10s (the published rate would allow 9s)", got)
	}
}

func TestLimiterRefusesLongWaits(t *testing.T) {
	srv := okServer(t)
	reg := prometheus.NewRegistry()
	c, clock := newTestClient(t, srv, func(o *Options) {
		o.Limiter = NewLimiter(PublishedLimits())
		o.MaxLimiterWait = -1 // never wait
		o.Metrics = reg
	})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.CreateMachine(ctx, "app", CreateMachineRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	var stats CallStats
	_, err := c.CreateMachine(WithCallStats(ctx, &stats), "app", CreateMachineRequest{})
	apiErr, ok := asAPIError(err)
	if !IsRateLimited(err) || !ok || apiErr.Code != CodeClientThrottled || apiErr.Status != 0 {
		t.Fatalf("fourth create: %v, want a client-side rate limit", err)
	}
	if got := RateLimitedAfter(err); got != time.Second {
		t.Errorf("RetryAfter = %v, want 1s", got)
	}
	if srv.requests() != 3 || len(clock.Sleeps()) != 0 {
		t.Errorf("requests %d, sleeps %v: the refused call must not block or be sent", srv.requests(), clock.Sleeps())
	}
	if stats.RateLimited() != 1 || !stats.Throttled() {
		t.Errorf("stats do not show the refusal")
	}
	// The refused call gave its token back: a second later exactly one create fits again.
	clock.Advance(time.Second)
	if _, err := c.CreateMachine(ctx, "app", CreateMachineRequest{}); err != nil {
		t.Fatalf("create after waiting: %v", err)
	}
	if _, err := c.CreateMachine(ctx, "app", CreateMachineRequest{}); !IsRateLimited(err) {
		t.Fatalf("second create in the same second: %v, want rate limited", err)
	}
	assertNoSecretInMetrics(t, reg, "app")
}

func TestLimiterForgetsRefilledBuckets(t *testing.T) {
	clock := newFakeClock()
	l := NewLimiter(Limits{
		Default:   Limit{Rate: 1, Burst: 3},
		PerAction: map[string]Limit{"slow": {Rate: rate.Every(time.Hour), Burst: 1}},
	})
	for i := 0; i < 1000; i++ {
		l.reserve(ActionStartMachine, fmt.Sprintf("app/m%d", i), clock.Now())
	}
	l.reserve("slow", "app", clock.Now()) // refills only after an hour
	if got := l.bucketCount(); got != 1001 {
		t.Fatalf("%d buckets, want 1001", got)
	}
	clock.Advance(2 * time.Minute)
	l.reserve(ActionGetApp, "other", clock.Now())
	// The 1000 refilled buckets are gone; the slow one still owes time and must stay, or its
	// limit would reset.
	if got := l.bucketCount(); got != 2 {
		t.Fatalf("%d buckets after the sweep, want 2", got)
	}
	if d, _ := l.reserve("slow", "app", clock.Now()); d <= 0 {
		t.Errorf("the slow bucket was reset: no wait")
	}
}

func TestNoLimits(t *testing.T) {
	srv := okServer(t)
	c, clock := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
	for i := 0; i < 50; i++ {
		if _, err := c.CreateMachine(context.Background(), "app", CreateMachineRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	assertSlept(t, clock, 0)
	if got := c.limiter.bucketCount(); got != 0 {
		t.Errorf("unlimited limiter keeps %d buckets", got)
	}
}
