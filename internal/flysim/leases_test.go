package flysim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

type wireLease struct {
	Status string `json:"status"`
	Data   struct {
		Nonce       string `json:"nonce"`
		ExpiresAt   int64  `json:"expires_at"`
		Owner       string `json:"owner"`
		Description string `json:"description"`
		Version     string `json:"version"`
	} `json:"data"`
	Message string `json:"message"`
	Code    string `json:"code"`
}

func TestLeases(t *testing.T) {
	clock := flysimtest.NewClock()
	h := newHarness(t, func(o *Options) {
		o.Now = clock.Now
		o.Orgs = append(o.Orgs, OrgToken{Token: "tok-a2", Org: orgA}) // a second actor in org A
	})
	h.CreateApp("lease")
	m := h.CreateMachine("lease", map[string]any{"skip_launch": true})
	base := "/v1/apps/lease/machines/" + m.ID + "/lease"
	other := h.As("tok-a2")

	h.Do("GET", base, nil).Expect(t, http.StatusNotFound, nil)
	var l wireLease
	h.Do("GET", base, nil).Expect(t, 404, &l)
	if l.Status != "error" || l.Message != "lease not found" {
		t.Errorf("no-lease body %+v", l)
	}

	// Acquire with the ttl in the body.
	h.Do("POST", base, map[string]any{"ttl": 60, "description": "deploying"}).Expect(t, http.StatusCreated, &l)
	if l.Status != "success" || !nonceRE.MatchString(l.Data.Nonce) || l.Data.ExpiresAt != clock.Now().Add(time.Minute).Unix() ||
		l.Data.Description != "deploying" || l.Data.Version != m.Version || l.Data.Owner == "" {
		t.Errorf("acquire answer %+v", l)
	}
	nonce := l.Data.Nonce
	if strings.Contains(l.Data.Owner, tokenA) {
		t.Error("lease owner reveals the token")
	}

	// Someone else: 409 with Fly's message in the lease error shape.
	var conflict wireLease
	other.Do("POST", base, nil).Expect(t, http.StatusConflict, &conflict)
	want := "machine ID " + m.ID + " lease currently held by " + l.Data.Owner + ", expires at " +
		clock.Now().Add(time.Minute).Format("2006-01-02 15:04:05 +0000 UTC")
	if conflict.Status != "error" || conflict.Code != "invalid" || conflict.Message != want {
		t.Errorf("409 body %+v\nwant message %q", conflict, want)
	}
	other.Do("POST", base, nil, leaseNonceHeader, "000000000000").Expect(t, http.StatusConflict, nil)

	// Refresh with the nonce header and a query ttl (fly-go's form).
	clock.Advance(30 * time.Second)
	h.Do("POST", base+"?ttl=120", nil, leaseNonceHeader, nonce).Expect(t, http.StatusCreated, &l)
	if l.Data.Nonce != nonce || l.Data.ExpiresAt != clock.Now().Add(2*time.Minute).Unix() {
		t.Errorf("refresh answer %+v", l)
	}
	h.Do("GET", base, nil).Expect(t, 200, &l)
	if l.Data.Nonce != nonce {
		t.Errorf("get lease %+v", l)
	}

	// Release needs the nonce.
	h.Do("DELETE", base, nil).Expect(t, http.StatusBadRequest, &l)
	if l.Code != "invalid" {
		t.Errorf("missing nonce body %+v", l)
	}
	h.Do("DELETE", base, nil, leaseNonceHeader, "ffffffffffff").Expect(t, http.StatusBadRequest, nil)
	var released map[string]any
	h.Do("DELETE", base, nil, leaseNonceHeader, nonce).Expect(t, 200, &released)
	if released["status"] != "success" {
		t.Errorf("release answer %v", released)
	}
	h.Do("DELETE", base, nil, leaseNonceHeader, nonce).Expect(t, http.StatusNotFound, nil)
	h.Do("GET", base, nil).Expect(t, http.StatusNotFound, nil)

	// Leases expire by the clock: the other actor can take it afterwards.
	h.Do("POST", base+"?ttl=10", nil).Expect(t, 201, &l)
	clock.Advance(11 * time.Second)
	other.Do("POST", base, nil).Expect(t, 201, nil)

	for _, q := range []string{"?ttl=x", "?ttl=0"} {
		h.Do("POST", "/v1/apps/lease/machines/"+m.ID+"/lease"+q, nil).Expect(t, 400, nil)
	}
	h.Do("POST", base, map[string]any{"ttl": -1}).Expect(t, 400, nil)
	h.Do("POST", "/v1/apps/lease/machines/aaaaaaaaaaaaaa/lease", nil).ExpectError(t, 404, "machine not found")
}

// TestLeaseGuardsMutations: while leased, the guarded actions need the nonce (409 without);
// metadata, signal and reads are not guarded.
func TestLeaseGuardsMutations(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("guard")
	m := h.StartedMachine("guard")
	base := "/v1/apps/guard/machines/" + m.ID
	var l wireLease
	h.Do("POST", base+"/lease", map[string]any{"ttl": 300}).Expect(t, 201, &l)
	nonce := l.Data.Nonce

	guarded := []struct{ method, path string }{
		{"POST", base + "/stop"}, {"POST", base + "/start"}, {"POST", base + "/restart"}, {"POST", base + "/suspend"},
		{"POST", base + "/cordon"}, {"POST", base + "/uncordon"}, {"DELETE", base + "?force=true"},
	}
	for _, g := range guarded {
		for _, bad := range []string{"", "ffffffffffff"} {
			e := h.Do(g.method, g.path, nil, leaseNonceHeader, bad).ExpectError(t, http.StatusConflict, "")
			if !strings.Contains(e.Error, "lease currently held by") {
				t.Errorf("%s %s: %q", g.method, g.path, e.Error)
			}
		}
	}
	h.Do("POST", base, map[string]any{"config": flysimtest.BaseConfig()}).ExpectError(t, http.StatusConflict, "")
	if got := h.GetMachine("guard", m.ID); got.State != StateStarted || got.Version != m.Version {
		t.Fatalf("a refused mutation changed the machine: %s %s", got.State, got.Version)
	}

	// Not guarded.
	h.Do("POST", base+"/metadata/k", map[string]any{"value": "v"}).Expect(t, http.StatusNoContent, nil)
	h.Do("POST", base+"/signal", map[string]any{"signal": "SIGHUP"}).Expect(t, 200, nil)

	// With the nonce it works.
	h.Do("POST", base+"/cordon", nil, leaseNonceHeader, nonce).Expect(t, 200, nil)
	h.Do("POST", base, map[string]any{"config": flysimtest.BaseConfig(), "current_version": m.Version}, leaseNonceHeader, nonce).Expect(t, 200, nil)
	h.WaitFor("guard", m.ID, StateStarted)
	h.Do("DELETE", base+"?force=true", nil, leaseNonceHeader, nonce).Expect(t, 200, nil)
	// Destroy drops the lease.
	h.WaitFor("guard", m.ID, StateDestroyed)
	h.Do("GET", base+"/lease", nil).Expect(t, http.StatusNotFound, nil)
	h.Do("POST", base+"/lease", nil).ExpectError(t, http.StatusPreconditionFailed, "")
}
