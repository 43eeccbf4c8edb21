package argocd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/manifests"
)

// TestDefaultDiffFindsAppliedObjectsInSync applies every sample and a user whose UserMachine spells
// out services, ports, checks and concurrency, as `kubectl apply` does (with the last-applied
// annotation, which Argo CD's default sync writes too), lets the manager make them Ready against the
// emulator, reads them back and computes Argo CD's default diff against the manifests. Each must be
// in sync although the apiserver filled in defaults, top-level and inside list items. Controls: the
// same diff must see a change made in Git and a change made to a live field Git sets.
func TestDefaultDiffFindsAppliedObjectsInSync(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "argocd-diff", true)
	configs := readManifests(t, "../../config/samples", "testdata/services.yaml")
	for _, obj := range configs {
		if err := stack.Env.Client.Create(ctx, withLastApplied(obj, ns)); err != nil {
			t.Fatalf("applying %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	if err := stack.WaitReady(ctx, ns, 2*time.Minute); err != nil {
		t.Fatal(err)
	}

	var defaulted []string
	for _, config := range hangarObjects(configs) {
		live := readLive(t, config, ns)
		for _, path := range fieldsOnlyIn(live.Object["spec"], config.Object["spec"], "spec") {
			defaulted = append(defaulted, config.GetKind()+" "+config.GetName()+": "+path)
		}
		t.Run(config.GetKind()+"/"+config.GetName(), func(t *testing.T) {
			expectSynced(t, config, live)

			gitChange := config.DeepCopy()
			setField(t, gitChange, "changed in Git", "spec", "image")
			if outOfSync, _, _, err := argoDiff(gitChange, live); err != nil || !outOfSync {
				t.Errorf("a change in Git is not seen (out of sync %v, err %v)", outOfSync, err)
			}
			liveChange := live.DeepCopy()
			setField(t, liveChange, liveValueGitSets(t, config)...)
			if outOfSync, _, _, err := argoDiff(config, liveChange); err != nil || !outOfSync {
				t.Errorf("a live change to a field Git sets is not seen (out of sync %v, err %v)", outOfSync, err)
			}
		})
	}
	sort.Strings(defaulted)
	t.Logf("fields the apiserver filled in that the manifests leave out:\n  %s", strings.Join(defaulted, "\n  "))
	if !containsWith(defaulted, ": spec.powerState") || !containsWith(defaulted, ": spec.deletionPolicy") {
		t.Error("no top-level default was filled in: the test no longer shows that those stay out of the diff")
	}
}

// TestDefaultDiffAfterSyncingAChange syncs a change of list items (a port added to a service, a check
// removed) the way `kubectl apply` patches an existing object: a three-way JSON merge patch from the
// last-applied configuration, which replaces each changed list whole. Before the sync Argo CD's diff
// must see the change; after it, the object must be in sync again.
func TestDefaultDiffAfterSyncingAChange(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "argocd-diff-change", true)
	configs := readManifests(t, "testdata/services.yaml")
	for _, obj := range configs {
		unstructured.RemoveNestedField(obj.Object, "spec", "routing") // its host belongs to the other test's carol
		if err := stack.Env.Client.Create(ctx, withLastApplied(obj, ns)); err != nil {
			t.Fatal(err)
		}
	}
	if err := stack.WaitReady(ctx, ns, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	machine := hangarObjects(configs)[1]
	changed := machine.DeepCopy()
	services, _, _ := unstructured.NestedSlice(changed.Object, "spec", "services")
	mgmt := services[0].(map[string]any)
	mgmt["ports"] = append(mgmt["ports"].([]any), map[string]any{"port": int64(9091), "handlers": []any{"http"}})
	setField(t, changed, services, "spec", "services")
	checks, _, _ := unstructured.NestedSlice(changed.Object, "spec", "checks")
	setField(t, changed, checks[:1], "spec", "checks")

	live := readLive(t, machine, ns)
	if outOfSync, _, _, err := argoDiff(changed, live); err != nil || !outOfSync {
		t.Fatalf("the change in Git is not seen before the sync (out of sync %v, err %v)", outOfSync, err)
	}
	kubectlApplyPatch(t, changed, live, ns)
	if err := stack.WaitReady(ctx, ns, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	live = readLive(t, machine, ns)
	if ports, _, _ := unstructured.NestedSlice(live.Object, "spec", "services"); len(ports[0].(map[string]any)["ports"].([]any)) != 2 {
		t.Fatalf("the sync did not reach the object: %v", ports)
	}
	expectSynced(t, changed, live)
}

func expectSynced(t *testing.T, config, live *unstructured.Unstructured) {
	t.Helper()
	outOfSync, predicted, normalized, err := argoDiff(config, live)
	if err != nil {
		t.Fatal(err)
	}
	if outOfSync {
		t.Errorf("Argo CD's default diff reports %s %s OutOfSync:\npredicted live %s\nlive           %s",
			config.GetKind(), config.GetName(), predicted, normalized)
	}
}

// kubectlApplyPatch sends config to the existing object live as `kubectl apply` does for a kind
// without a strategic-merge schema: a three-way JSON merge patch from the last-applied configuration
// to config (carrying its own new last-applied annotation), against live.
func kubectlApplyPatch(t *testing.T, config, live *unstructured.Unstructured, ns string) {
	t.Helper()
	modified, err := json.Marshal(withLastApplied(config, ns).Object)
	if err != nil {
		t.Fatal(err)
	}
	current, err := json.Marshal(live.Object)
	if err != nil {
		t.Fatal(err)
	}
	original := []byte(live.GetAnnotations()[corev1.LastAppliedConfigAnnotation])
	patch, err := jsonmergepatch.CreateThreeWayJSONMergePatch(original, modified, current)
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.Env.Client.Patch(context.Background(), live.DeepCopy(), client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatalf("kubectl apply's patch %s: %v", patch, err)
	}
}

// liveValueGitSets is a path Git sets in config with another value, for a live-change control.
func liveValueGitSets(t *testing.T, config *unstructured.Unstructured) []any {
	t.Helper()
	switch config.GetKind() {
	case "UserMachine":
		return []any{"changed on the cluster", "spec", "image"}
	case "UserApp":
		return []any{[]any{"someone-else.example.com"}, "spec", "routing", "hosts"}
	}
	t.Fatalf("no live change for kind %s", config.GetKind())
	return nil
}

// setField sets obj's field at path (args: the value, then the path) or fails the test.
func setField(t *testing.T, obj *unstructured.Unstructured, args ...any) {
	t.Helper()
	path := make([]string, 0, len(args)-1)
	for _, a := range args[1:] {
		path = append(path, a.(string))
	}
	if err := unstructured.SetNestedField(obj.Object, args[0], path...); err != nil {
		t.Fatal(err)
	}
}

func readManifests(t *testing.T, sources ...string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, src := range sources {
		read := manifests.ReadFile
		if !strings.HasSuffix(src, ".yaml") {
			read = manifests.ReadKustomization
		}
		got, err := read(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range got {
			// Re-decoded as the apiserver's clients decode JSON (integers as int64), whatever the
			// reader gave.
			raw, err := json.Marshal(obj.Object)
			if err != nil {
				t.Fatal(err)
			}
			decoded := &unstructured.Unstructured{}
			if err := decoded.UnmarshalJSON(raw); err != nil {
				t.Fatal(err)
			}
			objs = append(objs, decoded)
		}
	}
	return objs
}

// hangarObjects are the UserApps and UserMachines among objs. The diff of built-in kinds (the sample
// Secret) takes gitops-engine's strategic-merge path, with Argo CD's own defaults, and is not hangar's.
func hangarObjects(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range objs {
		if obj.GroupVersionKind().Group == flyv1alpha1.GroupVersion.Group {
			out = append(out, obj)
		}
	}
	return out
}

func readLive(t *testing.T, config *unstructured.Unstructured, ns string) *unstructured.Unstructured {
	t.Helper()
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(config.GroupVersionKind())
	if err := stack.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: config.GetName()}, live); err != nil {
		t.Fatal(err)
	}
	return live
}

// fieldsOnlyIn lists the paths of a that b lacks, list items compared index by index.
func fieldsOnlyIn(a, b any, path string) []string {
	var out []string
	switch a := a.(type) {
	case map[string]any:
		bm, _ := b.(map[string]any)
		for k, v := range a {
			bv, ok := bm[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, fieldsOnlyIn(v, bv, path+"."+k)...)
		}
	case []any:
		bl, _ := b.([]any)
		for i, v := range a {
			if i < len(bl) {
				out = append(out, fieldsOnlyIn(v, bl[i], fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return out
}

func containsWith(list []string, suffix string) bool {
	for _, s := range list {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}
