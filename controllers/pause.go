package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// paused reports whether obj carries the pause annotation (see api/v1alpha1.PausedAnnotation).
func paused(obj client.Object) bool {
	return obj.GetAnnotations()[flyv1alpha1.PausedAnnotation] == "true"
}

type pausedKey struct{}

// writesRefused is why a pass may not write to Fly.
type writesRefused int

const (
	writesAllowed writesRefused = iota
	refusedPaused
	refusedObserveOnly
)

// withPaused marks ctx as a pass over a paused object: every Fly write made in it is refused.
func withPaused(ctx context.Context) context.Context {
	return context.WithValue(ctx, pausedKey{}, refusedPaused)
}

// withObserveOnly marks ctx as a pass over an object under managementPolicy ObserveOnly: its phases
// make no Fly write, and the guard refuses any that one would make all the same.
func withObserveOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, pausedKey{}, refusedObserveOnly)
}

// pausedError is a Fly write refused because the object is paused (or ObserveOnly). Nothing was
// sent to Fly.
type pausedError struct {
	action string
	why    writesRefused
}

func (e *pausedError) Error() string {
	if e.why == refusedObserveOnly {
		return fmt.Sprintf("managementPolicy ObserveOnly: would %s; set managementPolicy Full to let hangar write", e.action)
	}
	return fmt.Sprintf("paused (%s: \"true\"): would %s; remove the annotation to resume", flyv1alpha1.PausedAnnotation, e.action)
}

// pauseGuard is the FlyAPI the reconcilers use: reads go through always, writes only in passes
// over objects that are not paused. Guarding the seam, not the phases, means no phase can forget
// to honour a pause, and a paused pass still reads Fly and reports the first change it would make.
type pauseGuard struct {
	FlyAPI
}

func (g pauseGuard) refuse(ctx context.Context, format string, args ...any) error {
	if why, _ := ctx.Value(pausedKey{}).(writesRefused); why != writesAllowed {
		return &pausedError{action: fmt.Sprintf(format, args...), why: why}
	}
	return nil
}

func (g pauseGuard) CreateApp(ctx context.Context, org, name, network string) (FlyApp, error) {
	if err := g.refuse(ctx, "create Fly app %s", name); err != nil {
		return FlyApp{}, err
	}
	return g.FlyAPI.CreateApp(ctx, org, name, network)
}

func (g pauseGuard) DeleteApp(ctx context.Context, name string) error {
	if err := g.refuse(ctx, "delete Fly app %s", name); err != nil {
		return err
	}
	return g.FlyAPI.DeleteApp(ctx, name)
}

func (g pauseGuard) SetAppSecrets(ctx context.Context, app string, set map[string]string, unset []string) (int64, error) {
	if err := g.refuse(ctx, "set %d and unset %d secrets of Fly app %s", len(set), len(unset), app); err != nil {
		return 0, err
	}
	return g.FlyAPI.SetAppSecrets(ctx, app, set, unset)
}

func (g pauseGuard) EnsurePrivateIP(ctx context.Context, app, network string) (string, error) {
	if err := g.refuse(ctx, "make sure Fly app %s has a Flycast address", app); err != nil {
		return "", err
	}
	return g.FlyAPI.EnsurePrivateIP(ctx, app, network)
}

func (g pauseGuard) ReleasePrivateIP(ctx context.Context, app, ip string) error {
	if err := g.refuse(ctx, "release %s of Fly app %s", ip, app); err != nil {
		return err
	}
	return g.FlyAPI.ReleasePrivateIP(ctx, app, ip)
}

func (g pauseGuard) CreateMachine(ctx context.Context, app string, d DesiredMachine) (FlyMachine, error) {
	if err := g.refuse(ctx, "create machine %s in Fly app %s", d.Name, app); err != nil {
		return FlyMachine{}, err
	}
	return g.FlyAPI.CreateMachine(ctx, app, d)
}

func (g pauseGuard) UpdateMachine(ctx context.Context, app, id, fromVersion string, d DesiredMachine) (FlyMachine, error) {
	if err := g.refuse(ctx, "update machine %s to the spec's config", id); err != nil {
		return FlyMachine{}, err
	}
	return g.FlyAPI.UpdateMachine(ctx, app, id, fromVersion, d)
}

func (g pauseGuard) StartMachine(ctx context.Context, app, id string) error {
	if err := g.refuse(ctx, "start machine %s", id); err != nil {
		return err
	}
	return g.FlyAPI.StartMachine(ctx, app, id)
}

func (g pauseGuard) StopMachine(ctx context.Context, app, id string) error {
	if err := g.refuse(ctx, "stop machine %s", id); err != nil {
		return err
	}
	return g.FlyAPI.StopMachine(ctx, app, id)
}

func (g pauseGuard) SuspendMachine(ctx context.Context, app, id string) error {
	if err := g.refuse(ctx, "suspend machine %s", id); err != nil {
		return err
	}
	return g.FlyAPI.SuspendMachine(ctx, app, id)
}

func (g pauseGuard) DestroyMachine(ctx context.Context, app, id string) error {
	if err := g.refuse(ctx, "destroy machine %s", id); err != nil {
		return err
	}
	return g.FlyAPI.DestroyMachine(ctx, app, id)
}

// pausedOutcome is how a pass that met the pause ends: not a failure, nothing to retry soon. The
// annotation's removal starts the next pass; until then the drift check keeps Fly observed.
func pausedOutcome(err *pausedError, o Options) outcome {
	if err.why == refusedObserveOnly {
		return outcome{reason: flyv1alpha1.ObservedReason, message: err.Error(),
			result: ctrl.Result{RequeueAfter: o.DriftInterval}, label: "observed"}
	}
	return outcome{reason: flyv1alpha1.PausedReason, message: err.Error(),
		result: ctrl.Result{RequeueAfter: o.DriftInterval}, label: "paused"}
}

// markPaused shows the pause in the Paused condition, present only while the annotation is.
func markPaused(obj object) {
	setConditions(obj, func(conds *[]metav1.Condition, gen int64) {
		if paused(obj) {
			markTrue(conds, gen, flyv1alpha1.PausedCondition, flyv1alpha1.PausedReason,
				fmt.Sprintf("no Fly writes until the %s annotation is removed; Fly is still read and drift reported", flyv1alpha1.PausedAnnotation))
			return
		}
		meta.RemoveStatusCondition(conds, flyv1alpha1.PausedCondition)
	})
}
