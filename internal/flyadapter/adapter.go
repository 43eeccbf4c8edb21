// Package flyadapter implements the controllers' FlyAPI over the Machines API client: it turns
// desired machines into full Fly configs (keeping every field hangar does not manage), wraps
// updates in a lease, and sorts Fly's errors into the kinds the controllers act on. It adds no
// retries and no caching of its own.
//
// # Unknown outcomes
//
// A call with side effects whose outcome is unknown (flyapi.IsOutcomeUnknown: Fly answered 408 or
// 5xx, the answer was lost or unreadable, the pass's context ended while the request was out) is a
// FlyUnavailable error whose message starts "outcome unknown". After a CreateMachine, CreateApp,
// EnsurePrivateIP or SetAppSecrets that failed so, the thing may exist or the change may have
// applied: callers look it up (FindMachine by metadata, GetApp by name, EnsurePrivateIP lists first,
// secrets are set again with the same values) before acting again, which the FlyAPI contract asks
// of them anyway. After an UpdateMachine so failed the lease it took may still be held (it expires
// after its TTL), and the next attempt meets FlyConflict until then.
//
// A CreateApp whose app Fly accepted but did not show within the client's wait
// (flyapi.IsAppNotVisible) is FlyUnavailable too: the app exists, and the next pass's CreateApp
// answers FlyNameTaken, from which the controller adopts it by name.
//
// # Stale reads
//
// Fly's reads can lag behind its writes (§11). Nothing here reads back what it just wrote:
// CreateMachine and UpdateMachine return the machine from the write's own answer, EnsurePrivateIP
// returns the address from the allocation's answer, and SetAppSecrets the version the change
// returned. The one read on a write path, UpdateMachine's read of the config under the lease, is
// checked against the version the caller planned from, so a lagging read is refused (FlyConflict)
// instead of being written back over a newer config.
//
// Section marks (§N) refer to docs/fly-api.md.
package flyadapter

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
)

// DefaultLeaseTTL bounds how long an update holds the machine's lease if hangar dies mid-update.
const DefaultLeaseTTL = 30 * time.Second

// leaseDescription tells people on the Fly side who holds a lease.
const leaseDescription = "hangar: updating the machine config"

// Options tune an Adapter; the zero value takes the defaults.
type Options struct {
	// LeaseTTL is the lifetime of the lease an update holds (DefaultLeaseTTL when zero): if hangar
	// dies mid-update, the machine stays locked against other updates this long.
	LeaseTTL time.Duration
}

// Adapter is a controllers.FlyAPI over a flyapi.Client.
type Adapter struct {
	client   *flyapi.Client
	leaseTTL time.Duration
}

var _ controllers.FlyAPI = (*Adapter)(nil)

// New returns an Adapter calling Fly through client.
func New(client *flyapi.Client, opts Options) *Adapter {
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	return &Adapter{client: client, leaseTTL: opts.LeaseTTL}
}

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

// DeleteApp deletes the app, forcing its machines to stop; an app already gone is success. Fly
// answers 202: the deletion has started, and GetApp may read the app, and its name stay taken, for
// a while after DeleteApp returns.
func (a *Adapter) DeleteApp(ctx context.Context, name string) error {
	return ignoreNotFound(call(ctx, func(ctx context.Context) error {
		return a.client.DeleteApp(ctx, name, true)
	}))
}

// SetAppSecrets sets the values and unsets the names in one change (one new secrets version) and
// returns that version.
func (a *Adapter) SetAppSecrets(ctx context.Context, app string, set map[string]string, unset []string) (int64, error) {
	version, err := callFor(ctx, func(ctx context.Context) (uint64, error) {
		return a.client.UpdateSecrets(ctx, app, set, unset)
	})
	return int64(version), err
}

// AppSecretNames lists the names of the app's secrets; values are never asked for.
func (a *Adapter) AppSecretNames(ctx context.Context, app string) ([]string, error) {
	secrets, err := callFor(ctx, func(ctx context.Context) ([]flyapi.Secret, error) {
		return a.client.ListSecrets(ctx, app, 0)
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(secrets))
	for i, s := range secrets {
		names[i] = s.Name
	}
	return names, nil
}

// EnsurePrivateIP returns the app's Flycast address on network, allocating one when it has none.
//
// It lists the app's addresses and matches the Flycast ones by the network Fly echoes with each.
// Whether Fly always echoes it is unconfirmed (§3), and an address whose network is not echoed
// must not make every pass allocate another, so such an address counts as the app's when it is
// the app's only Flycast address; when the app has several and some do not say their network,
// EnsurePrivateIP cannot tell and fails (FlyRejected, saying so) instead of allocating.
func (a *Adapter) EnsurePrivateIP(ctx context.Context, app, network string) (string, error) {
	ips, err := callFor(ctx, func(ctx context.Context) ([]flyapi.IPAssignment, error) {
		return a.client.ListIPAssignments(ctx, app)
	})
	if err != nil {
		return "", err
	}
	if ip, found, err := flycastOn(app, ips, network); found || err != nil {
		return ip, err
	}
	assigned, err := callFor(ctx, func(ctx context.Context) (*flyapi.IPAssignment, error) {
		return a.client.AllocatePrivateV6(ctx, app, network)
	})
	if err != nil {
		return "", err
	}
	if assigned.IP == "" {
		return "", &controllers.FlyError{Kind: controllers.FlyUnavailable,
			Message: fmt.Sprintf("outcome unknown: Fly allocated a Flycast address to app %s but did not say which", app)}
	}
	return assigned.IP, nil
}

// flycastOn picks the app's Flycast address on network from its addresses (see EnsurePrivateIP):
// found is false when it has none and one may be allocated.
func flycastOn(app string, ips []flyapi.IPAssignment, network string) (ip string, found bool, err error) {
	var flycast []flyapi.IPAssignment
	unechoed := 0
	for _, a := range ips {
		if !isFlycast(a) {
			continue
		}
		flycast = append(flycast, a)
		switch {
		case a.Network == nil:
			unechoed++
		case sameNetwork(a.Network.Name, network):
			return a.IP, true, nil
		}
	}
	switch {
	case unechoed == 0:
		return "", false, nil
	case len(flycast) == 1:
		// Fly did not say the network; the app's one Flycast address is taken to be the one asked
		// for rather than allocating another on every pass.
		return flycast[0].IP, true, nil
	}
	return "", false, &controllers.FlyError{Kind: controllers.FlyRejected, Message: fmt.Sprintf(
		"app %s has %d Flycast addresses and Fly does not say the network of %d of them, so hangar cannot tell "+
			"whether one is on network %q and does not allocate another: release the ones that are not "+
			"(fly ips list -a %s, fly ips release -a %s <address>)", app, len(flycast), unechoed, network, app, app)}
}

// isFlycast reports a private_v6 (Flycast) address: Fly's list does not say an address's type, so,
// like Fly's own client, an address in fdaa::/16 that is not an egress address is one.
func isFlycast(a flyapi.IPAssignment) bool {
	return !a.Egress && len(a.IP) > len("fdaa:") && strings.EqualFold(a.IP[:len("fdaa:")], "fdaa:")
}

// sameNetwork compares network names: the org's default network is "" on an address and "default"
// in an app listing (§2, §3).
func sameNetwork(a, b string) bool {
	if a == "default" {
		a = ""
	}
	if b == "default" {
		b = ""
	}
	return a == b
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

// WaitForState waits on Fly for the machine's version to reach one of states.
func (a *Adapter) WaitForState(ctx context.Context, app, id, version string, states []string, timeout time.Duration) (controllers.FlyMachine, error) {
	res, err := callFor(ctx, func(ctx context.Context) (*flyapi.WaitResult, error) {
		return a.client.WaitMachine(ctx, app, id, flyapi.WaitOptions{States: states, Version: version, Timeout: timeout})
	})
	if err != nil {
		return controllers.FlyMachine{}, err
	}
	return controllers.FlyMachine{ID: id, State: res.State, Version: res.Version}, nil
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
// and sends it back with the lease nonce. The lease is released whatever happens.
//
// Safety does not rest on Fly enforcing current_version (whether it does is unconfirmed, §4.4): the
// lease keeps other lease-aware clients out between the read and the update, and the read made
// under it must show fromVersion, or the update is not sent (FlyConflict): the machine changed
// since the caller planned the update, or the read lags behind a recent write. current_version is
// still sent, as a second guard where Fly honours it. The machine returned is the update's own
// answer, never a read made after it.
func (a *Adapter) UpdateMachine(ctx context.Context, app, id, fromVersion string, d controllers.DesiredMachine) (controllers.FlyMachine, error) {
	lease, err := callFor(ctx, func(ctx context.Context) (*flyapi.Lease, error) {
		return a.client.AcquireLease(ctx, app, id, a.leaseTTL, leaseDescription)
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
	if got := versionOf(current); fromVersion != "" && got != fromVersion {
		return controllers.FlyMachine{}, &controllers.FlyError{Kind: controllers.FlyConflict, Message: fmt.Sprintf(
			"machine %s reads as version %s, not %s the update was planned from (changed since, or a read lagging behind); not updating",
			id, got, fromVersion)}
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
	out := controllers.FlyMachine{ID: m.ID, Name: m.Name, State: m.State, Region: m.Region, Version: versionOf(m), PrivateIP: m.PrivateIP}
	if m.Config != nil {
		out.Metadata = m.Config.Metadata
	}
	for _, e := range m.Events { // newest first
		if e.Status == flyapi.StateStarted && e.Timestamp > 0 {
			out.StartedAt = time.UnixMilli(e.Timestamp)
			break
		}
	}
	return out
}

// versionOf is the machine's version, or its instance ID (the older name) in an answer without one.
func versionOf(m *flyapi.Machine) string {
	if m.Version == "" {
		return m.InstanceID
	}
	return m.Version
}
