package usermachine

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/hangar-dev/hangar/internal/flysim"
)

// Options configure Start.
type Options struct {
	// Now is the clock replay state is verified against; default time.Now. The router signs state with
	// the real clock, so only tests that sign their own tokens change it.
	Now func() time.Time
	// Logger receives a line when a machine's listeners open or close (V(1)) and when one fails to
	// open; optional.
	Logger logr.Logger
	// Checks, when set, probes these machines: pass the same one as the Server's Options.Checks.
	Checks *Checks
}

// Machines runs the simulated user machines: every machine of the Server that is started gets a real
// loopback HTTP listener (127.0.0.1, an ephemeral port) for each internal port of its services,
// answering with an Answer. Leaving started (stop, suspend, restart, update, destroy, app
// delete) closes them; starting again opens new ones (on new ports). A machine registered with
// RegisterExternal is a real process the caller runs (the router): it gets no simulated listeners,
// and the proxy forwards to the addresses registered for it instead.
type Machines struct {
	srv         *flysim.Server
	now         func() time.Time
	log         logr.Logger
	unsubscribe func()

	mu       sync.Mutex
	running  map[machineKey]*simMachine
	opening  map[machineKey]*pendingOpen
	external map[machineKey]map[int]string
	// changed is closed and replaced whenever an endpoint appears or goes, waking the proxy.
	changed chan struct{}
	closed  bool
}

// machineKey names one machine.
type machineKey struct{ app, id string }

// simMachine is one started simulated machine: its version and a listener per internal port.
type simMachine struct {
	version   string
	listeners map[int]*simListener
}

type simListener struct {
	addr   string
	server *http.Server
}

// pendingOpen is a started machine whose app has not opened its listeners yet (the Server's profile
// gives a ListenDelay): the timer opens them unless the machine changed state first.
type pendingOpen struct {
	event string // the machine's LastEvent when it reached started
	timer *time.Timer
}

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("flysim: user machines closed")

// Start starts simulating the user machines of srv, opening listeners for the machines already
// started and following every later state change. Close it before srv.
func Start(srv *flysim.Server, opts Options) *Machines {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	u := &Machines{
		srv: srv, now: opts.Now, log: opts.Logger,
		running:  map[machineKey]*simMachine{},
		opening:  map[machineKey]*pendingOpen{},
		external: map[machineKey]map[int]string{},
		changed:  make(chan struct{}),
	}
	// Subscribe first, then sweep: a change between the two is seen by both, and reconcile reads the
	// current state each time, so the order of the two is harmless.
	if opts.Checks != nil {
		opts.Checks.attach(u)
	}
	u.unsubscribe = srv.Subscribe(u.onEvent)
	for _, a := range srv.SnapshotApps() {
		for _, m := range a.Machines {
			u.reconcile(machineKey{m.App, m.ID})
		}
	}
	return u
}

// onEvent follows one state change. Leaving started closes the listeners even when the machine is
// started again by the time the event arrives, so a restart always reopens them.
func (u *Machines) onEvent(e flysim.MachineEvent) {
	k := machineKey{e.App, e.MachineID}
	if e.NewState != flysim.StateStarted {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.closeLocked(k)
		return
	}
	u.reconcile(k)
}

// reconcile opens or closes k's listeners to match its current state and version. The state is read
// under u.mu, so concurrent reconciles cannot apply an older state after a newer one.
func (u *Machines) reconcile(k machineKey) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return
	}
	boot, ok := u.srv.MachineBoot(k.app, k.id)
	_, external := u.external[k]
	if !ok || external || boot.State != flysim.StateStarted {
		u.closeLocked(k)
		return
	}
	if cur := u.running[k]; cur != nil && cur.version == boot.Version {
		return
	}
	if boot.ListenDelay > 0 {
		// Started is not listening (§4.7): the app opens its ports a little later.
		if p := u.opening[k]; p != nil && p.event == boot.LastEvent {
			return
		}
		u.closeLocked(k)
		event := boot.LastEvent
		u.opening[k] = &pendingOpen{event: event, timer: time.AfterFunc(boot.ListenDelay, func() { u.openLater(k, event) })}
		return
	}
	u.closeLocked(k)
	u.openLocked(k, boot)
}

// openLater opens k's listeners once its ListenDelay has passed, if the machine is still in the
// started state it reached at event.
func (u *Machines) openLater(k machineKey, event string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if p := u.opening[k]; u.closed || p == nil || p.event != event {
		return
	}
	delete(u.opening, k)
	boot, ok := u.srv.MachineBoot(k.app, k.id)
	if _, external := u.external[k]; !ok || external || boot.State != flysim.StateStarted || boot.LastEvent != event {
		return
	}
	u.openLocked(k, boot)
}

func (u *Machines) openLocked(k machineKey, boot flysim.MachineBoot) {
	sm := &simMachine{version: boot.Version, listeners: map[int]*simListener{}}
	for _, svc := range listenPorts(boot) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			u.log.Error(err, "Cannot open a simulated machine listener", "app", k.app, "machine", k.id, "internalPort", svc.InternalPort)
			continue
		}
		server := &http.Server{Handler: newMachineHandler(boot, svc, u.now), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = server.Serve(ln) }() // returns when closed
		sm.listeners[svc.InternalPort] = &simListener{addr: ln.Addr().String(), server: server}
	}
	u.running[k] = sm
	u.log.V(1).Info("Simulated machine listening", "app", k.app, "machine", k.id, "version", boot.Version, "ports", len(sm.listeners))
	u.notifyLocked()
}

// closeLocked closes k's listeners and the connections on them, as a stopping VM drops its sockets,
// and drops a pending open.
func (u *Machines) closeLocked(k machineKey) {
	if p := u.opening[k]; p != nil {
		p.timer.Stop()
		delete(u.opening, k)
	}
	sm := u.running[k]
	if sm == nil {
		return
	}
	for _, l := range sm.listeners {
		_ = l.server.Close()
	}
	delete(u.running, k)
	u.log.V(1).Info("Simulated machine stopped listening", "app", k.app, "machine", k.id)
	u.notifyLocked()
}

func (u *Machines) notifyLocked() {
	close(u.changed)
	u.changed = make(chan struct{})
}

// RegisterExternal declares that machine id of app is a real process serving its internal ports at
// the given local addresses (internal port → "host:port"), such as the router. The machine must
// exist; any simulated listeners it had are closed. Registering again replaces the addresses.
func (u *Machines) RegisterExternal(app, id string, addrs map[int]string) error {
	if _, _, ok := u.srv.SnapshotMachine(app, id); !ok {
		return fmt.Errorf("registering %s/%s as external: %w", app, id, flysim.ErrMachineNotFound)
	}
	for port, addr := range addrs {
		if port < 1 || port > 65535 || addr == "" {
			return fmt.Errorf("registering %s/%s as external: internal port %d needs a port number and an address: %w",
				app, id, port, flysim.ErrInvalidConfig)
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return ErrClosed
	}
	k := machineKey{app, id}
	u.external[k] = maps.Clone(addrs)
	u.closeLocked(k)
	u.notifyLocked()
	return nil
}

// UnregisterExternal makes the machine simulated again (listeners open if it is started).
func (u *Machines) UnregisterExternal(app, id string) {
	k := machineKey{app, id}
	u.mu.Lock()
	delete(u.external, k)
	u.notifyLocked()
	u.mu.Unlock()
	u.reconcile(k)
}

// Endpoints returns the addresses serving a machine's internal ports (internal port → "host:port"):
// its simulated listeners while it is started, or its registered addresses when it is external.
// A machine without any gives an empty map.
func (u *Machines) Endpoints(app, id string) map[int]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := machineKey{app, id}
	if ext, ok := u.external[k]; ok {
		return maps.Clone(ext)
	}
	out := map[int]string{}
	if sm := u.running[k]; sm != nil {
		for port, l := range sm.listeners {
			out[port] = l.addr
		}
	}
	return out
}

// IsExternal reports whether the machine was registered with RegisterExternal. The proxy never
// autostops such a machine: its process is not the emulator's to stop.
func (u *Machines) IsExternal(app, id string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.external[machineKey{app, id}]
	return ok
}

// Endpoint returns the address serving internalPort of the machine at version (any version for an
// external machine), and a channel closed on the next change of any endpoint, so the proxy can wait
// for a started machine's listeners to open.
func (u *Machines) Endpoint(app, id, version string, internalPort int) (addr string, ok bool, changed <-chan struct{}) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := machineKey{app, id}
	if ext, ok := u.external[k]; ok {
		addr, ok := ext[internalPort]
		return addr, ok, u.changed
	}
	if sm := u.running[k]; sm != nil && sm.version == version {
		if l := sm.listeners[internalPort]; l != nil {
			return l.addr, true, u.changed
		}
	}
	return "", false, u.changed
}

// listenPorts are the distinct internal ports of the machine's services, in config order, then the
// ports its checks probe that no service names (as a service-less port with no name): one listener
// each. A simulated app is a healthy one, so it serves what its checks probe.
func listenPorts(boot flysim.MachineBoot) []flysim.Service {
	var out []flysim.Service
	has := func(port int) bool {
		return slices.ContainsFunc(out, func(o flysim.Service) bool { return o.InternalPort == port })
	}
	for _, svc := range boot.Services {
		if !has(svc.InternalPort) {
			out = append(out, svc)
		}
	}
	for _, port := range boot.CheckPorts {
		if !has(port) {
			out = append(out, flysim.Service{InternalPort: port})
		}
	}
	return out
}

// Close stops following the Server and closes every simulated listener.
func (u *Machines) Close() error {
	u.unsubscribe()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	u.closed = true
	for k := range u.running {
		u.closeLocked(k)
	}
	for k := range u.opening {
		u.closeLocked(k)
	}
	return nil
}
