package flyapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fullConfig is a config using every part of Fly's config (docs/fly-api.md §6), modelled or not,
// with keys nobody knows yet at every level (each named x_*), the way a newer Fly API would send
// them. The parts this package does not model are listed in unmodelledConfigMembers and
// unmodelledPortMembers.
const fullConfig = `{
  "image": "registry.fly.io/app@sha256:abc",
  "env": {"A": "1"},
  "init": {"exec": ["/bin/sh"], "entrypoint": ["tini"], "cmd": ["serve"], "tty": true, "swap_size_mb": 512, "kernel_args": ["quiet"], "x_init": 1},
  "guest": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 512, "max_memory_mb": 1024, "gpus": 1, "gpu_kind": "a10", "host_dedication_id": "h", "kernel_args": ["a"], "persist_rootfs": "always", "required_host_features": ["f"], "x_guest": {"nested": [1, 2]}},
  "size": "",
  "metadata": {"hangar.dev/uid": "u1"},
  "services": [{
    "protocol": "tcp", "internal_port": 8080,
    "ports": [{"port": 443, "handlers": ["tls", "http"], "force_https": true,
      "tls_options": {"alpn": ["h2"], "versions": ["TLSv1.3"], "default_self_signed": true, "x_tls": "t"},
      "http_options": {"compress": true, "h2_backend": true, "idle_timeout": 60, "headers_read_timeout": 10,
        "response": {"headers": {"X-One": "a", "X-Many": ["b", "c"]}, "pristine": true, "x_resp": 1},
        "replay_cache": [{"path_prefix": "/", "ttl_seconds": 300, "type": "cookie", "name": "s", "allow_bypass": true, "x_rc": 1}],
        "x_http": true},
      "proxy_proto_options": {"version": "v2", "fly_src": true, "x_pp": 1},
      "x_port": "p"},
      {"start_port": 10000, "end_port": 10010, "handlers": []}],
    "autostart": false, "autostop": "suspend", "min_machines_running": 0,
    "concurrency": {"type": "requests", "soft_limit": 20, "hard_limit": 25, "x_conc": 1},
    "checks": [{"type": "http", "port": 8080, "interval": "15s", "timeout": "2s", "grace_period": "1s", "method": "GET", "path": "/healthz", "protocol": "http", "tls_skip_verify": true, "tls_server_name": "x", "headers": [{"name": "H", "values": ["v"], "x_h": 1}], "x_check": 1}],
    "force_instance_key": "k", "force_instance_description": "d",
    "x_service": {"a": "b"}}],
  "checks": {"ready": {"type": "tcp", "port": 9090, "interval": "30s", "kind": "readiness", "x_top_check": 2}},
  "mounts": [{"volume": "vol_123", "path": "/data", "name": "data", "encrypted": true, "size_gb": 1, "extend_threshold_percent": 80, "add_size_gb": 1, "add_size_percent": 10, "min_add_size_gb": 1, "size_gb_limit": 10, "x_mount": 1}],
  "restart": {"policy": "on-failure", "max_retries": 0, "x_restart": "r"},
  "auto_destroy": true,
  "schedule": "daily",
  "processes": [{"exec": ["a"], "entrypoint": ["b"], "cmd": ["c"], "user": "u", "env": {"E": "1"},
    "env_from": [{"env_var": "ID", "field_ref": "id", "x_ef": 1}], "secrets": [{"env_var": "S", "name": "s", "x_ps": 1}], "ignore_app_secrets": true, "x_proc": 1}],
  "files": [{"guest_path": "/etc/a", "raw_value": "aGk=", "mode": 420, "x_file": 1}, {"guest_path": "/etc/b", "secret_name": "s"}],
  "dns": {"skip_registration": true, "nameservers": ["1.1.1.1"], "searches": ["s"], "options": [{"name": "ndots", "value": "1", "x_opt": 1}],
    "dns_forward_rules": [{"basename": "b", "addr": "a", "x_fr": 1}], "hostname": "h", "hostname_fqdn": "h.f", "x_dns": 1},
  "stop_config": {"signal": "SIGTERM", "timeout": "10s", "x_stop": 1},
  "metrics": {"port": 9091, "path": "/metrics", "https": true, "x_metrics": 1},
  "statics": [{"guest_path": "/public", "url_prefix": "/static", "tigris_bucket": "b", "index_document": "index.html", "x_static": 1}],
  "standbys": ["m2"],
  "containers": [{"name": "c1", "image": "nginx", "exec": ["x"], "entrypoint": ["y"], "cmd": ["z"], "user": "root", "env": {"A": "b"},
    "secrets": [{"env_var": "S", "name": "s"}], "env_from": [{"env_var": "V", "field_ref": "version"}], "files": [{"guest_path": "/f", "raw_value": "eA=="}],
    "restart": {"policy": "always"}, "stop": {"signal": "SIGINT", "timeout": "5s"},
    "depends_on": [{"name": "c0", "condition": "healthy", "x_dep": 1}], "mounts": [{"name": "v", "path": "/v", "x_cm": 1}],
    "healthchecks": [{"name": "hc", "interval": 10, "grace_period": 5, "timeout": 2, "success_threshold": 1, "failure_threshold": 3, "kind": "readiness", "unhealthy": "stop",
      "http": {"port": 80, "method": "GET", "path": "/", "headers": [{"name": "a", "values": ["b"]}], "scheme": "http", "tls_skip_verify": true, "tls_server_name": "n", "x_hh": 1},
      "tcp": {"port": 81, "x_tcp": 1}, "exec": {"command": ["true"], "x_exec": 1}, "x_hc": 1}],
    "x_container": 1}],
  "volumes": [{"name": "v", "temp_dir": {"storage_type": "memory", "size_mb": 64, "x_td": 1}, "image": "i", "x_vol": 1}],
  "rootfs": {"persist": "restart", "size_gb": 4, "x_rootfs": 1},
  "cache_drive": {"size_mb": 1024, "x_cd": 1},
  "spot": {"max_price_fraction": 0.5, "x_spot": 1},
  "disable_machine_autostart": false,
  "x_top": {"anything": ["goes", 1, null, true]}
}`

// unmodelledConfigMembers are the top-level members of fullConfig that MachineConfig does not
// model: they must travel as raw JSON, exactly as received.
var unmodelledConfigMembers = []string{
	"cache_drive", "containers", "dns", "files", "init", "metrics", "mounts", "processes", "rootfs",
	"spot", "statics", "volumes", "x_top",
}

// unmodelledPortMembers are the members of fullConfig's first service port that MachinePort does
// not model.
var unmodelledPortMembers = []string{"http_options", "proxy_proto_options", "tls_options", "x_port"}

func roundTrip[T any](t *testing.T, in string) (T, []byte) {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(in), &v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return v, out
}

func assertPreserved(t *testing.T, in string, out []byte) {
	t.Helper()
	a, err := decodeGeneric([]byte(in))
	if err != nil {
		t.Fatalf("input: %v", err)
	}
	b, err := decodeGeneric(out)
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	if diff := preserved(a, b); diff != "" {
		t.Errorf("%s\noutput: %s", diff, out)
	}
}

func TestMachineConfigRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   string
		// want, when set, is the exact expected encoding.
		want string
	}{
		{name: "every part with unknown keys at every level", in: fullConfig},
		{name: "empty", in: `{}`, want: `{}`},
		{name: "only unknown keys", in: `{"b":1,"a":{"z":[]}}`, want: `{"a":{"z":[]},"b":1}`},
		{name: "autostop false reads as off", in: `{"services":[{"autostop":false}]}`, want: `{"services":[{"autostop":"off"}]}`},
		{name: "autostop true reads as stop", in: `{"services":[{"autostop":true}]}`, want: `{"services":[{"autostop":"stop"}]}`},
		{name: "autostop strings kept", in: `{"services":[{"autostop":"suspend"},{"autostop":"off"}]}`, want: `{"services":[{"autostop":"suspend"},{"autostop":"off"}]}`},
		{name: "explicit autostart false kept", in: `{"services":[{"autostart":false}]}`, want: `{"services":[{"autostart":false}]}`},
		{name: "duration strings", in: `{"checks":{"c":{"interval":"15s","timeout":"1m","grace_period":"0s"}}}`, want: `{"checks":{"c":{"interval":"15s","timeout":"1m0s","grace_period":"0s"}}}`},
		{name: "duration nanoseconds", in: `{"stop_config":{"timeout":10000000000},"checks":{"c":{"interval":1.5e10}}}`, want: `{"checks":{"c":{"interval":"15s"}},"stop_config":{"timeout":"10s"}}`},
		{name: "empty handlers mean raw TCP and stay", in: `{"services":[{"ports":[{"port":5432,"handlers":[]}]}]}`, want: `{"services":[{"ports":[{"port":5432,"handlers":[]}]}]}`},
		{name: "present empty objects stay", in: `{"init":{},"env":{},"guest":{}}`, want: `{"env":{},"guest":{},"init":{}}`},
		{name: "explicit max_retries 0 kept", in: `{"restart":{"policy":"on-failure","max_retries":0}}`, want: `{"restart":{"policy":"on-failure","max_retries":0}}`},
		{name: "keys differing only in case stay apart", in: `{"image":"a","IMAGE":"b"}`, want: `{"image":"a","IMAGE":"b"}`},
		{name: "nulls are dropped", in: `{"guest":null,"env":null,"image":"a"}`, want: `{"image":"a"}`},
		// Unmodelled parts are not decoded at all: member order, zero values, numbers and nulls
		// inside them come back exactly as sent (only the whitespace between tokens goes).
		{name: "unmodelled parts kept exactly as sent", in: `{"mounts": [{"path": "/data", "volume": "vol_1", "size_gb": 0}], "containers":[{"healthchecks":[{"interval":10,"grace_period":"5s","timeout":2.0}]}], "init":{}}`, want: `{"containers":[{"healthchecks":[{"interval":10,"grace_period":"5s","timeout":2.0}]}],"init":{},"mounts":[{"path":"/data","volume":"vol_1","size_gb":0}]}`},
		{name: "unmodelled null kept", in: `{"dns":null,"image":"a"}`, want: `{"image":"a","dns":null}`},
		{name: "unmodelled port options kept exactly as sent", in: `{"services":[{"ports":[{"tls_options":{"versions":["TLSv1.3"],"alpn":[]},"port":443,"http_options":{"response":{"headers":{"a":["b"],"c":"d"}}}}]}]}`, want: `{"services":[{"ports":[{"port":443,"http_options":{"response":{"headers":{"a":["b"],"c":"d"}}},"tls_options":{"versions":["TLSv1.3"],"alpn":[]}}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out := roundTrip[MachineConfig](t, tt.in)
			assertPreserved(t, tt.in, out)
			if tt.want != "" && string(out) != tt.want {
				t.Errorf("encoded\n%s\nwant\n%s", out, tt.want)
			}
			// Encoding is a fixpoint: decoding the output and encoding again changes nothing.
			_, again := roundTrip[MachineConfig](t, string(out))
			if string(again) != string(out) {
				t.Errorf("second round trip differs:\n%s\n%s", out, again)
			}
		})
	}
}

func TestMachineConfigDecodedValues(t *testing.T) {
	cfg, _ := roundTrip[MachineConfig](t, fullConfig)
	svc := cfg.Services[0]
	if svc.Autostart == nil || *svc.Autostart || svc.Autostop != AutostopSuspend {
		t.Errorf("autostart/autostop = %v/%q", svc.Autostart, svc.Autostop)
	}
	if got := svc.Checks[0].Interval.Std(); got != 15*time.Second {
		t.Errorf("interval = %v", got)
	}
	if got := cfg.StopConfig.Timeout.Std(); got != 10*time.Second {
		t.Errorf("stop timeout = %v", got)
	}
	if cfg.Guest.MemoryMB != 512 || cfg.Checks["ready"].Kind != "readiness" || cfg.Schedule != "daily" || !slices.Equal(cfg.Standbys, []string{"m2"}) {
		t.Errorf("decoded values wrong: %+v", cfg)
	}
	if ports := svc.Ports; len(ports) != 2 || ports[0].Port != 443 || !ports[0].ForceHTTPS ||
		ports[1].StartPort != 10000 || ports[1].EndPort != 10010 || ports[1].Handlers == nil || len(ports[1].Handlers) != 0 {
		t.Errorf("ports = %+v, want 443 with force_https and the range 10000-10010 with an empty (not absent) handler list", ports)
	}
	if cfg.Restart.MaxRetries == nil || *cfg.Restart.MaxRetries != 0 {
		t.Errorf("max_retries = %v", cfg.Restart.MaxRetries)
	}
}

// TestUnmodelledPartsTravelRaw checks where the parts this package does not model go: into the
// unknown members of the object holding them, as the exact bytes received, and back out unchanged.
func TestUnmodelledPartsTravelRaw(t *testing.T) {
	cfg, out := roundTrip[MachineConfig](t, fullConfig)
	in := membersOf(t, []byte(fullConfig))
	inPort := membersOf(t, firstPort(t, in))
	encoded := membersOf(t, out)
	encodedPort := membersOf(t, firstPort(t, encoded))

	if diff := cmp.Diff(unmodelledConfigMembers, sortedKeys(cfg.unknown)); diff != "" {
		t.Errorf("unknown members of the config (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(unmodelledPortMembers, sortedKeys(cfg.Services[0].Ports[0].unknown)); diff != "" {
		t.Errorf("unknown members of the port (-want +got):\n%s", diff)
	}
	assertSameBytes(t, "decoded config", in, cfg.unknown, unmodelledConfigMembers)
	assertSameBytes(t, "decoded port", inPort, cfg.Services[0].Ports[0].unknown, unmodelledPortMembers)
	assertSameBytes(t, "encoded config", in, encoded, unmodelledConfigMembers)
	assertSameBytes(t, "encoded port", inPort, encodedPort, unmodelledPortMembers)
}

// TestReadModifyWriteKeepsUnknownFields is the update path over HTTP: get the machine, change
// managed fields on a clone of its config, send it back. Fly replaces the whole config, so
// anything dropped here would be wiped.
func TestReadModifyWriteKeepsUnknownFields(t *testing.T) {
	machineJSON := `{"id":"3d8d413b29d089","state":"started","version":"v1","config":` + fullConfig + `,"x_machine":{"k":1}}`
	rec := &recorder{t: t, status: http.StatusOK, body: machineJSON, header: http.Header{"Content-Type": {"application/json"}}}
	c, _ := newTestClient(t, rec, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
	ctx := context.Background()

	m, err := c.GetMachine(ctx, "app", "3d8d413b29d089")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := m.Config.Clone()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Image = "registry.fly.io/app:v2"
	cfg.Env = map[string]string{"A": "2"}
	cfg.Services[0].InternalPort = 9000
	if _, err := c.UpdateMachine(ctx, "app", m.ID, UpdateMachineRequest{Config: *cfg, CurrentVersion: m.Version}); err != nil {
		t.Fatal(err)
	}
	if len(rec.requests) != 2 || rec.requests[1].method != http.MethodPost {
		t.Fatalf("requests = %+v, want a GET then the update", rec.requests)
	}
	sent := membersOf(t, []byte(rec.requests[1].body))["config"]

	// The body is the config read with exactly the three edits: nothing lost, nothing added
	// (apart from the rewrites preserved allows, both ways).
	want, err := decodeGeneric([]byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	wantConfig := want.(map[string]any)
	wantConfig["image"] = "registry.fly.io/app:v2"
	wantConfig["env"] = map[string]any{"A": "2"}
	wantConfig["services"].([]any)[0].(map[string]any)["internal_port"] = json.Number("9000")
	got, err := decodeGeneric(sent)
	if err != nil {
		t.Fatal(err)
	}
	if diff := preserved(wantConfig, got); diff != "" {
		t.Errorf("update body lost or changed a member: %s\nbody: %s", diff, sent)
	}
	if diff := preserved(got, wantConfig); diff != "" {
		t.Errorf("update body has a member the read config did not: %s\nbody: %s", diff, sent)
	}
	// What is not modelled goes back byte for byte.
	in := membersOf(t, []byte(fullConfig))
	sentMembers := membersOf(t, sent)
	assertSameBytes(t, "update body", in, sentMembers, unmodelledConfigMembers)
	assertSameBytes(t, "update body's port", membersOf(t, firstPort(t, in)), membersOf(t, firstPort(t, sentMembers)), unmodelledPortMembers)

	// The config read is untouched: Clone shares no slice or map with it.
	var pristine MachineConfig
	if err := json.Unmarshal([]byte(fullConfig), &pristine); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&pristine, m.Config, cmpConfigOptions...); diff != "" {
		t.Errorf("editing the clone changed the original (-want +got):\n%s", diff)
	}
}

// membersOf decodes a JSON object into its raw members.
func membersOf(t *testing.T, data []byte) map[string]json.RawMessage {
	t.Helper()
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, data)
	}
	return members
}

// firstPort returns the raw first port of the first service of a config's members.
func firstPort(t *testing.T, config map[string]json.RawMessage) []byte {
	t.Helper()
	var services []struct {
		Ports []json.RawMessage `json:"ports"`
	}
	if err := json.Unmarshal(config["services"], &services); err != nil || len(services) == 0 || len(services[0].Ports) == 0 {
		t.Fatalf("no first port in services %s (%v)", config["services"], err)
	}
	return services[0].Ports[0]
}

// assertSameBytes checks that got holds each of keys with the same JSON text as want, apart from
// insignificant whitespace.
func assertSameBytes(t *testing.T, what string, want map[string]json.RawMessage, got map[string]json.RawMessage, keys []string) {
	t.Helper()
	for _, k := range keys {
		w, ok := want[k]
		if !ok {
			t.Fatalf("%s: the fixture has no %q", what, k)
		}
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: %q is missing", what, k)
			continue
		}
		var cw, cg bytes.Buffer
		if err := json.Compact(&cw, w); err != nil {
			t.Fatal(err)
		}
		if err := json.Compact(&cg, g); err != nil {
			t.Fatalf("%s: %q is not JSON: %v", what, k, err)
		}
		if !bytes.Equal(cw.Bytes(), cg.Bytes()) {
			t.Errorf("%s: %q changed\n got %s\nwant %s", what, k, cg.Bytes(), cw.Bytes())
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestMachineRoundTrip(t *testing.T) {
	in := `{
	  "id": "3d8d413b29d089", "name": "aged-thunder-7371", "state": "started", "region": "ord",
	  "instance_id": "01HEPA330HZ37A78TK080NAK1M", "version": "01HEPA330HZ37A78TK080NAK1M",
	  "private_ip": "fdaa:0:1::3", "created_at": "2023-11-08T01:52:30Z", "updated_at": "2023-11-08T01:52:31Z",
	  "config": {"image": "nginx", "services": [{"autostop": true, "x": 1}]},
	  "image_ref": {"registry": "r", "repository": "p", "tag": "t", "digest": "d", "labels": {"a": "b"}, "x_ir": 1},
	  "events": [{"id": "e1", "type": "exit", "status": "stopped", "source": "flyd", "timestamp": 1708569778000,
	              "request": {"exit_event": {"exit_code": 0, "oom_killed": false}, "restart_count": 1}, "x_ev": 1}],
	  "checks": [{"name": "c", "status": "passing", "output": "ok", "updated_at": "2023-11-08T01:52:31Z", "x_cs": 1}],
	  "nonce": "5c35f65c9f95",
	  "lease": {"description": "d", "expires_at": 1708569778, "owner": "o", "x_l": 1},
	  "host_status": "ok", "host_features": ["f"], "cordoned": true,
	  "containers": [{"name": "c1", "state": "running", "x_c": 1}],
	  "incomplete_config": null,
	  "x_machine": [1, {"a": null}]
	}`
	m, out := roundTrip[Machine](t, in)
	assertPreserved(t, in, out)
	if m.Config.Services[0].Autostop != AutostopStop || m.Events[0].Timestamp != 1708569778000 || !m.Cordoned {
		t.Errorf("decoded machine: %+v", m)
	}
	var back Machine
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, back, cmpConfigOptions...); diff != "" {
		t.Errorf("decode(encode(m)) differs (-first +second):\n%s", diff)
	}
}

// cmpConfigOptions compare decoded values: the unexported fields of this package's types (the
// unknown members) included, raw JSON compared by meaning (encoding compacts it).
var cmpConfigOptions = []cmp.Option{
	cmp.Exporter(func(t reflect.Type) bool { return t.PkgPath() == reflect.TypeFor[MachineConfig]().PkgPath() }),
	cmp.Comparer(func(a, b json.RawMessage) bool {
		var ca, cb bytes.Buffer
		if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
			return bytes.Equal(a, b)
		}
		return bytes.Equal(ca.Bytes(), cb.Bytes())
	}),
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		// Each want is specific to its failure: every decode error starts with "decoding" and
		// names the member's path, so neither alone would tell the cases apart.
		{"bad duration string", `{"stop_config":{"timeout":"ten seconds"}}`, `decoding "stop_config": decoding "timeout": invalid duration "ten seconds"`},
		{"fractional nanoseconds", `{"stop_config":{"timeout":1.5}}`, "duration 1.5 is not a whole number of nanoseconds"},
		{"duration as bool", `{"stop_config":{"timeout":true}}`, "duration must be a string or a number of nanoseconds"},
		{"autostop as number", `{"services":[{"autostop":1}]}`, "autostop must be a bool or a string"},
		{"config is an array", `[]`, "cannot unmarshal array"},
		{"wrong type in a known field", `{"guest":{"cpus":"two"}}`, `decoding "guest": decoding "cpus": json: cannot unmarshal string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg MachineConfig
			err := json.Unmarshal([]byte(tt.in), &cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
