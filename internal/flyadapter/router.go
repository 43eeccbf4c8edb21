package flyadapter

import (
	"context"

	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
)

var _ controllers.FlyRouterAPI = (*Adapter)(nil)

// EnsurePublicIPs returns the app's public addresses, allocating a shared IPv4 and a dedicated
// IPv6 address (what `fly ips allocate` gives an HTTP app, and free) when it has none. An app made
// through the Machines API has none, and nothing from the internet reaches it until it has.
func (a *Adapter) EnsurePublicIPs(ctx context.Context, app string) ([]string, error) {
	ips, err := callFor(ctx, func(ctx context.Context) ([]flyapi.IPAssignment, error) {
		return a.client.ListIPAssignments(ctx, app)
	})
	if err != nil {
		return nil, err
	}
	if public := publicAddresses(ips); len(public) > 0 {
		return public, nil
	}
	var out []string
	for _, typ := range []string{flyapi.IPTypeSharedV4, flyapi.IPTypeV6} {
		assigned, err := callFor(ctx, func(ctx context.Context) (*flyapi.IPAssignment, error) {
			return a.client.AssignIP(ctx, app, flyapi.AssignIPRequest{Type: typ})
		})
		if err != nil {
			return nil, err
		}
		out = append(out, publicAddresses([]flyapi.IPAssignment{*assigned})...)
	}
	return out, nil
}

// publicAddresses are the addresses of ips that are neither Flycast nor egress.
func publicAddresses(ips []flyapi.IPAssignment) []string {
	var out []string
	for _, a := range ips {
		switch {
		case a.Egress || isFlycast(a):
		case a.IP != "":
			out = append(out, a.IP)
		}
	}
	return out
}

// MachineHealth reads the machine's state, cordon and check results.
func (a *Adapter) MachineHealth(ctx context.Context, app, id string) (controllers.MachineHealth, error) {
	m, err := callFor(ctx, func(ctx context.Context) (*flyapi.Machine, error) {
		return a.client.GetMachine(ctx, app, id)
	})
	if err != nil {
		return controllers.MachineHealth{}, err
	}
	h := controllers.MachineHealth{State: m.State, Version: versionOf(m), Cordoned: m.Cordoned, Checks: map[string]string{}}
	for _, c := range m.Checks {
		h.Checks[c.Name] = c.Status
	}
	return h, nil
}

// CordonMachine takes the machine out of the Fly Proxy's balancing.
func (a *Adapter) CordonMachine(ctx context.Context, app, id string) error {
	return call(ctx, func(ctx context.Context) error { return a.client.CordonMachine(ctx, app, id, "") })
}
