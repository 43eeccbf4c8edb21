package argocd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// TestHealthChecksKeys checks that config/argocd builds argocd-cm with one health check per kind,
// under the key Argo CD looks up (resource.customizations.health.<group>_<kind>), each the content
// of its Lua file, in an unhashed ConfigMap named argocd-cm.
func TestHealthChecksKeys(t *testing.T) {
	var k struct {
		Namespace        string `json:"namespace"`
		GeneratorOptions struct {
			DisableNameSuffixHash bool `json:"disableNameSuffixHash"`
		} `json:"generatorOptions"`
		ConfigMapGenerator []struct {
			Name  string   `json:"name"`
			Files []string `json:"files"`
		} `json:"configMapGenerator"`
	}
	readYAML(t, "../../config/argocd/kustomization.yaml", &k, false)
	if k.Namespace != "argocd" || !k.GeneratorOptions.DisableNameSuffixHash || len(k.ConfigMapGenerator) != 1 || k.ConfigMapGenerator[0].Name != "argocd-cm" {
		t.Fatalf("config/argocd must generate one ConfigMap argocd-cm in namespace argocd without a name hash: %+v", k)
	}
	want := map[string]string{
		"resource.customizations.health." + flyv1alpha1.GroupVersion.Group + "_UserApp":     "health/userapp.lua",
		"resource.customizations.health." + flyv1alpha1.GroupVersion.Group + "_UserMachine": "health/usermachine.lua",
	}
	got := map[string]string{}
	for _, f := range k.ConfigMapGenerator[0].Files {
		key, file, _ := strings.Cut(f, "=")
		got[key] = file
		if _, err := os.Stat(filepath.Join("../../config/argocd", file)); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	if len(got) != len(want) {
		t.Errorf("argocd-cm keys = %v, want %v", got, want)
	}
	for key, file := range want {
		if got[key] != file {
			t.Errorf("argocd-cm key %s takes %q, want %q", key, got[key], file)
		}
	}
}

// TestExampleApplication checks that config/argocd/application.yaml is an Argo CD Application with
// the fields Argo CD requires, and no field Argo CD would not know among those it uses (a typo
// fails the strict decoding).
func TestExampleApplication(t *testing.T) {
	type backoff struct {
		Duration    string `json:"duration"`
		Factor      int    `json:"factor"`
		MaxDuration string `json:"maxDuration"`
	}
	var app struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Spec struct {
			Project string `json:"project"`
			Source  *struct {
				RepoURL        string `json:"repoURL"`
				TargetRevision string `json:"targetRevision"`
				Path           string `json:"path"`
			} `json:"source"`
			Destination *struct {
				Server    string `json:"server"`
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"destination"`
			SyncPolicy struct {
				Automated *struct {
					Prune    bool `json:"prune"`
					SelfHeal bool `json:"selfHeal"`
				} `json:"automated"`
				SyncOptions []string `json:"syncOptions"`
				Retry       *struct {
					Limit   int     `json:"limit"`
					Backoff backoff `json:"backoff"`
				} `json:"retry"`
			} `json:"syncPolicy"`
		} `json:"spec"`
	}
	readYAML(t, "../../config/argocd/application.yaml", &app, true)
	switch {
	case app.APIVersion != "argoproj.io/v1alpha1" || app.Kind != "Application":
		t.Errorf("apiVersion/kind = %s/%s, want argoproj.io/v1alpha1/Application", app.APIVersion, app.Kind)
	case app.Metadata.Name == "" || app.Metadata.Namespace == "":
		t.Error("metadata.name and metadata.namespace (Argo CD's namespace) are required")
	case app.Spec.Project == "":
		t.Error("spec.project is required")
	case app.Spec.Source == nil || app.Spec.Source.RepoURL == "" || app.Spec.Source.Path == "":
		t.Error("spec.source needs repoURL and the path of the manifests")
	case app.Spec.Destination == nil || (app.Spec.Destination.Server == "") == (app.Spec.Destination.Name == "") || app.Spec.Destination.Namespace == "":
		t.Error("spec.destination needs exactly one of server or name, and a namespace")
	case app.Spec.SyncPolicy.Retry == nil || app.Spec.SyncPolicy.Retry.Limit <= 0:
		t.Error("spec.syncPolicy.retry.limit should be set")
	}
	for _, opt := range app.Spec.SyncPolicy.SyncOptions {
		if key, value, ok := strings.Cut(opt, "="); !ok || key == "" || (value != "true" && value != "false") {
			t.Errorf("sync option %q is not of the form Name=true|false", opt)
		}
	}
}

// readYAML decodes the YAML file at path; strict refuses fields into does not declare.
func readYAML(t *testing.T, path string, into any, strict bool) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	decode := yaml.Unmarshal
	if strict {
		decode = yaml.UnmarshalStrict
	}
	if err := decode(raw, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
