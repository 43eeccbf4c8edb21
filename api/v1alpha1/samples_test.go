package v1alpha1_test

import (
	"context"
	"maps"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hangar-dev/hangar/internal/manifests"
)

// TestSamplesAreAccepted applies every object of each samples kustomization to the real apiserver,
// as `kubectl apply -k` would, and checks each holds what its comment says.
func TestSamplesAreAccepted(t *testing.T) {
	for _, tc := range []struct {
		dir  string // under config/samples
		want map[string]int
	}{
		// Two users (alice and bob), a UserApp and a UserMachine each, and alice's app Secret: what
		// `make dev` applies.
		{dir: ".", want: map[string]int{"UserApp": 2, "UserMachine": 2, "Secret": 1}},
		// A pool and a claim on it with the claim's Secret, kept apart because a pool creates Fly apps.
		{dir: "pools", want: map[string]int{"UserAppPool": 1, "UserAppClaim": 1, "Secret": 1}},
		// The router on Fly (cluster-scoped).
		{dir: "flyrouter", want: map[string]int{"FlyRouter": 1}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			objs, err := manifests.ReadKustomization(filepath.Join(env.RepoRoot, "config", "samples", tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			ns := testNamespace(t)
			kinds := map[string]int{}
			for _, obj := range objs {
				namespaced, err := env.Client.IsObjectNamespaced(obj)
				if err != nil {
					t.Fatal(err)
				}
				if namespaced {
					obj.SetNamespace(ns)
				} else {
					t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
				}
				if err := env.Client.Create(context.Background(), obj, client.FieldOwner("samples-test")); err != nil {
					t.Errorf("%s %s refused: %v", obj.GetKind(), obj.GetName(), err)
				}
				kinds[obj.GetKind()]++
			}
			if !maps.Equal(kinds, tc.want) {
				t.Errorf("samples hold %v, want %v", kinds, tc.want)
			}
		})
	}
}
