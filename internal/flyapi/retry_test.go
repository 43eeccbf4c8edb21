package flyapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// step is one scripted answer: a status with a body, or a dropped connection.
type step struct {
	status     int
	body       string
	retryAfter string
	drop       bool
}

var (
	ok200         = step{status: 200, body: `{"id":"m1","state":"started","ok":true}`}
	fail503       = step{status: 503, body: `{"error":"service unavailable"}`}
	fail500       = step{status: 500, body: `{"error":"internal error"}`}
	fail502       = step{status: 502, body: "bad gateway"}
	notFound404   = step{status: 404, body: `{"error":"machine not found"}`}
	dropped       = step{drop: true}
	badRequest400 = step{status: 400, body: `{"error":"bad params"}`}
)

func limited429(retryAfter string) step {
	return step{status: 429, body: `{"error":"rate limited"}`, retryAfter: retryAfter}
}

// script answers requests with its steps in order, repeating the last one.
type script struct {
	t     *testing.T
	mu    sync.Mutex
	steps []step
	count int
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body) // drained for connection reuse; no answer depends on it
	s.mu.Lock()
	st := s.steps[min(s.count, len(s.steps)-1)]
	s.count++
	s.mu.Unlock()
	if st.drop {
		dropConnection(s.t, w)
		return
	}
	w.Header().Set("fly-request-id", "req-"+strconv.Itoa(s.count))
	if st.retryAfter != "" {
		w.Header().Set("Retry-After", st.retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(st.status)
	_, _ = io.WriteString(w, st.body) // a failed write fails the client's call
}

func (s *script) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// operations calls one client method each, by action name.
var operations = map[string]func(context.Context, *Client) error{
	ActionCreateApp: func(ctx context.Context, c *Client) error {
		_, err := c.CreateApp(ctx, "org", "app", "")
		return err
	},
	ActionDeleteApp: func(ctx context.Context, c *Client) error { return c.DeleteApp(ctx, "app", false) },
	ActionCreateMachine: func(ctx context.Context, c *Client) error {
		_, err := c.CreateMachine(ctx, "app", CreateMachineRequest{Config: MachineConfig{Image: "nginx"}})
		return err
	},
	ActionUpdateMachine: func(ctx context.Context, c *Client) error {
		_, err := c.UpdateMachine(ctx, "app", "m1", UpdateMachineRequest{Config: MachineConfig{Image: "nginx"}})
		return err
	},
	ActionStartMachine: func(ctx context.Context, c *Client) error {
		_, err := c.StartMachine(ctx, "app", "m1", "")
		return err
	},
	ActionAcquireLease: func(ctx context.Context, c *Client) error {
		_, err := c.AcquireLease(ctx, "app", "m1", 30*time.Second, "")
		return err
	},
	ActionSetSecrets: func(ctx context.Context, c *Client) error {
		_, err := c.SetSecrets(ctx, "app", map[string]string{"A": "b"})
		return err
	},
	ActionAssignIP: func(ctx context.Context, c *Client) error {
		_, err := c.AllocatePrivateV6(ctx, "app", "net")
		return err
	},
	ActionStopMachine: func(ctx context.Context, c *Client) error {
		return c.StopMachine(ctx, "app", "m1", StopOptions{}, "")
	},
	ActionSuspendMachine: func(ctx context.Context, c *Client) error { return c.SuspendMachine(ctx, "app", "m1", "") },
	ActionSetMetadata:    func(ctx context.Context, c *Client) error { return c.SetMetadata(ctx, "app", "m1", "k", "v") },
	ActionGetMachine: func(ctx context.Context, c *Client) error {
		_, err := c.GetMachine(ctx, "app", "m1")
		return err
	},
	ActionListMachines: func(ctx context.Context, c *Client) error {
		_, err := c.ListMachines(ctx, "app", ListMachinesOptions{})
		return err
	},
	ActionWaitMachine: func(ctx context.Context, c *Client) error {
		_, err := c.WaitMachine(ctx, "app", "m1", WaitOptions{})
		return err
	},
	ActionGetLease: func(ctx context.Context, c *Client) error {
		_, err := c.GetLease(ctx, "app", "m1")
		return err
	},
	ActionReleaseLease: func(ctx context.Context, c *Client) error { return c.ReleaseLease(ctx, "app", "m1", "nonce") },
	ActionDestroyMachine: func(ctx context.Context, c *Client) error {
		return c.DestroyMachine(ctx, "app", "m1", false, "")
	},
}

func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name         string
		action       string
		steps        []step
		wantRequests int
		wantErr      func(error) bool // nil: success expected
	}{
		// Reads are retried after 5xx and lost answers.
		{"get after two 503", ActionGetMachine, []step{fail503, fail503, ok200}, 3, nil},
		{"get after a dropped connection", ActionGetMachine, []step{dropped, ok200}, 2, nil},
		{"get gives up after MaxAttempts", ActionGetMachine, []step{fail503}, 4, IsUnavailable},
		{"get is not retried on 400", ActionGetMachine, []step{badRequest400}, 1, IsBadRequest},
		{"get is not retried on 404", ActionGetMachine, []step{notFound404}, 1, IsNotFound},
		{"list after 502", ActionListMachines, []step{fail502, {status: 200, body: `[]`}}, 2, nil},
		{"wait after 503", ActionWaitMachine, []step{fail503, ok200}, 2, nil},
		{"wait timeout is not retried", ActionWaitMachine, []step{{status: 408, body: `{"error":"deadline_exceeded"}`}}, 1, IsWaitTimeout},
		{"get lease after 500", ActionGetLease, []step{fail500, {status: 200, body: `{"status":"success","data":{"nonce":"abc"}}`}}, 2, nil},
		// Lease release and destroy converge, so they are retried; a 404 after that is success.
		{"release after 503", ActionReleaseLease, []step{fail503, ok200}, 2, nil},
		{"release: 404 after a lost answer is success", ActionReleaseLease, []step{dropped, notFound404}, 2, nil},
		{"destroy after 503", ActionDestroyMachine, []step{fail503, ok200}, 2, nil},
		{"destroy: 404 after a 503 is success", ActionDestroyMachine, []step{fail503, notFound404}, 2, nil},
		{"destroy: 404 first time is not found", ActionDestroyMachine, []step{notFound404}, 1, IsNotFound},
		{"destroy: 404 after a 429 is not found", ActionDestroyMachine, []step{limited429("1"), notFound404}, 2, IsNotFound},
		{"destroy: 412 after a 503, machine destroying, is success", ActionDestroyMachine,
			[]step{fail503, {status: 412, body: `{"error":"failed_precondition: unable to destroy machine, not currently stopped"}`}, {status: 200, body: `{"id":"m1","state":"destroying"}`}}, 3, nil},
		{"destroy: 412 after a 503, machine started, is returned", ActionDestroyMachine,
			[]step{fail503, {status: 412, body: `{"error":"failed_precondition: unable to destroy machine, not currently stopped"}`}, {status: 200, body: `{"id":"m1","state":"started"}`}}, 3, IsFailedPrecondition},
		{"destroy: 412 first time is returned without a lookup", ActionDestroyMachine,
			[]step{{status: 412, body: `{"error":"failed_precondition: unable to destroy machine, not currently stopped"}`}}, 1, IsFailedPrecondition},
		// Mutations are sent exactly once after 5xx or a lost answer.
		{"create machine after 503", ActionCreateMachine, []step{fail503, ok200}, 1, IsUnavailable},
		{"create machine after a dropped connection", ActionCreateMachine, []step{dropped, ok200}, 1, IsUnavailable},
		{"create machine after 500", ActionCreateMachine, []step{fail500, ok200}, 1, IsUnavailable},
		{"update after 503", ActionUpdateMachine, []step{fail503, ok200}, 1, IsUnavailable},
		{"update after a dropped connection", ActionUpdateMachine, []step{dropped, ok200}, 1, IsUnavailable},
		{"create app after 502", ActionCreateApp, []step{fail502, ok200}, 1, IsUnavailable},
		{"delete app after 503", ActionDeleteApp, []step{fail503, {status: 202}}, 1, IsUnavailable},
		{"start after 500", ActionStartMachine, []step{fail500, ok200}, 1, IsUnavailable},
		{"acquire lease after 503", ActionAcquireLease, []step{fail503, ok200}, 1, IsUnavailable},
		{"set secrets after 503", ActionSetSecrets, []step{fail503, ok200}, 1, IsUnavailable},
		{"assign IP after a dropped connection", ActionAssignIP, []step{dropped, ok200}, 1, IsUnavailable},
		{"set metadata after 503", ActionSetMetadata, []step{fail503, {status: 204}}, 1, IsUnavailable},
		// A 429 is refused before any effect: every call is resent.
		{"create machine after 429", ActionCreateMachine, []step{limited429("1"), ok200}, 2, nil},
		{"update after 429", ActionUpdateMachine, []step{limited429(""), ok200}, 2, nil},
		{"create app after 429 (then one read of the new app)", ActionCreateApp, []step{limited429("1"), {status: 201, body: `{"id":"a","created_at":1}`}}, 3, nil},
		{"get after 429", ActionGetMachine, []step{limited429("2"), ok200}, 2, nil},
		{"429 storm ends at MaxAttempts", ActionCreateMachine, []step{limited429("1")}, 4, IsRateLimited},
		{"429 beyond the budget is returned", ActionCreateMachine, []step{limited429("100"), ok200}, 1, IsRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &script{t: t, steps: tt.steps}
			c, _ := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
			err := operations[tt.action](context.Background(), c)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != nil && !tt.wantErr(err) {
				t.Fatalf("error = %v, not the expected kind", err)
			}
			if got := srv.requests(); got != tt.wantRequests {
				t.Errorf("server saw %d requests, want %d", got, tt.wantRequests)
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter string
		want       time.Duration
	}{
		{"seconds", "7", 7 * time.Second},
		{"http date", newFakeClock().Now().Add(12 * time.Second).Format(http.TimeFormat), 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &script{t: t, steps: []step{limited429(tt.retryAfter), ok200}}
			c, clock := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
			var stats CallStats
			if _, err := c.CreateMachine(WithCallStats(context.Background(), &stats), "app", CreateMachineRequest{}); err != nil {
				t.Fatalf("CreateMachine: %v", err)
			}
			sleeps := clock.Sleeps()
			if len(sleeps) != 1 || sleeps[0] < tt.want {
				t.Errorf("slept %v before the retry, want one sleep of at least %v", sleeps, tt.want)
			}
			if stats.RateLimited() != 1 || stats.Attempts() != 2 || !stats.Throttled() {
				t.Errorf("stats: rate limited %d, attempts %d", stats.RateLimited(), stats.Attempts())
			}
		})
	}
}

func TestBackoffGrowsWithinBudget(t *testing.T) {
	srv := &script{t: t, steps: []step{fail503}}
	c, clock := newTestClient(t, srv, func(o *Options) {
		o.Limiter = NewLimiter(NoLimits())
		o.Retry.MaxAttempts = 50
		o.Retry.Budget = 10 * time.Second
	})
	_, err := c.GetMachine(context.Background(), "app", "m1")
	if !IsUnavailable(err) {
		t.Fatalf("error = %v", err)
	}
	sleeps := clock.Sleeps()
	if len(sleeps) < 3 {
		t.Fatalf("only %d retries", len(sleeps))
	}
	if clock.Slept() > 10*time.Second {
		t.Errorf("slept %v in total, more than the 10s budget", clock.Slept())
	}
	if srv.requests() >= 50 {
		t.Errorf("%d requests: the budget did not stop the retries", srv.requests())
	}
	// Jittered exponential: the third delay is at least twice the first base (250ms → 500ms → 1s).
	if sleeps[2] < 2*250*time.Millisecond {
		t.Errorf("delays %v do not grow", sleeps)
	}
}

func TestContextCancelStopsRetries(t *testing.T) {
	srv := &script{t: t, steps: []step{fail503}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := newTestClient(t, srv, func(o *Options) {
		o.Limiter = NewLimiter(NoLimits())
		o.Sleep = func(ctx context.Context, d time.Duration) error {
			cancel() // the caller gives up while the client waits to retry
			<-ctx.Done()
			return ctx.Err()
		}
	})
	_, err := c.GetMachine(ctx, "app", "m1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if !IsUnavailable(err) {
		t.Errorf("error = %v should still carry the 503 that was being retried", err)
	}
	if got := srv.requests(); got != 1 {
		t.Errorf("server saw %d requests after cancel, want 1", got)
	}
}

func TestRetryNotScheduledPastDeadline(t *testing.T) {
	srv := &script{t: t, steps: []step{limited429("10"), ok200}}
	c, clock := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.GetMachine(ctx, "app", "m1")
	if !IsRateLimited(err) || RateLimitedAfter(err) != 10*time.Second {
		t.Fatalf("error = %v, want rate limited with a 10s Retry-After", err)
	}
	if srv.requests() != 1 || len(clock.Sleeps()) != 0 {
		t.Errorf("requests %d, sleeps %v: a retry the deadline cannot wait for was attempted", srv.requests(), clock.Sleeps())
	}
}

// dialFailingTransport fails the first n requests as if the connection could not be opened.
type dialFailingTransport struct {
	failures atomic.Int32
	next     http.RoundTripper
}

func (d *dialFailingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if d.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	return d.next.RoundTrip(req)
}

func TestCreateResentWhenNeverSent(t *testing.T) {
	srv := &script{t: t, steps: []step{ok200}}
	transport := &dialFailingTransport{next: &http.Transport{DisableKeepAlives: true}}
	transport.failures.Store(1)
	c, _ := newTestClient(t, srv, func(o *Options) {
		o.Limiter = NewLimiter(NoLimits())
		o.HTTPClient = &http.Client{Transport: transport}
	})
	if _, err := c.CreateMachine(context.Background(), "app", CreateMachineRequest{}); err != nil {
		t.Fatalf("CreateMachine after a failed dial: %v", err)
	}
	if got := srv.requests(); got != 1 {
		t.Errorf("server saw %d creates, want exactly 1", got)
	}
}
