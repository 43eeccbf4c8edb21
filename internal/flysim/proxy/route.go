package proxy

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/hangar-dev/hangar/internal/flysim"
)

// Reasons of fly-replay-failed (§9); a proxyError with a reason lets a replay's fallback take over.
const (
	reasonNoCandidate      = "no_candidate"
	reasonTimeout          = "timeout"
	reasonRetriesExhausted = "retries_exhausted"
)

// proxyError is a request the proxy could not deliver: the status and body line the client gets.
// Open in the sheet (Fly documents only "a generic 5xx"), the statuses are: 502 when the instruction cannot be followed (unknown app or instance, an instance of
// another app, cross-org or cross-network refused, a machine that failed mid-request), 503 when the
// target exists but nothing can serve the port (no such service, autostart off, not startable),
// 504 when the replay timeout passed first.
type proxyError struct {
	status int
	reason string // "" when no fallback applies (the connection was made)
	msg    string
	cause  error // what went wrong underneath, if anything
}

func (e *proxyError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *proxyError) Unwrap() error { return e.cause }

func unavailable(format string, args ...any) *proxyError {
	return &proxyError{status: http.StatusServiceUnavailable, reason: reasonNoCandidate, msg: fmt.Sprintf(format, args...)}
}

func badReplay(format string, args ...any) *proxyError {
	return &proxyError{status: http.StatusBadGateway, reason: reasonNoCandidate, msg: fmt.Sprintf(format, args...)}
}

// target is a machine ready to take a request on one service.
type target struct {
	machine flysim.MachineSnapshot
	addr    string
	// preferredUnavailable is the prefer_instance that could not be honoured, sent to the target in
	// fly-preferred-instance-unavailable.
	preferredUnavailable string
}

// resolveReplay finds and reaches the target of replay r issued by machine issuer, for public port.
func (p *Proxy) resolveReplay(ctx context.Context, issuer flysim.MachineSnapshot, r Replay, port int) (target, *proxyError) {
	from, ok := p.srv.SnapshotApp(issuer.App)
	if !ok {
		return target{}, badReplay("the replaying app %q no longer exists", issuer.App)
	}
	name := cmp.Or(r.App, issuer.App)
	to, ok := p.srv.SnapshotApp(name)
	switch {
	case !ok:
		return target{}, badReplay("replay to app %q: no such app", name)
	case to.Org != from.Org: // Stricter: the target org's replay allowlist is not modelled, so never allowed
		return target{}, badReplay("replay from app %q to app %q of another organization refused: cross-org replays are not simulated", from.Name, to.Name)
	case to.NetworkID != from.NetworkID && !from.CrossNetworkReplays:
		return target{}, badReplay("replay from app %q (network %q) to app %q (network %q) refused: it crosses private networks and "+
			"organization %q has cross-network replays disabled (fly orgs cross-network-replays enable; flysim: Server.SetCrossNetworkReplays)",
			from.Name, from.Network, to.Name, to.Network, from.Org)
	}
	exclude := ""
	if r.Elsewhere {
		exclude = issuer.ID
	}
	if r.Instance != "" {
		m, ok := machineIn(to, r.Instance)
		if !ok {
			return target{}, badReplay("replay to instance %s: not a machine of app %q", r.Instance, to.Name)
		}
		return p.reach(ctx, keyOf(m), port)
	}
	if r.PreferInstance != "" {
		if m, ok := machineIn(to, r.PreferInstance); ok && m.ID != exclude && !m.Cordoned {
			t, err := p.reach(ctx, keyOf(m), port)
			if err == nil || err.reason == reasonTimeout {
				return t, err
			}
		}
		t, err := p.pickAndReach(ctx, to, port, r.Regions, exclude)
		t.preferredUnavailable = r.PreferInstance
		return t, err
	}
	return p.pickAndReach(ctx, to, port, r.Regions, exclude)
}

func machineIn(a flysim.AppSnapshot, id string) (flysim.MachineSnapshot, bool) {
	i := slices.IndexFunc(a.Machines, func(m flysim.MachineSnapshot) bool { return m.ID == id })
	if i < 0 {
		return flysim.MachineSnapshot{}, false
	}
	return a.Machines[i], true
}

func (p *Proxy) pickAndReach(ctx context.Context, a flysim.AppSnapshot, port int, regions []string, exclude string) (target, *proxyError) {
	m, err := p.pick(a, port, regions, exclude)
	if err != nil {
		return target{}, err
	}
	return p.reach(ctx, keyOf(m), port)
}

// pick load-balances over a's machines with an http service on port: the preferred region first,
// then started machines before those on their way up before those autostart would wake, then the
// fewest requests in flight, then the oldest machine. Cordoned machines and exclude are skipped.
func (p *Proxy) pick(a flysim.AppSnapshot, port int, regions []string, exclude string) (flysim.MachineSnapshot, *proxyError) {
	type candidate struct {
		m                            flysim.MachineSnapshot
		rank, readiness, load, order int
	}
	var cands []candidate
	withPort, autostartOff := 0, 0
	for order, m := range a.Machines { // in creation order
		svc, _, httpOK := publicService(m.Services, port)
		if !httpOK || m.Cordoned || m.ID == exclude {
			continue
		}
		withPort++
		rank, ok := regionRank(m.Region, regions)
		if !ok {
			continue
		}
		readiness := 0
		switch m.State {
		case flysim.StateStarted:
		case flysim.StateStarting, flysim.StateRestarting, flysim.StateReplacing:
			readiness = 1
		case flysim.StateCreated:
			if !m.Pending { // created with skip_launch
				continue
			}
			readiness = 1
		case flysim.StateStopped, flysim.StateSuspended, flysim.StateStopping, flysim.StateSuspending:
			if !svc.Autostart {
				autostartOff++
				continue
			}
			readiness = 2
		default:
			continue
		}
		cands = append(cands, candidate{m: m, rank: rank, readiness: readiness, load: p.activity.load(keyOf(m)), order: order})
	}
	if len(cands) == 0 {
		switch {
		case len(a.Machines) == 0:
			return flysim.MachineSnapshot{}, unavailable("app %q has no machines", a.Name)
		case withPort == 0:
			return flysim.MachineSnapshot{}, unavailable("app %q has no machine with an http service on port %d", a.Name, port)
		case autostartOff > 0:
			return flysim.MachineSnapshot{}, unavailable("app %q has no running machine for port %d and autostart is off", a.Name, port)
		default:
			return flysim.MachineSnapshot{}, unavailable("app %q has no machine that can serve port %d in the requested regions", a.Name, port)
		}
	}
	best := slices.MinFunc(cands, func(x, y candidate) int {
		return cmp.Or(cmp.Compare(x.rank, y.rank), cmp.Compare(x.readiness, y.readiness),
			cmp.Compare(x.load, y.load), cmp.Compare(x.order, y.order))
	})
	return best.m, nil
}

// regionRank is region's position in the replay's region list ("any" matches every region); no list
// matches everything.
func regionRank(region string, prefs []string) (int, bool) {
	if len(prefs) == 0 {
		return 0, true
	}
	for i, pref := range prefs {
		if pref == region || pref == "any" {
			return i, true
		}
	}
	return 0, false
}

// publicService finds the service serving public port over HTTP, as the Fly Proxy matches a request
// (and a replay) to the target service by the inbound port. found reports a service with the port at
// all; http whether it has the `http` handler a replay target needs (§9).
func publicService(services []flysim.Service, public int) (svc flysim.Service, found, http bool) {
	for _, s := range services {
		for _, p := range s.Ports {
			if !p.Matches(public) {
				continue
			}
			if slices.Contains(p.Handlers, "http") {
				return s, true, true
			}
			svc, found = s, true
		}
	}
	return svc, found, false
}

// reach gets machine k ready to take a request on port: it must have an http service on the port; a
// stopped or suspended machine is started when the service allows autostart (out of band, as the Fly
// Proxy does without an API call); a machine on its way up is waited for, until ctx ends.
func (p *Proxy) reach(ctx context.Context, k machineKey, port int) (target, *proxyError) {
	for {
		m, changed, ok := p.srv.SnapshotMachine(k.app, k.id)
		if !ok || m.State == flysim.StateDestroyed || m.State == flysim.StateDestroying {
			return target{}, unavailable("machine %s of app %q is destroyed", k.id, k.app)
		}
		svc, found, httpOK := publicService(m.Services, port)
		switch {
		case !found:
			return target{}, unavailable("machine %s of app %q has no service on port %d", k.id, k.app, port)
		case !httpOK:
			return target{}, unavailable("the service of machine %s of app %q on port %d has no http handler", k.id, k.app, port)
		}
		var endpointChanged <-chan struct{}
		switch m.State {
		case flysim.StateStarted:
			addr, ok, ch := p.machines.Endpoint(k.app, k.id, m.Version, svc.InternalPort)
			if ok {
				return target{machine: m, addr: addr}, nil
			}
			endpointChanged = ch // started, listeners not open yet
		case flysim.StateStopped, flysim.StateSuspended:
			if !svc.Autostart {
				return target{}, unavailable("machine %s of app %q is %s and its service on port %d has autostart off", k.id, k.app, m.State, port)
			}
			// A concurrent request may have started it first: the precondition error is harmless.
			if err := p.srv.ProxyStart(k.app, k.id); err != nil && !errors.Is(err, flysim.ErrFailedPrecondition) {
				perr := unavailable("starting machine %s of app %q", k.id, k.app)
				perr.cause = err
				return target{}, perr
			}
			continue
		case flysim.StateStarting, flysim.StateRestarting, flysim.StateReplacing, flysim.StateStopping, flysim.StateSuspending:
		case flysim.StateCreated:
			if !m.Pending {
				return target{}, unavailable("machine %s of app %q was created with skip_launch: the proxy does not start it", k.id, k.app)
			}
		default:
			return target{}, unavailable("machine %s of app %q is %s", k.id, k.app, m.State)
		}
		if err := p.await(ctx, changed, endpointChanged); err != nil {
			if errors.Is(err, errServerClosed) {
				return target{}, unavailable("the emulator is shutting down")
			}
			return target{}, &proxyError{status: http.StatusGatewayTimeout, reason: reasonTimeout,
				msg: fmt.Sprintf("machine %s of app %q was not reachable on port %d in time (state %s)", k.id, k.app, port, m.State)}
		}
	}
}

// errServerClosed ends waits when the Server closes.
var errServerClosed = errors.New("flysim: server closed")

// await blocks until a or b is closed, ctx ends or the Server closes.
func (p *Proxy) await(ctx context.Context, a, b <-chan struct{}) error {
	select {
	case <-a:
		return nil
	case <-b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.srv.Done():
		return errServerClosed
	}
}

// upstream is a machine's response. end closes its body and ends the machine's activity; it must be
// called once the response is consumed (closing a body relay already closed is harmless).
type upstream struct {
	resp    *http.Response
	machine flysim.MachineSnapshot
	end     func()
}

// connectAttempts bounds how often a request is sent again after a failed connection (the machine
// stopped between being picked and being dialled).
const connectAttempts = 3

// connect resolves a target within attempt and sends req to it. Only failures before a connection is
// made are retried and can be handed to a fallback: once connected, the request has been delivered.
func (p *Proxy) connect(attempt, ctx context.Context, resolve func(context.Context) (target, *proxyError), req hopRequest, in *inbound) (*upstream, *proxyError) {
	tries := connectAttempts
	if in.rest != nil {
		tries = 1 // a streamed body cannot be sent twice
	}
	var last target
	for range tries {
		t, perr := resolve(attempt)
		if perr != nil {
			return nil, perr
		}
		last = t
		k := keyOf(t.machine)
		p.activity.begin(k)
		resp, err := p.send(ctx, t, req, in) //nolint:bodyclose // owned by the returned upstream, whose end closes it
		if err == nil {
			var once sync.Once
			return &upstream{resp: resp, machine: t.machine, end: func() {
				once.Do(func() {
					_ = resp.Body.Close()
					p.activity.end(k, p.opts.Now())
				})
			}}, nil
		}
		p.activity.end(k, p.opts.Now())
		if !isDialError(err) {
			return nil, &proxyError{status: http.StatusBadGateway, cause: err,
				msg: fmt.Sprintf("request to machine %s of app %q failed", k.id, k.app)}
		}
		if attempt.Err() != nil {
			break
		}
	}
	if attempt.Err() != nil {
		return nil, &proxyError{status: http.StatusGatewayTimeout, reason: reasonTimeout,
			msg: fmt.Sprintf("machine %s of app %q was not reachable in time", last.machine.ID, last.machine.App)}
	}
	return nil, &proxyError{status: http.StatusBadGateway, reason: reasonRetriesExhausted,
		msg: fmt.Sprintf("could not connect to machine %s of app %q", last.machine.ID, last.machine.App)}
}

// isDialError reports whether err happened before a connection was made.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// send delivers req (with the inbound body) to t.
func (p *Proxy) send(ctx context.Context, t target, req hopRequest, in *inbound) (*http.Response, error) {
	var body io.Reader = bytes.NewReader(in.body)
	var guard *guardedBody
	if in.rest != nil {
		guard = &guardedBody{r: io.MultiReader(bytes.NewReader(in.body), in.rest)}
		body = guard
	}
	out, err := http.NewRequestWithContext(ctx, req.method, "http://"+t.addr+req.target, body)
	if err != nil {
		return nil, err
	}
	out.Host = req.host
	out.Header = req.header.Clone()
	if t.preferredUnavailable != "" {
		out.Header.Set(headerPreferredUnavailable, t.preferredUnavailable)
	}
	if out.Header.Get("User-Agent") == "" {
		out.Header["User-Agent"] = []string{""} // net/http would add its own
	}
	if in.rest == nil {
		out.ContentLength = int64(len(in.body))
		if len(in.body) == 0 {
			out.Body, out.GetBody = http.NoBody, nil
		}
	} else {
		out.ContentLength = in.contentLength
	}
	resp, err := p.transport.RoundTrip(out)
	if guard != nil {
		// Once the machine has answered, the rest of the body is the proxy's again (to drain it).
		guard.stop()
	}
	return resp, err
}

// errBodyTaken ends the transport's reading of a streamed body the proxy took back.
var errBodyTaken = errors.New("flysim: request body taken back by the proxy")

// guardedBody is a streamed request body the proxy can take back from the transport: after stop,
// reads fail, so only the proxy's handler reads the client's body from then on.
type guardedBody struct {
	mu      sync.Mutex
	r       io.Reader
	stopped bool
}

func (g *guardedBody) Read(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return 0, errBodyTaken
	}
	return g.r.Read(b)
}

func (g *guardedBody) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
}

// hopRequest is the request one machine receives (the body comes from the inbound request).
type hopRequest struct {
	method, target, host string // target is the request-target: path and query
	header               http.Header
}

// inbound is what the proxy keeps of a client request: its body, buffered up to MaxReplayBody so a
// replay can send it again.
type inbound struct {
	port          int
	requestID     string
	body          []byte
	rest          io.Reader // the unread remainder of a body over MaxReplayBody; nil otherwise
	contentLength int64
}

func readInbound(r *http.Request, port int, requestID string) (*inbound, error) {
	in := &inbound{port: port, requestID: requestID, contentLength: r.ContentLength}
	buf, err := io.ReadAll(io.LimitReader(r.Body, MaxReplayBody+1))
	if err != nil {
		return nil, err
	}
	in.body = buf
	if len(buf) > MaxReplayBody {
		in.rest = r.Body
	}
	return in, nil
}

// isUpgrade reports a protocol upgrade (WebSocket), which the simulator does not carry.
func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" || strings.EqualFold(r.Header.Get("Connection"), "upgrade")
}
