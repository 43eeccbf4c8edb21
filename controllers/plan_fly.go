package controllers

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// PlannedCallKind names a Fly write a plan records.
type PlannedCallKind string

// The Fly writes a plan can record: one per write method of FlyAPI.
const (
	CallCreateApp        PlannedCallKind = "create app"
	CallDeleteApp        PlannedCallKind = "delete app"
	CallSetAppSecrets    PlannedCallKind = "set secrets"
	CallEnsurePrivateIP  PlannedCallKind = "allocate Flycast address"
	CallReleasePrivateIP PlannedCallKind = "release Flycast address"
	CallCreateMachine    PlannedCallKind = "create machine"
	CallUpdateMachine    PlannedCallKind = "update machine"
	CallStartMachine     PlannedCallKind = "start machine"
	CallStopMachine      PlannedCallKind = "stop machine"
	CallSuspendMachine   PlannedCallKind = "suspend machine"
	CallDestroyMachine   PlannedCallKind = "destroy machine"
)

// PlannedMachineID stands for the ID of a machine the plan creates: Fly gives the ID only when it
// creates the machine.
const PlannedMachineID = "(new)"

// plannedSecretsVersion is the secrets version a planned SetAppSecrets answers. Fly gives the
// version only when it makes the change; this one no real app has, so the machines of the app plan
// the update new secrets bring them (their config covers the version), as in a real run.
const plannedSecretsVersion int64 = math.MaxInt64

// plannedPrivateIP stands for the Flycast address a planned EnsurePrivateIP would allocate.
const plannedPrivateIP = "(new Flycast address)"

// PlannedCall is one Fly write a pass would make. It never holds a secret value.
type PlannedCall struct {
	Kind PlannedCallKind
	App  string
	// Machine is the machine's ID, PlannedMachineID for one the plan creates, "" for app calls.
	Machine string
	// Detail says what the write carries (redacted: secret names, never values).
	Detail string

	// What the plan needs to describe the call; never printed as such.
	setSecrets   []string
	unsetSecrets []string
	desired      *DesiredMachine
}

// recordingFly is the FlyAPI a plan runs the phases on. Reads go to Fly; writes are recorded and
// answered as if they succeeded, never sent. A small overlay makes later reads of the same plan see
// what the recorded writes would have made, so a machine of an app the plan creates plans its own
// create, and not a wait for an app Fly does not have. Each piece of the overlay says which read it
// serves; nothing else of Fly is modelled.
type recordingFly struct {
	fly FlyAPI

	mu    sync.Mutex
	calls []PlannedCall
	// apps are the apps the plan creates: GetApp finds them (the UserApp's drift check and a
	// machine's app), and FindMachine and AppSecretNames answer for them without asking Fly, which
	// has no such app.
	apps map[string]FlyApp
	// secretNames are the secret names the plan sets per app, and unset those it removes:
	// AppSecretNames (owner markers) shows them.
	secretNames map[string]map[string]bool
	unset       map[string]map[string]bool
	// machines are the machines the plan creates or updates, by app and ID (PlannedMachineID for
	// a created one, then by name): FindMachine and GetMachine show them as the write left them.
	machines map[string][]FlyMachine
}

func newRecordingFly(fly FlyAPI) *recordingFly {
	return &recordingFly{fly: fly, apps: map[string]FlyApp{}, secretNames: map[string]map[string]bool{},
		unset: map[string]map[string]bool{}, machines: map[string][]FlyMachine{}}
}

var _ FlyAPI = (*recordingFly)(nil)

func (f *recordingFly) record(c PlannedCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

// since returns the calls recorded after the first n.
func (f *recordingFly) since(n int) []PlannedCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls[n:])
}

func (f *recordingFly) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *recordingFly) plannedApp(name string) (FlyApp, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.apps[name]
	return a, ok
}

// CreateApp records the create. Fly refuses a name used anywhere (FlyNameTaken); the plan reads
// the app first, so a taken name is answered as Fly would answer it and the phase goes on as in a
// real pass (adopting the app, or NameTaken).
func (f *recordingFly) CreateApp(ctx context.Context, org, name, network string) (FlyApp, error) {
	if _, ok := f.plannedApp(name); ok {
		return FlyApp{}, &FlyError{Kind: FlyNameTaken, Message: fmt.Sprintf("app %s is created earlier in this plan", name)}
	}
	_, err := f.fly.GetApp(ctx, name)
	switch {
	case err == nil, isFlyKind(err, FlyForbidden):
		return FlyApp{}, &FlyError{Kind: FlyNameTaken, Message: fmt.Sprintf("app name %s is taken", name)}
	case !isFlyKind(err, FlyNotFound):
		return FlyApp{}, err
	}
	app := FlyApp{Name: name, ID: "(new)", Org: org, Network: network}
	f.mu.Lock()
	f.apps[name] = app
	f.mu.Unlock()
	f.record(PlannedCall{Kind: CallCreateApp, App: name, Detail: fmt.Sprintf("org %s, network %s", org, network)})
	return app, nil
}

func (f *recordingFly) GetApp(ctx context.Context, name string) (FlyApp, error) {
	if a, ok := f.plannedApp(name); ok {
		return a, nil
	}
	return f.fly.GetApp(ctx, name)
}

func (f *recordingFly) DeleteApp(_ context.Context, name string) error {
	f.record(PlannedCall{Kind: CallDeleteApp, App: name})
	return nil
}

func (f *recordingFly) SetAppSecrets(_ context.Context, app string, set map[string]string, unset []string) (int64, error) {
	f.mu.Lock()
	if f.secretNames[app] == nil {
		f.secretNames[app], f.unset[app] = map[string]bool{}, map[string]bool{}
	}
	for name := range set {
		f.secretNames[app][name] = true
		delete(f.unset[app], name)
	}
	for _, name := range unset {
		f.unset[app][name] = true
		delete(f.secretNames[app], name)
	}
	f.mu.Unlock()
	f.record(PlannedCall{Kind: CallSetAppSecrets, App: app, setSecrets: sortedKeys(set), unsetSecrets: slices.Sorted(slices.Values(unset))})
	return plannedSecretsVersion, nil
}

func (f *recordingFly) AppSecretNames(ctx context.Context, app string) ([]string, error) {
	var names []string
	if _, ok := f.plannedApp(app); !ok {
		var err error
		if names, err = f.fly.AppSecretNames(ctx, app); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	names = slices.DeleteFunc(names, func(n string) bool { return f.unset[app][n] || f.secretNames[app][n] })
	for n := range f.secretNames[app] {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func (f *recordingFly) EnsurePrivateIP(_ context.Context, app, network string) (string, error) {
	f.record(PlannedCall{Kind: CallEnsurePrivateIP, App: app, Detail: "on network " + network})
	return plannedPrivateIP, nil
}

func (f *recordingFly) ReleasePrivateIP(_ context.Context, app, ip string) error {
	f.record(PlannedCall{Kind: CallReleasePrivateIP, App: app, Detail: ip})
	return nil
}

// plannedMachine is the machine the plan created or updated in app with that ID, if any.
func (f *recordingFly) plannedMachine(app, id string) (FlyMachine, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.machines[app] {
		if m.ID == id {
			return m, true
		}
	}
	return FlyMachine{}, false
}

func (f *recordingFly) GetMachine(ctx context.Context, app, id string) (FlyMachine, error) {
	if m, ok := f.plannedMachine(app, id); ok {
		return m, nil
	}
	return f.fly.GetMachine(ctx, app, id)
}

func (f *recordingFly) FindMachine(ctx context.Context, app, key, value string) ([]FlyMachine, error) {
	var found []FlyMachine
	if _, ok := f.plannedApp(app); !ok {
		var err error
		if found, err = f.fly.FindMachine(ctx, app, key, value); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.machines[app] {
		if m.Metadata[key] == value && !slices.ContainsFunc(found, func(o FlyMachine) bool { return o.ID == m.ID }) {
			found = append(found, m)
		}
	}
	return found, nil
}

func (f *recordingFly) CreateMachine(_ context.Context, app string, d DesiredMachine) (FlyMachine, error) {
	m := FlyMachine{ID: PlannedMachineID, Name: d.Name, State: MachineCreated, Region: d.Region, Version: "(new)", Metadata: d.Metadata}
	f.mu.Lock()
	f.machines[app] = append(f.machines[app], m)
	f.mu.Unlock()
	f.record(PlannedCall{Kind: CallCreateMachine, App: app, Machine: PlannedMachineID, desired: &d,
		Detail: fmt.Sprintf("%s in %s, image %s", d.Name, d.Region, d.Image)})
	return m, nil
}

// UpdateMachine records the update; the machine reads back with the new config's metadata (its
// config hash) and keeps its state.
func (f *recordingFly) UpdateMachine(ctx context.Context, app, id, fromVersion string, d DesiredMachine) (FlyMachine, error) {
	m, ok := f.plannedMachine(app, id)
	if !ok {
		var err error
		if m, err = f.fly.GetMachine(ctx, app, id); err != nil {
			return FlyMachine{}, err
		}
	}
	m.Metadata, m.Version = d.Metadata, "(new)"
	f.mu.Lock()
	f.machines[app] = append(slices.DeleteFunc(f.machines[app], func(o FlyMachine) bool { return o.ID == id }), m)
	f.mu.Unlock()
	f.record(PlannedCall{Kind: CallUpdateMachine, App: app, Machine: id, desired: &d, Detail: "from version " + fromVersion})
	return m, nil
}

func (f *recordingFly) StartMachine(_ context.Context, app, id string) error {
	f.record(PlannedCall{Kind: CallStartMachine, App: app, Machine: id})
	return nil
}

func (f *recordingFly) StopMachine(_ context.Context, app, id string) error {
	f.record(PlannedCall{Kind: CallStopMachine, App: app, Machine: id})
	return nil
}

func (f *recordingFly) SuspendMachine(_ context.Context, app, id string) error {
	f.record(PlannedCall{Kind: CallSuspendMachine, App: app, Machine: id})
	return nil
}

func (f *recordingFly) DestroyMachine(_ context.Context, app, id string) error {
	f.record(PlannedCall{Kind: CallDestroyMachine, App: app, Machine: id})
	return nil
}

// WaitForState is never held by a plan: the plan starts no transition waits, and a wait on a
// machine the plan made up would hang until its timeout.
func (f *recordingFly) WaitForState(context.Context, string, string, string, []string, time.Duration) (FlyMachine, error) {
	return FlyMachine{}, &FlyError{Kind: FlyUnavailable, Message: "a plan does not wait for machine transitions"}
}
