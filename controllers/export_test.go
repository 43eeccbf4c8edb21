package controllers

import (
	"context"
	"errors"
	"time"

	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// WaitFor lets external tests build a waiting error.
var WaitFor = waitFor

// ScriptedPhase is a phase whose work a test scripts.
type ScriptedPhase struct {
	Condition string
	Run       func(context.Context, *flyv1alpha1.UserApp) error
}

// NewScriptedLoop returns the shared reconcile loop running UserApps through scripted phases and a
// scripted finalize step, so tests can check what the loop does around any kind's phases. c serves
// as both the writing client and the direct reader.
func NewScriptedLoop(c client.Client, rec events.EventRecorder, phases []ScriptedPhase, finalize func(*flyv1alpha1.UserApp) error) reconcile.Reconciler {
	lc := lifecycle[*flyv1alpha1.UserApp, *flyv1alpha1.UserApp]{
		kind:     "ScriptedUserApp",
		scope:    func(app *flyv1alpha1.UserApp) *flyv1alpha1.UserApp { return app },
		finalize: func(_ context.Context, app *flyv1alpha1.UserApp) error { return finalize(app) },
		nextPass: func(*flyv1alpha1.UserApp) time.Duration { return time.Minute },
		readyMessage: func(app *flyv1alpha1.UserApp) string {
			return "scripted " + app.Name + " ready"
		},
	}
	for _, p := range phases {
		lc.phases = append(lc.phases, phase[*flyv1alpha1.UserApp]{
			condition: p.Condition,
			run:       p.Run,
		})
	}
	b := base{client: c, reader: c, events: eventer{rec}, options: Options{}.withDefaults()}
	registerMetrics()
	return &loop[flyv1alpha1.UserApp, *flyv1alpha1.UserApp, *flyv1alpha1.UserApp]{base: b, lifecycle: lc}
}

// FreshReader is base.get with its memory of versions, for tests of when a pass may take the
// cached copy.
type FreshReader struct{ b base }

// NewFreshReader reads through cache when it holds the newest version known, else through
// apiserver.
func NewFreshReader(cache client.Client, apiserver client.Reader) *FreshReader {
	return &FreshReader{b: base{client: cache, reader: apiserver, known: newKnownVersions()}}
}

// Get is base.get.
func (f *FreshReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	return f.b.get(ctx, key, obj)
}

// Wrote records obj as written by the manager, as the loop does after its writes.
func (f *FreshReader) Wrote(obj client.Object) { f.b.known.record(obj) }

// AppChangeConcernsMachines is the filter on the UserApp events that reach its machines.
func AppChangeConcernsMachines(old, updated *flyv1alpha1.UserApp) bool {
	return appChangeConcernsMachines().Update(event.UpdateEvent{ObjectOld: old, ObjectNew: updated})
}

// PauseGuard, WithPaused and IsPaused expose the pause seam to tests.
func PauseGuard(inner FlyAPI) FlyAPI                 { return pauseGuard{inner} }
func WithPaused(ctx context.Context) context.Context { return withPaused(ctx) }
func IsPaused(err error) bool {
	var p *pausedError
	return errors.As(err, &p)
}
