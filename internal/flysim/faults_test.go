package flysim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

// faultPattern runs 40 sequential calls under a 50% fault with seed and writes x for each failure.
func faultPattern(t *testing.T, seed int64) string {
	var out strings.Builder
	h := newHarness(t, func(o *Options) { o.Seed = seed })
	h.CreateApp("dice")
	h.srv.SetFault(actGetApp, Fault{ErrorRate: 0.5, Status: http.StatusServiceUnavailable})
	for range 40 {
		if h.Do("GET", "/v1/apps/dice", nil).Status == http.StatusServiceUnavailable {
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
	h.CreateApp("cnt")
	h.srv.SetFault(actGetApp, Fault{Status: http.StatusInternalServerError, Count: 2})
	for i, want := range []int{500, 500, 200, 200} {
		if got := h.Do("GET", "/v1/apps/cnt", nil).Status; got != want {
			t.Errorf("call %d: %d, want %d", i, got, want)
		}
	}
	// "*" matches every action; an action's own fault wins over it.
	h.srv.SetFault("", Fault{Status: http.StatusBadGateway})
	h.srv.SetFault(actListApps, Fault{Latency: time.Microsecond})
	h.Do("GET", "/v1/apps/cnt/secrets", nil).ExpectError(t, http.StatusBadGateway, "")
	h.Do("GET", "/v1/apps?org_slug="+orgA, nil).Expect(t, 200, nil)
	h.srv.SetFault(actGetApp, Fault{Status: http.StatusTooManyRequests})
	if r := h.Do("GET", "/v1/apps/cnt", nil); r.Status != 429 || r.Header.Get("Retry-After") != "1" {
		t.Errorf("429 fault: %d Retry-After %q", r.Status, r.Header.Get("Retry-After"))
	}
	h.srv.ClearFaults()
	h.Do("GET", "/v1/apps/cnt/secrets", nil).Expect(t, 200, nil)

	calls := h.srv.CallsFor(actGetApp, "cnt")
	if len(calls) != 5 || !calls[0].Faulted || calls[2].Faulted || calls[0].Status != 500 || !calls[4].Faulted {
		t.Errorf("call log for get_app: %+v", calls)
	}
}

func TestCommitThenFailCommits(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("ctf")
	h.srv.SetFault(actCreateMachine, Fault{CommitThenFail: true, Status: http.StatusServiceUnavailable, Count: 1})
	body := map[string]any{"name": "once", "config": flysimtest.BaseConfig(), "skip_launch": true}
	h.Do("POST", "/v1/apps/ctf/machines", body).ExpectError(t, http.StatusServiceUnavailable, "")
	ms := h.srv.Machines("ctf")
	if len(ms) != 1 || ms[0].Name != "once" {
		t.Fatalf("commit-then-fail did not commit: %+v", ms)
	}
	// A blind replay now meets the committed machine.
	e := h.Do("POST", "/v1/apps/ctf/machines", body).ExpectError(t, http.StatusUnprocessableEntity, "")
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
	h.CreateApp("drop")
	ctx := context.Background()
	body := `{"config":{"image":"nginx"},"skip_launch":true}`

	// Dropped before the work: nothing happens.
	h.srv.SetFault(actCreateMachine, Fault{DropConnection: true, Count: 1})
	if status, err := h.Try(ctx, "POST", "/v1/apps/drop/machines", body); err == nil {
		t.Fatalf("dropped connection answered %d", status)
	}
	if n := len(h.srv.Machines("drop")); n != 0 {
		t.Errorf("dropped create made %d machines", n)
	}

	// Commit, then drop: the client sees a network error, the machine exists.
	h.srv.SetFault(actCreateMachine, Fault{DropConnection: true, CommitThenFail: true, Count: 1})
	if status, err := h.Try(ctx, "POST", "/v1/apps/drop/machines", body); err == nil {
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
	if status, err := h.Try(ctx, "POST", "/v1/apps/drop/machines", body); err != nil || status != 200 {
		t.Errorf("after the fault: %d %v", status, err)
	}
}

func TestLatencyFaultRespectsClientDeadline(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("slowpoke")
	h.srv.SetFault(actGetApp, Fault{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Try(ctx, "GET", "/v1/apps/slowpoke", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the client deadline", err)
	}
	flysimtest.Eventually(t, "the abandoned call to be logged", func() bool { return len(h.srv.CallsFor(actGetApp, "")) == 1 })
	if c := h.srv.CallsFor(actGetApp, "")[0]; c.Status != 499 {
		t.Errorf("abandoned call logged %+v", c)
	}
}

func TestListLag(t *testing.T) {
	clock := flysimtest.NewClock()
	h := newHarness(t, func(o *Options) { o.Now = clock.Now })
	h.CreateApp("lag")
	h.srv.SetListLag(time.Minute)
	m := h.CreateMachine("lag", map[string]any{"skip_launch": true})
	var list []flysimtest.Machine
	h.Do("GET", "/v1/apps/lag/machines", nil).Expect(t, 200, &list)
	if len(list) != 0 {
		t.Errorf("new machine listed despite lag")
	}
	h.GetMachine("lag", m.ID) // a direct get sees it
	clock.Advance(61 * time.Second)
	h.Do("GET", "/v1/apps/lag/machines", nil).Expect(t, 200, &list)
	if len(list) != 1 {
		t.Errorf("machine still missing after the lag")
	}
	h.srv.SetListLag(0)
}

func TestRevokedToken(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("rev")
	h.srv.RevokeToken(tokenA)
	r := h.Do("GET", "/v1/apps/rev", nil)
	r.ExpectError(t, http.StatusUnauthorized, "")
	if strings.Contains(string(r.Body), tokenA) {
		t.Error("401 body repeats the token")
	}
	h.As(tokenB).Do("GET", "/v1/apps?org_slug="+orgB, nil).Expect(t, 200, nil)
	h.srv.RestoreToken(tokenA)
	h.Do("GET", "/v1/apps/rev", nil).Expect(t, 200, nil)
}
