package flysim

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

// withProfile sets the harness's profile.
func withProfile(p Profile) func(*Options) { return func(o *Options) { o.Profile = p } }

func TestProfileByNameAndValidate(t *testing.T) {
	for _, name := range []string{"fast", "realistic", " Realistic ", ""} {
		p, err := ProfileByName(name)
		if err != nil {
			t.Errorf("ProfileByName(%q): %v", name, err)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("profile %q: %v", name, err)
		}
	}
	if _, err := ProfileByName("slow"); err == nil || !strings.Contains(err.Error(), "fast, realistic") {
		t.Errorf("unknown name: %v", err)
	}
	if p := Fast(); p.Name != "fast" || p.TimeScale != 0 || p.ListLag != (Dist{}) || p.UnclearFailures != nil || p.TypedConfig {
		t.Errorf("Fast() = %+v, want the zero profile", p)
	}

	tests := []struct {
		name   string
		tweak  func(*Profile)
		errHas string
	}{
		{"negative time scale", func(p *Profile) { p.TimeScale = -1 }, "TimeScale"},
		{"rate above 1", func(p *Profile) { p.ShortPages = 1.5 }, "ShortPages"},
		{"negative rate", func(p *Profile) { p.SlowTransitions = -0.1 }, "SlowTransitions"},
		{"unknown action", func(p *Profile) { p.UnclearFailures = map[string]float64{"launch": 0.1} }, `"launch"`},
		{"action rate", func(p *Profile) { p.UnclearFailures = map[string]float64{actCreateMachine: 2} }, "create_machine"},
		{"min above max", func(p *Profile) { p.ListLag = Dist{Min: 2 * time.Second, Max: time.Second} }, "ListLag"},
		{"negative min", func(p *Profile) { p.Transitions.Stop.Typical = Dist{Min: -1} }, "Transitions.Stop"},
		{"slow row", func(p *Profile) { p.Transitions.Start.Slow = Dist{Min: 2, Max: 1} }, "Transitions.Start.Slow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Realistic()
			tt.tweak(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.errHas)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted an invalid profile")
		}
	}()
	New(Options{Orgs: []OrgToken{{Token: tokenA, Org: orgA}}, Profile: Profile{ShortPages: 2}})
}

func TestProfileDrawsScaleAndStayInRange(t *testing.T) {
	rng := seededRNG(1, "draws")
	p := Profile{TimeScale: 0.1}
	d := Dist{Min: time.Second, Max: 3 * time.Second}
	for range 200 {
		if got := p.draw(rng, d); got < 100*time.Millisecond || got > 300*time.Millisecond {
			t.Fatalf("scaled draw %v outside [100ms, 300ms]", got)
		}
	}
	if got := p.draw(rng, Fixed(time.Second)); got != 100*time.Millisecond {
		t.Errorf("fixed draw %v", got)
	}
	if got := p.draw(rng, Dist{}); got != 0 {
		t.Errorf("zero Dist drew %v", got)
	}
	slow := Profile{SlowTransitions: 1}
	if got, ok := slow.drawTransition(rng, Transition{Typical: Fixed(time.Second), Slow: Fixed(time.Minute)}); !ok || got != time.Minute {
		t.Errorf("slow draw %v %v", got, ok)
	}
	if _, ok := slow.drawTransition(rng, Transition{}); ok {
		t.Error("a zero row drew a duration")
	}
}

// listedIDs lists app's machines (with extra query parameters) and returns id → state.
func listedIDs(t *testing.T, h *harness, app, query string) map[string]string {
	t.Helper()
	var ms []flysimtest.Machine
	h.Do("GET", "/v1/apps/"+app+"/machines"+query, nil).Expect(t, http.StatusOK, &ms)
	out := map[string]string{}
	for _, m := range ms {
		out[m.ID] = m.State
	}
	return out
}

func TestProfileListLag(t *testing.T) {
	clock := flysimtest.NewClock()
	const lag = 2 * time.Second
	h := newHarness(t, func(o *Options) { o.Now = clock.Now }, withProfile(Profile{ListLag: Fixed(lag)}))
	h.CreateApp("lagged")
	m := h.StartedMachine("lagged")

	// The create: by ID at once, in the list only after the lag.
	if got := listedIDs(t, h, "lagged", ""); len(got) != 0 {
		t.Errorf("listed before the lag: %v", got)
	}
	h.GetMachine("lagged", m.ID)
	clock.Advance(lag)
	if got := listedIDs(t, h, "lagged", ""); got[m.ID] != StateStarted {
		t.Errorf("after the lag: %v", got)
	}

	// The destroy: GET says destroyed, the list still shows the machine as it was.
	h.Do("DELETE", "/v1/apps/lagged/machines/"+m.ID+"?force=true", nil).Expect(t, http.StatusOK, nil)
	h.WaitSettled("lagged", m.ID, StateDestroyed)
	if got := h.GetMachine("lagged", m.ID).State; got != StateDestroyed {
		t.Errorf("GET after destroy: %s", got)
	}
	if got := listedIDs(t, h, "lagged", ""); got[m.ID] != StateDestroying {
		t.Errorf("list right after the destroy: %v, want it listed as destroying", got)
	}
	if got := listedIDs(t, h, "lagged", "?state=destroying"); got[m.ID] != StateDestroying {
		t.Errorf("state filter reads the listed state: %v", got)
	}
	clock.Advance(lag)
	if got := listedIDs(t, h, "lagged", ""); len(got) != 0 {
		t.Errorf("list after the destroy lag: %v", got)
	}
	if got := listedIDs(t, h, "lagged", "?include_deleted=true"); got[m.ID] != StateDestroyed {
		t.Errorf("include_deleted after the lag: %v", got)
	}
}

// listLagPattern creates four machines under a drawn list lag and samples the list every 250 ms of
// the fake clock: one string of visible-machine counts.
func listLagPattern(t *testing.T, seed int64) string {
	clock := flysimtest.NewClock()
	h := newHarness(t, func(o *Options) { o.Now = clock.Now; o.Seed = seed },
		withProfile(Profile{ListLag: Dist{Min: 0, Max: 2 * time.Second}}))
	h.CreateApp("dice")
	for range 4 {
		h.CreateMachine("dice", map[string]any{"skip_launch": true})
	}
	var out strings.Builder
	for range 9 {
		fmt.Fprint(&out, len(listedIDs(t, h, "dice", "")))
		clock.Advance(250 * time.Millisecond)
	}
	return out.String()
}

func TestProfileListLagReplaysUnderASeed(t *testing.T) {
	a, b := listLagPattern(t, 3), listLagPattern(t, 3)
	if a != b {
		t.Errorf("same seed, different list lags: %s vs %s", a, b)
	}
	if !strings.HasSuffix(a, "4") {
		t.Errorf("every machine is listed after the maximum lag: %s", a)
	}
	// Some seed among a few gives a different pattern: the lag is drawn, not fixed.
	differs := false
	for seed := int64(4); seed < 10 && !differs; seed++ {
		differs = listLagPattern(t, seed) != a
	}
	if !differs {
		t.Errorf("six seeds gave the same list lag pattern %s", a)
	}
}

// collectPages follows a list's cursors, returning every page's length and the items in order.
func collectPages(t *testing.T, fetch func(cursor string) (items []string, next string)) (lengths []int, items []string) {
	t.Helper()
	seen := map[string]bool{}
	cursor := ""
	for range 200 {
		page, next := fetch(cursor)
		lengths = append(lengths, len(page))
		items = append(items, page...)
		if next == "" {
			return lengths, items
		}
		if seen[next] {
			t.Fatalf("cursor %q handed out twice", next)
		}
		seen[next] = true
		cursor = next
	}
	t.Fatal("more than 200 pages")
	return nil, nil
}

func TestProfileShortPages(t *testing.T) {
	const limit = 3
	run := func(t *testing.T, seed int64) (machinePages, appPages []int) {
		h := newHarness(t, func(o *Options) { o.Seed = seed }, withProfile(Profile{ShortPages: 0.5}))
		h.CreateApp("paged")
		var want []string
		for range 10 {
			want = append(want, h.CreateMachine("paged", map[string]any{"skip_launch": true}).ID)
		}
		lengths, got := collectPages(t, func(cursor string) ([]string, string) {
			var ms []flysimtest.Machine
			r := h.Do("GET", fmt.Sprintf("/v1/apps/paged/machines?limit=%d&cursor=%s", limit, cursor), nil).Expect(t, 200, &ms)
			ids := make([]string, len(ms))
			for i, m := range ms {
				ids[i] = m.ID
			}
			return ids, r.Header.Get("fly-next-cursor")
		})
		if !slices.Equal(got, want) {
			t.Errorf("machines over all pages %v, want %v", got, want)
		}
		for i := range 7 {
			h.CreateApp(fmt.Sprintf("paged-%d", i))
		}
		appLengths, apps := collectPages(t, func(cursor string) ([]string, string) {
			var page struct {
				TotalApps  int `json:"total_apps"`
				Apps       []struct{ Name string }
				NextCursor string `json:"next_cursor"`
			}
			h.Do("GET", fmt.Sprintf("/v1/apps?org_slug=%s&limit=%d&cursor=%s", orgA, limit, cursor), nil).Expect(t, 200, &page)
			if page.TotalApps != 8 {
				t.Errorf("total_apps %d", page.TotalApps)
			}
			var names []string
			for _, a := range page.Apps {
				names = append(names, a.Name)
			}
			return names, page.NextCursor
		})
		if len(apps) != 8 || !slices.IsSorted(apps) {
			t.Errorf("apps over all pages: %v", apps)
		}
		return lengths, appLengths
	}
	m1, a1 := run(t, 12)
	m2, a2 := run(t, 12)
	if !slices.Equal(m1, m2) || !slices.Equal(a1, a2) {
		t.Errorf("same seed, different pages: %v/%v vs %v/%v", m1, a1, m2, a2)
	}
	short := func(lengths []int) bool {
		for _, n := range lengths[:len(lengths)-1] {
			if n < limit {
				return true
			}
		}
		return false
	}
	if !short(m1) || !short(a1) {
		t.Errorf("no short page before the last under ShortPages 0.5: machines %v, apps %v", m1, a1)
	}
	if !slices.Contains(append(m1, a1...), 0) {
		t.Logf("no empty page with this seed (allowed): %v %v", m1, a1)
	}
}

func TestProfileUnclearFailures(t *testing.T) {
	body := map[string]any{"config": flysimtest.BaseConfig(), "skip_launch": true}
	tests := []struct {
		name     string
		drop     float64
		fault    *Fault
		app      string
		wantCode int // 0: the connection is dropped
		wantNew  int // machines created
		unclear  bool
	}{
		{"408 after commit", 0, nil, "unclear", http.StatusRequestTimeout, 1, true},
		{"dropped after commit", 1, nil, "unclear", 0, 1, true},
		{"a refused call stays refused", 0, nil, "missing", http.StatusNotFound, 0, false},
		{"a configured fault wins", 0, &Fault{Status: http.StatusBadGateway}, "unclear", http.StatusBadGateway, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withProfile(Profile{UnclearFailures: map[string]float64{actCreateMachine: 1}, UnclearDrop: tt.drop}))
			h.CreateApp("unclear")
			if tt.fault != nil {
				h.srv.SetFault(actCreateMachine, *tt.fault)
			}
			status, err := h.Try(context.Background(), "POST", "/v1/apps/"+tt.app+"/machines", `{"config":{"image":"nginx"},"skip_launch":true}`)
			switch {
			case tt.wantCode == 0 && err == nil:
				t.Errorf("status %d, want a dropped connection", status)
			case tt.wantCode != 0 && (err != nil || status != tt.wantCode):
				t.Errorf("status %d (%v), want %d", status, err, tt.wantCode)
			}
			if got := len(h.srv.Machines("unclear")); got != tt.wantNew {
				t.Errorf("%d machines, want %d", got, tt.wantNew)
			}
			calls := h.srv.CallsFor(actCreateMachine, "")
			if len(calls) != 1 || calls[0].Unclear != tt.unclear {
				t.Errorf("call log %+v, want Unclear %v", calls, tt.unclear)
			}
			// Other actions are untouched.
			h.Do("GET", "/v1/apps/unclear/machines", nil).Expect(t, http.StatusOK, nil)
		})
	}

	pattern := func(seed int64) string {
		h := newHarness(t, func(o *Options) { o.Seed = seed },
			withProfile(Profile{UnclearFailures: map[string]float64{actCreateMachine: 0.3}}))
		h.CreateApp("dice")
		var out strings.Builder
		for range 30 {
			if h.Do("POST", "/v1/apps/dice/machines", body).Status == http.StatusRequestTimeout {
				out.WriteByte('x')
			} else {
				out.WriteByte('.')
			}
		}
		if n := len(h.srv.Machines("dice")); n != 30 {
			t.Errorf("seed %d: %d machines after 30 committed creates", seed, n)
		}
		return out.String()
	}
	if a, b := pattern(5), pattern(5); a != b || !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Errorf("rate 0.3 under seed 5: %s then %s", a, b)
	}
}

func TestCallHook(t *testing.T) {
	var (
		mu     sync.Mutex
		points []CallPoint
		seen   []int // machines of app "hooked" at each point, read from inside the hook
		srv    *Server
	)
	h := newHarness(t, func(o *Options) {
		o.CallHook = func(p CallPoint) {
			n := len(srv.Machines("hooked")) // the hook may use the Server: no lock is held
			mu.Lock()
			defer mu.Unlock()
			points = append(points, p)
			seen = append(seen, n)
		}
	})
	srv = h.srv
	h.CreateApp("hooked")
	m := h.CreateMachine("hooked", map[string]any{"skip_launch": true})
	h.As("").Do("GET", "/v1/apps/hooked", nil).Expect(t, http.StatusUnauthorized, nil) // never reaches its handler
	h.Do("GET", "/v1/apps/hooked/machines/nope", nil).Expect(t, http.StatusNotFound, nil)

	mu.Lock()
	defer mu.Unlock()
	want := []CallPoint{
		{Seq: 1, Action: actCreateApp, Method: "POST", Path: "/v1/apps", Org: orgA, Caller: CallerOf(0, orgA)},
		{Seq: 1, Action: actCreateApp, Method: "POST", Path: "/v1/apps", Org: orgA, Caller: CallerOf(0, orgA), App: "hooked", Committed: true, Status: 201},
		{Seq: 2, Action: actCreateMachine, Method: "POST", Path: "/v1/apps/hooked/machines", Org: orgA, Caller: CallerOf(0, orgA), App: "hooked"},
		{Seq: 2, Action: actCreateMachine, Method: "POST", Path: "/v1/apps/hooked/machines", Org: orgA, Caller: CallerOf(0, orgA), App: "hooked", Machine: m.ID, Committed: true, Status: 200},
		{Seq: 4, Action: actGetMachine, Method: "GET", Path: "/v1/apps/hooked/machines/nope", Org: orgA, Caller: CallerOf(0, orgA), App: "hooked", Machine: "nope"},
		{Seq: 4, Action: actGetMachine, Method: "GET", Path: "/v1/apps/hooked/machines/nope", Org: orgA, Caller: CallerOf(0, orgA), App: "hooked", Machine: "nope", Committed: true, Status: 404},
	}
	if !slices.Equal(points, want) {
		t.Errorf("points:\n%+v\nwant\n%+v", points, want)
	}
	// Before the create the machine does not exist; after it, it does.
	if !slices.Equal(seen[2:4], []int{0, 1}) {
		t.Errorf("machines seen at the create's points: %v", seen[2:4])
	}
}

func TestCallHookBlocksTheAnswer(t *testing.T) {
	release := make(chan struct{})
	reached := make(chan CallPoint, 1)
	h := newHarness(t, func(o *Options) {
		o.CallHook = func(p CallPoint) {
			if p.Action == actCreateMachine && p.Committed {
				reached <- p
				<-release
			}
		}
	})
	h.CreateApp("blocked")
	answered := make(chan int, 1)
	go func() {
		status, _ := h.Try(context.Background(), "POST", "/v1/apps/blocked/machines", `{"config":{"image":"nginx"},"skip_launch":true}`)
		answered <- status
	}()
	p := <-reached
	// The change is made, the answer is not written while the hook blocks.
	if ms := h.srv.Machines("blocked"); len(ms) != 1 || ms[0].ID != p.Machine {
		t.Errorf("at the committed point: %+v, hook saw %q", ms, p.Machine)
	}
	select {
	case s := <-answered:
		t.Fatalf("answered %d while the hook blocked", s)
	default:
	}
	close(release)
	if s := <-answered; s != http.StatusOK {
		t.Errorf("status %d after the hook returned", s)
	}
}

func TestProfileDestroyedReadableThen404(t *testing.T) {
	clock := flysimtest.NewClock()
	const window = 30 * time.Second
	h := newHarness(t, func(o *Options) { o.Now = clock.Now }, withProfile(Profile{DestroyedReadable: Fixed(window)}))
	h.CreateApp("gone")
	m := h.CreateMachine("gone", map[string]any{"skip_launch": true})
	h.Do("DELETE", "/v1/apps/gone/machines/"+m.ID, nil).Expect(t, http.StatusOK, nil)
	h.WaitSettled("gone", m.ID, StateDestroyed)

	path := "/v1/apps/gone/machines/" + m.ID
	if got := h.GetMachine("gone", m.ID).State; got != StateDestroyed {
		t.Errorf("within the window: %s", got)
	}
	h.Do("GET", path+"/wait?state=destroyed&timeout=1", nil).Expect(t, http.StatusOK, nil)
	clock.Advance(window)
	for _, call := range []struct{ method, suffix string }{{"GET", ""}, {"GET", "/wait?state=destroyed&timeout=1"}, {"GET", "/lease"}, {"DELETE", "?force=true"}} {
		h.Do(call.method, path+call.suffix, nil).ExpectError(t, http.StatusNotFound, msgMachineNotFound)
	}
	// Inspection still knows it.
	if info, ok := h.srv.Machine("gone", m.ID); !ok || info.State != StateDestroyed {
		t.Errorf("Machine() after the window: %+v %v", info, ok)
	}
}

func TestProfileAppCreateWindow(t *testing.T) {
	clock := flysimtest.NewClock()
	const window = 2 * time.Second
	h := newHarness(t, func(o *Options) { o.Now = clock.Now }, withProfile(Profile{AppCreateLag: Fixed(window)}))
	h.Do("POST", "/v1/apps", map[string]any{"app_name": "async", "org_slug": orgA}).Expect(t, http.StatusCreated, nil)

	for _, call := range []struct{ method, path string }{
		{"GET", "/v1/apps/async"},
		{"GET", "/v1/apps/async/machines"},
		{"POST", "/v1/apps/async/machines"},
		{"GET", "/v1/apps/async/secrets"},
		{"GET", "/v1/apps/async/ip_assignments"},
		{"DELETE", "/v1/apps/async"},
	} {
		var body any
		if call.method == "POST" {
			body = map[string]any{"config": flysimtest.BaseConfig()}
		}
		h.Do(call.method, call.path, body).ExpectError(t, http.StatusNotFound, msgAppNotFound)
	}
	// The name is taken meanwhile, and the list does not show the app yet.
	h.Do("POST", "/v1/apps", map[string]any{"app_name": "async", "org_slug": orgA}).ExpectError(t, http.StatusUnprocessableEntity, "Validation failed: Name has already been taken")
	var list struct {
		TotalApps int `json:"total_apps"`
	}
	h.Do("GET", "/v1/apps?org_slug="+orgA, nil).Expect(t, http.StatusOK, &list)
	if list.TotalApps != 0 {
		t.Errorf("listed during the window: %d apps", list.TotalApps)
	}
	if _, ok := h.srv.App("async"); !ok {
		t.Error("inspection does not see the app")
	}

	clock.Advance(window)
	h.Do("GET", "/v1/apps/async", nil).Expect(t, http.StatusOK, nil)
	h.Do("GET", "/v1/apps?org_slug="+orgA, nil).Expect(t, http.StatusOK, &list)
	if list.TotalApps != 1 {
		t.Errorf("listed after the window: %d apps", list.TotalApps)
	}
}

func TestProfileAppCreateWaitTrue(t *testing.T) {
	tests := []struct {
		name     string
		residual time.Duration
		query    string
		// visible right after the answer, and after the residual passed on the fake clock
		visibleAtAnswer bool
	}{
		{"wait=true with a residual is no guarantee", 30 * time.Millisecond, "?wait=true", false},
		{"wait=true without a residual", 0, "?wait=true", true},
		{"no wait: the whole window remains", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := flysimtest.NewClock()
			h := newHarness(t, func(o *Options) { o.Now = clock.Now },
				withProfile(Profile{AppCreateLag: Fixed(80 * time.Millisecond), AppCreateWaitResidual: Fixed(tt.residual)}))
			h.Do("POST", "/v1/apps"+tt.query, map[string]any{"app_name": "waited", "org_slug": orgA}).Expect(t, http.StatusCreated, nil)
			visible := h.Do("GET", "/v1/apps/waited", nil).Status == http.StatusOK
			if visible != tt.visibleAtAnswer {
				t.Errorf("visible right after the answer: %v, want %v", visible, tt.visibleAtAnswer)
			}
			clock.Advance(80 * time.Millisecond)
			h.Do("GET", "/v1/apps/waited", nil).Expect(t, http.StatusOK, nil)
		})
	}
	h := newHarness(t)
	h.Do("POST", "/v1/apps?wait=maybe", map[string]any{"app_name": "x", "org_slug": orgA}).ExpectError(t, http.StatusBadRequest, "")
}

func TestProfileAppDeleteWindow(t *testing.T) {
	h := newHarness(t, withProfile(Profile{AppDeleteLag: Fixed(time.Hour)}))
	h.CreateApp("leaving")
	m := h.CreateMachine("leaving", map[string]any{"skip_launch": true})
	h.Do("DELETE", "/v1/apps/leaving", nil).Expect(t, http.StatusAccepted, nil)
	h.Do("DELETE", "/v1/apps/leaving", nil).Expect(t, http.StatusAccepted, nil) // again: still on its way
	h.Do("GET", "/v1/apps/leaving", nil).Expect(t, http.StatusOK, nil)
	if got := h.GetMachine("leaving", m.ID).State; got != StateCreated {
		t.Errorf("machine during the delete: %s", got)
	}
	h.Do("POST", "/v1/apps", map[string]any{"app_name": "leaving", "org_slug": orgA}).ExpectError(t, http.StatusUnprocessableEntity, "")

	// With a short window the app, its machines and its name go.
	h = newHarness(t, withProfile(Profile{AppDeleteLag: Fixed(5 * time.Millisecond)}))
	h.CreateApp("leaving")
	m = h.CreateMachine("leaving", map[string]any{"skip_launch": true})
	h.Do("DELETE", "/v1/apps/leaving", nil).Expect(t, http.StatusAccepted, nil)
	flysimtest.Eventually(t, "the delete to complete", func() bool {
		return h.Do("GET", "/v1/apps/leaving", nil).Status == http.StatusNotFound
	})
	if info, ok := h.srv.App("leaving"); !ok || !info.Deleted {
		t.Errorf("App() after the delete: %+v", info)
	}
	if _, ok := h.srv.Machine("leaving", m.ID); ok {
		t.Error("the machine outlived its app")
	}
	h.CreateApp("leaving") // the name is free again
}

func TestProfileTransitionDrawsReplayPerMachine(t *testing.T) {
	row := Transition{Typical: Dist{Min: time.Second, Max: 3 * time.Second}}
	draws := func(seed int64) (first, second []time.Duration) {
		h := newHarness(t, func(o *Options) { o.Seed = seed }, withProfile(Profile{TimeScale: 0.5, Transitions: Transitions{Stop: row}}))
		h.CreateApp("dice")
		a := h.CreateMachine("dice", map[string]any{"skip_launch": true})
		b := h.CreateMachine("dice", map[string]any{"skip_launch": true})
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		for range 5 {
			first = append(first, h.srv.transitionDelay(h.srv.apps["dice"].machines[a.ID], row, time.Hour))
			second = append(second, h.srv.transitionDelay(h.srv.apps["dice"].machines[b.ID], row, time.Hour))
		}
		return first, second
	}
	a1, b1 := draws(9)
	a2, b2 := draws(9)
	if !slices.Equal(a1, a2) || !slices.Equal(b1, b2) {
		t.Errorf("same seed, different draws: %v %v vs %v %v", a1, b1, a2, b2)
	}
	if slices.Equal(a1, b1) {
		t.Errorf("two machines drew the same delays: %v", a1)
	}
	for _, d := range append(a1, b1...) {
		if d < 500*time.Millisecond || d > 1500*time.Millisecond {
			t.Errorf("draw %v outside the scaled row [0.5s, 1.5s]", d)
		}
	}
	h := newHarness(t)
	h.CreateApp("fixed")
	m := h.CreateMachine("fixed", map[string]any{"skip_launch": true})
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	if got := h.srv.transitionDelay(h.srv.apps["fixed"].machines[m.ID], Transition{}, 7*time.Millisecond); got != 7*time.Millisecond {
		t.Errorf("a zero row gave %v, want the fixed delay", got)
	}
}

// A resume takes the Resume row, a cold start the Start row.
func TestProfileResumeAndColdStartRows(t *testing.T) {
	h := newHarness(t, withProfile(Profile{Transitions: Transitions{
		Start:  Transition{Typical: Fixed(time.Millisecond)},
		Resume: Transition{Typical: Fixed(time.Hour)},
	}}))
	h.CreateApp("rows")
	resumed, cold := h.StartedMachine("rows"), h.StartedMachine("rows")
	h.Do("POST", "/v1/apps/rows/machines/"+resumed.ID+"/suspend", nil).Expect(t, http.StatusOK, nil)
	h.WaitSettled("rows", resumed.ID, StateSuspended)
	h.Stop("rows", cold.ID)

	h.Do("POST", "/v1/apps/rows/machines/"+resumed.ID+"/start", nil).Expect(t, http.StatusOK, nil)
	h.Do("POST", "/v1/apps/rows/machines/"+cold.ID+"/start", nil).Expect(t, http.StatusOK, nil)
	h.WaitSettled("rows", cold.ID, StateStarted)
	if m, _, _ := h.srv.SnapshotMachine("rows", resumed.ID); m.State != StateStarting || !m.Pending {
		t.Errorf("the resume (an hour) is %s, pending %v, after the cold start (a millisecond) finished", m.State, m.Pending)
	}
}

// The realistic table, shrunk by TimeScale, runs every transition in order, asynchronously.
func TestRealisticProfileLifecycle(t *testing.T) {
	p := Realistic()
	p.TimeScale = 0.002 // the table's seconds become milliseconds
	p.UnclearFailures = nil
	var mu sync.Mutex
	var states []string
	h := newHarness(t, withProfile(p))
	h.srv.Subscribe(func(e MachineEvent) {
		mu.Lock()
		defer mu.Unlock()
		states = append(states, e.NewState)
	})
	h.CreateApp("real")
	h.WaitApp("real")
	m := h.CreateMachine("real", nil)
	if m.State != StateCreated {
		t.Errorf("create answered %s, want created (the launch is asynchronous)", m.State)
	}
	base := "/v1/apps/real/machines/" + m.ID
	h.WaitFor("real", m.ID, StateStarted)
	h.Stop("real", m.ID)
	h.Do("POST", base+"/start", nil).Expect(t, http.StatusOK, nil)
	h.WaitSettled("real", m.ID, StateStarted)
	h.Do("POST", base+"/suspend", nil).Expect(t, http.StatusOK, nil)
	h.WaitSettled("real", m.ID, StateSuspended)
	h.Do("POST", base+"/start", nil).Expect(t, http.StatusOK, nil)
	h.WaitSettled("real", m.ID, StateStarted)
	h.Do("POST", base, map[string]any{"config": flysimtest.BaseConfig()}).Expect(t, http.StatusOK, nil)
	h.WaitSettled("real", m.ID, StateStarted)
	h.Do("DELETE", base+"?force=true", nil).Expect(t, http.StatusOK, nil)
	h.WaitSettled("real", m.ID, StateDestroyed)

	want := []string{
		StateCreated, StateStarting, StateStarted, // create
		StateStopping, StateStopped, StateStarting, StateStarted, // stop, start
		StateSuspending, StateSuspended, StateStarting, StateStarted, // suspend, resume
		StateReplacing, StateStarting, StateStarted, // update
		StateDestroying, StateDestroyed,
	}
	flysimtest.Eventually(t, "every event delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) >= len(want)
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(states, want) {
		t.Errorf("states %v\nwant   %v", states, want)
	}
}

// secretNames lists the app's secrets as reads see them (query: extra parameters).
func secretNames(t *testing.T, h *harness, app, query string) []string {
	t.Helper()
	var list wireSecrets
	h.Do("GET", "/v1/apps/"+app+"/secrets"+query, nil).Expect(t, http.StatusOK, &list)
	var names []string
	for _, s := range list.Secrets {
		names = append(names, s.Name)
	}
	return names
}

func TestProfileSecretsLag(t *testing.T) {
	clock := flysimtest.NewClock()
	const lag = 2 * time.Second
	h := newHarness(t, func(o *Options) { o.Now = clock.Now }, withProfile(Profile{SecretsLag: Fixed(lag)}))
	h.CreateApp("sec")
	var set wireSecrets
	h.Do("POST", "/v1/apps/sec/secrets", map[string]any{"values": map[string]any{"A": "1"}}).Expect(t, http.StatusOK, &set)
	if set.Version != 1 {
		t.Fatalf("write answered version %d", set.Version)
	}

	reads := []struct {
		query string
		want  []string
	}{
		{"", nil},                     // not propagated yet
		{"?version=1", []string{"A"}}, // fly-go's spelling: at least the version written
		{"?min_version=1", []string{"A"}},
		{"?min_version=0", nil},
	}
	for _, r := range reads {
		if got := secretNames(t, h, "sec", r.query); !slices.Equal(got, r.want) {
			t.Errorf("read%s during the lag: %v, want %v", r.query, got, r.want)
		}
	}
	h.Do("GET", "/v1/apps/sec/secrets/A", nil).ExpectError(t, http.StatusNotFound, "secret not found")
	h.Do("GET", "/v1/apps/sec/secrets/A?min_version=1", nil).Expect(t, http.StatusOK, nil)
	h.Do("GET", "/v1/apps/sec/secrets?min_version=2", nil).ExpectError(t, http.StatusPreconditionFailed, "")

	// Booting machines: without min_secrets_version they get what reads see, with it at least that.
	boots := []struct {
		name    string
		min     any
		status  int
		version uint64
		secrets int
	}{
		{"no minimum: the propagated secrets", nil, http.StatusOK, 0, 0},
		{"min_secrets_version 1", 1, http.StatusOK, 1, 1},
		{"min_secrets_version 2 does not exist yet", 2, http.StatusPreconditionFailed, 0, 0},
	}
	for _, b := range boots {
		body := map[string]any{"config": flysimtest.BaseConfig(), "skip_launch": true}
		if b.min != nil {
			body["min_secrets_version"] = b.min
		}
		var m flysimtest.Machine
		r := h.Do("POST", "/v1/apps/sec/machines", body)
		if r.Status != b.status {
			t.Errorf("%s: create answered %d", b.name, r.Status)
			continue
		}
		if b.status != http.StatusOK {
			continue
		}
		r.Expect(t, http.StatusOK, &m)
		values, version, _ := h.srv.MachineSecrets("sec", m.ID)
		if version != b.version || len(values) != b.secrets {
			t.Errorf("%s: machine booted with %v at version %d", b.name, values, version)
		}
		// An update with the minimum moves the machine to the write.
		h.Do("POST", "/v1/apps/sec/machines/"+m.ID, map[string]any{"config": flysimtest.BaseConfig(), "min_secrets_version": 1}).Expect(t, http.StatusOK, nil)
		if _, version, _ := h.srv.MachineSecrets("sec", m.ID); version != 1 {
			t.Errorf("%s: after an update with min_secrets_version 1: version %d", b.name, version)
		}
	}

	clock.Advance(lag)
	if got := secretNames(t, h, "sec", ""); !slices.Equal(got, []string{"A"}) {
		t.Errorf("after the lag: %v", got)
	}
}

// Writes become visible in the order they were made, however the lags were drawn.
func TestProfileSecretsLagKeepsWriteOrder(t *testing.T) {
	clock := flysimtest.NewClock()
	h := newHarness(t, func(o *Options) { o.Now = clock.Now }, withProfile(Profile{SecretsLag: Dist{Max: 5 * time.Second}}))
	h.CreateApp("order")
	for i := 1; i <= 10; i++ {
		h.Do("POST", "/v1/apps/order/secrets", map[string]any{"values": map[string]any{"V": fmt.Sprint(i)}}).Expect(t, http.StatusOK, nil)
		clock.Advance(100 * time.Millisecond)
	}
	seen := 0
	for range 60 {
		var s wireSecret
		if r := h.Do("GET", "/v1/apps/order/secrets/V?show_secrets=true", nil); r.Status == http.StatusOK {
			r.Expect(t, http.StatusOK, &s)
			v, err := strconv.Atoi(*s.Value)
			if err != nil {
				t.Fatal(err)
			}
			if v < seen {
				t.Fatalf("read version %d after %d", v, seen)
			}
			seen = v
		}
		clock.Advance(100 * time.Millisecond)
	}
	if seen != 10 {
		t.Errorf("last read saw write %d, want 10", seen)
	}
}

// Whether Fly refuses a duplicate machine name is unconfirmed: the fast profile refuses it, the
// realistic one does not, so a client relying on names to avoid duplicates gets duplicates.
func TestProfileDuplicateMachineNames(t *testing.T) {
	tests := []struct {
		name     string
		profile  Profile
		status   int
		machines int
	}{
		{"fast refuses a duplicate name", Fast(), http.StatusUnprocessableEntity, 1},
		{"realistic accepts it", Profile{DuplicateMachineNames: true}, http.StatusOK, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withProfile(tt.profile))
			h.CreateApp("named")
			body := map[string]any{"name": "web", "config": flysimtest.BaseConfig(), "skip_launch": true}
			h.Do("POST", "/v1/apps/named/machines", body).Expect(t, http.StatusOK, nil)
			h.Do("POST", "/v1/apps/named/machines", body).Expect(t, tt.status, nil)
			ms := h.srv.Machines("named")
			if len(ms) != tt.machines {
				t.Fatalf("%d machines, want %d", len(ms), tt.machines)
			}
			for _, m := range ms {
				if m.Name != "web" {
					t.Errorf("machine %s named %q", m.ID, m.Name)
				}
			}
		})
	}
}

// update_machine and acquire_lease commit before their answer is lost too. A lost lease answer leaves
// the caller without the nonce of a lease it holds: its next acquire is refused until the lease expires.
func TestProfileUnclearUpdateAndLease(t *testing.T) {
	h := newHarness(t, withProfile(Profile{UnclearFailures: map[string]float64{actUpdateMachine: 1, actAcquireLease: 1}}))
	h.CreateApp("unclear")
	m := h.CreateMachine("unclear", map[string]any{"skip_launch": true})
	base := "/v1/apps/unclear/machines/" + m.ID

	h.Do("POST", base, map[string]any{"config": flysimtest.BaseConfig()}).ExpectError(t, http.StatusRequestTimeout, "")
	if info, _ := h.srv.Machine("unclear", m.ID); len(info.Versions) != 2 {
		t.Errorf("the update did not commit: versions %v", info.Versions)
	}
	h.Do("POST", base+"/lease?ttl=60", nil).ExpectError(t, http.StatusRequestTimeout, "")
	info, _ := h.srv.Machine("unclear", m.ID)
	if info.LeaseOwner == "" {
		t.Fatal("the lease was not taken")
	}
	var held struct {
		Message string `json:"message"`
	}
	h.Do("POST", base+"/lease?ttl=60", nil).Expect(t, http.StatusConflict, &held)
	if !strings.Contains(held.Message, info.LeaseOwner) {
		t.Errorf("second acquire: %q", held.Message)
	}
	// The caller of Profile gets a copy.
	p := h.srv.Profile()
	p.UnclearFailures[actUpdateMachine] = 0
	if h.srv.Profile().UnclearFailures[actUpdateMachine] != 1 {
		t.Error("Profile() shares the server's map")
	}
}

// The published order of Fly's paths (docs/fly-api.md §8): resuming a suspended machine is faster
// than starting a stopped one, which is faster than an update, which is faster than a create. Each
// path is compared by its typical mean, boots included where the path ends in one.
func TestRealisticTransitionsKeepTheOrder(t *testing.T) {
	tr := Realistic().Transitions
	mean := func(d Dist) time.Duration { return (d.Min + d.Max) / 2 }
	paths := []struct {
		name string
		mean time.Duration
	}{
		{"resume", mean(tr.Resume.Typical)},
		{"start", mean(tr.Start.Typical)},
		{"update and boot", mean(tr.Update.Typical) + mean(tr.Start.Typical)},
		{"create and boot", mean(tr.Create.Typical) + mean(tr.Start.Typical)},
	}
	for i := 1; i < len(paths); i++ {
		if paths[i-1].mean >= paths[i].mean {
			t.Errorf("%s (%v) is not faster than %s (%v)", paths[i-1].name, paths[i-1].mean, paths[i].name, paths[i].mean)
		}
	}
}
