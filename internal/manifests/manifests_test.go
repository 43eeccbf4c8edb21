package manifests

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadKustomization(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("kustomization.yaml", "resources:\n  - a.yaml\n  - b.yaml\n")
	write("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n---\n# only a comment\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: two\n")
	write("b.yaml", `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "three"}}`)
	objs, err := ReadKustomization(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	if want := "[ConfigMap/one Secret/two ConfigMap/three]"; formatNames(names) != want {
		t.Fatalf("objects = %v, want %s", names, want)
	}

	write("kustomization.yaml", "resources: []\n")
	if _, err := ReadKustomization(dir); err == nil {
		t.Fatal("an empty resources list was accepted")
	}
	write("a.yaml", "apiVersion: v1\nkind: [broken\n")
	if _, err := ReadFile(filepath.Join(dir, "a.yaml")); err == nil {
		t.Fatal("broken YAML was accepted")
	}
}

func formatNames(names []string) string {
	out := "["
	for i, n := range names {
		if i > 0 {
			out += " "
		}
		out += n
	}
	return out + "]"
}
