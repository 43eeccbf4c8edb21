package controllers

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// knownVersions remembers, per object, the newest resourceVersion this manager has read from the
// apiserver or written itself. A pass may act on the cached copy when it is at least that version
// (resourceVersions of one resource compare as integers: k8s.io/apimachinery's resourceversion
// package); then it is as new as anything the manager knows, and in steady state a pass costs no
// apiserver request. When the cache is behind (the manager's own write has not reached it yet), or
// the manager knows nothing of the object (its first pass since the process started), the pass
// reads the apiserver. Acting on a copy older than the manager's own last write would repeat Fly
// calls (a second secrets version, a needless machine update), which is what this guards against.
type knownVersions struct {
	mu       sync.Mutex
	versions map[versionKey]string
}

// versionKey names an object across kinds (a UserApp and a UserMachine may share a name).
type versionKey struct {
	kind string
	name types.NamespacedName
}

func newKnownVersions() *knownVersions {
	return &knownVersions{versions: map[versionKey]string{}}
}

func keyOf(obj client.Object) versionKey {
	return versionKey{kind: fmt.Sprintf("%T", obj), name: client.ObjectKeyFromObject(obj)}
}

// record notes obj's resourceVersion as the newest the manager knows.
func (k *knownVersions) record(obj client.Object) {
	if k == nil || obj.GetResourceVersion() == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.versions[keyOf(obj)] = obj.GetResourceVersion()
}

// forget drops what is known of obj's kind at key (it is gone).
func (k *knownVersions) forget(obj client.Object, key types.NamespacedName) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.versions, versionKey{kind: fmt.Sprintf("%T", obj), name: key})
}

// current reports whether obj is at least the newest version the manager knows of it. Versions
// that do not compare (not the integers every apiserver gives today) count only when equal.
func (k *knownVersions) current(obj client.Object) bool {
	if k == nil {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	known, ok := k.versions[keyOf(obj)]
	if !ok {
		return false
	}
	cmp, err := resourceversion.CompareResourceVersion(obj.GetResourceVersion(), known)
	if err != nil {
		return obj.GetResourceVersion() == known
	}
	return cmp >= 0
}

// get reads the object at key into obj: from the cache when the cached copy is at least the newest
// version the manager knows (see knownVersions), else from the apiserver; then remembers it.
func (b base) get(ctx context.Context, key types.NamespacedName, obj client.Object) error {
	if err := b.client.Get(ctx, key, obj); err == nil && b.known.current(obj) {
		b.known.record(obj)
		return nil
	}
	if err := b.reader.Get(ctx, key, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			b.known.forget(obj, key)
		}
		return err
	}
	b.known.record(obj)
	return nil
}
