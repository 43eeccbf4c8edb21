package monitoring_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/hangar-dev/hangar/internal/manifests"
)

// TestServiceMonitorsSelectMetricsServices enables config/prometheus in a copy of config/default,
// as its commented line says to, builds it as kustomize does, and checks that each ServiceMonitor
// selects exactly one Service of the installation, in its namespace, with the port it scrapes.
func TestServiceMonitorsSelectMetricsServices(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(env.RepoRoot, "config"))); err != nil {
		t.Fatal(err)
	}
	kustomization := filepath.Join(dir, "default", "kustomization.yaml")
	raw, err := os.ReadFile(kustomization)
	if err != nil {
		t.Fatal(err)
	}
	const commented = "  #- ../prometheus\n"
	if !strings.Contains(string(raw), commented) {
		t.Fatalf("config/default/kustomization.yaml has no %q line to uncomment", strings.TrimSpace(commented))
	}
	enabled := strings.Replace(string(raw), commented, "  - ../prometheus\n", 1)
	if err := os.WriteFile(kustomization, []byte(enabled), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.ReadKustomization(filepath.Join(dir, "default"))
	if err != nil {
		t.Fatal(err)
	}
	var monitors, services []*unstructured.Unstructured
	rules := 0
	for _, obj := range objs {
		switch obj.GetKind() {
		case "ServiceMonitor":
			monitors = append(monitors, obj)
		case "Service":
			services = append(services, obj)
		case "PrometheusRule":
			rules++
		}
	}
	if len(monitors) != 2 || rules != 1 {
		t.Fatalf("%d ServiceMonitors and %d PrometheusRules, want 2 and 1", len(monitors), rules)
	}
	for _, sm := range monitors {
		matchLabels, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		if len(matchLabels) == 0 {
			t.Errorf("ServiceMonitor %s selects every Service", sm.GetName())
			continue
		}
		var selected []*unstructured.Unstructured
		for _, svc := range services {
			if svc.GetNamespace() == sm.GetNamespace() && labels.SelectorFromSet(matchLabels).Matches(labels.Set(svc.GetLabels())) {
				selected = append(selected, svc)
			}
		}
		if len(selected) != 1 {
			t.Errorf("ServiceMonitor %s selects %d Services, want 1", sm.GetName(), len(selected))
			continue
		}
		ports := map[string]bool{}
		// NoCopy: kustomize's output holds plain ints, which the copying accessors refuse.
		svcPorts, _, _ := unstructured.NestedFieldNoCopy(selected[0].Object, "spec", "ports")
		for _, p := range asList(svcPorts) {
			name, _, _ := unstructured.NestedString(p, "name")
			ports[name] = true
		}
		endpoints, _, _ := unstructured.NestedFieldNoCopy(sm.Object, "spec", "endpoints")
		if len(asList(endpoints)) == 0 {
			t.Errorf("ServiceMonitor %s has no endpoint", sm.GetName())
		}
		for _, e := range asList(endpoints) {
			port, _, _ := unstructured.NestedString(e, "port")
			if !ports[port] {
				t.Errorf("ServiceMonitor %s scrapes port %q, which Service %s does not have (%v)", sm.GetName(), port, selected[0].GetName(), ports)
			}
		}
	}
}

// asList is v as a list of objects, or nil.
func asList(v any) []map[string]any {
	items, _ := v.([]any)
	var out []map[string]any
	for _, item := range items {
		if m, ok := item.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
