// Package manifests reads Kubernetes objects from YAML files and builds kustomizations with
// kustomize's own library (krusty), for tests and the local stack.
package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// ReadKustomization builds the kustomization in dir as `kubectl kustomize dir` would (overlays of
// other directories, namePrefix and nameSuffix, patches, generators and configurations included)
// and returns its objects in kustomize's output order. Like kubectl, it loads no file outside dir
// other than the kustomizations dir names, and runs no plugins.
func ReadKustomization(dir string) ([]*unstructured.Unstructured, error) {
	return Build(filesys.MakeFsOnDisk(), dir)
}

// Build is ReadKustomization on any file system (filesys.MakeFsInMemory for tests).
func Build(fs filesys.FileSystem, dir string) ([]*unstructured.Unstructured, error) {
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		return nil, &BuildError{Kustomization: kustomizationFile(fs, dir), Err: err}
	}
	objs := make([]*unstructured.Unstructured, 0, resources.Size())
	for _, r := range resources.Resources() {
		obj, err := r.Map()
		if err != nil {
			return nil, &BuildError{Kustomization: kustomizationFile(fs, dir), Err: fmt.Errorf("%s: %w", r.CurId(), err)}
		}
		objs = append(objs, &unstructured.Unstructured{Object: obj})
	}
	if len(objs) == 0 {
		return nil, &BuildError{Kustomization: kustomizationFile(fs, dir), Err: errors.New("it holds no objects")}
	}
	return objs, nil
}

// kustomizationFile is the kustomization file kustomize reads in dir (it accepts three names), or
// dir itself when there is none, so that an error names the file to fix.
func kustomizationFile(fs filesys.FileSystem, dir string) string {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if path := filepath.Join(dir, name); fs.Exists(path) {
			return path
		}
	}
	return dir
}

// BuildError is a kustomization that could not be built. Err is kustomize's own error, which names
// the entry at fault and, when it lies in another file (a resource, a patch, a base), that file.
type BuildError struct {
	// Kustomization is the kustomization file built (its directory when it has none).
	Kustomization string
	Err           error
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("%s: %v", e.Kustomization, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// ReadFile decodes every object of a multi-document YAML (or JSON) file.
func ReadFile(path string) ([]*unstructured.Unstructured, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	objs, err := Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return objs, nil
}

// Decode reads every object of a multi-document YAML (or JSON) stream; empty documents are skipped.
func Decode(raw []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}
