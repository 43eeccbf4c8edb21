package controllers

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// credentialWaits sends the objects whose last pass stopped because Fly refused the token round
// again as soon as the manager's credentials change, instead of at their next retry
// (Options.UnauthorizedRetry). It is only a shortcut: after a restart every object gets a pass
// anyway, so what it remembers may be lost.
type credentialWaits struct {
	changed <-chan struct{}
	kinds   []*unauthorizedObjects
}

// unauthorizedObjects are one kind's objects waiting for new credentials, and the channel that
// wakes the kind's controller when there are some.
type unauthorizedObjects struct {
	wake chan event.GenericEvent

	mu      sync.Mutex
	waiting map[types.NamespacedName]struct{}
}

func newCredentialWaits(changed <-chan struct{}) *credentialWaits {
	return &credentialWaits{changed: changed}
}

// forKind returns the set of one kind; nil (which remembers nothing) when nothing reports changes.
func (c *credentialWaits) forKind() *unauthorizedObjects {
	if c == nil || c.changed == nil {
		return nil
	}
	u := &unauthorizedObjects{wake: make(chan event.GenericEvent, 1), waiting: map[types.NamespacedName]struct{}{}}
	c.kinds = append(c.kinds, u)
	return u
}

// Start wakes every kind's controller on each change until ctx ends; the manager runs it (on the
// leader only, like the controllers).
func (c *credentialWaits) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.changed:
		}
		for _, u := range c.kinds {
			select {
			case u.wake <- event.GenericEvent{}:
			default: // a wake-up is already pending: it will drain everything
			}
		}
	}
}

var _ manager.Runnable = (*credentialWaits)(nil)

// note records whether the pass over key ended waiting for new credentials.
func (u *unauthorizedObjects) note(key types.NamespacedName, waiting bool) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if waiting {
		u.waiting[key] = struct{}{}
	} else {
		delete(u.waiting, key)
	}
}

// drain returns the waiting objects as requests and forgets them: each pass records them again if
// Fly still refuses.
func (u *unauthorizedObjects) drain(context.Context, client.Object) []reconcile.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	reqs := make([]reconcile.Request, 0, len(u.waiting))
	for key := range u.waiting {
		reqs = append(reqs, reconcile.Request{NamespacedName: key})
	}
	clear(u.waiting)
	return reqs
}

// watch adds the wake-ups to a kind's controller.
func (u *unauthorizedObjects) watch(bld *builder.Builder) *builder.Builder {
	if u == nil {
		return bld
	}
	return bld.WatchesRawSource(source.Channel(u.wake, handler.EnqueueRequestsFromMapFunc(u.drain)))
}
