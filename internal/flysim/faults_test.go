package flysim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// try sends a request and returns the transport error instead of failing the test.
func (h *harness) try(ctx context.Context, method, path, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.http.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.http.Client().Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close() // only the status is wanted
	return resp.StatusCode, nil
}

// faultPattern runs 40 sequential calls under a 50% fault with seed and writes x for each failure.
func faultPattern(t *testing.T, seed int64) string {
	var out strings.Builder
	h := newHarness(t, func(o *Options) { o.Seed = seed })
	h.createApp("dice")
	h.srv.SetFault(actGetApp, Fault{ErrorRate: 0.5, Status: http.StatusServiceUnavailable})
	for range 40 {
		if h.do("GET", "/v1/apps/dice", nil).status == http.StatusServiceUnavailable {
			out.WriteByte('x')
		} else {
			out.WriteByte('.')
		}
	}
	return out.String()
}

func TestFaultErrorRateIsDeterministic(t *testing.T) {
	a, b, c := faultPattern(t, 7), faultPattern(t, 7), faultPattern(t, 8)
	if a != b {
		t.Errorf("same seed, different faults:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Errorf("error rate 0.5 gave %s", a)
	}
	if a == c {
		t.Errorf("seeds 7 and 8 gave the same 40 decisions: %s", a)
	}
}

func TestFaultCountAndScope(t *testing.T) {
	h := newHarness(t)
	h.createApp("cnt")
	h.srv.SetFault(actGetApp, Fault{Status: http.StatusInternalServerError, Count: 2})
	for i, want := range []int{500, 500, 200, 200} {
		if got := h.do("GET", "/v1/apps/cnt", nil).status; got != want {
			t.Errorf("call %d: %d, want %d", i, got, want)
		}
	}
	// "*" matches every action; an action's own fault wins over it.
	h.srv.SetFault("", Fault{Status: http.StatusBadGateway})
	h.srv.SetFault(actListApps, Fault{Latency: time.Microsecond})
	h.do("GET", "/v1/apps/cnt/secrets", nil).expectError(t, http.StatusBadGateway, "")
	h.do("GET", "/v1/apps?org_slug="+orgA, nil).expect(t, 200, nil)
	h.srv.SetFault(actGetApp, Fault{Status: http.StatusTooManyRequests})
	if r := h.do("GET", "/v1/apps/cnt", nil); r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Errorf("429 fault: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	h.srv.ClearFaults()
	h.do("GET", "/v1/apps/cnt/secrets", nil).expect(t, 200, nil)

	calls := h.srv.CallsFor(actGetApp, "cnt")
	if len(calls) != 5 || !calls[0].Faulted || calls[2].Faulted || calls[0].Status != 500 || !calls[4].Faulted {
		t.Errorf("call log for get_app: %+v", calls)
	}
}

func TestCommitThenFailCommits(t *testing.T) {
	h := newHarness(t)
	h.createApp("ctf")
	h.srv.SetFault(actCreateMachine, Fault{CommitThenFail: true, Status: http.StatusServiceUnavailable, Count: 1})
	body := map[string]any{"name": "once", "config": baseConfig(), "skip_launch": true}
	h.do("POST", "/v1/apps/ctf/machines", body).expectError(t, http.StatusServiceUnavailable, "")
	ms := h.srv.Machines("ctf")
	if len(ms) != 1 || ms[0].Name != "once" {
		t.Fatalf("commit-then-fail did not commit: %+v", ms)
	}
	// A blind replay now meets the committed machine.
	e := h.do("POST", "/v1/apps/ctf/machines", body).expectError(t, http.StatusUnprocessableEntity, "")
	if e.Status != "name_taken" {
		t.Errorf("replay status %q", e.Status)
	}
	calls := h.srv.CallsFor(actCreateMachine, "ctf")
	if len(calls) != 2 || !calls[0].Faulted || calls[0].Machine != ms[0].ID || calls[0].Status != 503 {
		t.Errorf("call log %+v", calls)
	}
}

func TestDropConnection(t *testing.T) {
	h := newHarness(t)
	h.createApp("drop")
	ctx := context.Background()
	body := `{"config":{"image":"nginx"},"skip_launch":true}`

	// Dropped before the work: nothing happens.
	h.srv.SetFault(actCreateMachine, Fault{DropConnection: true, Count: 1})
	if status, err := h.try(ctx, "POST", "/v1/apps/drop/machines", body); err == nil {
		t.Fatalf("dropped connection answered %d", status)
	}
	if n := len(h.srv.Machines("drop")); n != 0 {
		t.Errorf("dropped create made %d machines", n)
	}

	// Commit, then drop: the client sees a network error, the machine exists.
	h.srv.SetFault(actCreateMachine, Fault{DropConnection: true, CommitThenFail: true, Count: 1})
	if status, err := h.try(ctx, "POST", "/v1/apps/drop/machines", body); err == nil {
		t.Fatalf("dropped connection answered %d", status)
	}
	if n := len(h.srv.Machines("drop")); n != 1 {
		t.Errorf("commit-then-drop made %d machines, want 1", n)
	}
	calls := h.srv.CallsFor(actCreateMachine, "")
	if len(calls) != 2 || calls[0].Status != 0 || !calls[0].Faulted || calls[1].Status != 0 {
		t.Errorf("call log %+v", calls)
	}
	// Then the fault is spent.
	if status, err := h.try(ctx, "POST", "/v1/apps/drop/machines", body); err != nil || status != 200 {
		t.Errorf("after the fault: %d %v", status, err)
	}
}

func TestLatencyFaultRespectsClientDeadline(t *testing.T) {
	h := newHarness(t)
	h.createApp("slowpoke")
	h.srv.SetFault(actGetApp, Fault{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.try(ctx, "GET", "/v1/apps/slowpoke", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the client deadline", err)
	}
	eventually(t, "the abandoned call to be logged", func() bool { return len(h.srv.CallsFor(actGetApp, "")) == 1 })
	if c := h.srv.CallsFor(actGetApp, "")[0]; c.Status != 499 {
		t.Errorf("abandoned call logged %+v", c)
	}
}

func TestListLag(t *testing.T) {
	clock := newFakeClock()
	h := newHarness(t, func(o *Options) { o.Now = clock.Now })
	h.createApp("lag")
	h.srv.SetListLag(time.Minute)
	m := h.createMachine("lag", map[string]any{"skip_launch": true})
	var list []wireMachine
	h.do("GET", "/v1/apps/lag/machines", nil).expect(t, 200, &list)
	if len(list) != 0 {
		t.Errorf("new machine listed despite lag")
	}
	h.getMachine("lag", m.ID) // a direct get sees it
	clock.Advance(61 * time.Second)
	h.do("GET", "/v1/apps/lag/machines", nil).expect(t, 200, &list)
	if len(list) != 1 {
		t.Errorf("machine still missing after the lag")
	}
	h.srv.SetListLag(0)
}

func TestRevokedToken(t *testing.T) {
	h := newHarness(t)
	h.createApp("rev")
	h.srv.RevokeToken(tokenA)
	r := h.do("GET", "/v1/apps/rev", nil)
	r.expectError(t, http.StatusUnauthorized, "")
	if strings.Contains(string(r.body), tokenA) {
		t.Error("401 body repeats the token")
	}
	h.as(tokenB).do("GET", "/v1/apps?org_slug="+orgB, nil).expect(t, 200, nil)
	h.srv.RestoreToken(tokenA)
	h.do("GET", "/v1/apps/rev", nil).expect(t, 200, nil)
}
