package flyapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestOutcomeUnknownPerCall runs every call of the operations table against each kind of unclear
// failure and checks, per call: IsOutcomeUnknown holds exactly for calls with side effects, a call
// with side effects that is not known to converge is sent exactly once, and a wait's 408 is a wait
// timeout, not an unknown outcome.
func TestOutcomeUnknownPerCall(t *testing.T) {
	timeout408 := step{status: 408, body: `{"error":"deadline_exceeded: request timed out"}`}
	html200 := step{status: 200, body: "<html><body>maintenance</body></html>"}
	answers := []struct {
		name string
		step step
		// unknown is whether a call with side effects has an unknown outcome after this answer.
		unknown bool
		// retried is whether a repeatable call is sent again after it.
		retried bool
	}{
		{"408", timeout408, true, true},
		{"503", fail503, true, true},
		{"500", fail500, true, true},
		{"dropped connection", dropped, true, true},
		{"unreadable 200", html200, true, false},
		{"409", step{status: 409, body: `{"error":"lease currently held"}`}, false, false},
		{"422", step{status: 422, body: `{"error":"invalid"}`}, false, false},
		{"429 beyond the budget", limited429("100"), false, false},
	}
	// Calls whose answer is a courtesy succeed on any 2xx, and calls without a decoded answer
	// never read the body.
	ignoresBody := map[string]bool{
		ActionDeleteApp: true, ActionStartMachine: true, ActionStopMachine: true, ActionSuspendMachine: true,
		ActionSetMetadata: true, ActionReleaseLease: true, ActionDestroyMachine: true,
	}
	actions := make([]string, 0, len(operations))
	for action := range operations {
		actions = append(actions, action)
	}
	sort.Strings(actions)
	for _, action := range actions {
		for _, a := range answers {
			t.Run(action+"/"+a.name, func(t *testing.T) {
				if a.step == html200 && ignoresBody[action] {
					t.Skip("this call does not read a 2xx body")
				}
				srv := &script{t: t, steps: []step{a.step}}
				c, _ := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
				err := operations[action](context.Background(), c)
				if err == nil {
					t.Fatal("the call succeeded")
				}
				sideEffects := hasSideEffects(action)
				if got, want := IsOutcomeUnknown(err), sideEffects && a.unknown; got != want {
					t.Errorf("IsOutcomeUnknown(%v) = %v, want %v", err, got, want)
				}
				wantWaitTimeout := action == ActionWaitMachine && a.step == timeout408
				if got := IsWaitTimeout(err); got != wantWaitTimeout {
					t.Errorf("IsWaitTimeout(%v) = %v, want %v", err, got, wantWaitTimeout)
				}
				requests := srv.requests()
				repeatable := !sideEffects || action == ActionDestroyMachine || action == ActionReleaseLease
				switch {
				case a.step == limited429("100"):
					// Fly refused it before doing anything; not resent only because the wait is too long.
				case repeatable && a.retried && !wantWaitTimeout:
					if requests < 2 {
						t.Errorf("%d requests: a call safe to repeat was not retried", requests)
					}
				case requests != 1:
					t.Errorf("%d requests, want exactly 1", requests)
				}
			})
		}
	}
}

// TestHasSideEffects: every read is a GET and every call with side effects is not, checked
// against the method each call really sends.
func TestHasSideEffects(t *testing.T) {
	for action, op := range operations {
		var method atomic.Value
		srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			method.Store(r.Method)
			w.WriteHeader(http.StatusBadRequest)
		})
		c, _ := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
		_ = op(context.Background(), c) // refused: only the method matters
		got, _ := method.Load().(string)
		if hasSideEffects(action) != (got != http.MethodGet) {
			t.Errorf("%s is sent as %s but hasSideEffects = %v", action, got, hasSideEffects(action))
		}
	}
	for action := range readActions {
		if !strings.HasPrefix(action, "get_") && !strings.HasPrefix(action, "list_") && action != ActionWaitMachine {
			t.Errorf("read action %q is neither a get, a list nor the wait", action)
		}
	}
}

// TestCallerGivingUpLeavesTheOutcomeUnknown: a create whose caller's context ends while the
// request is out may still have been committed.
func TestCallerGivingUpLeavesTheOutcomeUnknown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var requests atomic.Int64
	srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // read whole, so the server notices the client leave
		requests.Add(1)
		cancel() // the caller gives up once the request has arrived
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
			t.Error("the client never gave up")
		}
	})
	c, _ := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
	_, err := c.CreateMachine(ctx, "app", CreateMachineRequest{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want it to carry context.Canceled", err)
	}
	if !IsOutcomeUnknown(err) {
		t.Errorf("IsOutcomeUnknown(%v) = false: the create may have been committed", err)
	}
	if requests.Load() != 1 {
		t.Errorf("%d requests, want 1", requests.Load())
	}
}

// TestPostNotResentOnAReusedConnection: with keep-alive on (as in production), a POST whose
// reused connection dies after the request was written is not resent by net/http, so a create is
// still sent once.
func TestPostNotResentOnAReusedConnection(t *testing.T) {
	var creates, requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // read whole: the request was written
		requests.Add(1)
		if r.Method == http.MethodPost {
			creates.Add(1)
			hj, ok := w.(http.Hijacker)
			if !ok {
				t.Error("cannot hijack")
				return
			}
			conn, _, err := hj.Hijack()
			if err == nil {
				_ = conn.Close() // the answer is lost on a connection that served a request before
			}
			return
		}
		_, _ = io.WriteString(w, `{"id":"app-id","name":"app"}`) // a failed write fails the client's call
	}))
	t.Cleanup(srv.Close)
	clock := newFakeClock()
	c, err := New(Options{
		BaseURL: srv.URL, Token: StaticToken("t"), Limiter: NewLimiter(NoLimits()),
		HTTPClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}},
		Now:        clock.Now, Sleep: clock.Sleep,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetApp(context.Background(), "app"); err != nil { // leaves an idle connection
		t.Fatal(err)
	}
	_, err = c.CreateMachine(context.Background(), "app", CreateMachineRequest{})
	if !IsOutcomeUnknown(err) {
		t.Fatalf("CreateMachine on a dying connection: %v, want an unknown outcome", err)
	}
	if creates.Load() != 1 {
		t.Errorf("the server received %d creates, want exactly 1", creates.Load())
	}
}
