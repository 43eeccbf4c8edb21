package flysim

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

func limitedHarness(t *testing.T) (*harness, *flysimtest.Clock) {
	clock := flysimtest.NewClock()
	h := newHarness(t, func(o *Options) {
		o.Now = clock.Now
		o.DisableRateLimits = false
	})
	return h, clock
}

// statuses sends n identical requests and returns their statuses.
func statuses(h *harness, n int, method, path string, body any) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = h.Do(method, path, body).Status
	}
	return out
}

func TestRateLimitPerActionAndApp(t *testing.T) {
	h, clock := limitedHarness(t)
	h.CreateApp("rl-1")
	clock.Advance(time.Second)
	h.CreateApp("rl-2")

	body := map[string]any{"config": flysimtest.BaseConfig(), "skip_launch": true}
	got := statuses(h, 4, "POST", "/v1/apps/rl-1/machines", body)
	if fmt.Sprint(got) != "[200 200 200 429]" {
		t.Fatalf("creates in one app: %v, want a burst of 3 then 429", got)
	}
	r := h.Do("POST", "/v1/apps/rl-1/machines", body)
	r.ExpectError(t, http.StatusTooManyRequests, "rate limited")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra != 1 {
		t.Errorf("Retry-After %q, want 1", r.Header.Get("Retry-After"))
	}
	// Other apps and other actions have their own buckets.
	h.Do("POST", "/v1/apps/rl-2/machines", body).Expect(t, 200, nil)
	h.Do("GET", "/v1/apps/rl-1/machines", nil).Expect(t, 200, nil)
	// One token per second.
	clock.Advance(time.Second)
	if got := statuses(h, 2, "POST", "/v1/apps/rl-1/machines", body); fmt.Sprint(got) != "[200 429]" {
		t.Errorf("after 1s: %v, want one more create", got)
	}

	limited := 0
	for _, c := range h.srv.CallsFor(actCreateMachine, "rl-1") {
		if c.RateLimited {
			limited++
			if c.Status != 429 {
				t.Errorf("rate-limited call logged with status %d", c.Status)
			}
		}
	}
	if limited != 3 {
		t.Errorf("%d calls logged as rate limited, want 3", limited)
	}
	if n := len(h.srv.Machines("rl-1")); n != 4 {
		t.Errorf("%d machines made, want 4 (429s must not create)", n)
	}
}

func TestRateLimitGetMachineAndPerMachine(t *testing.T) {
	h, clock := limitedHarness(t)
	h.CreateApp("rlm")
	a := h.CreateMachine("rlm", map[string]any{"skip_launch": true})
	b := h.CreateMachine("rlm", map[string]any{"skip_launch": true})
	got := statuses(h, 11, "GET", "/v1/apps/rlm/machines/"+a.ID, nil)
	if got[9] != 200 || got[10] != 429 {
		t.Errorf("get machine: %v, want a burst of 10", got)
	}
	h.Do("GET", "/v1/apps/rlm/machines/"+b.ID, nil).Expect(t, 200, nil)
	clock.Advance(200 * time.Millisecond) // 5/s: one token
	h.Do("GET", "/v1/apps/rlm/machines/"+a.ID, nil).Expect(t, 200, nil)

	// Machine-scoped actions count per machine: cordon a three times, then b still can.
	if got := statuses(h, 4, "POST", "/v1/apps/rlm/machines/"+a.ID+"/cordon", nil); fmt.Sprint(got) != "[200 200 200 429]" {
		t.Errorf("cordon a: %v", got)
	}
	h.Do("POST", "/v1/apps/rlm/machines/"+b.ID+"/cordon", nil).Expect(t, 200, nil)
}

func TestRateLimitPerOrg(t *testing.T) {
	h, clock := limitedHarness(t)
	for i := range 3 {
		h.CreateApp(fmt.Sprintf("org-app-%d", i))
	}
	h.Do("POST", "/v1/apps", map[string]any{"name": "org-app-3", "org_slug": orgA}).ExpectError(t, 429, "rate limited")
	h.As(tokenB).CreateApp("other-org-app")
	if got := statuses(h, 4, "GET", "/v1/apps?org_slug="+orgA, nil); fmt.Sprint(got) != "[200 200 200 429]" {
		t.Errorf("list apps: %v", got)
	}

	// App deletions: 100 per minute per org.
	for i := range 101 {
		clock.Advance(time.Second)
		h.CreateApp(fmt.Sprintf("del-%d", i))
	}
	for i := range 100 {
		h.Do("DELETE", fmt.Sprintf("/v1/apps/del-%d", i), nil).Expect(t, http.StatusAccepted, nil)
	}
	r := h.Do("DELETE", "/v1/apps/del-100", nil)
	r.ExpectError(t, 429, "rate limited")
	ra, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	if ra < 1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	clock.Advance(time.Duration(ra) * time.Second)
	h.Do("DELETE", "/v1/apps/del-100", nil).Expect(t, http.StatusAccepted, nil)
}

func TestRateLimitsCanBeDisabled(t *testing.T) {
	h := newHarness(t) // DisableRateLimits is the test default
	h.CreateApp("free")
	for _, s := range statuses(h, 20, "GET", "/v1/apps/free", nil) {
		if s != 200 {
			t.Fatalf("limited although disabled: %d", s)
		}
	}
}
