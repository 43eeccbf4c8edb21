package flyapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fullConfig is a config using every modelled part, with keys this package does not know at
// every level (each named x_*), the way a newer Fly API would send them.
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
		{name: "present empty objects stay", in: `{"init":{},"env":{},"guest":{}}`, want: `{"env":{},"init":{},"guest":{}}`},
		{name: "explicit max_retries 0 kept", in: `{"restart":{"policy":"on-failure","max_retries":0}}`, want: `{"restart":{"policy":"on-failure","max_retries":0}}`},
		{name: "keys differing only in case stay apart", in: `{"image":"a","IMAGE":"b"}`, want: `{"image":"a","IMAGE":"b"}`},
		{name: "nulls are dropped", in: `{"guest":null,"env":null,"image":"a"}`, want: `{"image":"a"}`},
		{name: "container healthcheck interval kept raw", in: `{"containers":[{"healthchecks":[{"interval":10,"grace_period":"5s","timeout":2}]}]}`, want: `{"containers":[{"healthchecks":[{"timeout":2,"grace_period":"5s","interval":10}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, out := roundTrip[MachineConfig](t, tt.in)
			assertPreserved(t, tt.in, out)
			if tt.want != "" && string(out) != tt.want {
				t.Errorf("encoded\n%s\nwant\n%s", out, tt.want)
			}
			// Encoding is a fixpoint: decoding the output and encoding again changes nothing.
			_, again := roundTrip[MachineConfig](t, string(out))
			if string(again) != string(out) {
				t.Errorf("second round trip differs:\n%s\n%s", out, again)
			}
			_ = cfg
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
	if cfg.Guest.MemoryMB != 512 || cfg.Checks["ready"].Kind != "readiness" || cfg.Mounts[0].Volume != "vol_123" {
		t.Errorf("decoded values wrong: %+v", cfg)
	}
	if cfg.Restart.MaxRetries == nil || *cfg.Restart.MaxRetries != 0 {
		t.Errorf("max_retries = %v", cfg.Restart.MaxRetries)
	}
}

// TestReadModifyWriteKeepsUnknownFields is the update path: read the machine, change a field,
// send the config back. Fly replaces the whole config, so anything dropped here would be wiped.
func TestReadModifyWriteKeepsUnknownFields(t *testing.T) {
	machineJSON := `{"id":"3d8d413b29d089","state":"started","config":` + fullConfig + `,"x_machine":{"k":1}}`
	var m Machine
	if err := json.Unmarshal([]byte(machineJSON), &m); err != nil {
		t.Fatal(err)
	}
	clone, err := m.Config.Clone()
	if err != nil {
		t.Fatal(err)
	}
	cfg := *clone
	cfg.Image = "registry.fly.io/app:v2"
	cfg.Env = map[string]string{"A": "2"}
	cfg.Services[0].InternalPort = 9000
	out, err := json.Marshal(UpdateMachineRequest{Config: cfg, CurrentVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	var sent struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(out, &sent); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"x_top", "processes", "containers", "dns"} {
		if _, ok := sent.Config[key]; !ok {
			t.Errorf("update body lost %q", key)
		}
	}
	svc := sent.Config["services"].([]any)[0].(map[string]any)
	if svc["x_service"] == nil || svc["internal_port"] != float64(9000) {
		t.Errorf("service = %v", svc)
	}
	port := svc["ports"].([]any)[0].(map[string]any)
	if port["x_port"] != "p" || port["tls_options"].(map[string]any)["x_tls"] != "t" {
		t.Errorf("port = %v", port)
	}
	if sent.Config["image"] != "registry.fly.io/app:v2" {
		t.Errorf("image = %v", sent.Config["image"])
	}
	// The original is untouched: Clone shares no slice or map with it.
	if m.Config.Image != "registry.fly.io/app@sha256:abc" || m.Config.Services[0].InternalPort != 8080 {
		t.Errorf("original config changed: %q, port %d", m.Config.Image, m.Config.Services[0].InternalPort)
	}
	if diff := cmp.Diff(m.Config, clone, cmpConfigOptions...); diff == "" {
		t.Errorf("the edits did not reach the clone")
	}
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

// cmpConfigOptions compare decoded values: unexported unknown members included, raw JSON
// compared by meaning (encoding compacts it).
var cmpConfigOptions = []cmp.Option{
	cmp.AllowUnexported(allConfigTypes...),
	cmp.Comparer(func(a, b json.RawMessage) bool {
		var ca, cb bytes.Buffer
		if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
			return bytes.Equal(a, b)
		}
		return bytes.Equal(ca.Bytes(), cb.Bytes())
	}),
}

// allConfigTypes lists the types with unexported unknown-member maps, for cmp.
var allConfigTypes = []any{
	Machine{}, MachineConfig{}, MachineInit{}, MachineGuest{}, MachineMount{}, MachineRestart{}, StopConfig{},
	MachineMetrics{}, MachineStatic{}, MachineRootfs{}, CacheDrive{}, SpotConfig{}, MachineService{},
	MachineConcurrency{}, MachinePort{}, TLSOptions{}, HTTPOptions{}, HTTPResponseOptions{}, ReplayCacheRule{},
	ProxyProtoOptions{}, MachineCheck{}, CheckHeader{}, MachineProcess{}, EnvFrom{}, ProcessSecret{}, MachineFile{},
	MachineDNS{}, DNSOption{}, DNSForwardRule{}, ContainerConfig{}, ContainerDependency{}, ContainerMount{},
	ContainerHealthcheck{}, ContainerHTTPHealthcheck{}, ContainerTCPHealthcheck{}, ContainerExecHealthcheck{},
	ContainerVolume{}, ContainerTempDir{}, ImageRef{}, MachineEvent{}, CheckStatus{}, MachineLeaseInfo{}, ContainerStatus{},
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"bad duration string", `{"stop_config":{"timeout":"ten seconds"}}`, "invalid duration"},
		{"fractional nanoseconds", `{"stop_config":{"timeout":1.5}}`, "whole number"},
		{"duration as bool", `{"stop_config":{"timeout":true}}`, "duration"},
		{"autostop as number", `{"services":[{"autostop":1}]}`, "autostop"},
		{"config is an array", `[]`, "decoding"},
		{"wrong type in a known field", `{"guest":{"cpus":"two"}}`, "cpus"},
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
