// Package images runs real programs on the Fly emulator's machines whose image names them, such as the router.
//
// Start(srv, machines, Options{Images: []Image{Router(...)}}) follows the state changes of a
// flysim.Server. A machine whose config image matches an Image's Prefix (the prefix itself, or it
// followed by a tag or digest) is registered with usermachine.Machines as external, so it never gets
// simulated listeners; while it is started, the Image's Run runs in-process with the machine's env
// and the secrets its current version booted with (secrets win over env of the same name, as on Fly),
// on loopback listeners of its own. Its addresses are registered only once Run says it serves (the
// router: once /readyz answers), so until then the Fly Proxy simulator waits for it, as for a
// started machine whose app is not listening yet. When the machine leaves started (stop, suspend,
// update, destroy, app delete) its addresses go first, so the proxy sends it nothing new, then Run's
// context ends and the program drains what it has in flight; an update starts the program again
// with the new version's env and secrets. A program that fails while its machine is started is
// started again after a backoff (Fly's restart policy "always").
//
// Events reach subscribers in order, so a machine is claimed as external on its created (or
// replacing) event, before usermachine sees it started: start this package right after
// usermachine.Start, before any machine of a program's image exists.
//
// With usermachine.Checks probing the machines, a program's checks fail until it serves and its
// addresses are registered, so a rollout that waits for checks waits for the program. Without a
// prober, checks read passing once the machine is started, and requests sent to a program that
// does not serve yet wait in the proxy rather than fail.
package images

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
)

// Machine is what a program sees of the machine it runs on.
type Machine struct {
	App, ID, Region string
	// Version is the machine version the program runs for; Image its config's image.
	Version, Image string
	// Env is the config's env with the app secrets the version booted with.
	Env map[string]string
}

// Getenv reads m's environment, as os.Getenv reads a process's.
func (m Machine) Getenv(name string) string { return m.Env[name] }

// Run runs a program on machine m until ctx ends, then stops it (draining what is in flight) and
// returns. It calls serving once the program answers, with the address serving each internal port
// of the machine's services ("host:port" on loopback). An error before ctx ends is a crash.
type Run func(ctx context.Context, m Machine, serving func(ports map[int]string)) error

// Image is one entry of the image table: machines whose image matches Prefix run Run.
type Image struct {
	// Prefix matches an image reference equal to it or followed by ":" (a tag) or "@" (a digest),
	// such as registry.fly.io/hangar-router.
	Prefix string
	Run    Run
}

// matches reports whether image names this entry's program.
func (i Image) matches(image string) bool {
	rest, ok := strings.CutPrefix(image, i.Prefix)
	return ok && i.Prefix != "" && (rest == "" || rest[0] == ':' || rest[0] == '@')
}

// Options configure Start.
type Options struct {
	// Images is the table, first match wins.
	Images []Image
	// Logger receives a line when a program starts, serves, stops or crashes; optional.
	Logger logr.Logger
	// RestartBackoff is the first wait before a crashed program runs again, doubled up to a
	// minute; default 1 s.
	RestartBackoff time.Duration
}

// Runner runs the programs of the matching machines of a Server.
type Runner struct {
	srv         *flysim.Server
	machines    *usermachine.Machines
	opts        Options
	log         logr.Logger
	unsubscribe func()

	mu      sync.Mutex
	claimed map[machineKey]bool      // registered as external with machines
	running map[machineKey]*instance // the program of a started machine
	closed  bool
	wg      sync.WaitGroup
}

type machineKey struct{ app, id string }

// instance is one run of a program, for one machine version.
type instance struct {
	version string
	cancel  context.CancelFunc
}

// Start runs the programs of srv's machines whose image is in opts.Images, now and as machines
// change. Close it before machines and srv.
func Start(srv *flysim.Server, machines *usermachine.Machines, opts Options) *Runner {
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.RestartBackoff <= 0 {
		opts.RestartBackoff = time.Second
	}
	r := &Runner{
		srv: srv, machines: machines, opts: opts, log: opts.Logger,
		claimed: map[machineKey]bool{}, running: map[machineKey]*instance{},
	}
	r.unsubscribe = srv.Subscribe(func(e flysim.MachineEvent) { r.reconcile(machineKey{e.App, e.MachineID}) })
	for _, a := range srv.SnapshotApps() {
		for _, m := range a.Machines {
			r.reconcile(machineKey{m.App, m.ID})
		}
	}
	return r
}

// reconcile claims, starts or stops k's program to match the machine's current image, state and
// version.
func (r *Runner) reconcile(k machineKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	boot, ok := r.srv.MachineBoot(k.app, k.id)
	var info flysim.MachineInfo
	if ok {
		info, ok = r.srv.Machine(k.app, k.id)
	}
	if ok && info.Version != boot.Version {
		return // changed between the two reads: its event comes next
	}
	image, env := configImageAndEnv(info.Config)
	img, matched := r.match(image)
	if !ok || boot.State == flysim.StateDestroyed || !matched {
		r.stopLocked(k)
		if r.claimed[k] {
			delete(r.claimed, k)
			r.machines.UnregisterExternal(k.app, k.id)
		}
		return
	}
	if !r.claimed[k] {
		// No addresses yet: the proxy waits for the program as for a machine not listening.
		if err := r.machines.RegisterExternal(k.app, k.id, map[int]string{}); err != nil {
			r.log.Error(err, "Cannot claim a machine for its image's program", "app", k.app, "machine", k.id)
			return
		}
		r.claimed[k] = true
	}
	if boot.State != flysim.StateStarted {
		r.stopLocked(k)
		return
	}
	if cur := r.running[k]; cur != nil && cur.version == boot.Version {
		return
	}
	r.stopLocked(k)
	for name, value := range boot.Secrets {
		env[name] = value
	}
	m := Machine{App: k.app, ID: k.id, Region: boot.Region, Version: boot.Version, Image: image, Env: env}
	ctx, cancel := context.WithCancel(context.Background())
	inst := &instance{version: boot.Version, cancel: cancel}
	r.running[k] = inst
	r.log.Info("Starting the program of a machine's image", "app", k.app, "machine", k.id, "version", boot.Version, "image", image)
	r.wg.Go(func() { r.run(ctx, k, inst, img, m) })
}

func (r *Runner) match(image string) (Image, bool) {
	for _, img := range r.opts.Images {
		if img.matches(image) {
			return img, true
		}
	}
	return Image{}, false
}

// stopLocked takes k's addresses away (the proxy sends nothing new) and ends its program, which
// drains on its own goroutine.
func (r *Runner) stopLocked(k machineKey) {
	inst := r.running[k]
	if inst == nil {
		return
	}
	delete(r.running, k)
	if _, _, exists := r.srv.SnapshotMachine(k.app, k.id); exists {
		_ = r.machines.RegisterExternal(k.app, k.id, map[int]string{})
	}
	inst.cancel()
	r.log.Info("Stopping the program of a machine's image", "app", k.app, "machine", k.id, "version", inst.version)
}

// run runs the program until its context ends, again after a backoff when it fails before.
func (r *Runner) run(ctx context.Context, k machineKey, inst *instance, img Image, m Machine) {
	backoff := r.opts.RestartBackoff
	for {
		err := img.Run(ctx, m, func(ports map[int]string) { r.serving(k, inst, ports) })
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the program exited")
		}
		r.log.Error(err, "A machine's program stopped; starting it again (restart policy always)", "app", k.app, "machine", k.id, "after", backoff)
		r.mu.Lock()
		if r.running[k] == inst {
			_ = r.machines.RegisterExternal(k.app, k.id, map[int]string{})
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// serving registers the program's addresses, unless its machine moved on meanwhile.
func (r *Runner) serving(k machineKey, inst *instance, ports map[int]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.running[k] != inst {
		return
	}
	if err := r.machines.RegisterExternal(k.app, k.id, ports); err != nil {
		r.log.Error(err, "Cannot register a program's addresses", "app", k.app, "machine", k.id)
		return
	}
	r.log.Info("Machine's program serving", "app", k.app, "machine", k.id, "version", inst.version, "ports", ports)
}

// Close stops following the Server, ends every program and waits for them to drain.
func (r *Runner) Close() error {
	r.unsubscribe()
	r.mu.Lock()
	r.closed = true
	for k := range r.running {
		r.stopLocked(k)
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// configImageAndEnv reads the image and env of a stored machine config; the env map is a fresh one.
func configImageAndEnv(config json.RawMessage) (string, map[string]string) {
	var c struct {
		Image string            `json:"image"`
		Env   map[string]string `json:"env"`
	}
	_ = json.Unmarshal(config, &c) // the emulator stores only configs it validated
	if c.Env == nil {
		c.Env = map[string]string{}
	}
	return c.Image, c.Env
}
