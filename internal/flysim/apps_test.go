package flysim

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var (
	appIDRE     = regexp.MustCompile(`^[a-z0-9]{16}$`)
	machineIDRE = regexp.MustCompile(`^[0-9a-f]{14}$`)
	ulidRE      = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)
	nonceRE     = regexp.MustCompile(`^[0-9a-f]{12}$`)
)

func TestCreateApp(t *testing.T) {
	clock := newFakeClock()
	h := newHarness(t, func(o *Options) { o.Now = clock.Now })

	var created struct {
		ID        string `json:"id"`
		CreatedAt int64  `json:"created_at"`
	}
	h.do("POST", "/v1/apps", map[string]any{"app_name": "alpha", "org_slug": orgA}).expect(t, http.StatusCreated, &created)
	if !appIDRE.MatchString(created.ID) {
		t.Errorf("app id %q is not 16 lowercase alphanumerics", created.ID)
	}
	if created.CreatedAt != clock.Now().UnixMilli() {
		t.Errorf("created_at %d, want epoch ms %d", created.CreatedAt, clock.Now().UnixMilli())
	}
	// The spec's `name` works too, and both agreeing is fine.
	h.do("POST", "/v1/apps", map[string]any{"name": "beta", "org_slug": orgA}).expect(t, http.StatusCreated, nil)
	h.do("POST", "/v1/apps", map[string]any{"name": "gamma", "app_name": "gamma", "org_slug": orgA}).expect(t, http.StatusCreated, nil)
	info, ok := h.srv.App("beta")
	if !ok || info.Org != orgA || info.Network != "default" {
		t.Errorf("App(beta) = %+v, %v", info, ok)
	}
}

func TestCreateAppErrors(t *testing.T) {
	h := newHarness(t)
	h.createApp("taken")
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
			e := h.as(tt.token).do("POST", "/v1/apps", tt.body).expectError(t, tt.status, tt.msg)
			if e.Status != tt.code {
				t.Errorf("status field %q, want %q", e.Status, tt.code)
			}
		})
	}
	if strings.Count(strings.Join(appNames(h.srv.Apps(orgA)), ","), "x") != 0 {
		t.Errorf("a failed create left an app behind: %v", appNames(h.srv.Apps(orgA)))
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
	h.do("POST", "/v1/apps", map[string]any{"name": "idem", "org_slug": orgA, "idempotency_key": "k1"}).expect(t, 201, &first)
	h.do("POST", "/v1/apps", map[string]any{"name": "idem", "org_slug": orgA, "idempotency_key": "k1"}).expect(t, 201, &again)
	if first.ID != again.ID {
		t.Errorf("retry with the same key made app %s, first was %s", again.ID, first.ID)
	}
	h.do("POST", "/v1/apps", map[string]any{"org_slug": orgA, "idempotency_key": "k1"}).expect(t, 201, &again)
	if first.ID != again.ID {
		t.Errorf("retry without a name made app %s, first was %s", again.ID, first.ID)
	}
	h.do("POST", "/v1/apps", map[string]any{"name": "other", "org_slug": orgA, "idempotency_key": "k1"}).expectError(t, 422, "")
}

func TestGetApp(t *testing.T) {
	h := newHarness(t)
	h.createApp("viewme")
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
	h.do("GET", "/v1/apps/viewme", nil).expect(t, http.StatusOK, &got)
	info, _ := h.srv.App("viewme")
	if got.ID != info.ID || got.Name != "viewme" || got.Organization.Slug != orgA || got.Network != "default" || got.Status != "pending" {
		t.Errorf("get app = %+v", got)
	}
	h.createMachine("viewme", nil)
	h.do("GET", "/v1/apps/viewme", nil).expect(t, http.StatusOK, &got)
	if got.MachineCount != 1 || got.Status != "deployed" {
		t.Errorf("after a machine: machine_count %d status %q", got.MachineCount, got.Status)
	}

	h.do("GET", "/v1/apps/nope", nil).expectError(t, http.StatusNotFound, "app not found")
	h.as(tokenB).do("GET", "/v1/apps/viewme", nil).expectError(t, http.StatusForbidden, "")
}

func TestListAppsPaging(t *testing.T) {
	h := newHarness(t)
	for i := range 5 {
		h.createApp(fmt.Sprintf("app-%d", i))
	}
	h.do("POST", "/v1/apps", map[string]any{"name": "app-net", "org_slug": orgA, "network": "tenant-1"}).expect(t, 201, nil)
	h.as(tokenB).createApp("b-app") // another org: never listed for org-a

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
		h.do("GET", "/v1/apps?org_slug="+orgA+"&limit=2&cursor="+cursor, nil).expect(t, 200, &p)
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
	h.do("GET", "/v1/apps?org_slug="+orgA, nil).expect(t, 200, &all)
	if len(all.Apps) != 6 || all.NextCursor != "" {
		t.Errorf("unpaged list: %d apps, cursor %q", len(all.Apps), all.NextCursor)
	}

	h.do("GET", "/v1/apps", nil).expectError(t, 400, "org_slug is required")
	h.do("GET", "/v1/apps?org_slug="+orgB, nil).expectError(t, 403, "")
	h.do("GET", "/v1/apps?org_slug="+orgA+"&limit=x", nil).expectError(t, 400, "")
	h.do("GET", "/v1/apps?org_slug="+orgA+"&cursor=!!!", nil).expectError(t, 400, "")
}

func TestDeleteApp(t *testing.T) {
	h := newHarness(t)
	h.createApp("doomed")
	m := h.startedMachine("doomed")

	// Stricter than the docs: running machines block a delete without force.
	e := h.do("DELETE", "/v1/apps/doomed", nil).expectError(t, http.StatusPreconditionFailed, "")
	if !strings.HasPrefix(e.Error, "failed_precondition:") {
		t.Errorf("error %q lacks the failed_precondition prefix", e.Error)
	}
	h.as(tokenB).do("DELETE", "/v1/apps/doomed", nil).expectError(t, http.StatusForbidden, "")

	var events []MachineEvent
	done := make(chan struct{})
	cancel := h.srv.Subscribe(func(e MachineEvent) {
		events = append(events, e)
		if e.NewState == stateDestroyed {
			close(done)
		}
	})
	defer cancel()
	r := h.do("DELETE", "/v1/apps/doomed?force=true", nil).expect(t, http.StatusAccepted, nil)
	if len(r.body) != 0 {
		t.Errorf("202 with body %s", r.body)
	}
	<-done
	if len(events) != 2 || events[0].NewState != stateStopped || events[1].NewState != stateDestroyed {
		t.Errorf("cascade events %+v, want stop then destroy", events)
	}
	h.do("GET", "/v1/apps/doomed", nil).expectError(t, 404, "app not found")
	h.do("GET", "/v1/apps/doomed/machines/"+m.ID, nil).expectError(t, 404, "app not found")
	if info, ok := h.srv.App("doomed"); !ok || !info.Deleted {
		t.Errorf("App(doomed) after delete = %+v, %v", info, ok)
	}
	// The name is free again.
	h.createApp("doomed")
	h.do("DELETE", "/v1/apps/doomed", nil).expect(t, http.StatusAccepted, nil)
	h.do("DELETE", "/v1/apps/doomed", nil).expectError(t, 404, "app not found")
	h.do("DELETE", "/v1/apps/doomed?force=maybe", nil).expectError(t, 400, "")
}

func TestDeleteAppWithStoppedMachinesNeedsNoForce(t *testing.T) {
	h := newHarness(t)
	h.createApp("quiet")
	m := h.createMachine("quiet", map[string]any{"skip_launch": true})
	h.do("DELETE", "/v1/apps/quiet", nil).expect(t, http.StatusAccepted, nil)
	if _, ok := h.srv.Machine("quiet", m.ID); ok {
		t.Error("machine of a deleted app still reachable")
	}
}

func TestNetworks(t *testing.T) {
	h := newHarness(t)
	h.createApp("on-default")
	for _, name := range []string{"iso-1", "iso-2"} {
		h.do("POST", "/v1/apps", map[string]any{"name": name, "org_slug": orgA, "network": "tenant-x"}).expect(t, 201, nil)
	}
	h.do("POST", "/v1/apps", map[string]any{"name": "iso-3", "org_slug": orgA, "network": "tenant-y"}).expect(t, 201, nil)
	// The same network name in another org is another network.
	h.as(tokenB).do("POST", "/v1/apps", map[string]any{"name": "iso-b", "org_slug": orgB, "network": "tenant-x"}).expect(t, 201, nil)

	prefix := func(app string) string {
		info, _ := h.srv.App(app)
		return fmt.Sprintf("fdaa:%x:%x:", info.NetworkID>>16, info.NetworkID&0xffff)
	}
	same := func(a, b string) bool { return prefix(a) == prefix(b) }
	if !same("iso-1", "iso-2") || same("iso-1", "iso-3") || same("iso-1", "on-default") || same("iso-1", "iso-b") {
		t.Errorf("network prefixes: %s %s %s %s %s", prefix("iso-1"), prefix("iso-2"), prefix("iso-3"), prefix("on-default"), prefix("iso-b"))
	}
	for _, app := range []string{"on-default", "iso-1", "iso-3"} {
		m := h.createMachine(app, map[string]any{"skip_launch": true})
		if !strings.HasPrefix(m.PrivateIP, prefix(app)) {
			t.Errorf("%s machine private_ip %s not in network %s", app, m.PrivateIP, prefix(app))
		}
	}
	if id, ok := h.srv.NetworkID(orgA, "tenant-x"); !ok || id == 0 {
		t.Errorf("NetworkID(tenant-x) = %d, %v", id, ok)
	}
}
