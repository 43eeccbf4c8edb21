package argocd_test

import (
	"os"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/manifests"
)

// TestHealthChecksConfigMap builds config/argocd as kustomize does and checks that it is Argo CD's
// argocd-cm (that exact name, in namespace argocd) holding one health check per kind, under the key
// Argo CD looks up (resource.customizations.health.<group>_<kind>), byte for byte the Lua file the
// other tests run.
func TestHealthChecksConfigMap(t *testing.T) {
	objs, err := manifests.ReadKustomization("../../config/argocd")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("config/argocd builds %d objects, want the one ConfigMap argocd-cm", len(objs))
	}
	if cm := objs[0]; cm.GetKind() != "ConfigMap" || cm.GetName() != "argocd-cm" || cm.GetNamespace() != "argocd" {
		t.Fatalf("config/argocd builds %s %s/%s, want ConfigMap argocd/argocd-cm", cm.GetKind(), cm.GetNamespace(), cm.GetName())
	}
	data, _, err := unstructured.NestedStringMap(objs[0].Object, "data")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"resource.customizations.health." + flyv1alpha1.GroupVersion.Group + "_UserApp":      appHealthScript,
		"resource.customizations.health." + flyv1alpha1.GroupVersion.Group + "_UserMachine":  machineHealthScript,
		"resource.customizations.health." + flyv1alpha1.GroupVersion.Group + "_UserAppPool":  appHealthScript,
		"resource.customizations.health." + flyv1alpha1.GroupVersion.Group + "_UserAppClaim": appHealthScript,
	}
	if len(data) != len(want) {
		t.Errorf("argocd-cm has keys %v, want exactly %v", keys(data), keys(want))
	}
	for key, file := range want {
		script, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if data[key] != string(script) {
			t.Errorf("argocd-cm %s is not the content of %s", key, file)
		}
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
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
