package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writtenSecrets remembers, per connection Secret, the resourceVersion it had after the manager
// last wrote it and a digest of what was written. Secrets are never cached with their data (see
// ClientOptions), so checking a connection Secret costs an apiserver read; when the cached
// metadata still shows the version the manager wrote, and the content it would write is the same,
// nobody has changed it since and the read is skipped. That was a UserApp pass's one apiserver
// read in steady state (test/scale). The digest stays in memory; a new process checks each
// Secret once.
type writtenSecrets struct {
	mu      sync.Mutex
	written map[types.NamespacedName]writtenSecret
}

type writtenSecret struct {
	resourceVersion string
	digest          string
}

func newWrittenSecrets() *writtenSecrets {
	return &writtenSecrets{written: map[types.NamespacedName]writtenSecret{}}
}

// unchanged reports whether the Secret at key, as the cache's metadata shows it, is the one the
// manager last wrote with content digest.
func (w *writtenSecrets) unchanged(ctx context.Context, cache client.Reader, key types.NamespacedName, digest string) bool {
	if w == nil || cache == nil {
		return false
	}
	w.mu.Lock()
	last, ok := w.written[key]
	w.mu.Unlock()
	if !ok || last.digest != digest {
		return false
	}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := cache.Get(ctx, key, meta); err != nil {
		return false
	}
	return meta.ResourceVersion == last.resourceVersion
}

// record notes what the manager wrote (or found already written) at key.
func (w *writtenSecrets) record(key types.NamespacedName, resourceVersion, digest string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written[key] = writtenSecret{resourceVersion: resourceVersion, digest: digest}
}

// forget drops what is remembered of the Secret at key (its UserApp is gone).
func (w *writtenSecrets) forget(key types.NamespacedName) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.written, key)
}

// secretDigest is a digest of a Secret's data, for comparing in memory only.
func secretDigest(data map[string][]byte) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(data)) {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(data[k])
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
