package manifests

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// writeTree writes files (path relative to root: content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func kindNames(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}

// TestReadKustomizationOverlay reads an overlay of a base directory with a name prefix and a
// strategic-merge patch from disk, as `hangar dev --samples overlay` does.
func TestReadKustomizationOverlay(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"base/kustomization.yaml": "resources:\n  - machines.yaml\n  - config.json\n",
		"base/machines.yaml": `apiVersion: fly.hangar.dev/v1alpha1
kind: UserMachine
metadata:
  name: alice-workspace
spec:
  appRef: {name: alice}
  region: ord
  image: registry.fly.io/workspace:1
---
# only a comment
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: blue
  size: large
`,
		"base/config.json": `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "three"}}`,
		"overlay/kustomization.yaml": `resources:
  - ../base
namePrefix: staging-
patches:
  - path: settings.yaml
  - path: region.yaml
`,
		"overlay/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: green\n",
		"overlay/region.yaml": `apiVersion: fly.hangar.dev/v1alpha1
kind: UserMachine
metadata:
  name: alice-workspace
spec:
  region: ams
`,
	})
	objs, err := ReadKustomization(filepath.Join(root, "overlay"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"UserMachine/staging-alice-workspace", "ConfigMap/staging-settings", "ConfigMap/staging-three"}
	if diff := cmp.Diff(want, kindNames(objs)); diff != "" {
		t.Fatalf("objects (-want +got):\n%s", diff)
	}
	if data, _, _ := unstructured.NestedStringMap(objs[1].Object, "data"); !cmp.Equal(data, map[string]string{"color": "green", "size": "large"}) {
		t.Errorf("patched ConfigMap data = %v, want color green and size kept", data)
	}
	spec, _, _ := unstructured.NestedMap(objs[0].Object, "spec")
	if spec["region"] != "ams" || spec["image"] != "registry.fly.io/workspace:1" {
		t.Errorf("patched UserMachine spec = %v, want region ams and the image kept", spec)
	}
}

// TestReadKustomizationErrors checks that a kustomization that cannot be built is refused with an
// error naming the file to fix.
func TestReadKustomizationErrors(t *testing.T) {
	const configMap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n"
	tests := []struct {
		name  string
		files map[string]string
		dir   string
		// wantIn are the parts the message must hold, after "<root>/" is replaced by "ROOT/".
		wantIn []string
	}{
		{"broken kustomization", map[string]string{"k/kustomization.yaml": "resources:\n  - a.yaml\n  bad: [\n"}, "k",
			[]string{"ROOT/k/kustomization.yaml: invalid Kustomization: yaml: line 2"}},
		{"unknown field", map[string]string{"k/kustomization.yaml": "resourcez:\n  - a.yaml\n"}, "k",
			[]string{"ROOT/k/kustomization.yaml: invalid Kustomization", `unknown field "resourcez"`}},
		{"missing resource", map[string]string{"k/kustomization.yaml": "resources:\n  - a.yaml\n"}, "k",
			[]string{"ROOT/k/kustomization.yaml: ", "ROOT/k/a.yaml: no such file or directory"}},
		{"broken resource", map[string]string{"k/kustomization.yaml": "resources:\n  - a.yaml\n", "k/a.yaml": "apiVersion: v1\nkind: [x\n"}, "k",
			[]string{"ROOT/k/kustomization.yaml: ", "in File: a.yaml"}},
		{"broken base", map[string]string{"o/kustomization.yml": "resources:\n  - ../k\n", "k/kustomization.yaml": "resources: [a.yaml]\n", "k/a.yaml": "kind: [x\n"}, "o",
			[]string{"ROOT/o/kustomization.yml: ", "path 'ROOT/k'", "in File: a.yaml"}},
		{"patch matching nothing", map[string]string{"k/kustomization.yaml": "resources: [a.yaml]\npatches:\n  - path: p.yaml\n", "k/a.yaml": configMap,
			"k/p.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\n"}, "k",
			[]string{"ROOT/k/kustomization.yaml: ", "no resource matches strategic merge patch", "two"}},
		{"no kustomization", map[string]string{"k/a.yaml": configMap}, "k",
			[]string{"ROOT/k: unable to find one of 'kustomization.yaml'"}},
		{"no objects", map[string]string{"k/kustomization.yaml": "resources: []\n"}, "k",
			[]string{"ROOT/k/kustomization.yaml: it holds no objects"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tt.files)
			_, err := ReadKustomization(filepath.Join(root, tt.dir))
			var buildErr *BuildError
			if !errors.As(err, &buildErr) {
				t.Fatalf("err = %v, want a *BuildError", err)
			}
			msg := strings.ReplaceAll(err.Error(), root+"/", "ROOT/")
			for _, want := range tt.wantIn {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"a.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n---\n# only a comment\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: two\n",
		"broken.yaml": "apiVersion: v1\nkind: [broken\n",
	})
	objs, err := ReadFile(filepath.Join(dir, "a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ConfigMap/one", "Secret/two"}, kindNames(objs)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	if _, err := ReadFile(filepath.Join(dir, "broken.yaml")); err == nil || !strings.Contains(err.Error(), "broken.yaml") {
		t.Errorf("broken YAML: err = %v, want one naming the file", err)
	}
}
