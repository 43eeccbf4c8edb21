package manifests_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/hangar-dev/hangar/internal/devstack"
	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/internal/manifests"
)

// userBase is a user's base kustomization: a UserApp taking its Fly secrets from a labelled Secret
// and from a generated one (whose name kustomize suffixes with a hash), and two UserMachines of it.
var userBase = map[string]string{
	"base/app.yaml": `apiVersion: fly.hangar.dev/v1alpha1
kind: UserApp
metadata:
  name: carol
spec:
  secrets:
    - name: OPENAI_API_KEY
      secretKeyRef: {name: carol-credentials, key: openai-api-key}
    - name: GITHUB_TOKEN
      secretKeyRef: {name: carol-tokens, key: github}
---
apiVersion: v1
kind: Secret
metadata:
  name: carol-credentials
  labels:
    fly.hangar.dev/app-secret: "true"
stringData:
  openai-api-key: sk-test
---
apiVersion: fly.hangar.dev/v1alpha1
kind: UserMachine
metadata:
  name: carol-workspace
spec:
  appRef: {name: carol}
  region: ord
  image: registry.fly.io/workspace:1
---
apiVersion: fly.hangar.dev/v1alpha1
kind: UserMachine
metadata:
  name: carol-build
spec:
  appRef: {name: carol}
  region: ams
  image: registry.fly.io/build:1
  powerState: Stopped
`,
}

const baseResources = `resources:
  - app.yaml
secretGenerator:
  - name: carol-tokens
    literals: [github=ghp-test]
    options:
      labels:
        fly.hangar.dev/app-secret: "true"
`

// overlay renames everything of the base: the README's example of an overlay per environment.
const overlay = `resources:
  - ../base
namePrefix: team-
nameSuffix: -eu
`

// TestNameReferences builds overlays that rename a user's objects, with hangar's name references
// (config/kustomize) included the two ways the README shows and without them, and checks that
// every appRef and secretKeyRef names an object of the output; then it applies one to the local
// stack (apiserver, manager, Fly emulator) and waits until every UserApp and UserMachine is Ready.
func TestNameReferences(t *testing.T) {
	component := readRepoFile(t, "config/kustomize/kustomization.yaml")
	nameReferences := readRepoFile(t, "config/kustomize/name-references.yaml")
	tests := []struct {
		name  string
		files map[string]string
		// dangling is whether references are expected to miss their renamed objects.
		dangling bool
	}{
		{"component in the base", map[string]string{
			"hangar/kustomization.yaml":   component,
			"hangar/name-references.yaml": nameReferences,
			"base/kustomization.yaml":     baseResources + "components:\n  - ../hangar\n",
			"overlay/kustomization.yaml":  overlay,
		}, false},
		{"configurations in the overlay", map[string]string{
			"base/kustomization.yaml":      baseResources,
			"overlay/kustomization.yaml":   overlay + "configurations:\n  - name-references.yaml\n",
			"overlay/name-references.yaml": nameReferences,
		}, false},
		{"without hangar's name references", map[string]string{
			"base/kustomization.yaml":    baseResources,
			"overlay/kustomization.yaml": overlay,
		}, true},
	}
	var built []*unstructured.Unstructured
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := filesys.MakeFsInMemory()
			for name, content := range mergeFiles(userBase, tt.files) {
				if err := fs.WriteFile(filepath.Join("/user", name), []byte(content)); err != nil {
					t.Fatal(err)
				}
			}
			objs, err := manifests.Build(fs, "/user/overlay")
			if err != nil {
				t.Fatal(err)
			}
			refs := references(t, objs)
			if len(refs) != 4 {
				t.Fatalf("found %d references, want 4 (two appRefs, two secretKeyRefs): %v", len(refs), refs)
			}
			names := map[string]bool{}
			for _, o := range objs {
				names[o.GetKind()+"/"+o.GetName()] = true
			}
			var missing []string
			for _, ref := range refs {
				if !names[ref] {
					missing = append(missing, ref)
				}
			}
			switch {
			case tt.dangling && len(missing) == 0:
				t.Errorf("every reference was renamed without hangar's name references: %v", refs)
			case !tt.dangling && len(missing) > 0:
				t.Errorf("references to objects the overlay does not hold: %v (objects %v)", missing, names)
			}
			if !tt.dangling && built == nil {
				built = objs
			}
		})
	}
	if built == nil {
		t.Fatal("no overlay was built")
	}

	ctx := context.Background()
	ctrllog.SetLogger(logr.Discard())
	stack, err := devstack.Start(ctx, devstack.Config{
		StateDir:    t.TempDir(),
		FlyAPIAddr:  "127.0.0.1:0",
		ProxyListen: map[int]string{80: "127.0.0.1:0", 9090: "127.0.0.1:0"},
		Autostop:    proxy.AutostopOptions{Disabled: true},
		Logger:      logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stack.Stop(); err != nil {
			t.Errorf("stopping the stack: %v", err)
		}
	})
	const ns = "renamed"
	if err := stack.Env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := stack.Create(ctx, built, ns); err != nil {
		t.Fatal(err)
	}
	if err := stack.WaitReady(ctx, ns, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// references lists what the UserApps' secretKeyRefs and the UserMachines' appRefs name, as
// "Kind/name".
func references(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	var refs []string
	for _, o := range objs {
		switch o.GetKind() {
		case "UserMachine":
			name, _, err := unstructured.NestedString(o.Object, "spec", "appRef", "name")
			if err != nil {
				t.Fatal(err)
			}
			refs = append(refs, "UserApp/"+name)
		case "UserApp":
			secrets, _, err := unstructured.NestedSlice(o.Object, "spec", "secrets")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				name, _, err := unstructured.NestedString(s.(map[string]any), "secretKeyRef", "name")
				if err != nil {
					t.Fatal(err)
				}
				refs = append(refs, "Secret/"+name)
			}
		}
	}
	return refs
}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func mergeFiles(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
