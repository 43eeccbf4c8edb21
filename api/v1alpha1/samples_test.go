package v1alpha1_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"
)

// TestSamplesAreAccepted applies every object of config/samples (the files its kustomization lists)
// to the real apiserver, as `kubectl apply -f config/samples` would.
func TestSamplesAreAccepted(t *testing.T) {
	dir := filepath.Join(env.RepoRoot, "config", "samples")
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.Unmarshal(raw, &kustomization); err != nil {
		t.Fatal(err)
	}
	if len(kustomization.Resources) == 0 {
		t.Fatal("config/samples/kustomization.yaml lists no resources")
	}
	ns := testNamespace(t)
	kinds := map[string]int{}
	for _, file := range kustomization.Resources {
		for _, obj := range readObjects(t, filepath.Join(dir, file)) {
			obj.SetNamespace(ns)
			if err := env.Client.Create(context.Background(), obj, client.FieldOwner("samples-test")); err != nil {
				t.Errorf("%s: %s %s refused: %v", file, obj.GetKind(), obj.GetName(), err)
			}
			kinds[obj.GetKind()]++
		}
	}
	if kinds["UserApp"] != 2 || kinds["UserMachine"] != 2 {
		t.Errorf("samples hold %v, want two users (alice and bob) with one UserApp and one UserMachine each", kinds)
	}
}

func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("%s: %v", path, err)
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}
