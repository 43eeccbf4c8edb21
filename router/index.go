package router

import (
	"sync/atomic"
	"time"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// target is what a host (or a Hangar-Target name) resolves to: a Fly app and, when pinned, one of
// its machines, with everything a request needs precomputed. A target is immutable once its Index
// is published; only its replay source's signature cache changes, atomically.
type target struct {
	// kind, namespace and name say which object the target came from (for log lines, never for
	// responses). They share the cached object's strings.
	kind      ownerKind
	namespace string
	name      string
	// flyApp is the Fly app name; empty while the UserApp has none yet.
	flyApp string
	// machine is the pinned machine ID; empty replays to any machine of the app.
	machine string
	// auth is the public authentication mode of the app.
	auth flyv1alpha1.RoutingAuth
	// ready is true when the target has a machine to replay to.
	ready bool
	// replay signs and caches the replay values; nil unless ready.
	replay *replaySource
	// signer is the app's keys replay state is signed with: the current generation, or the
	// previous one while a rotation overlaps.
	signer keys.App
	// managementToken is the app's management token; nil while flyApp is unknown.
	managementToken []byte
	// previousManagementToken is the previous generation's token while a rotation overlaps.
	previousManagementToken []byte
	// activity records each replay for idle timeouts (activity.go); nil when activity is off or the
	// target is not ready.
	activity *activitySlot
}

// Index maps canonical hosts and UserMachine names to targets. It is immutable: the router makes a
// new one when the cluster changes (sharing what did not change with the previous one) and
// publishes it through a Table, so lookups take no lock.
type Index struct {
	hosts cowMap[*target]
	// machines is keyed by "namespace/name" of each UserMachine, for the Hangar-Target header.
	machines cowMap[*target]
	// conflicts counts the live claims that lose a host to another app, once each.
	conflicts int
	// skipped counts objects left out because a status field could not go into a replay.
	skipped int
	// keySwitch is when the earliest key rotation overlap of the index ends (zero: none); the index
	// must be rebuilt then, to sign with the new keys.
	keySwitch time.Time
}

// KeySwitch is when the index must be rebuilt because a key rotation's overlap ends (zero: never).
func (ix *Index) KeySwitch() time.Time { return ix.keySwitch }

// Routes is the number of hosts the index serves.
func (ix *Index) Routes() int { return ix.hosts.size() }

// Conflicts is the number of losing host claims.
func (ix *Index) Conflicts() int { return ix.conflicts }

// lookupHost finds the target of a canonical host.
func (ix *Index) lookupHost(canonical string) *target { return ix.hosts.get(canonical) }

// lookupMachine finds the target of a "namespace/name" UserMachine reference.
func (ix *Index) lookupMachine(ref string) *target { return ix.machines.get(ref) }

// Table publishes the current Index. Readers never block and never see a half-built index.
type Table struct {
	current atomic.Pointer[Index]
}

// Load returns the current index, or nil before the first one is published.
func (t *Table) Load() *Index { return t.current.Load() }

// Store publishes ix.
func (t *Table) Store(ix *Index) { t.current.Store(ix) }
