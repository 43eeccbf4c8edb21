package flysim

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func limitedHarness(t *testing.T) (*harness, *fakeClock) {
	clock := newFakeClock()
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
		out[i] = h.do(method, path, body).status
	}
	return out
}

func TestRateLimitPerActionAndApp(t *testing.T) {
	h, clock := limitedHarness(t)
	h.createApp("rl-1")
	clock.Advance(time.Second)
	h.createApp("rl-2")

	body := map[string]any{"config": baseConfig(), "skip_launch": true}
	got := statuses(h, 4, "POST", "/v1/apps/rl-1/machines", body)
	if fmt.Sprint(got) != "[200 200 200 429]" {
		t.Fatalf("creates in one app: %v, want a burst of 3 then 429", got)
	}
	r := h.do("POST", "/v1/apps/rl-1/machines", body)
	r.expectError(t, http.StatusTooManyRequests, "rate limited")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra != 1 {
		t.Errorf("Retry-After %q, want 1", r.header.Get("Retry-After"))
	}
	// Other apps and other actions have their own buckets.
	h.do("POST", "/v1/apps/rl-2/machines", body).expect(t, 200, nil)
	h.do("GET", "/v1/apps/rl-1/machines", nil).expect(t, 200, nil)
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
	h.createApp("rlm")
	a := h.createMachine("rlm", map[string]any{"skip_launch": true})
	b := h.createMachine("rlm", map[string]any{"skip_launch": true})
	got := statuses(h, 11, "GET", "/v1/apps/rlm/machines/"+a.ID, nil)
	if got[9] != 200 || got[10] != 429 {
		t.Errorf("get machine: %v, want a burst of 10", got)
	}
	h.do("GET", "/v1/apps/rlm/machines/"+b.ID, nil).expect(t, 200, nil)
	clock.Advance(200 * time.Millisecond) // 5/s: one token
	h.do("GET", "/v1/apps/rlm/machines/"+a.ID, nil).expect(t, 200, nil)

	// Machine-scoped actions count per machine: cordon a three times, then b still can.
	if got := statuses(h, 4, "POST", "/v1/apps/rlm/machines/"+a.ID+"/cordon", nil); fmt.Sprint(got) != "[200 200 200 429]" {
		t.Errorf("cordon a: %v", got)
	}
	h.do("POST", "/v1/apps/rlm/machines/"+b.ID+"/cordon", nil).expect(t, 200, nil)
}

func TestRateLimitPerOrg(t *testing.T) {
	h, clock := limitedHarness(t)
	for i := range 3 {
		h.createApp(fmt.Sprintf("org-app-%d", i))
	}
	h.do("POST", "/v1/apps", map[string]any{"name": "org-app-3", "org_slug": orgA}).expectError(t, 429, "rate limited")
	h.as(tokenB).createApp("other-org-app")
	if got := statuses(h, 4, "GET", "/v1/apps?org_slug="+orgA, nil); fmt.Sprint(got) != "[200 200 200 429]" {
		t.Errorf("list apps: %v", got)
	}

	// App deletions: 100 per minute per org.
	for i := range 101 {
		clock.Advance(time.Second)
		h.createApp(fmt.Sprintf("del-%d", i))
	}
	for i := range 100 {
		h.do("DELETE", fmt.Sprintf("/v1/apps/del-%d", i), nil).expect(t, http.StatusAccepted, nil)
	}
	r := h.do("DELETE", "/v1/apps/del-100", nil)
	r.expectError(t, 429, "rate limited")
	ra, _ := strconv.Atoi(r.header.Get("Retry-After"))
	if ra < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	clock.Advance(time.Duration(ra) * time.Second)
	h.do("DELETE", "/v1/apps/del-100", nil).expect(t, http.StatusAccepted, nil)
}

func TestRateLimitsCanBeDisabled(t *testing.T) {
	h := newHarness(t) // DisableRateLimits is the test default
	h.createApp("free")
	for _, s := range statuses(h, 20, "GET", "/v1/apps/free", nil) {
		if s != 200 {
			t.Fatalf("limited although disabled: %d", s)
		}
	}
}
