package controllers

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// planClient is the Kubernetes client of a plan's passes. It reads the live cluster, seen through
// the plan's own objects (each UserApp and UserMachine of the files as its pass left it, and the
// Secrets of the files), and writes nothing: every write is answered as done and noted, so a pass
// goes on as it would after it (a connection Secret "written", the HostsAccepted phase after it
// run). Lists of hangar's kinds by field (the controllers' cache indexes) are answered from one
// list of the live objects, read on first use, with the indexes evaluated here.
type planClient struct {
	live    client.Client
	indexes map[indexKey]client.IndexerFunc

	mu sync.Mutex
	// overlay holds the plan's objects by kind and key; they hide the live ones.
	overlay map[versionKey]client.Object
	// listed is the live list of each kind, read once.
	listed map[string][]client.Object
	// writes are the Kubernetes writes the passes asked for, other than those to the planned
	// object itself (its finalizer and status), e.g. "create Secret ns/name".
	writes []string
}

type indexKey struct {
	kind  string
	field string
}

func newPlanClient(live client.Client) *planClient {
	return &planClient{live: live, indexes: map[indexKey]client.IndexerFunc{},
		overlay: map[versionKey]client.Object{}, listed: map[string][]client.Object{}}
}

var _ client.Client = (*planClient)(nil)

// IndexField makes planClient the FieldIndexer indexFields and indexClaims register with, so a
// plan evaluates the very functions the manager's cache indexes by.
func (c *planClient) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	c.indexes[indexKey{kind: fmt.Sprintf("%T", obj), field: field}] = fn
	return nil
}

// put makes obj the plan's version of itself.
func (c *planClient) put(obj client.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.overlay[keyOf(obj)] = obj.DeepCopyObject().(client.Object)
}

// writesSince returns the writes noted after the first n.
func (c *planClient) writesSince(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.writes[n:])
}

func (c *planClient) writeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.writes)
}

func (c *planClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.mu.Lock()
	stored, ok := c.overlay[versionKey{kind: fmt.Sprintf("%T", obj), name: key}]
	c.mu.Unlock()
	if ok {
		reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(stored.DeepCopyObject()).Elem())
		return nil
	}
	return c.live.Get(ctx, key, obj, opts...)
}

func (c *planClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	var item client.Object
	switch list.(type) {
	case *flyv1alpha1.UserAppList:
		item = &flyv1alpha1.UserApp{}
	case *flyv1alpha1.UserMachineList:
		item = &flyv1alpha1.UserMachine{}
	default:
		return c.live.List(ctx, list, opts...)
	}
	all, err := c.listAll(ctx, list, item)
	if err != nil {
		return err
	}
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	var out []runtime.Object
	for _, obj := range all {
		if (lo.Namespace == "" || obj.GetNamespace() == lo.Namespace) &&
			(lo.LabelSelector == nil || lo.LabelSelector.Matches(labels.Set(obj.GetLabels()))) &&
			c.matchesFields(obj, lo.FieldSelector) {
			out = append(out, obj.DeepCopyObject())
		}
	}
	return meta.SetList(list, out)
}

// listAll is the live list of item's kind (read once) with the plan's objects in place of theirs.
func (c *planClient) listAll(ctx context.Context, list client.ObjectList, item client.Object) ([]client.Object, error) {
	kind := fmt.Sprintf("%T", item)
	c.mu.Lock()
	live, ok := c.listed[kind]
	c.mu.Unlock()
	if !ok {
		fresh := list.DeepCopyObject().(client.ObjectList)
		if err := c.live.List(ctx, fresh); err != nil {
			return nil, fmt.Errorf("listing %ss in all namespaces (a plan checks the claims on Fly app names, networks and hosts across namespaces, as the manager does): %w",
				kind[len("*v1alpha1."):], err)
		}
		items, err := meta.ExtractList(fresh)
		if err != nil {
			return nil, err
		}
		for _, o := range items {
			live = append(live, o.(client.Object))
		}
		c.mu.Lock()
		c.listed[kind] = live
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []client.Object
	for _, o := range live {
		if _, planned := c.overlay[keyOf(o)]; !planned {
			all = append(all, o)
		}
	}
	for k, o := range c.overlay {
		if k.kind == kind {
			all = append(all, o)
		}
	}
	return all, nil
}

// matchesFields evaluates a field selector of exact matches (the only kind the controllers use)
// with the registered indexes; an unknown field matches nothing.
func (c *planClient) matchesFields(obj client.Object, sel fields.Selector) bool {
	if sel == nil || sel.Empty() {
		return true
	}
	for _, req := range sel.Requirements() {
		fn, ok := c.indexes[indexKey{kind: fmt.Sprintf("%T", obj), field: req.Field}]
		if !ok || !slices.Contains(fn(obj), req.Value) {
			return false
		}
	}
	return true
}

// note records a write the pass asked for, unless it is to an object of the plan (its finalizer,
// its status): those are the plan's own bookkeeping, not a change to report.
func (c *planClient) note(verb string, obj client.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, planned := c.overlay[keyOf(obj)]; planned {
		return
	}
	kind := reflect.TypeOf(obj).Elem().Name()
	if gvk, err := c.live.GroupVersionKindFor(obj); err == nil {
		kind = gvk.Kind
	}
	c.writes = append(c.writes, fmt.Sprintf("%s %s %s/%s", verb, kind, obj.GetNamespace(), obj.GetName()))
}

func (c *planClient) Create(_ context.Context, obj client.Object, _ ...client.CreateOption) error {
	c.note("create", obj)
	return nil
}

func (c *planClient) Delete(_ context.Context, obj client.Object, _ ...client.DeleteOption) error {
	c.note("delete", obj)
	return nil
}

func (c *planClient) Update(_ context.Context, obj client.Object, _ ...client.UpdateOption) error {
	c.note("update", obj)
	return nil
}

func (c *planClient) Patch(_ context.Context, obj client.Object, _ client.Patch, _ ...client.PatchOption) error {
	c.note("update", obj)
	return nil
}

func (c *planClient) Apply(context.Context, runtime.ApplyConfiguration, ...client.ApplyOption) error {
	return fmt.Errorf("a plan makes no server-side apply")
}

func (c *planClient) DeleteAllOf(context.Context, client.Object, ...client.DeleteAllOfOption) error {
	return fmt.Errorf("a plan deletes nothing")
}

func (c *planClient) Status() client.SubResourceWriter { return planSubResource{c} }

func (c *planClient) SubResource(string) client.SubResourceClient { return planSubResource{c} }

func (c *planClient) Scheme() *runtime.Scheme { return c.live.Scheme() }

func (c *planClient) RESTMapper() meta.RESTMapper { return c.live.RESTMapper() }

func (c *planClient) GroupVersionKindFor(obj runtime.Object) (schema.GroupVersionKind, error) {
	return c.live.GroupVersionKindFor(obj)
}

func (c *planClient) IsObjectNamespaced(obj runtime.Object) (bool, error) {
	return c.live.IsObjectNamespaced(obj)
}

// planSubResource drops every status (or other subresource) write: the loop's status write at
// the end of a pass and the checkpoints a phase makes before a create.
type planSubResource struct{ c *planClient }

func (s planSubResource) Get(context.Context, client.Object, client.Object, ...client.SubResourceGetOption) error {
	return fmt.Errorf("a plan reads no subresource")
}

func (s planSubResource) Create(_ context.Context, obj, _ client.Object, _ ...client.SubResourceCreateOption) error {
	s.c.note("create a subresource of", obj)
	return nil
}

func (s planSubResource) Update(_ context.Context, obj client.Object, _ ...client.SubResourceUpdateOption) error {
	s.c.note("update the status of", obj)
	return nil
}

func (s planSubResource) Patch(_ context.Context, obj client.Object, _ client.Patch, _ ...client.SubResourcePatchOption) error {
	s.c.note("update the status of", obj)
	return nil
}

func (s planSubResource) Apply(context.Context, runtime.ApplyConfiguration, ...client.SubResourceApplyOption) error {
	return fmt.Errorf("a plan makes no server-side apply")
}
