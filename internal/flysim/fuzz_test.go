package flysim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

// fuzzServer is an in-process emulator with one app and one machine, driven without a network.
func fuzzServer(f *testing.F) (*Server, string) {
	srv := New(Options{Orgs: []OrgToken{{Token: tokenA, Org: orgA}}, Seed: 1, Delays: quickDelays, DisableRateLimits: true})
	f.Cleanup(srv.Close)
	send(srv, "POST", "/v1/apps", []byte(`{"app_name":"fuzz","org_slug":"org-a"}`))
	rec := send(srv, "POST", "/v1/apps/fuzz/machines", []byte(`{"config":{"image":"nginx"},"skip_launch":true}`))
	var m flysimtest.Machine
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m.ID == "" {
		f.Fatalf("fixture machine: %s", rec.Body)
	}
	return srv, m.ID
}

func send(srv *Server, method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tokenA)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

// checkAnswer fails unless the status is one of allowed and the body is well-formed: JSON, and for
// errors Fly's {"error": "..."} with a message.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	if !slices.Contains(allowed, rec.Code) {
		t.Fatalf("status %d not in %v; body %s", rec.Code, allowed, rec.Body)
	}
	if rec.Header().Get("fly-request-id") == "" {
		t.Fatal("no fly-request-id")
	}
	if rec.Body.Len() == 0 {
		return
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("answer is not JSON: %q", rec.Body)
	}
	if rec.Code >= 400 {
		var e errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("error answer without an error message: %s", rec.Body)
		}
	}
}

// checkConfigRoundTrip: an accepted config comes back with every field it was sent with, values
// unchanged (apart from Fly's autostop normalisation).
func checkConfigRoundTrip(t *testing.T, sent []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	var req struct{ Config json.RawMessage }
	var resp struct{ Config json.RawMessage }
	if json.Unmarshal(sent, &req) != nil || json.Unmarshal(rec.Body.Bytes(), &resp) != nil {
		t.Fatalf("accepted body or answer does not decode: %s", rec.Body)
	}
	var want, got any
	if err := decodeJSON(req.Config, &want); err != nil {
		t.Fatalf("accepted config does not decode: %v", err)
	}
	if err := decodeJSON(resp.Config, &got); err != nil {
		t.Fatalf("answered config does not decode: %v", err)
	}
	normalizeConfig(want.(map[string]any))
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("config changed on the round trip:\nsent %s\ngot  %s", req.Config, resp.Config)
	}
}

var machineBodySeeds = []string{
	`{"config":{"image":"nginx"}}`,
	`{"name":"a","region":"ams","skip_launch":true,"lease_ttl":30,"config":{"image":"registry.fly.io/x:1","guest":{"cpu_kind":"performance","cpus":2,"memory_mb":4096}}}`,
	`{"config":{"image":"nginx","services":[{"protocol":"tcp","internal_port":80,"autostop":"suspend","ports":[{"port":443,"handlers":["tls","http"]}]}]}}`,
	`{"config":{"image":"nginx","checks":{"h":{"type":"http","interval":15000000000}},"x":{"y":[1,2.5e3,null]}}}`,
	`{"config":{"image":"nginx","metadata":{"a":"b"},"env":{"K":"<v>"}},"min_secrets_version":0}`,
	`{"config":{"image":5}}`, `{"config":[]}`, `{"config":{"guest":{"memory_mb":1.5}}}`, `{`, `null`, `[]`, ``,
	`{"config":{"image":"nginx","services":[{"protocol":"tcp","internal_port":80,"autostop":"off"}]},"current_version":"x"}`,
}

func FuzzCreateMachineBody(f *testing.F) {
	srv, _ := fuzzServer(f)
	for _, s := range machineBodySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := send(srv, "POST", "/v1/apps/fuzz/machines", body)
		checkAnswer(t, rec, 200, 400, 412, 413, 422)
		if rec.Code == 200 {
			checkConfigRoundTrip(t, body, rec)
		}
	})
}

func FuzzUpdateMachineBody(f *testing.F) {
	srv, id := fuzzServer(f)
	for _, s := range machineBodySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := send(srv, "POST", "/v1/apps/fuzz/machines/"+id, body)
		checkAnswer(t, rec, 200, 400, 409, 412, 413, 422)
		if rec.Code == 200 {
			checkConfigRoundTrip(t, body, rec)
		}
	})
}

func FuzzCreateAppBody(f *testing.F) {
	srv, _ := fuzzServer(f)
	for _, s := range []string{
		`{"app_name":"x","org_slug":"org-a"}`, `{"name":"y","org_slug":"org-a","network":"n-1"}`,
		`{"name":"z","org_slug":"org-b"}`, `{"name":"Z","org_slug":"org-a"}`, `{"org_slug":"org-a","idempotency_key":"k"}`, `{"name":1}`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAnswer(t, send(srv, "POST", "/v1/apps", body), 201, 400, 403, 413, 422)
	})
}

func FuzzSecretsAndMetadataBodies(f *testing.F) {
	srv, id := fuzzServer(f)
	for _, s := range []string{
		`{"values":{"A":"1","B":null}}`, `{"values":{}}`, `{"values":{"a-b":"x"}}`, `{"value":"v"}`,
		`{"metadata":{"k":"v","j":null},"machine_version":""}`, `{"ttl":5,"description":"d"}`, `{"signal":9}`, `{"signal":"SIGTERM","timeout":"5s"}`,
	} {
		f.Add([]byte(s))
	}
	base := "/v1/apps/fuzz/machines/" + id
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAnswer(t, send(srv, "POST", "/v1/apps/fuzz/secrets", body), 200, 400, 413)
		checkAnswer(t, send(srv, "POST", "/v1/apps/fuzz/secrets/NAME", body), 201, 400, 413)
		checkAnswer(t, send(srv, "PATCH", base+"/metadata", body), 204, 400, 412, 413)
		checkAnswer(t, send(srv, "POST", base+"/metadata/k", body), 204, 400, 413)
		checkAnswer(t, send(srv, "POST", base+"/stop", body), 200, 400, 412, 413, 422)
		checkAnswer(t, send(srv, "POST", base+"/signal", body), 200, 400, 412, 413)
		checkAnswer(t, send(srv, "POST", "/v1/apps/fuzz/ip_assignments", body), 200, 400, 403, 413)
	})
}

// FuzzLeaseBody: lease endpoints answer errors in their own shape, so they are checked separately.
func FuzzLeaseBody(f *testing.F) {
	srv, id := fuzzServer(f)
	for _, s := range []string{`{"ttl":5}`, `{"ttl":-1}`, `{"ttl":"x"}`, ``, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := send(srv, "POST", "/v1/apps/fuzz/machines/"+id+"/lease", body)
		if !slices.Contains([]int{http.StatusCreated, 400, 409, 413}, rec.Code) || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("lease answer %d %s", rec.Code, rec.Body)
		}
		var l wireLease
		_ = json.Unmarshal(rec.Body.Bytes(), &l)
		if rec.Code != http.StatusCreated && (l.Status != "error" || l.Message == "") {
			t.Fatalf("lease error shape: %s", rec.Body)
		}
	})
}
