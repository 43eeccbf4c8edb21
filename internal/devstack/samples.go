package devstack

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/manifests"
)

// ApplySamples builds the kustomization in dir (manifests.ReadKustomization: overlays, name
// prefixes and patches included) and creates its objects in namespace.
func (s *Stack) ApplySamples(ctx context.Context, dir, namespace string) error {
	objs, err := manifests.ReadKustomization(dir)
	if err != nil {
		return err
	}
	return s.Create(ctx, objs, namespace)
}

// Create creates objs in namespace, in order, as `kubectl apply` would for a first apply; the
// namespace replaces any the objects name, so that WaitReady finds them.
func (s *Stack) Create(ctx context.Context, objs []*unstructured.Unstructured, namespace string) error {
	for _, obj := range objs {
		obj.SetNamespace(namespace)
		if err := s.Env.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	return nil
}

// WaitReady waits until every UserApp and UserMachine in namespace is Ready.
func (s *Stack) WaitReady(ctx context.Context, namespace string, timeout time.Duration) error {
	var pending string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var apps flyv1alpha1.UserAppList
		var machines flyv1alpha1.UserMachineList
		if err := s.Env.Client.List(ctx, &apps, client.InNamespace(namespace)); err != nil {
			return false, nil //nolint:nilerr // the apiserver may be briefly away; keep polling
		}
		if err := s.Env.Client.List(ctx, &machines, client.InNamespace(namespace)); err != nil {
			return false, nil //nolint:nilerr // as above
		}
		pending = ""
		for _, a := range apps.Items {
			if !meta.IsStatusConditionTrue(a.Status.Conditions, flyv1alpha1.ReadyCondition) {
				pending = "UserApp " + a.Name
			}
		}
		for _, m := range machines.Items {
			if !meta.IsStatusConditionTrue(m.Status.Conditions, flyv1alpha1.ReadyCondition) {
				pending = "UserMachine " + m.Name
			}
		}
		return pending == "" && len(apps.Items) > 0, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the objects in %s to be Ready (still waiting for %s): %w", namespace, pending, err)
	}
	return nil
}
