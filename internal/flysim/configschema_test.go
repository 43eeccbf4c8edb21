package flysim

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

// fullConfig uses every field of fly-go's MachineConfig (machine_types.go) and the OpenAPI-only ones
// of §6, at every level, with values the emulator's validation accepts.
const fullConfig = `{
  "image": "registry.fly.io/demo:v1",
  "env": {"A": "1"},
  "init": {"exec": ["/bin/app"], "entrypoint": ["/init"], "cmd": ["serve"], "tty": true, "swap_size_mb": 0, "kernel_args": ["quiet"]},
  "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256, "max_memory_mb": 512, "gpus": 0, "gpu_kind": "", "host_dedication_id": "",
            "persist_rootfs": "never", "kernel_args": ["x"], "required_host_features": ["f"]},
  "metadata": {"k": "v"},
  "mounts": [{"encrypted": true, "path": "/data", "size_gb": 1, "volume": "vol_1234567890abcdef", "name": "data",
              "extend_threshold_percent": 80, "add_size_gb": 1, "size_gb_limit": 10, "add_size_percent": 10, "min_add_size_gb": 1}],
  "services": [{
    "protocol": "tcp", "internal_port": 8080, "autostop": true, "autostart": true, "min_machines_running": 0,
    "force_instance_key": null, "force_instance_description": "d",
    "ports": [{"port": 80, "handlers": ["http"], "force_https": false,
               "tls_options": {"alpn": ["h2"], "versions": ["TLSv1.3"], "default_self_signed": false},
               "http_options": {"compress": true, "h2_backend": false, "idle_timeout": 60, "headers_read_timeout": 10,
                                "response": {"headers": {"X-A": "b", "X-B": ["c", "d"]}, "pristine": false},
                                "replay_cache": [{"path_prefix": "/", "ttl_seconds": 10, "type": "cookie", "name": "s", "allow_bypass": true}]},
               "proxy_proto_options": {"version": "v2", "fly_src": true}},
              {"start_port": 9000, "end_port": 9001, "handlers": []}],
    "checks": [{"port": 8080, "type": "http", "interval": "15s", "timeout": "2s", "grace_period": "1s", "method": "GET", "path": "/",
                "protocol": "http", "tls_skip_verify": false, "tls_server_name": "x", "headers": [{"name": "H", "values": ["v"]}]}],
    "concurrency": {"type": "requests", "hard_limit": 25, "soft_limit": 20}
  }],
  "metrics": {"port": 9091, "path": "/metrics", "https": false},
  "checks": {"alive": {"port": 8080, "type": "tcp", "kind": "readiness", "interval": "15s", "timeout": "2s", "grace_period": "5s",
                       "method": "GET", "path": "/", "protocol": "http", "tls_skip_verify": false, "tls_server_name": "x",
                       "headers": [{"name": "H", "values": ["v"]}]}},
  "statics": [{"guest_path": "/public", "url_prefix": "/static", "tigris_bucket": "b", "index_document": "index.html"}],
  "files": [{"guest_path": "/etc/app.conf", "raw_value": "YQ==", "mode": 420}, {"guest_path": "/etc/s", "secret_name": "S"},
            {"guest_path": "/etc/i", "image_config": "img"}],
  "schedule": "daily",
  "auto_destroy": false,
  "restart": {"policy": "on-failure", "max_retries": 3},
  "dns": {"skip_registration": false, "nameservers": ["1.1.1.1"], "searches": ["x"], "options": [{"name": "ndots", "value": "1"}],
          "dns_forward_rules": [{"basename": "b", "addr": "a"}], "hostname": "h", "hostname_fqdn": "h.x"},
  "processes": [{"exec": ["a"], "entrypoint": ["b"], "cmd": ["c"], "user": "u", "env": {"B": "2"},
                 "secrets": [{"env_var": "E", "name": "N"}], "ignore_app_secrets": true, "env_from": [{"env_var": "ID", "field_ref": "id"}]}],
  "standbys": ["3d8d413b29d089"],
  "stop_config": {"timeout": "10s", "signal": "SIGTERM"},
  "containers": [{"name": "c", "image": "i", "exec": ["e"], "entrypoint": ["p"], "cmd": ["c"], "user": "u", "env": {"C": "3"},
                  "secrets": [{"env_var": "E", "name": "N"}], "env_from": [{"env_var": "R", "field_ref": "region"}],
                  "files": [{"guest_path": "/f", "raw_value": "YQ=="}], "restart": {"policy": "always"}, "stop": {"timeout": "5s", "signal": "SIGINT"},
                  "depends_on": [{"name": "d", "condition": "healthy"}],
                  "healthchecks": [{"name": "h", "interval": 10, "grace_period": 5, "success_threshold": 1, "failure_threshold": 3, "timeout": 2,
                                    "kind": "readiness", "unhealthy": "stop",
                                    "http": {"port": 80, "method": "GET", "path": "/", "headers": [{"name": "H", "values": ["v"]}], "scheme": "http",
                                             "tls_skip_verify": false, "tls_server_name": "s"},
                                    "tcp": {"port": 80}, "exec": {"command": ["true"]}}],
                  "mounts": [{"name": "scratch", "path": "/scratch"}]}],
  "volumes": [{"name": "scratch", "temp_dir": {"storage_type": "disk", "size_mb": 100}, "image": "i"}],
  "rootfs": {"persist": "always", "size_gb": 2},
  "cache_drive": {"size_mb": 100},
  "spot": {"max_price_fraction": 0.5},
  "disable_machine_autostart": false
}`

// freeMaps are the config objects whose keys are the user's (not field names): an unknown key there
// is data and must be kept.
var freeMaps = map[string]bool{"env": true, "metadata": true, "checks": true, "headers": true}

// withUnknownKeys adds "zz_unknown" to every object of v that is not a free map, at every level.
func withUnknownKeys(v any, key string) {
	switch x := v.(type) {
	case map[string]any:
		free := freeMaps[key]
		for k, fv := range x {
			if free {
				withUnknownKeys(fv, "")
			} else {
				withUnknownKeys(fv, k)
			}
		}
		if !free {
			x["zz_unknown"] = map[string]any{"nested": true}
		}
	case []any:
		for _, e := range x {
			withUnknownKeys(e, "")
		}
	}
}

func decodeAny(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return v
}

func TestTypedConfigKeepsKnownFieldsAndDropsTheRest(t *testing.T) {
	full := decodeAny(t, []byte(fullConfig))
	noisy := decodeAny(t, []byte(fullConfig))
	withUnknownKeys(noisy, "")

	tests := []struct {
		name    string
		profile Profile
		sent    any
		want    any
	}{
		{"typed: every known field kept at every level", Profile{TypedConfig: true}, full, full},
		{"typed: unknown keys dropped at every level", Profile{TypedConfig: true}, noisy, full},
		{"fast: unknown keys kept", Profile{}, noisy, noisy},
		{"typed: the deprecated size preset is a field", Profile{TypedConfig: true},
			map[string]any{"image": "nginx", "size": "shared-cpu-2x", "custom": 1}, map[string]any{"image": "nginx", "size": "shared-cpu-2x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withProfile(tt.profile))
			h.CreateApp("typed")
			var created flysimtest.Machine
			h.Do("POST", "/v1/apps/typed/machines", map[string]any{"config": tt.sent, "skip_launch": true}).Expect(t, http.StatusOK, &created)
			if got := decodeAny(t, created.Config); !reflect.DeepEqual(got, tt.want) {
				gotJSON, _ := json.MarshalIndent(got, "", " ")
				t.Errorf("create answered config\n%s", gotJSON)
			}
			// What is stored is what GET serves.
			if got := decodeAny(t, h.GetMachine("typed", created.ID).Config); !reflect.DeepEqual(got, tt.want) {
				t.Error("GET serves another config than create answered")
			}
		})
	}
}

func TestTypedConfigOnUpdateAndOutOfBand(t *testing.T) {
	h := newHarness(t, withProfile(Profile{TypedConfig: true}))
	h.CreateApp("typed")
	m := h.CreateMachine("typed", map[string]any{"skip_launch": true})
	svc := map[string]any{"name": "public", "protocol": "tcp", "internal_port": 8080,
		"ports": []any{map[string]any{"port": 80, "handlers": []any{"http"}}}}
	cfg := flysimtest.ConfigWith([]any{svc})
	cfg["custom"] = "x"
	var updated flysimtest.Machine
	h.Do("POST", "/v1/apps/typed/machines/"+m.ID, map[string]any{"config": cfg}).Expect(t, http.StatusOK, &updated)
	var got struct {
		Custom   *string
		Services []map[string]any
	}
	if err := json.Unmarshal(updated.Config, &got); err != nil {
		t.Fatal(err)
	}
	if got.Custom != nil || len(got.Services) != 1 || got.Services[0]["name"] != nil || got.Services[0]["internal_port"] != 8080.0 {
		t.Errorf("update stored %s", updated.Config)
	}
	// The proxy simulator reads no service name then.
	if snap, _, _ := h.srv.SnapshotMachine("typed", m.ID); len(snap.Services) != 1 || snap.Services[0].Name != "" {
		t.Errorf("services %+v", snap.Services)
	}
	if err := h.srv.UpdateOutOfBand("typed", m.ID, func(c map[string]any) { c["flyctl_extra"] = true }); err != nil {
		t.Fatal(err)
	}
	if info, _ := h.srv.Machine("typed", m.ID); decodeAny(t, info.Config).(map[string]any)["flyctl_extra"] != nil {
		t.Errorf("an out-of-band update kept an unknown key: %s", info.Config)
	}
}
