package argocd_test

import (
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
)

// argoDiff is Argo CD's default diff of one object of a kind outside client-go's scheme (every
// custom resource), as gitops-engine computes it when neither server-side diff nor server-side apply
// is on: pkg/diff/diff.go, Diff → ThreeWayDiff → threeWayMergePatch, in
// https://github.com/argoproj/argo-cd/tree/master/gitops-engine/pkg/diff (formerly
// github.com/argoproj/gitops-engine). No served version of gitops-engine's module builds with this
// module's dependencies, so its steps are re-done with the same apimachinery and json-patch calls:
//
//  1. normalise config and live: drop metadata.creationTimestamp (diff.Normalize) and status (Argo CD's
//     default resource.compareoptions ignore the status of custom resources);
//  2. orig is the live object's last-applied-configuration, normalised the same way; without one,
//     the config stands in for it (TwoWayDiff);
//  3. drop metadata.namespace and an empty annotations map from orig and config
//     (removeNamespaceAnnotation);
//  4. strip from live every field orig lacks, in maps and in lists item by item
//     (pkg/utils/json.RemoveMapFields);
//  5. patch = jsonmergepatch.CreateThreeWayJSONMergePatch(orig, config, stripped live);
//  6. predicted live = the JSON merge patch applied to the whole live object; the object is out of
//     sync when predicted and live differ, byte for byte.
func argoDiff(config, live *unstructured.Unstructured) (outOfSync bool, predicted, normalizedLive []byte, err error) {
	config, live = normalizeForDiff(config), normalizeForDiff(live)
	orig := config
	if last, ok := live.GetAnnotations()[corev1.LastAppliedConfigAnnotation]; ok {
		orig = &unstructured.Unstructured{}
		if err := json.Unmarshal([]byte(last), orig); err != nil {
			return false, nil, nil, fmt.Errorf("reading the last-applied configuration: %w", err)
		}
		orig = normalizeForDiff(orig)
	}
	orig, config = withoutNamespaceAndEmptyAnnotations(orig), withoutNamespaceAndEmptyAnnotations(config)

	origJSON, err := json.Marshal(orig.Object)
	if err != nil {
		return false, nil, nil, err
	}
	configJSON, err := json.Marshal(config.Object)
	if err != nil {
		return false, nil, nil, err
	}
	strippedJSON, err := json.Marshal(removeMapFields(orig.Object, live.Object))
	if err != nil {
		return false, nil, nil, err
	}
	patch, err := jsonmergepatch.CreateThreeWayJSONMergePatch(origJSON, configJSON, strippedJSON)
	if err != nil {
		return false, nil, nil, fmt.Errorf("three-way merge patch: %w", err)
	}
	liveJSON, err := json.Marshal(live)
	if err != nil {
		return false, nil, nil, err
	}
	predicted, err = jsonpatch.MergePatch(liveJSON, patch)
	if err != nil {
		return false, nil, nil, fmt.Errorf("applying the merge patch: %w", err)
	}
	return string(predicted) != string(liveJSON), predicted, liveJSON, nil
}

// normalizeForDiff is a copy of obj, remarshalled as gitops-engine does (so numbers are all
// float64), without metadata.creationTimestamp and status.
func normalizeForDiff(obj *unstructured.Unstructured) *unstructured.Unstructured {
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		panic(err)
	}
	out := &unstructured.Unstructured{}
	if err := json.Unmarshal(raw, &out.Object); err != nil {
		panic(err)
	}
	unstructured.RemoveNestedField(out.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(out.Object, "status")
	return out
}

func withoutNamespaceAndEmptyAnnotations(obj *unstructured.Unstructured) *unstructured.Unstructured {
	obj = obj.DeepCopy()
	if metadata, ok := obj.Object["metadata"].(map[string]any); ok {
		delete(metadata, "namespace")
		if annotations, ok := metadata["annotations"]; ok {
			if m, isMap := annotations.(map[string]any); annotations == nil || (isMap && len(m) == 0) {
				delete(metadata, "annotations")
			}
		}
	}
	return obj
}

// removeMapFields keeps of live only the fields config has, recursing into maps and, index by
// index, into lists; list items beyond config's length are kept whole.
func removeMapFields(config, live map[string]any) map[string]any {
	out := map[string]any{}
	for k, c := range config {
		l, ok := live[k]
		if !ok {
			continue
		}
		if l != nil {
			l = removeFields(c, l)
		}
		out[k] = l
	}
	return out
}

func removeFields(config, live any) any {
	switch c := config.(type) {
	case map[string]any:
		if l, ok := live.(map[string]any); ok {
			return removeMapFields(c, l)
		}
	case []any:
		if l, ok := live.([]any); ok {
			out := make([]any, 0, len(l))
			for i, item := range l {
				if i < len(c) && item != nil {
					item = removeFields(c[i], item)
				}
				out = append(out, item)
			}
			return out
		}
	}
	return live
}

// withLastApplied is obj as `kubectl apply` sends it: in namespace, with the last-applied-configuration
// annotation holding obj's own JSON encoding, taken after removing that annotation (which leaves an
// empty annotations map when it was the only one), as kubectl's GetModifiedConfiguration does.
func withLastApplied(obj *unstructured.Unstructured, namespace string) *unstructured.Unstructured {
	obj = obj.DeepCopy()
	obj.SetNamespace(namespace)
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	delete(annotations, corev1.LastAppliedConfigAnnotation)
	obj.SetAnnotations(annotations)
	raw, err := runtime.Encode(unstructured.UnstructuredJSONScheme, obj)
	if err != nil {
		panic(err)
	}
	annotations[corev1.LastAppliedConfigAnnotation] = string(raw)
	obj.SetAnnotations(annotations)
	return obj
}
