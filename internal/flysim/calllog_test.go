package flysim

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

func TestEveryResponseHasAUniqueRequestID(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("rid")
	seen := map[string]bool{}
	for _, r := range []flysimtest.Response{
		h.Do("GET", "/v1/apps/rid", nil),
		h.Do("GET", "/v1/apps/rid", nil),
		h.Do("GET", "/v1/apps/none", nil),
		h.As("").Do("GET", "/v1/apps/rid", nil),
		h.Do("GET", "/v1/nowhere", nil),
	} {
		id := r.Header.Get("fly-request-id")
		if id == "" || seen[id] {
			t.Errorf("status %d: fly-request-id %q (seen %v)", r.Status, id, seen)
		}
		seen[id] = true
	}
}

func TestUnknownRoutesArePlainText404(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("route")
	for _, p := range []struct{ method, path string }{
		{"GET", "/v1/nowhere"},
		{"GET", "/v2/apps/route"},
		{"POST", "/v1/apps/route/machines/abc/exec"},
		{"GET", "/v1/apps/route/volumes"},
		{"PUT", "/v1/apps/route"},
	} {
		r := h.Do(p.method, p.path, nil)
		if r.Status != 404 || string(r.Body) != "404 page not found\n" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s %s: %d %q %q", p.method, p.path, r.Status, r.Body, r.Header.Get("Content-Type"))
		}
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("auth")
	for _, header := range []string{
		"Bearer " + tokenA,
		"FlyV1 " + tokenA,
		"bearer " + tokenA,
		"Bearer FlyV1 " + tokenA,
		"FlyV1 fm2_unknown," + tokenA,
		"FlyV1 fm2_unknown, FlyV1 " + tokenA,
	} {
		if r := h.As("").Do("GET", "/v1/apps/auth", nil, "Authorization", header); r.Status != 200 {
			t.Errorf("Authorization %q: %d %s", strings.ReplaceAll(header, tokenA, "<token>"), r.Status, r.Body)
		}
	}
	for _, header := range []string{"", "Bearer", "Bearer nope", "Basic " + tokenA + "x", tokenB + "x"} {
		r := h.As("").Do("GET", "/v1/apps/auth", nil, "Authorization", header)
		r.ExpectError(t, http.StatusUnauthorized, "")
		if strings.Contains(string(r.Body), "nope") || strings.Contains(string(r.Body), tokenA) {
			t.Errorf("401 body repeats the token: %s", r.Body)
		}
	}
	// A token for org B reads as another org: 403 on the app, 401 never.
	h.As(tokenB).Do("GET", "/v1/apps/auth", nil).ExpectError(t, http.StatusForbidden, "")
}

func TestCallLog(t *testing.T) {
	clock := flysimtest.NewClock()
	h := newHarness(t, func(o *Options) { o.Now = clock.Now })
	h.CreateApp("logged")
	m := h.CreateMachine("logged", map[string]any{"skip_launch": true})
	h.Do("POST", "/v1/apps/logged/machines/"+m.ID+"/start", nil).Expect(t, 200, nil)
	h.Do("GET", "/v1/apps/logged/machines/"+m.ID, nil).Expect(t, 200, nil)
	h.As("").Do("GET", "/v1/apps/logged", nil).Expect(t, 401, nil)

	calls := h.srv.Calls()
	caller := CallerOf(0, orgA)
	want := []Call{
		{Action: actCreateApp, Method: "POST", Path: "/v1/apps", App: "logged", Org: orgA, Caller: caller, Status: 201},
		{Action: actCreateMachine, Method: "POST", Path: "/v1/apps/logged/machines", App: "logged", Machine: m.ID, Org: orgA, Caller: caller, Status: 200},
		{Action: actStartMachine, Method: "POST", Path: "/v1/apps/logged/machines/" + m.ID + "/start", App: "logged", Machine: m.ID, Org: orgA, Caller: caller, Status: 200},
		{Action: actGetMachine, Method: "GET", Path: "/v1/apps/logged/machines/" + m.ID, App: "logged", Machine: m.ID, Org: orgA, Caller: caller, Status: 200},
		{Action: actGetApp, Method: "GET", Path: "/v1/apps/logged", App: "logged", Status: 401},
	}
	if len(calls) != len(want) {
		t.Fatalf("%d calls logged, want %d: %+v", len(calls), len(want), calls)
	}
	for i, c := range calls {
		if !c.Time.Equal(clock.Now()) {
			t.Errorf("call %d time %v", i, c.Time)
		}
		c.Time = want[i].Time
		if c != want[i] {
			t.Errorf("call %d = %+v\nwant %+v", i, c, want[i])
		}
	}
	if got := h.srv.CallsFor("", m.ID); len(got) != 3 {
		t.Errorf("CallsFor(machine) = %d calls, want 3", len(got))
	}
	if got := h.srv.CallsFor(actStartMachine, ""); len(got) != 1 {
		t.Errorf("CallsFor(start_machine) = %d calls", len(got))
	}
	if got := h.srv.CallsFor("", "logged"); len(got) != 5 {
		t.Errorf("CallsFor(app) = %d calls, want 5", len(got))
	}
	h.srv.ResetCalls()
	if n := len(h.srv.Calls()); n != 0 {
		t.Errorf("%d calls after ResetCalls", n)
	}
}

// TestCallLogTellsCallersApart: two tokens of one org (two replicas of a client) are told apart in
// the call log and at the hook by an identity that is not the token.
func TestCallLogTellsCallersApart(t *testing.T) {
	const second = "tok-a2"
	var (
		mu     sync.Mutex
		points []CallPoint
	)
	h := newHarness(t, func(o *Options) {
		o.Orgs = append(o.Orgs, OrgToken{Token: second, Org: orgA})
		o.CallHook = func(p CallPoint) {
			mu.Lock()
			defer mu.Unlock()
			points = append(points, p)
		}
	})
	h.CreateApp("shared")
	h.As(second).Do("GET", "/v1/apps/shared", nil).Expect(t, http.StatusOK, nil)

	first, other := CallerOf(0, orgA), CallerOf(2, orgA)
	if first == other {
		t.Fatalf("CallerOf gives both tokens %q", first)
	}
	calls := h.srv.Calls()
	if len(calls) != 2 || calls[0].Caller != first || calls[1].Caller != other {
		t.Fatalf("callers %+v, want %s then %s", calls, first, other)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(points) != 4 || points[0].Caller != first || points[3].Caller != other {
		t.Errorf("hook points %+v, want %s then %s", points, first, other)
	}
	for _, c := range calls {
		if strings.Contains(c.Caller, tokenA) || strings.Contains(c.Caller, second) {
			t.Errorf("caller %q reveals the token", c.Caller)
		}
	}
}
