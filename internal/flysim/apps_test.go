package flysim

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

var (
	appIDRE     = regexp.MustCompile(`^[a-z0-9]{16}$`)
	machineIDRE = regexp.MustCompile(`^[0-9a-f]{14}$`)
	ulidRE      = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)
	nonceRE     = regexp.MustCompile(`^[0-9a-f]{12}$`)
)

func TestCreateApp(t *testing.T) {
	clock := flysimtest.NewClock()
	h := newHarness(t, func(o *Options) { o.Now = clock.Now })

	var created struct {
		ID        string `json:"id"`
		CreatedAt int64  `json:"created_at"`
	}
	h.Do("POST", "/v1/apps", map[string]any{"app_name": "alpha", "org_slug": orgA}).Expect(t, http.StatusCreated, &created)
	if !appIDRE.MatchString(created.ID) {
		t.Errorf("app id %q is not 16 lowercase alphanumerics", created.ID)
	}
	if created.CreatedAt != clock.Now().UnixMilli() {
		t.Errorf("created_at %d, want epoch ms %d", created.CreatedAt, clock.Now().UnixMilli())
	}
	// The spec's `name` works too, and both agreeing is fine.
	h.Do("POST", "/v1/apps", map[string]any{"name": "beta", "org_slug": orgA}).Expect(t, http.StatusCreated, nil)
	h.Do("POST", "/v1/apps", map[string]any{"name": "gamma", "app_name": "gamma", "org_slug": orgA}).Expect(t, http.StatusCreated, nil)
	info, ok := h.srv.App("beta")
	if !ok || info.Org != orgA || info.Network != "default" {
		t.Errorf("App(beta) = %+v, %v", info, ok)
	}
}

func TestCreateAppErrors(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("taken")
	const badName = "Validation failed: Name under 63 chars using numbers, lowercase letters and dashes"
	tests := []struct {
		name   string
		token  string
		body   any
		status int
		msg    string
		code   string
	}{
		{"name taken in the same org", tokenA, map[string]any{"app_name": "taken", "org_slug": orgA}, 422, "Validation failed: Name has already been taken", "name_taken"},
		{"names are global across orgs", tokenB, map[string]any{"app_name": "taken", "org_slug": orgB}, 422, "Validation failed: Name has already been taken", "name_taken"},
		{"uppercase", tokenA, map[string]any{"app_name": "Upper", "org_slug": orgA}, 422, badName, ""},
		{"underscore", tokenA, map[string]any{"app_name": "a_b", "org_slug": orgA}, 422, badName, ""},
		{"leading dash", tokenA, map[string]any{"app_name": "-ab", "org_slug": orgA}, 422, badName, ""},
		{"too long", tokenA, map[string]any{"app_name": strings.Repeat("a", 64), "org_slug": orgA}, 422, badName, ""},
		{"blank", tokenA, map[string]any{"org_slug": orgA}, 422, "Validation failed: Name can't be blank", ""},
		{"names disagree", tokenA, map[string]any{"app_name": "x1", "name": "x2", "org_slug": orgA}, 400, "", ""},
		{"no org", tokenA, map[string]any{"app_name": "x3"}, 400, "org_slug is required", ""},
		{"another org", tokenA, map[string]any{"app_name": "x4", "org_slug": orgB}, 403, "", ""},
		{"bad network name", tokenA, map[string]any{"app_name": "x5", "org_slug": orgA, "network": "9lives"}, 422, "", ""},
		{"malformed json", tokenA, `{"app_name":`, 400, "", ""},
		{"wrong type", tokenA, `{"app_name": 5, "org_slug": "org-a"}`, 400, "", ""},
		{"empty body", tokenA, nil, 400, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := h.As(tt.token).Do("POST", "/v1/apps", tt.body).ExpectError(t, tt.status, tt.msg)
			if e.Status != tt.code {
				t.Errorf("status field %q, want %q", e.Status, tt.code)
			}
		})
	}
	// Every failed create, whatever its name: only the fixture's app exists.
	if a, b := appNames(h.srv.Apps(orgA)), appNames(h.srv.Apps(orgB)); !slices.Equal(a, []string{"taken"}) || len(b) != 0 {
		t.Errorf("a failed create left an app behind: %v in %s, %v in %s", a, orgA, b, orgB)
	}
}

func appNames(infos []AppInfo) []string {
	var out []string
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out
}

func TestCreateAppIdempotencyKey(t *testing.T) {
	h := newHarness(t)
	var first, again struct{ ID string }
	h.Do("POST", "/v1/apps", map[string]any{"name": "idem", "org_slug": orgA, "idempotency_key": "k1"}).Expect(t, 201, &first)
	h.Do("POST", "/v1/apps", map[string]any{"name": "idem", "org_slug": orgA, "idempotency_key": "k1"}).Expect(t, 201, &again)
	if first.ID != again.ID {
		t.Errorf("retry with the same key made app %s, first was %s", again.ID, first.ID)
	}
	h.Do("POST", "/v1/apps", map[string]any{"org_slug": orgA, "idempotency_key": "k1"}).Expect(t, 201, &again)
	if first.ID != again.ID {
		t.Errorf("retry without a name made app %s, first was %s", again.ID, first.ID)
	}
	h.Do("POST", "/v1/apps", map[string]any{"name": "other", "org_slug": orgA, "idempotency_key": "k1"}).ExpectError(t, 422, "")
}

func TestGetApp(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("viewme")
	var got struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		Status       string `json:"status"`
		Organization struct {
			Name string `json:"name"`
			Slug string `json:"slug"`
		} `json:"organization"`
		Network      string `json:"network"`
		MachineCount int    `json:"machine_count"`
		VolumeCount  int    `json:"volume_count"`
	}
	h.Do("GET", "/v1/apps/viewme", nil).Expect(t, http.StatusOK, &got)
	info, _ := h.srv.App("viewme")
	if got.ID != info.ID || got.Name != "viewme" || got.Organization.Slug != orgA || got.Network != "default" || got.Status != "pending" {
		t.Errorf("get app = %+v", got)
	}
	h.CreateMachine("viewme", nil)
	h.Do("GET", "/v1/apps/viewme", nil).Expect(t, http.StatusOK, &got)
	if got.MachineCount != 1 || got.Status != "deployed" {
		t.Errorf("after a machine: machine_count %d status %q", got.MachineCount, got.Status)
	}

	h.Do("GET", "/v1/apps/nope", nil).ExpectError(t, http.StatusNotFound, "app not found")
	h.As(tokenB).Do("GET", "/v1/apps/viewme", nil).ExpectError(t, http.StatusForbidden, "")
}

func TestListAppsPaging(t *testing.T) {
	h := newHarness(t)
	for i := range 5 {
		h.CreateApp(fmt.Sprintf("app-%d", i))
	}
	h.Do("POST", "/v1/apps", map[string]any{"name": "app-net", "org_slug": orgA, "network": "tenant-1"}).Expect(t, 201, nil)
	h.As(tokenB).CreateApp("b-app") // another org: never listed for org-a

	type page struct {
		TotalApps int `json:"total_apps"`
		Apps      []struct {
			ID           string `json:"id"`
			Name         string `json:"name"`
			MachineCount int    `json:"machine_count"`
			Network      string `json:"network"`
		} `json:"apps"`
		NextCursor string `json:"next_cursor"`
	}
	var names []string
	networks := map[string]string{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		var p page
		h.Do("GET", "/v1/apps?org_slug="+orgA+"&limit=2&cursor="+cursor, nil).Expect(t, 200, &p)
		if p.TotalApps != 6 {
			t.Errorf("total_apps %d, want 6", p.TotalApps)
		}
		for _, a := range p.Apps {
			names = append(names, a.Name)
			networks[a.Name] = a.Network
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	want := "app-0,app-1,app-2,app-3,app-4,app-net"
	if strings.Join(names, ",") != want {
		t.Errorf("paged names %v, want %s", names, want)
	}
	if networks["app-0"] != "default" || networks["app-net"] != "tenant-1" {
		t.Errorf("networks %v", networks)
	}
	var all page
	h.Do("GET", "/v1/apps?org_slug="+orgA, nil).Expect(t, 200, &all)
	if len(all.Apps) != 6 || all.NextCursor != "" {
		t.Errorf("unpaged list: %d apps, cursor %q", len(all.Apps), all.NextCursor)
	}

	h.Do("GET", "/v1/apps", nil).ExpectError(t, 400, "org_slug is required")
	h.Do("GET", "/v1/apps?org_slug="+orgB, nil).ExpectError(t, 403, "")
	h.Do("GET", "/v1/apps?org_slug="+orgA+"&limit=x", nil).ExpectError(t, 400, "")
	h.Do("GET", "/v1/apps?org_slug="+orgA+"&cursor=!!!", nil).ExpectError(t, 400, "")
}

func TestDeleteApp(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("doomed")
	m := h.StartedMachine("doomed")

	// Stricter than the docs: running machines block a delete without force.
	e := h.Do("DELETE", "/v1/apps/doomed", nil).ExpectError(t, http.StatusPreconditionFailed, "")
	if !strings.HasPrefix(e.Error, "failed_precondition:") {
		t.Errorf("error %q lacks the failed_precondition prefix", e.Error)
	}
	h.As(tokenB).Do("DELETE", "/v1/apps/doomed", nil).ExpectError(t, http.StatusForbidden, "")

	var events []MachineEvent
	done := make(chan struct{})
	cancel := h.srv.Subscribe(func(e MachineEvent) {
		events = append(events, e)
		if e.NewState == StateDestroyed {
			close(done)
		}
	})
	defer cancel()
	r := h.Do("DELETE", "/v1/apps/doomed?force=true", nil).Expect(t, http.StatusAccepted, nil)
	if len(r.Body) != 0 {
		t.Errorf("202 with body %s", r.Body)
	}
	<-done
	if len(events) != 2 || events[0].NewState != StateStopped || events[1].NewState != StateDestroyed {
		t.Errorf("cascade events %+v, want stop then destroy", events)
	}
	h.Do("GET", "/v1/apps/doomed", nil).ExpectError(t, 404, "app not found")
	h.Do("GET", "/v1/apps/doomed/machines/"+m.ID, nil).ExpectError(t, 404, "app not found")
	if info, ok := h.srv.App("doomed"); !ok || !info.Deleted {
		t.Errorf("App(doomed) after delete = %+v, %v", info, ok)
	}
	// The name is free again.
	h.CreateApp("doomed")
	h.Do("DELETE", "/v1/apps/doomed", nil).Expect(t, http.StatusAccepted, nil)
	h.Do("DELETE", "/v1/apps/doomed", nil).ExpectError(t, 404, "app not found")
	h.Do("DELETE", "/v1/apps/doomed?force=maybe", nil).ExpectError(t, 400, "")
}

func TestDeleteAppWithStoppedMachinesNeedsNoForce(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("quiet")
	m := h.CreateMachine("quiet", map[string]any{"skip_launch": true})
	h.Do("DELETE", "/v1/apps/quiet", nil).Expect(t, http.StatusAccepted, nil)
	if _, ok := h.srv.Machine("quiet", m.ID); ok {
		t.Error("machine of a deleted app still reachable")
	}
}

func TestNetworks(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("on-default")
	for _, name := range []string{"iso-1", "iso-2"} {
		h.Do("POST", "/v1/apps", map[string]any{"name": name, "org_slug": orgA, "network": "tenant-x"}).Expect(t, 201, nil)
	}
	h.Do("POST", "/v1/apps", map[string]any{"name": "iso-3", "org_slug": orgA, "network": "tenant-y"}).Expect(t, 201, nil)
	// The same network name in another org is another network.
	h.As(tokenB).Do("POST", "/v1/apps", map[string]any{"name": "iso-b", "org_slug": orgB, "network": "tenant-x"}).Expect(t, 201, nil)

	prefix := func(app string) string {
		info, _ := h.srv.App(app)
		return fmt.Sprintf("fdaa:%x:%x:", info.NetworkID>>16, info.NetworkID&0xffff)
	}
	same := func(a, b string) bool { return prefix(a) == prefix(b) }
	if !same("iso-1", "iso-2") || same("iso-1", "iso-3") || same("iso-1", "on-default") || same("iso-1", "iso-b") {
		t.Errorf("network prefixes: %s %s %s %s %s", prefix("iso-1"), prefix("iso-2"), prefix("iso-3"), prefix("on-default"), prefix("iso-b"))
	}
	for _, app := range []string{"on-default", "iso-1", "iso-3"} {
		m := h.CreateMachine(app, map[string]any{"skip_launch": true})
		if !strings.HasPrefix(m.PrivateIP, prefix(app)) {
			t.Errorf("%s machine private_ip %s not in network %s", app, m.PrivateIP, prefix(app))
		}
	}
	if id, ok := h.srv.NetworkID(orgA, "tenant-x"); !ok || id == 0 {
		t.Errorf("NetworkID(tenant-x) = %d, %v", id, ok)
	}
}
