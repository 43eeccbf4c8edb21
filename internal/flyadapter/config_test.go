package flyadapter

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
)

// current is a machine config as Fly might hold it after other tools touched it: fields hangar does
// not manage at every level.
const current = `{
  "image": "registry.fly.io/old:v0",
  "env": {"OLD": "1"},
  "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256, "kernel_args": ["quiet"]},
  "metadata": {"fly_platform_version": "v2", "stale": "x", "hangar.dev/uid": "u"},
  "services": [
    {"protocol": "tcp", "internal_port": 8080, "autostop": true, "future_service_field": 7,
     "ports": [{"port": 80, "handlers": ["http"], "http_options": {"compress": true}}]}
  ],
  "checks": {"alive": {"type": "tcp", "port": 8080, "future_check_field": "y"}},
  "mounts": [{"volume": "vol_123", "path": "/data"}],
  "auto_destroy": true,
  "future_top_level": {"a": 1}
}`

func desired() controllers.DesiredMachine {
	return controllers.DesiredMachine{
		Name: "w", Region: "ams", Image: "registry.fly.io/new:v1",
		Env:   map[string]string{"NEW": "2"},
		Guest: flyv1alpha1.Guest{CPUKind: "performance", CPUs: 2, MemoryMB: 4096},
		Services: []flyv1alpha1.MachineService{{
			Name: "public", Protocol: "tcp", InternalPort: 8080, Autostart: ptr.To(true), Autostop: "suspend",
			Ports:       []flyv1alpha1.ServicePort{{Port: 80, Handlers: []flyv1alpha1.PortHandler{"http"}}, {Port: 443, Handlers: []flyv1alpha1.PortHandler{"tls", "http"}}},
			Concurrency: &flyv1alpha1.ServiceConcurrency{Type: "requests", SoftLimit: ptr.To[int32](10), HardLimit: ptr.To[int32](20)},
		}},
		Checks:     []flyv1alpha1.MachineCheck{{Name: "alive", Type: "http", Port: 8080, Path: "/healthz", Interval: &metav1.Duration{Duration: 15e9}}},
		Restart:    &flyv1alpha1.RestartPolicy{Policy: "on-failure", MaxRetries: ptr.To[int32](3)},
		StopConfig: &flyv1alpha1.StopConfig{Signal: "SIGTERM", Timeout: &metav1.Duration{Duration: 10e9}},
		Metadata:   map[string]string{"hangar.dev/uid": "u", "team": "blue"},
	}
}

func TestApplyDesiredKeepsWhatHangarDoesNotManage(t *testing.T) {
	var cfg flyapi.MachineConfig
	if err := json.Unmarshal([]byte(current), &cfg); err != nil {
		t.Fatal(err)
	}
	applyDesired(&cfg, desired())
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"image":    "registry.fly.io/new:v1",
		"env":      map[string]any{"NEW": "2"},
		"guest":    map[string]any{"cpu_kind": "performance", "cpus": 2.0, "memory_mb": 4096.0, "kernel_args": []any{"quiet"}},
		"metadata": map[string]any{"fly_platform_version": "v2", "hangar.dev/uid": "u", "team": "blue"},
		"services": []any{map[string]any{
			"name": "public", "protocol": "tcp", "internal_port": 8080.0, "autostart": true, "autostop": "suspend", "future_service_field": 7.0,
			"concurrency": map[string]any{"type": "requests", "soft_limit": 10.0, "hard_limit": 20.0},
			"ports": []any{
				map[string]any{"port": 80.0, "handlers": []any{"http"}, "http_options": map[string]any{"compress": true}},
				map[string]any{"port": 443.0, "handlers": []any{"tls", "http"}},
			},
		}},
		"checks":           map[string]any{"alive": map[string]any{"type": "http", "port": 8080.0, "path": "/healthz", "interval": "15s", "future_check_field": "y"}},
		"restart":          map[string]any{"policy": "on-failure", "max_retries": 3.0},
		"stop_config":      map[string]any{"signal": "SIGTERM", "timeout": "10s"},
		"mounts":           []any{map[string]any{"volume": "vol_123", "path": "/data"}},
		"auto_destroy":     true,
		"future_top_level": map[string]any{"a": 1.0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("config after applyDesired (-want +got):\n%s", diff)
	}
}

func TestApplyDesiredOnEmptyConfigIsTheDesiredMachine(t *testing.T) {
	d := desired()
	d.Checks, d.Restart, d.StopConfig, d.Env = nil, nil, nil, nil
	var cfg flyapi.MachineConfig
	applyDesired(&cfg, d)
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	// Exactly the desired machine: the parts not asked for (checks, restart, stop_config, env) are
	// absent, not empty.
	want := map[string]any{
		"image":    "registry.fly.io/new:v1",
		"guest":    map[string]any{"cpu_kind": "performance", "cpus": 2.0, "memory_mb": 4096.0},
		"metadata": map[string]any{"hangar.dev/uid": "u", "team": "blue"},
		"services": []any{map[string]any{
			"name": "public", "protocol": "tcp", "internal_port": 8080.0, "autostart": true, "autostop": "suspend",
			"concurrency": map[string]any{"type": "requests", "soft_limit": 10.0, "hard_limit": 20.0},
			"ports": []any{
				map[string]any{"port": 80.0, "handlers": []any{"http"}},
				map[string]any{"port": 443.0, "handlers": []any{"tls", "http"}},
			},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("config from an empty one (-want +got):\n%s", diff)
	}
}
