package v1alpha1_test

import (
	"context"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hangar-dev/hangar/internal/manifests"
)

// TestSamplesAreAccepted applies every object of config/samples (the files its kustomization lists)
// to the real apiserver, as `kubectl apply -f config/samples` would.
func TestSamplesAreAccepted(t *testing.T) {
	objs, err := manifests.ReadKustomization(filepath.Join(env.RepoRoot, "config", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	ns := testNamespace(t)
	kinds := map[string]int{}
	for _, obj := range objs {
		obj.SetNamespace(ns)
		if err := env.Client.Create(context.Background(), obj, client.FieldOwner("samples-test")); err != nil {
			t.Errorf("%s %s refused: %v", obj.GetKind(), obj.GetName(), err)
		}
		kinds[obj.GetKind()]++
	}
	if kinds["UserApp"] != 2 || kinds["UserMachine"] != 2 {
		t.Errorf("samples hold %v, want two users (alice and bob) with one UserApp and one UserMachine each", kinds)
	}
}

// TestPoolSamplesAreAccepted applies config/samples/pools (a pool and a claim on it, kept apart
// from the samples `make dev` applies) to the real apiserver.
func TestPoolSamplesAreAccepted(t *testing.T) {
	objs, err := manifests.ReadKustomization(filepath.Join(env.RepoRoot, "config", "samples", "pools"))
	if err != nil {
		t.Fatal(err)
	}
	ns := testNamespace(t)
	kinds := map[string]int{}
	for _, obj := range objs {
		obj.SetNamespace(ns)
		if err := env.Client.Create(context.Background(), obj, client.FieldOwner("samples-test")); err != nil {
			t.Errorf("%s %s refused: %v", obj.GetKind(), obj.GetName(), err)
		}
		kinds[obj.GetKind()]++
	}
	if kinds["UserAppPool"] != 1 || kinds["UserAppClaim"] != 1 || kinds["Secret"] != 1 {
		t.Errorf("pool samples hold %v, want one UserAppPool, one UserAppClaim and its Secret", kinds)
	}
}
