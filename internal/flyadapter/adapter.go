// Package flyadapter implements the controllers' FlyAPI over the Machines API client: it turns
// desired machines into full Fly configs (keeping every field hangar does not manage), wraps
// updates in a lease, and sorts Fly's errors into the kinds the controllers act on. It adds no
// retries and no caching of its own.
package flyadapter

import (
	"context"
	"fmt"
	"time"

	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
)

// leaseTTL bounds how long an update holds the machine's lease if hangar dies mid-update.
const leaseTTL = 30 * time.Second

// leaseDescription tells people on the Fly side who holds a lease.
const leaseDescription = "hangar: updating the machine config"

// Adapter is a controllers.FlyAPI over a flyapi.Client.
type Adapter struct {
	client *flyapi.Client
}

var _ controllers.FlyAPI = (*Adapter)(nil)

// New returns an Adapter calling Fly through client.
func New(client *flyapi.Client) *Adapter { return &Adapter{client: client} }

// CreateApp creates the app on its network.
func (a *Adapter) CreateApp(ctx context.Context, org, name, network string) (controllers.FlyApp, error) {
	app, err := callFor(ctx, func(ctx context.Context) (*flyapi.App, error) {
		return a.client.CreateApp(ctx, org, name, network)
	})
	if err != nil {
		return controllers.FlyApp{}, err
	}
	return controllers.FlyApp{Name: name, ID: app.ID, Org: org, Network: network}, nil
}

// GetApp reads the app.
func (a *Adapter) GetApp(ctx context.Context, name string) (controllers.FlyApp, error) {
	app, err := callFor(ctx, func(ctx context.Context) (*flyapi.App, error) {
		return a.client.GetApp(ctx, name)
	})
	if err != nil {
		return controllers.FlyApp{}, err
	}
	return controllers.FlyApp{Name: app.Name, ID: app.ID, Org: app.Organization.Slug, Network: app.Network}, nil
}

// DeleteApp deletes the app, forcing its machines to stop; an app already gone is success.
func (a *Adapter) DeleteApp(ctx context.Context, name string) error {
	return ignoreNotFound(call(ctx, func(ctx context.Context) error {
		return a.client.DeleteApp(ctx, name, true)
	}))
}

// SetAppSecrets sets the values, then unsets the names (a second change only when there are names
// to unset), and returns the resulting secrets version.
func (a *Adapter) SetAppSecrets(ctx context.Context, app string, set map[string]string, unset []string) (int64, error) {
	version, err := callFor(ctx, func(ctx context.Context) (uint64, error) {
		return a.client.SetSecrets(ctx, app, set)
	})
	if err != nil || len(unset) == 0 {
		return int64(version), err
	}
	version, err = callFor(ctx, func(ctx context.Context) (uint64, error) {
		return a.client.UnsetSecrets(ctx, app, unset...)
	})
	return int64(version), err
}

// EnsurePrivateIP returns the app's Flycast address on network, allocating one when it has none.
func (a *Adapter) EnsurePrivateIP(ctx context.Context, app, network string) (string, error) {
	ips, err := callFor(ctx, func(ctx context.Context) ([]flyapi.IPAssignment, error) {
		return a.client.ListIPAssignments(ctx, app)
	})
	if err != nil {
		return "", err
	}
	for _, ip := range ips {
		if ip.Network != nil && ip.Network.Name == network && ip.IP != "" {
			return ip.IP, nil
		}
	}
	assigned, err := callFor(ctx, func(ctx context.Context) (*flyapi.IPAssignment, error) {
		return a.client.AllocatePrivateV6(ctx, app, network)
	})
	if err != nil {
		return "", err
	}
	return assigned.IP, nil
}

// ReleasePrivateIP removes an address; one already gone is success.
func (a *Adapter) ReleasePrivateIP(ctx context.Context, app, ip string) error {
	return ignoreNotFound(call(ctx, func(ctx context.Context) error {
		return a.client.DeleteIPAssignment(ctx, app, ip)
	}))
}

// GetMachine reads the machine.
func (a *Adapter) GetMachine(ctx context.Context, app, id string) (controllers.FlyMachine, error) {
	m, err := callFor(ctx, func(ctx context.Context) (*flyapi.Machine, error) {
		return a.client.GetMachine(ctx, app, id)
	})
	if err != nil {
		return controllers.FlyMachine{}, err
	}
	return machineOf(m), nil
}

// FindMachine lists the machines whose metadata has key=value.
func (a *Adapter) FindMachine(ctx context.Context, app, key, value string) ([]controllers.FlyMachine, error) {
	ms, err := callFor(ctx, func(ctx context.Context) ([]flyapi.Machine, error) {
		return a.client.ListMachines(ctx, app, flyapi.ListMachinesOptions{Metadata: map[string]string{key: value}})
	})
	if err != nil {
		return nil, err
	}
	out := make([]controllers.FlyMachine, 0, len(ms))
	for i := range ms {
		if ms[i].State != flyapi.StateDestroyed && ms[i].State != flyapi.StateDestroying {
			out = append(out, machineOf(&ms[i]))
		}
	}
	return out, nil
}

// CreateMachine creates the machine from d. It is sent once (see flyapi.Client.CreateMachine).
func (a *Adapter) CreateMachine(ctx context.Context, app string, d controllers.DesiredMachine) (controllers.FlyMachine, error) {
	var cfg flyapi.MachineConfig
	applyDesired(&cfg, d)
	// Every machine is launched, even one whose powerState is Stopped (the controller stops it once
	// it has started): a machine created with skip_launch has never booted, and the Fly Proxy does
	// not wake such a machine on a request.
	req := flyapi.CreateMachineRequest{Config: cfg, Name: d.Name, Region: d.Region}
	if d.MinSecretsVersion > 0 {
		v := uint64(d.MinSecretsVersion)
		req.MinSecretsVersion = &v
	}
	m, err := callFor(ctx, func(ctx context.Context) (*flyapi.Machine, error) {
		return a.client.CreateMachine(ctx, app, req)
	})
	if err != nil {
		return controllers.FlyMachine{}, err
	}
	return machineOf(m), nil
}

// UpdateMachine takes the machine's lease, reads its full config, replaces the parts hangar manages
// and sends it back with the lease nonce and fromVersion (so a concurrent change is refused, not
// overwritten). The lease is released whatever happens.
func (a *Adapter) UpdateMachine(ctx context.Context, app, id, fromVersion string, d controllers.DesiredMachine) (controllers.FlyMachine, error) {
	lease, err := callFor(ctx, func(ctx context.Context) (*flyapi.Lease, error) {
		return a.client.AcquireLease(ctx, app, id, leaseTTL, leaseDescription)
	})
	if err != nil {
		return controllers.FlyMachine{}, err
	}
	defer func() {
		// Released on a context of its own: the pass's context may be done already.
		releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = call(releaseCtx, func(ctx context.Context) error { return a.client.ReleaseLease(ctx, app, id, lease.Nonce) })
	}()

	current, err := callFor(ctx, func(ctx context.Context) (*flyapi.Machine, error) {
		return a.client.GetMachine(ctx, app, id)
	})
	if err != nil {
		return controllers.FlyMachine{}, err
	}
	if current.Config == nil {
		return controllers.FlyMachine{}, &controllers.FlyError{Kind: controllers.FlyUnavailable,
			Message: fmt.Sprintf("machine %s reported no complete config (host status %q); not updating from a partial one", id, current.HostStatus)}
	}
	cfg, err := current.Config.Clone()
	if err != nil {
		return controllers.FlyMachine{}, fmt.Errorf("copying the config of machine %s: %w", id, err)
	}
	applyDesired(cfg, d)
	req := flyapi.UpdateMachineRequest{Config: *cfg, CurrentVersion: fromVersion, LeaseNonce: lease.Nonce}
	if d.MinSecretsVersion > 0 {
		v := uint64(d.MinSecretsVersion)
		req.MinSecretsVersion = &v
	}
	m, err := callFor(ctx, func(ctx context.Context) (*flyapi.Machine, error) {
		return a.client.UpdateMachine(ctx, app, id, req)
	})
	if err != nil {
		return controllers.FlyMachine{}, err
	}
	return machineOf(m), nil
}

// StartMachine starts a stopped, suspended or created machine.
func (a *Adapter) StartMachine(ctx context.Context, app, id string) error {
	_, err := callFor(ctx, func(ctx context.Context) (*flyapi.StartResult, error) {
		return a.client.StartMachine(ctx, app, id, "")
	})
	return err
}

// StopMachine stops the machine with its configured signal and timeout.
func (a *Adapter) StopMachine(ctx context.Context, app, id string) error {
	return call(ctx, func(ctx context.Context) error {
		return a.client.StopMachine(ctx, app, id, flyapi.StopOptions{}, "")
	})
}

// SuspendMachine suspends a started machine.
func (a *Adapter) SuspendMachine(ctx context.Context, app, id string) error {
	return call(ctx, func(ctx context.Context) error { return a.client.SuspendMachine(ctx, app, id, "") })
}

// DestroyMachine destroys the machine whatever its state (force stops it first); a machine or app
// already gone is success.
func (a *Adapter) DestroyMachine(ctx context.Context, app, id string) error {
	return ignoreNotFound(call(ctx, func(ctx context.Context) error {
		return a.client.DestroyMachine(ctx, app, id, true, "")
	}))
}

// callFor runs one client call with call statistics attached, reports throttling (a limiter wait
// or a 429) to the controllers' note, and classifies the error. The result is returned as the
// client gave it, even with an error.
func callFor[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var stats flyapi.CallStats
	result, err := fn(flyapi.WithCallStats(ctx, &stats))
	if stats.Throttled() {
		controllers.NoteThrottled(ctx)
	}
	return result, classify(err)
}

// call is callFor for a call without a result.
func call(ctx context.Context, fn func(context.Context) error) error {
	_, err := callFor(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	return err
}

func machineOf(m *flyapi.Machine) controllers.FlyMachine {
	out := controllers.FlyMachine{ID: m.ID, Name: m.Name, State: m.State, Region: m.Region, Version: m.Version, PrivateIP: m.PrivateIP}
	if m.Version == "" {
		out.Version = m.InstanceID
	}
	if m.Config != nil {
		out.Metadata = m.Config.Metadata
	}
	return out
}
