package proxy

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
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
)

// DefaultListen is where the proxy listens when Options.Listen is empty: Fly's public port 80 on
// 127.0.0.1:8080 and the management port 9090 on 127.0.0.1:9090.
var DefaultListen = map[int]string{80: "127.0.0.1:8080", 9090: "127.0.0.1:9090"}

// Proxy defaults.
const (
	// DefaultConnectTimeout bounds how long the proxy tries to reach a machine (pick it, start it,
	// wait for it, connect) when a replay names no timeout: Fly "tries for a while" before a 5xx.
	DefaultConnectTimeout = 30 * time.Second
	// DefaultAutostopInterval is how often the autostop loop runs (Fly: "every few minutes").
	DefaultAutostopInterval = time.Minute
	// DefaultAutostopIdle is how long a machine must have served nothing before autostop acts.
	DefaultAutostopIdle = 5 * time.Minute
	// MaxReplayBody is the largest request body a replay can carry (§9: over 1 MB cannot be
	// replayed). Open in the sheet: "1 MB" is read as 1 MiB.
	MaxReplayBody = 1 << 20
	// maxReplayHops bounds replays of one request (a target may answer with a replay again).
	maxReplayHops = 10
	// proxyServerHeader is the Server header of every answer, like Fly's `Fly/<build> (<date>)`.
	proxyServerHeader = "Fly/flysim"
)

// AutostopOptions configure the proxy's autostop loop.
type AutostopOptions struct {
	// Disabled turns the loop off; RunAutostop still works.
	Disabled bool
	// Interval between passes; default DefaultAutostopInterval.
	Interval time.Duration
	// IdleAfter is how long a machine must have had no request before a pass stops or suspends it;
	// default DefaultAutostopIdle.
	IdleAfter time.Duration
}

// Options configure Start.
type Options struct {
	// Listen maps a Fly public port to the local address standing for it ("127.0.0.1:0" picks a free
	// port; see Addr). Empty means DefaultListen.
	Listen map[int]string
	// EntryApp is the app every inbound request goes to first: the router app, whose machine is
	// usually registered with usermachine.Machines.RegisterExternal. Required.
	EntryApp string
	// Region is the edge region named in fly-request-id and the Fly-Region request header; default
	// flysim.DefaultRegion.
	Region string
	// ConnectTimeout is the default of a replay's `timeout` and the limit for reaching the entry
	// machine; default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Autostop configures the autostop loop.
	Autostop AutostopOptions
	// Now is the clock of fly-replay-src `t` and of idle times; default time.Now.
	Now func() time.Time
	// Logger receives one line per request at V(1) (method, port, status, machines; never headers or
	// bodies) and autostop actions at V(0); optional.
	Logger logr.Logger
}

// ErrInvalidOptions means Options cannot work.
var ErrInvalidOptions = errors.New("flysim: invalid proxy options")

func (o Options) withDefaults() (Options, error) {
	if o.EntryApp == "" {
		return o, fmt.Errorf("%w: EntryApp is required", ErrInvalidOptions)
	}
	if len(o.Listen) == 0 {
		o.Listen = maps.Clone(DefaultListen)
	}
	for port, addr := range o.Listen {
		if port < 1 || port > 65535 || addr == "" {
			return o, fmt.Errorf("%w: public port %d needs a port number and a listen address", ErrInvalidOptions, port)
		}
	}
	if o.Region == "" {
		o.Region = flysim.DefaultRegion
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Autostop.Interval <= 0 {
		o.Autostop.Interval = DefaultAutostopInterval
	}
	if o.Autostop.IdleAfter <= 0 {
		o.Autostop.IdleAfter = DefaultAutostopIdle
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return o, nil
}

// Proxy is the Fly Proxy simulator. See the package documentation for what it does.
type Proxy struct {
	srv       *flysim.Server
	machines  *usermachine.Machines
	opts      Options
	log       logr.Logger
	transport *http.Transport
	activity  *activity

	servers   map[int]*http.Server
	addrs     map[int]string
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Start listens on every public port of opts and serves until Close. It forwards to the listeners of
// machines (simulated or registered as external), which must follow srv.
func Start(srv *flysim.Server, machines *usermachine.Machines, opts Options) (*Proxy, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if srv == nil || machines == nil {
		return nil, fmt.Errorf("%w: a Server and its user machines are required", ErrInvalidOptions)
	}
	p := &Proxy{
		srv: srv, machines: machines, opts: opts, log: opts.Logger,
		// No environment proxy: every target is a local listener.
		transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: 0, // a machine may take as long as it likes once connected
		},
		activity: newActivity(),
		servers:  map[int]*http.Server{},
		addrs:    map[int]string{},
		stop:     make(chan struct{}),
	}
	for _, port := range slices.Sorted(maps.Keys(opts.Listen)) {
		ln, err := net.Listen("tcp", opts.Listen[port])
		if err != nil {
			p.closeServers()
			return nil, fmt.Errorf("proxy listener for public port %d: %w", port, err)
		}
		server := &http.Server{Handler: p.Handler(port), ReadHeaderTimeout: 10 * time.Second}
		p.servers[port], p.addrs[port] = server, ln.Addr().String()
		p.wg.Go(func() { _ = server.Serve(ln) })
	}
	if !opts.Autostop.Disabled {
		p.wg.Go(p.autostopLoop)
	}
	return p, nil
}

// Addr returns the address the proxy listens on for a public port ("" when it does not).
func (p *Proxy) Addr(publicPort int) string { return p.addrs[publicPort] }

// Handler serves requests as if they arrived on publicPort; Start mounts one per listener.
func (p *Proxy) Handler(publicPort int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, publicPort) })
}

// Close stops the listeners (dropping open connections) and the autostop loop.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		close(p.stop)
		p.closeServers()
		p.wg.Wait()
		p.transport.CloseIdleConnections()
	})
	return nil
}

func (p *Proxy) closeServers() {
	for _, s := range p.servers {
		_ = s.Close()
	}
}

// machineKey names one machine.
type machineKey struct{ app, id string }

func keyOf(m flysim.MachineSnapshot) machineKey { return machineKey{m.App, m.ID} }
