package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// FlyAPI is everything the controllers ask of Fly, in their own terms. internal/flyadapter
// implements it over the Machines API client; tests run it against the Fly emulator.
//
// Rules every implementation keeps:
//   - errors are *FlyError (or wrap one), so callers classify them with errors.As;
//   - creates are sent once: after an ambiguous failure the caller looks the resource up by name
//     or metadata before creating again (FindMachine), so a lost answer never duplicates it. An
//     ambiguous failure is FlyUnavailable (a 408, a 5xx, a lost answer: the change may have been
//     made); the implementation says "outcome unknown" in its message, never resends it itself;
//   - DeleteApp, DestroyMachine and ReleasePrivateIP treat "already gone" as success;
//   - a call slowed or refused by Fly's rate limits marks the context's throttle note (see
//     WithThrottleNote) and, when it could not be made in time, fails with FlyThrottled.
type FlyAPI interface {
	// CreateApp creates an app in org on network (created on first use). FlyNameTaken when the name
	// is used anywhere on Fly. Fly creates apps asynchronously: FlyUnavailable may mean the app was
	// created but could not be read back in time; the next CreateApp then answers FlyNameTaken.
	CreateApp(ctx context.Context, org, name, network string) (FlyApp, error)
	// GetApp reads an app. FlyNotFound when no app has the name; FlyForbidden when it belongs to an
	// org the token cannot read.
	GetApp(ctx context.Context, name string) (FlyApp, error)
	// DeleteApp deletes an app with its machines, stopping them first. It returns once Fly accepted
	// the deletion (202): the app may still be read, and its name stay taken, for a while after.
	DeleteApp(ctx context.Context, name string) error

	// SetAppSecrets sets and removes app secrets in one change and returns the new secrets version.
	SetAppSecrets(ctx context.Context, app string, set map[string]string, unset []string) (int64, error)
	// AppSecretNames lists the names of the app's secrets (never their values). FlyNotFound when
	// the app does not exist.
	AppSecretNames(ctx context.Context, app string) ([]string, error)
	// EnsurePrivateIP returns the app's Flycast address on network, allocating one if it has none.
	// FlyRejected when the app has several Flycast addresses and Fly does not say which network they
	// are on (a person must release the extra ones): it never allocates when it cannot tell.
	EnsurePrivateIP(ctx context.Context, app, network string) (string, error)
	// ReleasePrivateIP removes an address from the app.
	ReleasePrivateIP(ctx context.Context, app, ip string) error

	// GetMachine reads a machine. FlyNotFound for an unknown ID; a destroyed machine may be
	// returned in state destroyed.
	GetMachine(ctx context.Context, app, id string) (FlyMachine, error)
	// FindMachine lists the app's machines whose metadata has key=value (destroyed ones excluded).
	FindMachine(ctx context.Context, app, key, value string) ([]FlyMachine, error)
	// CreateMachine creates and boots a machine. FlyNameTaken when a machine
	// of that name exists already (perhaps one a lagging list did not show).
	CreateMachine(ctx context.Context, app string, d DesiredMachine) (FlyMachine, error)
	// UpdateMachine replaces the parts of the machine's config hangar manages with d, keeping every
	// other field, under a lease and only if the machine is still at version fromVersion (checked on
	// a read under the lease: FlyConflict when it shows another version, which includes a read
	// lagging behind a recent write). The machine returned is the update's own answer.
	UpdateMachine(ctx context.Context, app, id, fromVersion string, d DesiredMachine) (FlyMachine, error)
	// StartMachine, StopMachine and SuspendMachine ask for a power transition; they return before it
	// completes.
	StartMachine(ctx context.Context, app, id string) error
	StopMachine(ctx context.Context, app, id string) error
	SuspendMachine(ctx context.Context, app, id string) error
	// DestroyMachine stops and destroys a machine.
	DestroyMachine(ctx context.Context, app, id string) error
	// WaitForState holds one request until the machine's version is in one of states, or timeout
	// (at most a minute) passes, and returns the state and version it reached (only those fields
	// are set). An error, a timeout included, says nothing about the machine.
	WaitForState(ctx context.Context, app, id, version string, states []string, timeout time.Duration) (FlyMachine, error)
}

// FlyApp is what the controllers know of a Fly app.
type FlyApp struct {
	Name    string
	ID      string
	Org     string
	Network string
}

// FlyMachine is what the controllers know of a Fly machine.
type FlyMachine struct {
	ID        string
	Name      string
	State     string
	Region    string
	Version   string
	PrivateIP string
	Metadata  map[string]string
	// StartedAt is when the machine last reached started, from its event log; zero when the answer
	// carried no event log (a wait's answer) or the machine never started.
	StartedAt time.Time
}

// Fly machine states the controllers act on.
const (
	MachineCreated    = "created"
	MachineStarting   = "starting"
	MachineStarted    = "started"
	MachineStopping   = "stopping"
	MachineStopped    = "stopped"
	MachineSuspending = "suspending"
	MachineSuspended  = "suspended"
	MachineDestroying = "destroying"
	MachineDestroyed  = "destroyed"
	MachineFailed     = "failed"
)

// settled reports whether a machine state is one Fly stays in without further action. created is
// not: hangar launches every machine it creates, so a machine of hangar's in created is about to
// start (on real Fly the launch can take seconds to begin).
func settled(state string) bool {
	switch state {
	case MachineStarted, MachineStopped, MachineSuspended, MachineFailed, MachineDestroyed:
		return true
	}
	return false
}

// DesiredMachine is the machine a UserMachine asks for. It is built from the spec (see
// desiredMachineFor) and is all an implementation of FlyAPI needs to create or update it.
type DesiredMachine struct {
	Name       string                       `json:"name"`
	Region     string                       `json:"region"`
	Image      string                       `json:"image"`
	Env        map[string]string            `json:"env,omitempty"`
	Guest      flyv1alpha1.Guest            `json:"guest"`
	Services   []flyv1alpha1.MachineService `json:"services"`
	Checks     []flyv1alpha1.MachineCheck   `json:"checks,omitempty"`
	Restart    *flyv1alpha1.RestartPolicy   `json:"restart,omitempty"`
	StopConfig *flyv1alpha1.StopConfig      `json:"stopConfig,omitempty"`
	Metadata   map[string]string            `json:"metadata"`
	// MinSecretsVersion makes Fly give the machine app secrets at least this new.
	MinSecretsVersion int64 `json:"minSecretsVersion"`
}

// FlyErrorKind classifies a Fly failure by what the controller should do about it.
type FlyErrorKind int

const (
	// FlyUnavailable is a 5xx, a 408, a timeout or a dropped connection. Transient: retry with
	// backoff. After a call that changes something its outcome may be unknown: the change may have
	// been made (the message then starts "outcome unknown"), so look before repeating it.
	FlyUnavailable FlyErrorKind = iota
	// FlyNotFound is the app or machine does not exist.
	FlyNotFound
	// FlyNameTaken is the app or machine name is used already.
	FlyNameTaken
	// FlyUnauthorized is Fly refused the token. Permanent until the token changes.
	FlyUnauthorized
	// FlyForbidden is the token cannot act on this resource (another org's app).
	FlyForbidden
	// FlyRejected is Fly refused the request as invalid (400/422). Permanent until the spec changes.
	FlyRejected
	// FlyThrottled is rate limited; retry after RetryAfter.
	FlyThrottled
	// FlyConflict is a lease or version conflict; someone else changed the machine. Retry soon.
	FlyConflict
	// FlyPrecondition is the machine's state does not allow the action yet. Retry soon.
	FlyPrecondition
)

var flyErrorKindNames = map[FlyErrorKind]string{
	FlyUnavailable: "unavailable", FlyNotFound: "not found", FlyNameTaken: "name taken",
	FlyUnauthorized: "unauthorized", FlyForbidden: "forbidden", FlyRejected: "rejected",
	FlyThrottled: "throttled", FlyConflict: "conflict", FlyPrecondition: "failed precondition",
}

func (k FlyErrorKind) String() string { return flyErrorKindNames[k] }

// FlyError is a classified Fly failure. Message is Fly's own text (never holding the token), fit
// for a condition message and an Event.
type FlyError struct {
	Kind       FlyErrorKind
	Message    string
	RetryAfter time.Duration
	Err        error
}

func (e *FlyError) Error() string {
	if e.Message == "" {
		return "fly: " + e.Kind.String()
	}
	return fmt.Sprintf("fly: %s: %s", e.Kind, e.Message)
}

func (e *FlyError) Unwrap() error { return e.Err }

// isFlyKind reports whether err is (or wraps) a FlyError of that kind.
func isFlyKind(err error, kind FlyErrorKind) bool {
	var fe *FlyError
	return errors.As(err, &fe) && fe.Kind == kind
}

// refusedOutright reports whether Fly answered a call with a refusal that means it did nothing:
// the spec refused, the token refused or not allowed, or rate limited (or it was never sent: the
// object is paused). A lost answer, a timeout or
// a 5xx may still hide a call carried out, so they do not count.
func refusedOutright(err error) bool {
	var pause *pausedError
	if errors.As(err, &pause) {
		return true // never sent
	}
	var fe *FlyError
	if !errors.As(err, &fe) {
		return false
	}
	switch fe.Kind {
	case FlyRejected, FlyForbidden, FlyUnauthorized, FlyThrottled:
		return true
	}
	return false
}

// throttleNote records that a Fly call in this pass was slowed by rate limits.
type throttleNote struct{ hit atomic.Bool }

type throttleNoteKey struct{}

// WithThrottleNote returns a context in which FlyAPI implementations can report throttling
// (NoteThrottled), and a func that tells whether they did.
func WithThrottleNote(ctx context.Context) (context.Context, func() bool) {
	n := &throttleNote{}
	return context.WithValue(ctx, throttleNoteKey{}, n), n.hit.Load
}

// NoteThrottled marks the context's throttle note, if any. FlyAPI implementations call it when a
// call waited on the client-side limiter or was answered 429.
func NoteThrottled(ctx context.Context) {
	if n, ok := ctx.Value(throttleNoteKey{}).(*throttleNote); ok {
		n.hit.Store(true)
	}
}
