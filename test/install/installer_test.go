package install_test

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hangar-dev/hangar/internal/manifests"
)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestInstallerInstalls applies dist/install.yaml (make build-installer) with server-side dry-run,
// and checks that it deploys the release the chart deploys.
func TestInstallerInstalls(t *testing.T) {
	objs, err := manifests.Decode(mustRead(t, filepath.Join(env.RepoRoot, "dist", "install.yaml")))
	if err != nil {
		t.Fatalf("dist/install.yaml: %v", err)
	}
	applyPrerequisites(t, objs)
	if err := applyDryRun(t.Context(), objs); err != nil {
		t.Fatalf("the apiserver refuses dist/install.yaml:\n%v", err)
	}

	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(mustRead(t, filepath.Join(env.RepoRoot, "charts", "hangar", "Chart.yaml")), &chart); err != nil {
		t.Fatal(err)
	}
	want := "ghcr.io/hangar-dev/hangar:" + chart.AppVersion
	deployments := 0
	for _, obj := range objs {
		if obj.GetKind() != "Deployment" {
			continue
		}
		deployments++
		containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			if image := c.(map[string]any)["image"]; image != want {
				t.Errorf("Deployment %s runs %v, want %s (the chart's appVersion; make build-installer)", obj.GetName(), image, want)
			}
		}
	}
	if deployments != 2 {
		t.Errorf("dist/install.yaml holds %d Deployments, want 2 (manager and router)", deployments)
	}
}
