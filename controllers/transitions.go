package controllers

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

const (
	// transitionWaitTimeout is how long one wait holds its request: Fly's maximum.
	transitionWaitTimeout = time.Minute
	// maxTransitionWaits bounds the waits held open at once (each is a connection to Fly for up to
	// a minute); machines beyond it are polled every TransitionPoll instead.
	maxTransitionWaits = 64
)

// transitionWaits learn the end of a machine's boot, stop or suspend from one request Fly holds
// open until the machine gets there (GET …/wait), instead of reading the machine every
// TransitionPoll: a create costs one wait where it cost several reads. A wait that ends wakes the
// object; its pass takes the state the wait saw in place of a read. Everything here is a shortcut
// kept in memory: when a wait fails, times out or is lost with the process, the object is polled
// as before.
type transitionWaits struct {
	fly  FlyAPI
	poll time.Duration
	wake chan event.GenericEvent

	mu      sync.Mutex
	ctx     context.Context // the manager's, once it runs us; nil before
	running map[types.UID]bool
	seen    map[types.UID]sawState
}

// sawState is the machine as a finished wait left it: the pass's copy with the state reached.
type sawState struct {
	machine FlyMachine
	at      time.Time
}

func newTransitionWaits(fly FlyAPI, poll time.Duration) *transitionWaits {
	return &transitionWaits{
		fly: fly, poll: poll,
		wake:    make(chan event.GenericEvent, maxTransitionWaits),
		running: map[types.UID]bool{}, seen: map[types.UID]sawState{},
	}
}

// The states of an update's swap (docs/fly-api.md §4.4, §5).
const (
	machineReplacing = "replacing"
	machineUpdating  = "updating"
)

// Start gives the waits the manager's lifetime; the manager runs it on the leader.
func (w *transitionWaits) Start(ctx context.Context) error {
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
	<-ctx.Done()
	return nil
}

// watch adds the wake-ups to the UserMachine controller.
func (w *transitionWaits) watch(bld *builder.Builder) *builder.Builder {
	if w == nil {
		return bld
	}
	return bld.WatchesRawSource(source.Channel(w.wake, &handler.EnqueueRequestForObject{}))
}

// waitTarget is what a machine in state heads for, when hangar can tell: the states a wait asks
// for ("failed" too after a boot, so a failed boot wakes the object at once). An update's swap
// (replacing, updating) ends in whichever settled state the new version reaches (Fly boots it or
// leaves it stopped, docs/fly-api.md §4.4), so the wait asks for all of them. Nothing for states
// whose end hangar cannot predict (restarting...), or a created machine that will not launch.
func waitTarget(state string, want flyv1alpha1.PowerState) []string {
	switch state {
	case machineReplacing, machineUpdating:
		return []string{MachineStarted, MachineStopped, MachineSuspended, MachineFailed}
	case MachineCreated:
		if want == flyv1alpha1.PowerStateStopped {
			return nil
		}
		return []string{MachineStarted, MachineFailed}
	case MachineStarting:
		return []string{MachineStarted, MachineFailed}
	case MachineStopping:
		return []string{MachineStopped}
	case MachineSuspending:
		return []string{MachineSuspended}
	}
	return nil
}

// start begins a wait for um's machine m (in state, the transition's) and reports whether one is
// under way, in which case the object is woken when it ends.
func (w *transitionWaits) start(um *flyv1alpha1.UserMachine, m *FlyMachine, state string) bool {
	if w == nil {
		return false
	}
	target := waitTarget(state, um.Spec.PowerState)
	if m == nil || target == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running[um.UID] {
		return true
	}
	if w.ctx == nil || w.ctx.Err() != nil || len(w.running) >= maxTransitionWaits {
		return false
	}
	w.running[um.UID] = true
	delete(w.seen, um.UID)
	w.dropStale()
	machine, app := *m, um.Status.AppName
	key := metav1.ObjectMeta{Namespace: um.Namespace, Name: um.Name}
	go w.await(w.ctx, um.UID, key, app, machine, target)
	return true
}

func (w *transitionWaits) await(ctx context.Context, uid types.UID, key metav1.ObjectMeta, app string, m FlyMachine, target []string) {
	got, err := w.fly.WaitForState(ctx, app, m.ID, m.Version, target, transitionWaitTimeout)
	w.mu.Lock()
	delete(w.running, uid)
	if err == nil && got.Version == m.Version {
		m.State = got.State
		w.seen[uid] = sawState{machine: m, at: time.Now()}
	}
	w.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	// Woken either way: after a failed wait the pass reads the machine itself.
	select {
	case w.wake <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: key}}:
	case <-ctx.Done():
	}
}

// dropStale forgets what waits saw that no pass took in time (the object was deleted, or its pass
// came late), so the memory stays as small as the waits under way. The caller holds w.mu.
func (w *transitionWaits) dropStale() {
	for uid, saw := range w.seen {
		if time.Since(saw.at) > w.poll {
			delete(w.seen, uid)
		}
	}
}

// take returns, once, what a wait saw of the machine at version, when it is as recent as a poll
// would be; otherwise the pass reads the machine.
func (w *transitionWaits) take(uid types.UID, version string) (FlyMachine, bool) {
	if w == nil {
		return FlyMachine{}, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	saw, ok := w.seen[uid]
	delete(w.seen, uid)
	if !ok || saw.machine.Version != version || time.Since(saw.at) > w.poll {
		return FlyMachine{}, false
	}
	return saw.machine, true
}

// fallback is how long a pass whose machine is being waited for sets as its requeue: past the
// wait's end, in case its wake-up is lost.
func (w *transitionWaits) fallback() time.Duration { return transitionWaitTimeout + w.poll }
