package controllers_test

import (
	"context"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
)

// TestPassReadsTheCacheOnlyWhenItIsCurrent: a pass takes the cached copy only when it is at least
// the newest version the manager has read or written; a cache behind the manager's own write, or
// an object the manager knows nothing of, sends the read to the apiserver.
func TestPassReadsTheCacheOnlyWhenItIsCurrent(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{})
	h.stopManager() // this test is the only reader
	app := newApp("fresh")
	h.create(app)

	base, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// The "cache" serves whatever copy the test froze; the apiserver reads are counted.
	var (
		mu     sync.Mutex
		frozen *flyv1alpha1.UserApp
		direct int
	)
	cache := interceptor.NewClient(base, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			mu.Lock()
			defer mu.Unlock()
			frozen.DeepCopyInto(obj.(*flyv1alpha1.UserApp))
			return nil
		},
	})
	apiserver := interceptor.NewClient(base, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			mu.Lock()
			direct++
			mu.Unlock()
			return c.Get(ctx, key, obj, opts...)
		},
	})
	freeze := func() {
		mu.Lock()
		defer mu.Unlock()
		frozen = &flyv1alpha1.UserApp{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), frozen); err != nil {
			t.Fatal(err)
		}
	}
	fr := controllers.NewFreshReader(cache, apiserver)
	read := func(what string, wantDirect int) *flyv1alpha1.UserApp {
		t.Helper()
		mu.Lock()
		direct = 0
		mu.Unlock()
		got := &flyv1alpha1.UserApp{}
		if err := fr.Get(ctx, client.ObjectKeyFromObject(app), got); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if direct != wantDirect {
			t.Errorf("%s: %d apiserver reads, want %d", what, direct, wantDirect)
		}
		return got
	}

	freeze()
	read("first read, nothing known", 1)
	read("the cache holds the version read", 0)

	// The manager writes; the cache has not caught up.
	written := read("before the write", 0)
	written.Status.Conditions = []metav1.Condition{{Type: "Probe", Status: metav1.ConditionTrue, Reason: "Probe", LastTransitionTime: metav1.Now()}}
	if err := env.Client.Status().Update(ctx, written); err != nil {
		t.Fatal(err)
	}
	fr.Wrote(written)
	if got := read("the cache is behind the manager's write", 1); got.ResourceVersion != written.ResourceVersion {
		t.Errorf("read version %s, want the written %s", got.ResourceVersion, written.ResourceVersion)
	}
	freeze() // the cache catches up
	read("the cache caught up", 0)

	// Someone else writes; the cache shows it first (as it does when a watch event starts the pass).
	h.update(app, func() { app.Labels = map[string]string{"written-by": "someone-else"} })
	freeze()
	if got := read("the cache is ahead of what the manager knows", 0); got.Labels["written-by"] != "someone-else" {
		t.Errorf("read labels %v", got.Labels)
	}
	// And the manager writes again, which the cache has not seen yet: the newer version it just
	// took from the cache is what it compares with.
	mine := read("before the second write", 0)
	mine.Status.Conditions[0].Reason = "Again"
	if err := env.Client.Status().Update(ctx, mine); err != nil {
		t.Fatal(err)
	}
	fr.Wrote(mine)
	if got := read("the cache is behind the second write", 1); got.ResourceVersion != mine.ResourceVersion {
		t.Errorf("read version %s, want the written %s", got.ResourceVersion, mine.ResourceVersion)
	}
}
