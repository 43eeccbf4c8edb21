package controllers

import (
	"context"
)

// FlyRouterAPI is what the FlyRouter controller asks of Fly beyond FlyAPI: the router app is the
// one app hangar exposes to the internet, and its rollouts must keep it serving. internal/flyadapter
// implements it beside FlyAPI.
type FlyRouterAPI interface {
	// EnsurePublicIPs returns the app's public addresses, allocating them when it has none.
	EnsurePublicIPs(ctx context.Context, app string) ([]string, error)
	// MachineHealth reads a machine's state, whether it is cordoned and its checks' latest
	// results (check name → passing, warning or critical). FlyNotFound for an unknown machine.
	MachineHealth(ctx context.Context, app, id string) (MachineHealth, error)
	// CordonMachine takes a machine out of the Fly Proxy's balancing, so requests stop reaching it
	// before it is destroyed.
	CordonMachine(ctx context.Context, app, id string) error
}

// MachineHealth is what a rollout needs to know of a machine.
type MachineHealth struct {
	State    string
	Version  string
	Cordoned bool
	Checks   map[string]string
}

// healthy reports whether the machine serves: started, in balancing, every check passing. A
// machine without checks is healthy once started.
func (h MachineHealth) healthy() bool {
	if h.State != MachineStarted || h.Cordoned {
		return false
	}
	for _, status := range h.Checks {
		if status != "passing" {
			return false
		}
	}
	return true
}

// routerFlyGuard refuses the FlyRouterAPI writes of a paused pass, as pauseGuard does FlyAPI's.
type routerFlyGuard struct {
	FlyRouterAPI
}

func (g routerFlyGuard) EnsurePublicIPs(ctx context.Context, app string) ([]string, error) {
	if err := (pauseGuard{}).refuse(ctx, "make sure Fly app %s has public addresses", app); err != nil {
		return nil, err
	}
	return g.FlyRouterAPI.EnsurePublicIPs(ctx, app)
}

func (g routerFlyGuard) CordonMachine(ctx context.Context, app, id string) error {
	if err := (pauseGuard{}).refuse(ctx, "cordon machine %s", id); err != nil {
		return err
	}
	return g.FlyRouterAPI.CordonMachine(ctx, app, id)
}
