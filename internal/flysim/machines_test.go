package flysim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

func TestCreateMachine(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("mach")
	info, _ := h.srv.App("mach")
	m := h.CreateMachine("mach", map[string]any{"name": "web-1"})
	switch {
	case !machineIDRE.MatchString(m.ID):
		t.Errorf("machine id %q is not 14 lowercase hex", m.ID)
	case !ulidRE.MatchString(m.Version) || m.InstanceID != m.Version:
		t.Errorf("version %q / instance_id %q", m.Version, m.InstanceID)
	case m.State != StateCreated:
		t.Errorf("create answered state %q, want created", m.State)
	case m.Name != "web-1" || m.Region != DefaultRegion:
		t.Errorf("name %q region %q", m.Name, m.Region)
	case !strings.HasPrefix(m.PrivateIP, fmt.Sprintf("fdaa:%x:%x:", info.NetworkID>>16, info.NetworkID&0xffff)):
		t.Errorf("private_ip %q not in the app network", m.PrivateIP)
	case !isIPv6(m.PrivateIP):
		t.Errorf("private_ip %q is not an IPv6 address", m.PrivateIP)
	case len(m.Events) != 1 || m.Events[0].Type != "launch" || m.Events[0].Status != "created" || m.Events[0].Source != "user":
		t.Errorf("events %+v", m.Events)
	case m.Nonce != "" || m.HostStatus != "ok":
		t.Errorf("nonce %q host_status %q", m.Nonce, m.HostStatus)
	case m.ImageRef["registry"] != "registry.fly.io" || m.ImageRef["repository"] != "demo" || m.ImageRef["tag"] != "v1":
		t.Errorf("image_ref %v", m.ImageRef)
	}
	for _, ts := range []string{m.CreatedAt, m.UpdatedAt} {
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("timestamp %q is not RFC3339", ts)
		}
	}

	// It boots asynchronously: created → starting → started, events newest first.
	h.WaitFor("mach", m.ID, StateStarted)
	got := h.GetMachine("mach", m.ID)
	var statuses []string
	for _, e := range got.Events {
		statuses = append(statuses, e.Status)
	}
	if strings.Join(statuses, ",") != "started,starting,created" {
		t.Errorf("events newest first: %v", statuses)
	}
}

func TestCreateMachineOptions(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("opts")

	skip := h.CreateMachine("opts", map[string]any{"skip_launch": true, "region": "ams"})
	if skip.Region != "ams" {
		t.Errorf("region %q", skip.Region)
	}
	h.WaitSettled("opts", skip.ID, StateCreated)

	// Generated names are unique and Fly-shaped.
	names := map[string]bool{}
	for range 5 {
		m := h.CreateMachine("opts", map[string]any{"skip_launch": true})
		if names[m.Name] || len(strings.Split(m.Name, "-")) != 3 {
			t.Errorf("generated name %q (seen %v)", m.Name, names)
		}
		names[m.Name] = true
	}

	leased := h.CreateMachine("opts", map[string]any{"lease_ttl": 60, "skip_launch": true})
	if !nonceRE.MatchString(leased.Nonce) {
		t.Errorf("lease_ttl create nonce %q", leased.Nonce)
	}
	if mi, _ := h.srv.Machine("opts", leased.ID); mi.LeaseNonce != leased.Nonce {
		t.Errorf("lease not held: %+v", mi)
	}

	cordoned := h.CreateMachine("opts", map[string]any{"skip_service_registration": true, "skip_launch": true})
	if !cordoned.Cordoned {
		t.Error("skip_service_registration did not cordon")
	}

	h.CreateMachine("opts", map[string]any{"name": "dup", "skip_launch": true})
	e := h.Do("POST", "/v1/apps/opts/machines", map[string]any{"name": "dup", "config": flysimtest.BaseConfig()}).ExpectError(t, 422, "")
	if e.Status != "name_taken" {
		t.Errorf("duplicate name status %q", e.Status)
	}

	h.Do("POST", "/v1/apps/opts/secrets", map[string]any{"values": map[string]any{"K": "v"}}).Expect(t, 200, nil)
	h.CreateMachine("opts", map[string]any{"min_secrets_version": 1, "skip_launch": true})
	h.Do("POST", "/v1/apps/opts/machines", map[string]any{"min_secrets_version": 2, "config": flysimtest.BaseConfig()}).ExpectError(t, http.StatusPreconditionFailed, "")
	withSecrets := h.CreateMachine("opts", map[string]any{"skip_launch": true})
	if mi, _ := h.srv.Machine("opts", withSecrets.ID); mi.SecretsVersion != 1 {
		t.Errorf("machine booted with secrets version %d, want 1", mi.SecretsVersion)
	}

	h.Do("POST", "/v1/apps/nope/machines", map[string]any{"config": flysimtest.BaseConfig()}).ExpectError(t, 404, "app not found")
	h.As(tokenB).Do("POST", "/v1/apps/opts/machines", map[string]any{"config": flysimtest.BaseConfig()}).ExpectError(t, 403, "")
}

// TestMachineConfigValidation covers the §6 rules: 422 for unacceptable values, 400 for wrong JSON types.
func TestMachineConfigValidation(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("val")
	with := func(mut func(c map[string]any)) map[string]any {
		c := flysimtest.BaseConfig()
		mut(c)
		return c
	}
	guest := func(kind string, cpus, mem int) func(c map[string]any) {
		return func(c map[string]any) {
			c["guest"] = map[string]any{"cpu_kind": kind, "cpus": cpus, "memory_mb": mem}
		}
	}
	service := func(svc map[string]any) func(c map[string]any) {
		return func(c map[string]any) { c["services"] = []any{svc} }
	}
	ok := map[string]any{"protocol": "tcp", "internal_port": 8080}
	svcWith := func(k string, v any) map[string]any {
		s := map[string]any{"protocol": "tcp", "internal_port": 8080}
		s[k] = v
		return s
	}
	tests := []struct {
		name   string
		config any
		status int
	}{
		{"valid", flysimtest.BaseConfig(), 200},
		{"no config", nil, 422},
		{"config not an object", "image", 400},
		{"no image", with(func(c map[string]any) { delete(c, "image") }), 422},
		{"empty image", with(func(c map[string]any) { c["image"] = "" }), 422},
		{"bad image", with(func(c map[string]any) { c["image"] = "Not A/Valid::image" }), 422},
		{"image with digest", with(func(c map[string]any) { c["image"] = "registry.fly.io/app@sha256:" + strings.Repeat("ab", 32) }), 200},
		{"image not a string", with(func(c map[string]any) { c["image"] = 5 }), 400},
		{"shared 1x 256", with(guest("shared", 1, 256)), 200},
		{"shared 8x 16384", with(guest("shared", 8, 16384)), 200},
		{"performance 2x 4096", with(guest("performance", 2, 4096)), 200},
		{"memory not a multiple of 256", with(guest("shared", 1, 300)), 422},
		{"shared above per-cpu max", with(guest("shared", 1, 2304)), 422},
		{"performance below per-cpu min", with(guest("performance", 1, 1024)), 422},
		{"odd cpu count", with(guest("shared", 3, 768)), 422},
		{"unknown cpu kind", with(guest("gpu", 1, 256)), 422},
		{"cpus not an integer", with(func(c map[string]any) { c["guest"] = map[string]any{"cpus": "two"} }), 400},
		{"size and guest", with(func(c map[string]any) { c["size"] = "shared-cpu-1x" }), 422},
		{"size preset alone", map[string]any{"image": "nginx", "size": "performance-2x"}, 200},
		{"unknown size", map[string]any{"image": "nginx", "size": "huge"}, 422},
		{"service ok", with(service(ok)), 200},
		{"service without protocol", with(service(map[string]any{"internal_port": 8080})), 422},
		{"service without internal_port", with(service(map[string]any{"protocol": "tcp"})), 422},
		{"service port out of range", with(service(svcWith("internal_port", 70000))), 422},
		{"autostop true", with(service(svcWith("autostop", true))), 200},
		{"autostop off", with(service(svcWith("autostop", "off"))), 200},
		{"autostop stop", with(service(svcWith("autostop", "stop"))), 200},
		{"autostop suspend", with(service(svcWith("autostop", "suspend"))), 200},
		{"autostop bogus", with(service(svcWith("autostop", "sometimes"))), 422},
		{"autostop number", with(service(svcWith("autostop", 1))), 400},
		{"autostart string", with(service(svcWith("autostart", "true"))), 400},
		{"port without number", with(service(svcWith("ports", []any{map[string]any{"handlers": []any{"http"}}}))), 422},
		{"port range", with(service(svcWith("ports", []any{map[string]any{"start_port": 8000, "end_port": 8010}}))), 200},
		{"concurrency type", with(service(svcWith("concurrency", map[string]any{"type": "bytes"}))), 422},
		{"check duration", with(func(c map[string]any) {
			c["checks"] = map[string]any{"h": map[string]any{"type": "http", "interval": "15s"}}
		}), 200},
		{"check duration nanoseconds", with(func(c map[string]any) { c["checks"] = map[string]any{"h": map[string]any{"interval": 15000000000}} }), 200},
		{"check bad duration", with(func(c map[string]any) { c["checks"] = map[string]any{"h": map[string]any{"interval": "soon"}} }), 422},
		{"restart policy", with(func(c map[string]any) { c["restart"] = map[string]any{"policy": "sometimes"} }), 422},
		{"schedule", with(func(c map[string]any) { c["schedule"] = "yearly" }), 422},
		{"stop signal", with(func(c map[string]any) { c["stop_config"] = map[string]any{"signal": "SIGFOO"} }), 422},
		{"env not strings", with(func(c map[string]any) { c["env"] = map[string]any{"A": 1} }), 400},
		{"metadata not strings", with(func(c map[string]any) { c["metadata"] = map[string]any{"A": true} }), 400},
		{"relative mount", with(func(c map[string]any) { c["mounts"] = []any{map[string]any{"volume": "vol_x", "path": "data"}} }), 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"skip_launch": true}
			if tt.config != nil {
				body["config"] = tt.config
			}
			r := h.Do("POST", "/v1/apps/val/machines", body)
			if tt.status == 200 {
				r.Expect(t, 200, nil)
				return
			}
			e := r.ExpectError(t, tt.status, "")
			if !strings.HasPrefix(e.Error, "invalid_argument: ") {
				t.Errorf("message %q lacks the invalid_argument prefix", e.Error)
			}
		})
	}
	for _, body := range []string{`{"config":`, `{"config":{"image":"nginx"}} trailing`, `[]`, `{"skip_launch":"yes","config":{"image":"nginx"}}`, `{"lease_ttl":-1,"config":{"image":"nginx"}}`} {
		h.Do("POST", "/v1/apps/val/machines", body).ExpectError(t, 400, "")
	}
	h.Do("POST", "/v1/apps/val/machines", map[string]any{"config": flysimtest.BaseConfig(), "region": "Chicago"}).ExpectError(t, 422, "")
}

func TestConfigKeptAsSentAndAutostopNormalised(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("keep")
	cfg := flysimtest.BaseConfig()
	cfg["x_future_field"] = map[string]any{"nested": []any{1.5, "two", nil}}
	cfg["env"] = map[string]any{"HTML": "<b>&</b>"}
	cfg["services"] = []any{
		map[string]any{"protocol": "tcp", "internal_port": 80, "autostop": "off", "unknown": 7},
		map[string]any{"protocol": "tcp", "internal_port": 81, "autostop": "stop"},
		map[string]any{"protocol": "tcp", "internal_port": 82, "autostop": "suspend"},
	}
	m := h.CreateMachine("keep", map[string]any{"config": cfg, "skip_launch": true})
	var got map[string]any
	if err := json.Unmarshal(m.Config, &got); err != nil {
		t.Fatal(err)
	}
	future, _ := json.Marshal(got["x_future_field"])
	if string(future) != `{"nested":[1.5,"two",null]}` {
		t.Errorf("unknown field came back as %s", future)
	}
	if !strings.Contains(string(m.Config), `"HTML":"<b>&</b>"`) {
		t.Errorf("strings re-escaped: %s", m.Config)
	}
	services := got["services"].([]any)
	var autostops []any
	for _, s := range services {
		autostops = append(autostops, s.(map[string]any)["autostop"])
	}
	if fmt.Sprint(autostops) != "[false true suspend]" {
		t.Errorf("autostop answered as %v, want [false true suspend] (Fly's normalisation)", autostops)
	}
	if services[0].(map[string]any)["unknown"] != 7.0 {
		t.Errorf("unknown service field lost: %v", services[0])
	}
}

func TestGetMachine(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("getm")
	cfg := flysimtest.BaseConfig()
	cfg["checks"] = map[string]any{"alive": map[string]any{"type": "tcp", "port": 8080}}
	m := h.CreateMachine("getm", map[string]any{"config": cfg})
	h.WaitFor("getm", m.ID, StateStarted)
	got := h.GetMachine("getm", m.ID)
	if got.State != StateStarted || len(got.Checks) != 1 || got.Checks[0]["status"] != "passing" {
		t.Errorf("started machine: state %q checks %v", got.State, got.Checks)
	}
	if got.Lease != nil {
		t.Error("lease shown without include_leases")
	}
	h.Do("GET", "/v1/apps/getm/machines/00000000000000", nil).ExpectError(t, 404, "machine not found")
	h.Do("GET", "/v1/apps/getm/machines/"+m.ID+"?version=01ARZ3NDEKTSV4RRFFQ69G5FAV", nil).ExpectError(t, 404, "")
	h.Do("GET", "/v1/apps/getm/machines/"+m.ID+"?include_leases=perhaps", nil).ExpectError(t, 400, "")
	h.As(tokenB).Do("GET", "/v1/apps/getm/machines/"+m.ID, nil).ExpectError(t, 403, "")

	var lease struct{ Data struct{ Nonce string } }
	h.Do("POST", "/v1/apps/getm/machines/"+m.ID+"/lease", map[string]any{"ttl": 30, "description": "deploy"}).Expect(t, 201, &lease)
	var withLease flysimtest.Machine
	h.Do("GET", "/v1/apps/getm/machines/"+m.ID+"?include_leases=true", nil).Expect(t, 200, &withLease)
	if withLease.Lease == nil || withLease.Lease.Description != "deploy" || withLease.Lease.Owner == "" {
		t.Errorf("include_leases: %+v", withLease.Lease)
	}
	if strings.Contains(string(h.Do("GET", "/v1/apps/getm/machines/"+m.ID+"?include_leases=true", nil).Body), lease.Data.Nonce) {
		t.Error("include_leases exposes the nonce")
	}
}

func TestListMachines(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("lst")
	mk := func(region string, md map[string]any, launch bool) flysimtest.Machine {
		cfg := flysimtest.BaseConfig()
		cfg["metadata"] = md
		return h.CreateMachine("lst", map[string]any{"config": cfg, "region": region, "skip_launch": !launch})
	}
	a := mk("ord", map[string]any{"team": "x", "tier": "web"}, true)
	b := mk("ams", map[string]any{"team": "x", "tier": "db"}, false)
	c := mk("ord", map[string]any{"team": "y", "tier": "web"}, false)
	d := mk("ord", map[string]any{"team": "x", "tier": "web"}, false)
	h.WaitFor("lst", a.ID, StateStarted)
	h.Do("DELETE", "/v1/apps/lst/machines/"+d.ID, nil).Expect(t, 200, nil)
	h.WaitFor("lst", d.ID, StateDestroyed)

	ids := func(query string) string {
		t.Helper()
		var ms []flysimtest.Machine
		h.Do("GET", "/v1/apps/lst/machines"+query, nil).Expect(t, 200, &ms)
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return strings.Join(out, ",")
	}
	join := func(ms ...flysimtest.Machine) string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return strings.Join(out, ",")
	}
	tests := []struct{ query, want string }{
		{"", join(a, b, c)},
		{"?include_deleted=true", join(a, b, c, d)},
		{"?metadata.team=x", join(a, b)},
		{"?metadata.team=x&metadata.tier=web", join(a)},
		{"?metadata.team=z", ""},
		{"?region=ord", join(a, c)},
		{"?state=created", join(b, c)},
		{"?state=started,created", join(a, b, c)},
		{"?state=destroyed&include_deleted=true", join(d)},
	}
	for _, tt := range tests {
		if got := ids(tt.query); got != tt.want {
			t.Errorf("list%s = %s, want %s", tt.query, got, tt.want)
		}
	}

	var summary []map[string]any
	h.Do("GET", "/v1/apps/lst/machines?summary=true", nil).Expect(t, 200, &summary)
	for _, key := range []string{"config", "checks", "events", "host_status", "nonce"} {
		if _, ok := summary[0][key]; ok {
			t.Errorf("summary keeps %q", key)
		}
	}
	if summary[0]["id"] != a.ID || summary[0]["state"] != StateStarted {
		t.Errorf("summary item %v", summary[0])
	}

	// Paging: the cursor is in fly-next-cursor, absent on the last page.
	var pages []string
	cursor := ""
	for range 5 {
		r := h.Do("GET", "/v1/apps/lst/machines?limit=2&cursor="+cursor, nil).Expect(t, 200, nil)
		var ms []flysimtest.Machine
		_ = json.Unmarshal(r.Body, &ms)
		pages = append(pages, join(ms...))
		cursor = r.Header.Get("fly-next-cursor")
		if cursor == "" {
			break
		}
	}
	if want := []string{join(a, b), join(c)}; !slices.Equal(pages, want) {
		t.Errorf("pages %v, want %v", pages, want)
	}

	for _, q := range []string{"?state=bogus", "?limit=0", "?limit=x", "?cursor=!!", "?summary=maybe", "?include_deleted=2"} {
		h.Do("GET", "/v1/apps/lst/machines"+q, nil).ExpectError(t, 400, "")
	}
	h.Do("GET", "/v1/apps/none/machines", nil).ExpectError(t, 404, "app not found")
}

func TestUpdateMachine(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("upd")
	m := h.StartedMachine("upd")
	v1 := m.Version

	cfg := flysimtest.BaseConfig()
	cfg["image"] = "registry.fly.io/demo:v2"
	cfg["env"] = map[string]any{"NEW": "1"}
	var up flysimtest.Machine
	h.Do("POST", "/v1/apps/upd/machines/"+m.ID, map[string]any{"config": cfg, "current_version": v1}).Expect(t, 200, &up)
	if up.Version == v1 || !ulidRE.MatchString(up.Version) || up.State != StateReplacing {
		t.Errorf("update answered version %q state %q", up.Version, up.State)
	}
	if strings.Contains(string(up.Config), "memory_mb\":256") == false || !strings.Contains(string(up.Config), `"NEW":"1"`) {
		t.Errorf("config not replaced: %s", up.Config)
	}
	// A started machine ends started on the new version.
	h.WaitFor("upd", m.ID, StateStarted)
	if got := h.GetMachine("upd", m.ID); got.Version != up.Version || got.State != StateStarted {
		t.Errorf("after update: %s %s", got.Version, got.State)
	}
	// The old version reads replaced, with its own config.
	var old flysimtest.Machine
	h.Do("GET", "/v1/apps/upd/machines/"+m.ID+"?version="+v1, nil).Expect(t, 200, &old)
	if old.State != StateReplaced || old.Version != v1 || strings.Contains(string(old.Config), "v2") {
		t.Errorf("old version: state %q version %q config %s", old.State, old.Version, old.Config)
	}

	// Full replacement: omitted fields are gone.
	h.Do("POST", "/v1/apps/upd/machines/"+m.ID, map[string]any{"config": map[string]any{"image": "nginx"}}).Expect(t, 200, &up)
	if strings.Contains(string(up.Config), "env") || strings.Contains(string(up.Config), "guest") {
		t.Errorf("update merged instead of replacing: %s", up.Config)
	}

	// A stale current_version conflicts and changes nothing.
	before := h.GetMachine("upd", m.ID).Version
	h.Do("POST", "/v1/apps/upd/machines/"+m.ID, map[string]any{"config": cfg, "current_version": v1}).ExpectError(t, http.StatusConflict, "")
	if after := h.GetMachine("upd", m.ID).Version; after != before {
		t.Errorf("conflicting update changed the version %s → %s", before, after)
	}

	h.Do("POST", "/v1/apps/upd/machines/"+m.ID, map[string]any{"config": cfg, "name": "renamed"}).ExpectError(t, 422, "")
	h.Do("POST", "/v1/apps/upd/machines/"+m.ID, map[string]any{"config": cfg, "region": "syd"}).ExpectError(t, 422, "")
	h.Do("POST", "/v1/apps/upd/machines/"+m.ID, map[string]any{"config": map[string]any{"image": ""}}).ExpectError(t, 422, "")
	h.Do("POST", "/v1/apps/upd/machines/"+m.ID, map[string]any{"config": cfg, "min_secrets_version": 9}).ExpectError(t, http.StatusPreconditionFailed, "")
	withMount := flysimtest.BaseConfig()
	withMount["mounts"] = []any{map[string]any{"volume": "vol_abc", "path": "/data"}}
	h.Do("POST", "/v1/apps/upd/machines/"+m.ID, map[string]any{"config": withMount}).ExpectError(t, 422, "")
	h.Do("POST", "/v1/apps/upd/machines/ffffffffffffff", map[string]any{"config": cfg}).ExpectError(t, 404, "machine not found")

	mi, _ := h.srv.Machine("upd", m.ID)
	if len(mi.Versions) != 3 || mi.Versions[0] != v1 {
		t.Errorf("versions %v", mi.Versions)
	}
}

func TestUpdateKeepsStoppedMachinesStopped(t *testing.T) {
	for _, tt := range []struct {
		name       string
		prepare    func(h *harness, id string)
		skipLaunch bool
		want       string
	}{
		{"stopped stays stopped", func(h *harness, id string) { stopMachine(h, "keep", id) }, false, StateStopped},
		{"suspended becomes stopped", func(h *harness, id string) {
			h.Do("POST", "/v1/apps/keep/machines/"+id+"/suspend", nil).Expect(h.t, 200, nil)
			h.WaitFor("keep", id, StateSuspended)
		}, false, StateStopped},
		{"started with skip_launch becomes created", func(*harness, string) {}, true, StateCreated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.CreateApp("keep")
			m := h.StartedMachine("keep")
			tt.prepare(h, m.ID)
			h.Do("POST", "/v1/apps/keep/machines/"+m.ID, map[string]any{"config": flysimtest.BaseConfig(), "skip_launch": tt.skipLaunch}).Expect(t, 200, nil)
			h.WaitSettled("keep", m.ID, tt.want)
		})
	}
}

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && !a.Is4In6()
}

func TestSecondUpdateDuringSwapKeepsMachineRunning(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Delays.Update = 250 * time.Millisecond })
	h.CreateApp("twice")
	m := h.StartedMachine("twice")
	h.Do("POST", "/v1/apps/twice/machines/"+m.ID, map[string]any{"config": flysimtest.BaseConfig()}).Expect(t, 200, nil)
	if mi, _ := h.srv.Machine("twice", m.ID); mi.State != StateReplacing {
		t.Fatalf("the first swap ended before the second update: %s", mi.State)
	}
	h.Do("POST", "/v1/apps/twice/machines/"+m.ID, map[string]any{"config": flysimtest.BaseConfig()}).Expect(t, 200, nil)
	h.WaitSettled("twice", m.ID, StateStarted)
}

func stopMachine(h *harness, app, id string) {
	h.t.Helper()
	h.Do("POST", "/v1/apps/"+app+"/machines/"+id+"/stop", nil).Expect(h.t, 200, nil)
	h.WaitFor(app, id, StateStopped)
}
