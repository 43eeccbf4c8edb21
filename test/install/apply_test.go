package install_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// fieldOwner is the field manager of every apply, as `kubectl apply --server-side` has its own.
const fieldOwner = client.FieldOwner("hangar-install-test")

// applyDryRun applies every object with server-side apply and dry-run: the apiserver validates,
// defaults and admits each as it would on install, and persists nothing. It returns one error per
// refused object.
func applyDryRun(ctx context.Context, objs []*unstructured.Unstructured) error {
	var errs []error
	for _, obj := range objs {
		err := env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()), fieldOwner, client.ForceOwnership, client.DryRunAll)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// applyPrerequisites really creates what the other objects of an install need to exist first, as
// `kubectl apply` would have before them: namespaces and CRDs (Helm creates a chart's crds/ before its
// templates, and its release namespace with --create-namespace). It waits for the CRDs to be served.
func applyPrerequisites(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := t.Context()
	var crds []string
	for _, obj := range objs {
		if obj.GetKind() != "Namespace" && obj.GetKind() != "CustomResourceDefinition" {
			continue
		}
		if err := env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()), fieldOwner, client.ForceOwnership); err != nil {
			t.Fatalf("applying %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
		if obj.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, obj.GetName())
		}
	}
	for _, name := range crds {
		waitEstablished(t, name)
	}
}

// createNamespace creates a namespace for a Helm release (helm install --create-namespace).
func createNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	applyPrerequisites(t, []*unstructured.Unstructured{ns})
	got := &corev1.Namespace{}
	if err := env.Client.Get(t.Context(), client.ObjectKey{Name: name}, got); err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
}

func waitEstablished(t *testing.T, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			return false, err
		}
		conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conditions {
			if c, ok := c.(map[string]any); ok && c["type"] == "Established" && c["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s not established: %v", name, err)
	}
}
