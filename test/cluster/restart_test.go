package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/flysim"
)

// One outage serves every check: client-go's reflectors back off from 0.8 s doubling to 30 s
// (plus jitter) and forget it only after two quiet minutes, so a second outage soon after a first
// would measure the first one's backoff and take minutes.
const (
	// testOutage is the outage `make test` runs; `make bench` runs benchOutage, the length the
	// router's goal is stated for, which would take the package well past two minutes.
	testOutage  = 10 * time.Second
	benchOutage = 60 * time.Second
	// convergeBound and freshnessBound are correctness bounds, far above the goals: after an
	// outage the manager's failure backoff and the reflectors' may each wait about as long as the
	// outage lasted.
	convergeBound  = 2 * time.Minute
	freshnessBound = 2 * time.Minute
	// routerFreshnessBound is the router's correctness bound: it starts a fresh cache as soon as
	// the apiserver answers its probe (every 0.5 s at most), so a change made after the restart is
	// routed within a list and a rebuild, not at its informers' next retry (by then up to a minute
	// apart).
	routerFreshnessBound = 10 * time.Second
	// requestEvery paces the requests sent through the outage.
	requestEvery = 20 * time.Millisecond
)

// TestAPIServerRestart stops the apiserver under the running manager and router, keeps it down
// for testOutage, starts the same one again and checks that both carried on.
func TestAPIServerRestart(t *testing.T) {
	o := throughOutage(t, testOutage)
	t.Logf("%d requests, %d failed (first: %v); a host added after the restart routed after %s",
		o.requests, o.errors, o.firstErr, o.freshness)

	t.Run("the router answered a known host throughout", func(t *testing.T) {
		if o.errors != 0 {
			t.Errorf("%d of %d requests failed; first: %v", o.errors, o.requests, o.firstErr)
		}
		// The outage alone leaves room for hundreds; a handful would mean the requests stalled.
		if least := int(testOutage / requestEvery / 4); o.requests < least {
			t.Errorf("only %d requests through a %s outage, want at least %d", o.requests, testOutage, least)
		}
	})
	t.Run("the router routes a change made right after the restart", func(t *testing.T) {
		if o.freshness < 0 || o.freshness > routerFreshnessBound {
			t.Errorf("a host added right after the restart was routed after %s (negative: not within %s), want within %s",
				o.freshness, freshnessBound, routerFreshnessBound)
		}
	})
	// Drift passes are off (runMain): only the manager's watches can bring it the change and the
	// new objects, so their converging means its informers came back.
	for _, tc := range []struct {
		name string
		u    user
	}{
		{"the manager converges an object changed right after the restart", o.changed},
		{"the manager converges an object created right after the restart", o.created},
		{"the manager converges an object whose reconcile the outage interrupted", o.interrupted},
	} {
		t.Run(tc.name, func(t *testing.T) { waitConverged(t, tc.u, convergeBound) })
	}
}

// outage is what happened around one apiserver outage.
type outage struct {
	// requests counts the requests for a known host sent through the Fly Proxy from before the
	// stop until the host added after the restart was routed; errors, those that did not reach
	// the user's machine.
	requests, errors int
	firstErr         error
	// freshness is the time from the write of a host added right after the restart to the first
	// request routed by it; negative when it was not routed within freshnessBound.
	freshness time.Duration
	// changed had its UserMachine's image changed right after the restart; created was created
	// then. interrupted is the honest reading of "an object created while the apiserver is down",
	// which nobody can do: it was created just before the outage, and its first reconcile was cut
	// in half by it, its Fly machine created while the apiserver was away, so the manager could not
	// record it.
	changed, created, interrupted user
}

// throughOutage sets the scene (users converged and routed, a request loop on a known host, the
// interrupted user's create_machine held), stops the apiserver, keeps it down for downFor, starts
// it again, makes the changes, and measures how soon the router routes a host added then.
func throughOutage(t *testing.T, downFor time.Duration) outage {
	o := outage{changed: user(uniqueName("carol")), created: user(uniqueName("dan")), interrupted: user(uniqueName("erin"))}
	routed := user(uniqueName("frank"))
	newUser(t, o.changed)
	app, um := newUser(t, routed)
	// The router may still be backing off from an earlier outage in this process.
	eventually(t, routed.host()+" routed", freshnessBound, func() string {
		if err := get(routed.host(), um.Status.MachineID); err != nil {
			return err.Error()
		}
		return ""
	})

	// The counts are read only after done is closed.
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			err := get(routed.host(), um.Status.MachineID)
			o.requests++
			if err != nil {
				o.errors++
				if o.firstErr == nil {
					o.firstErr = err
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(requestEvery):
			}
		}
	}()
	var once sync.Once
	halt := func() { once.Do(func() { close(stop); <-done }) }
	defer halt() // a Fatal below must not leave the requests running

	// Hold the interrupted user's create_machine until the apiserver is stopped, then let it
	// commit while the apiserver is away.
	held, committed := holdFirstCreateMachine(t)
	create(t, o.interrupted.app(), o.interrupted.userMachine())
	release := waitHeld(t, held)
	stopAPIServer(t)
	release()
	waitClosed(t, committed, "the held create_machine to commit")
	time.Sleep(downFor)
	startAPIServer(t)

	// The change the router's freshness is measured on comes first; the manager's follow.
	patched := app.DeepCopy()
	patched.Spec.Routing.Hosts = append(patched.Spec.Routing.Hosts, "fresh-"+routed.host())
	if err := stack.Env.Client.Patch(context.Background(), patched, client.MergeFrom(app)); err != nil {
		t.Fatalf("adding a host right after the restart: %v", err)
	}
	written := time.Now()
	image := &flyv1alpha1.UserMachine{ObjectMeta: o.changed.userMachine().ObjectMeta}
	patch := client.RawPatch(client.Merge.Type(), []byte(`{"spec":{"image":"registry.fly.io/workspace:v2"}}`))
	if err := stack.Env.Client.Patch(context.Background(), image, patch); err != nil {
		t.Fatalf("changing an image right after the restart: %v", err)
	}
	create(t, o.created.app(), o.created.userMachine())

	o.freshness = -1
	for time.Since(written) < freshnessBound {
		if get("fresh-"+routed.host(), um.Status.MachineID) == nil {
			o.freshness = time.Since(written)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	halt()
	return o
}

// holdFirstCreateMachine holds the next create_machine call before it acts. held receives a
// release func once the call is held; committed is closed once it has made its change.
func holdFirstCreateMachine(t *testing.T) (held <-chan func(), committed <-chan struct{}) {
	heldCh, committedCh := make(chan func(), 1), make(chan struct{})
	release := make(chan struct{})
	var releaseOnce, holdOnce, commitOnce sync.Once
	releaseFn := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseFn) // never leave the call hanging
	var mu sync.Mutex
	var heldSeq uint64
	flyHook.set(t, func(p flysim.CallPoint) {
		if p.Action != "create_machine" {
			return
		}
		mu.Lock()
		first := false
		holdOnce.Do(func() { first, heldSeq = true, p.Seq })
		isHeld := p.Seq == heldSeq
		mu.Unlock()
		switch {
		case first:
			heldCh <- releaseFn
			<-release
		case isHeld && p.Committed:
			commitOnce.Do(func() { close(committedCh) })
		}
	})
	return heldCh, committedCh
}

func waitHeld(t *testing.T, held <-chan func()) func() {
	t.Helper()
	select {
	case release := <-held:
		return release
	case <-time.After(2 * time.Minute):
		t.Fatal("the manager made no create_machine call within 2 minutes")
		return nil
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(2 * time.Minute):
		t.Fatalf("waiting for %s: not within 2 minutes", what)
	}
}
