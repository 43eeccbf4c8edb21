package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanRefusesBadFlagsAndFiles checks hangar plan's errors before it reaches a cluster: each
// exits with the status the help promises and names the flag, file or line to fix. The kubeconfig
// points nowhere, so a case that got past the files would fail on the cluster instead.
func TestPlanRefusesBadFlagsAndFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	badYAML := write("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: [unclosed\n")
	noKind := write("nokind.yaml", "# a comment\n---\nmetadata:\n  name: x\n")
	empty := write("empty.yaml", "# nothing\n")
	emptyDir := filepath.Join(dir, "nothing-here")
	if err := os.Mkdir(emptyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	kubeconfig := write("kubeconfig", "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
	t.Setenv("FLY_API_TOKEN", "fo1_test")

	tests := []struct {
		name string
		args []string
		// noToken unsets FLY_API_TOKEN.
		noToken bool
		code    int
		want    string
	}{
		{name: "no files", args: nil, code: 2, want: "no -f: name the files"},
		{name: "unknown flag", args: []string{"--nope"}, code: 2, want: "flag provided but not defined: -nope"},
		{name: "no token", args: []string{"-f", badYAML}, noToken: true, code: 2, want: "no Fly API token: set --fly-token-file or FLY_API_TOKEN"},
		{name: "root key secret not namespace/name", args: []string{"-f", badYAML, "--root-key-secret", "key"}, code: 2, want: `--root-key-secret "key": use namespace/name`},
		{name: "missing file", args: []string{"-f", filepath.Join(dir, "missing.yaml")}, code: 1, want: "-f " + filepath.Join(dir, "missing.yaml") + ": "},
		{name: "bad YAML names file and line", args: []string{"-f", badYAML}, code: 1, want: badYAML + ": the document starting at line 6 does not parse"},
		{name: "not an object names file and line", args: []string{"-f", noKind}, code: 1, want: noKind + ": the document starting at line 3 is not a Kubernetes object"},
		{name: "empty file", args: []string{"-f", empty}, code: 1, want: empty + ": no objects in this file"},
		{name: "directory without manifests", args: []string{"-f", emptyDir}, code: 1, want: "no .yaml, .yml or .json file with objects"},
		{name: "broken kustomization names it", args: []string{"-f", write("kustomization.yaml", "resources: [missing.yaml]\n")[:len(dir)]}, code: 1,
			want: filepath.Join(dir, "kustomization.yaml")},
		{name: "no cluster", args: []string{"-f", write("ok.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n"), "--kubeconfig", kubeconfig}, code: 1,
			want: "finding the cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noToken {
				t.Setenv("FLY_API_TOKEN", "")
			}
			var stderr bytes.Buffer
			if code := run(context.Background(), append([]string{"plan"}, tt.args...), &stderr); code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tt.want)
			}
		})
	}
}
