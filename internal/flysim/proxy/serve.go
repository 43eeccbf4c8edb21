package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
)

// Request and response headers the proxy owns.
const (
	headerReplaySrc            = "Fly-Replay-Src"
	headerReplayFailed         = "Fly-Replay-Failed"
	headerPreferredUnavailable = "Fly-Preferred-Instance-Unavailable"
	headerRequestID            = "Fly-Request-Id"
)

// maxBodyDrain bounds how much of an unreplayable body the proxy reads before answering 413.
const maxBodyDrain = 64 << 20

// flyRequestHeaders are set only by the proxy: a client's own copies are dropped, so a machine can
// trust them (a forged fly-replay-src must never reach it).
var flyRequestHeaders = []string{
	headerReplaySrc, headerReplayFailed, headerPreferredUnavailable, headerRequestID,
	"Fly-Client-Ip", "Fly-Forwarded-Port", "Fly-Region", "Fly-Replay-Cache-Status",
}

// hopByHopHeaders are never forwarded (RFC 9110 §7.6.1), nor are the headers Connection names.
var hopByHopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHopHeaders {
		h.Del(name)
	}
}

// serve handles one inbound request on a public port: to the entry app, then through every replay.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, port int) {
	start := time.Now()
	requestID := p.srv.NewRequestID(p.opts.Now(), p.opts.Region)
	status, route := p.handle(w, r, port, requestID)
	p.log.V(1).Info("Proxied request", "method", r.Method, "port", port, "status", status, "route", route,
		"requestID", requestID, "duration", time.Since(start))
}

// handle returns the status sent and the machines visited, for the log line.
func (p *Proxy) handle(w http.ResponseWriter, r *http.Request, port int, requestID string) (int, string) {
	if isUpgrade(r) {
		return p.fail(w, requestID, &proxyError{status: http.StatusNotImplemented,
			msg: "protocol upgrades (WebSocket) are not simulated"}), ""
	}
	in, err := readInbound(r, port, requestID)
	if err != nil {
		return p.fail(w, requestID, &proxyError{status: http.StatusBadRequest, msg: "reading the request body failed"}), ""
	}
	ctx := r.Context()
	entryApp, ok := p.srv.SnapshotApp(p.opts.EntryApp)
	if !ok {
		return p.fail(w, requestID, unavailable("the entry app %q does not exist", p.opts.EntryApp)), ""
	}
	if p.srv.Profile().RequirePublicIP && len(entryApp.PublicIPs) == 0 {
		// On Fly no request could reach an app without a public address (§2, §11); the simulator
		// answers as it does for a missing entry app.
		return p.fail(w, requestID, unavailable("the entry app %q has no public IP address, so no request can reach it: "+
			"allocate one (fly ips allocate-v6, fly ips allocate-v4 --shared; POST /v1/apps/%s/ip_assignments {\"type\":\"v6\"})",
			p.opts.EntryApp, p.opts.EntryApp)), ""
	}
	req := p.firstHop(r, in)
	attempt, cancel := context.WithTimeout(ctx, p.opts.ConnectTimeout)
	up, perr := p.connect(attempt, ctx, func(actx context.Context) (target, *proxyError) {
		return p.pickAndReach(actx, entryApp, port, nil, "")
	}, req, in)
	cancel()
	if perr != nil {
		return p.fail(w, requestID, perr), ""
	}
	route := up.machine.App + "/" + up.machine.ID
	for hops := 0; ; hops++ {
		replay, isReplay, err := readReplay(up.resp)
		if !isReplay {
			defer up.end()
			return p.relay(w, up.resp, requestID), route
		}
		up.end()
		switch {
		case err != nil:
			return p.fail(w, requestID, &proxyError{status: http.StatusBadGateway, cause: err,
				msg: fmt.Sprintf("machine %s of app %q answered with a replay the proxy cannot follow", up.machine.ID, up.machine.App)}), route
		case in.rest != nil:
			// Read what the client still sends, so it gets to read the answer on a clean connection.
			_, _ = io.Copy(io.Discard, io.LimitReader(in.rest, maxBodyDrain))
			return p.fail(w, requestID, &proxyError{status: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("a request body over %d bytes cannot be replayed", MaxReplayBody)}), route
		case hops == maxReplayHops:
			return p.fail(w, requestID, &proxyError{status: http.StatusBadGateway,
				msg: fmt.Sprintf("more than %d replays for one request", maxReplayHops)}), route
		}
		issuer, issuerReq := up.machine, req
		req = p.replayRequest(issuerReq, issuer, replay)
		begun := time.Now()
		attempt, cancel := context.WithTimeout(ctx, cmp.Or(replay.Timeout, p.opts.ConnectTimeout))
		up, perr = p.connect(attempt, ctx, func(actx context.Context) (target, *proxyError) {
			return p.resolveReplay(actx, issuer, replay, port)
		}, req, in)
		cancel()
		if perr != nil {
			if replay.Fallback != "" && perr.reason != "" {
				return p.fallback(ctx, w, in, issuer, issuerReq, replay, perr, time.Since(begun)), route + " → fallback"
			}
			return p.fail(w, requestID, perr), route
		}
		route += " → " + up.machine.App + "/" + up.machine.ID
	}
}

// firstHop is the request the entry machine receives: the client's, without hop-by-hop headers and
// Fly's own headers, plus those the Fly Proxy adds.
func (p *Proxy) firstHop(r *http.Request, in *inbound) hopRequest {
	h := r.Header.Clone()
	removeHopByHop(h)
	for _, name := range flyRequestHeaders {
		h.Del(name)
	}
	clientIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		clientIP = r.RemoteAddr
	}
	forwarded := append(h.Values("X-Forwarded-For"), clientIP)
	h.Set("X-Forwarded-For", strings.Join(forwarded, ", "))
	h.Set("X-Forwarded-Proto", "http")
	h.Set("X-Forwarded-Port", strconv.Itoa(in.port))
	h.Set("Fly-Client-Ip", clientIP)
	h.Set("Fly-Forwarded-Port", strconv.Itoa(in.port))
	h.Set("Fly-Region", p.opts.Region)
	h.Set(headerRequestID, in.requestID)
	h.Add("Via", "1.1 fly.io")
	return hopRequest{method: r.Method, target: r.URL.RequestURI(), host: r.Host, header: h}
}

// replayRequest is the request the target of r receives: the issuer's, transformed, with
// fly-replay-src naming the issuer. The proxy's own headers survive any transform.
func (p *Proxy) replayRequest(issuerReq hopRequest, issuer flysim.MachineSnapshot, r Replay) hopRequest {
	out := hopRequest{method: issuerReq.method, target: issuerReq.target, host: issuerReq.host, header: issuerReq.header.Clone()}
	if t := r.Transform; t != nil {
		if t.Path != "" {
			out.target = t.Path
		}
		for _, name := range t.DeleteHeaders {
			out.header.Del(name)
		}
		for _, sh := range t.SetHeaders {
			if strings.EqualFold(sh.Name, "Host") {
				out.host = sh.Value
				continue
			}
			out.header.Set(sh.Name, sh.Value)
		}
		removeHopByHop(out.header)
		for _, name := range flyRequestHeaders {
			if v, ok := issuerReq.header[textproto.CanonicalMIMEHeaderKey(name)]; ok {
				out.header[textproto.CanonicalMIMEHeaderKey(name)] = v
			} else {
				out.header.Del(name)
			}
		}
	}
	out.header.Del(headerPreferredUnavailable)
	src := fmt.Sprintf("instance=%s;region=%s;t=%d", issuer.ID, issuer.Region, p.opts.Now().UnixMicro())
	if r.State != "" {
		// Open in the sheet: how Fly writes a state holding separators; quoted here, which
		// replayauth.StateFromHeader reads back (hangar's tokens never need it).
		src += ";state=" + quoteIfNeeded(r.State, ";,\"\\ \t")
	}
	out.header.Set(headerReplaySrc, src)
	return out
}

// fallback sends the issuer's request back to the issuer (force_self) or, failing that, to any machine
// of its app (prefer_self), with fly-replay-failed saying what went wrong. If that fails too, the
// client gets the replay's own error. A fallback request cannot replay again.
func (p *Proxy) fallback(ctx context.Context, w http.ResponseWriter, in *inbound, issuer flysim.MachineSnapshot, issuerReq hopRequest,
	r Replay, cause *proxyError, elapsed time.Duration) int {
	failed := []string{}
	add := func(key, v string) {
		if v != "" {
			failed = append(failed, key+"="+quoteIfNeeded(v, ";,\"\\ \t"))
		}
	}
	add("instance", cmp.Or(r.Instance, r.PreferInstance))
	add("app", cmp.Or(r.App, issuer.App))
	add("region", strings.Join(r.Regions, ","))
	add("replay_source", issuer.ID)
	add("reason", cause.reason)
	add("elapsed_ms", strconv.FormatInt(elapsed.Milliseconds(), 10))
	req := hopRequest{method: issuerReq.method, target: issuerReq.target, host: issuerReq.host, header: issuerReq.header.Clone()}
	req.header.Set(headerReplayFailed, strings.Join(failed, ";"))

	attempt, cancel := context.WithTimeout(ctx, p.opts.ConnectTimeout)
	defer cancel()
	up, perr := p.connect(attempt, ctx, func(actx context.Context) (target, *proxyError) {
		t, err := p.reach(actx, keyOf(issuer), in.port)
		if err == nil || r.Fallback == FallbackForceSelf {
			return t, err
		}
		a, ok := p.srv.SnapshotApp(issuer.App)
		if !ok {
			return target{}, err
		}
		return p.pickAndReach(actx, a, in.port, nil, "")
	}, req, in)
	if perr != nil {
		return p.fail(w, in.requestID, cause)
	}
	defer up.end()
	if _, isReplay, _ := readReplay(up.resp); isReplay {
		return p.fail(w, in.requestID, &proxyError{status: http.StatusBadGateway,
			msg: fmt.Sprintf("machine %s of app %q answered a fallback request with a replay: a fallback cannot be replayed", up.machine.ID, up.machine.App)})
	}
	return p.relay(w, up.resp, in.requestID)
}

// readReplay reports whether resp is a replay and reads it: the fly-replay header (several field lines
// are joined with commas, as HTTP folds them) or the JSON form, never both.
func readReplay(resp *http.Response) (Replay, bool, error) {
	values := resp.Header.Values(HeaderReplay)
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	isJSON := strings.EqualFold(mediaType, ReplayJSONType)
	switch {
	case len(values) > 0 && isJSON:
		return Replay{}, true, malformed("both the header and the JSON form")
	case len(values) > 0:
		r, err := ParseReplayHeader(strings.Join(values, ","))
		return r, true, err
	case isJSON:
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplayJSON+1))
		if err != nil {
			return Replay{}, true, malformed("reading the JSON form failed")
		}
		r, err := ParseReplayJSON(body)
		return r, true, err
	}
	return Replay{}, false, nil
}

// relay copies a machine's response to the client, streaming the body.
func (p *Proxy) relay(w http.ResponseWriter, resp *http.Response, requestID string) int {
	defer func() { _ = resp.Body.Close() }() // a close error cannot change what the client got
	h := w.Header()
	for name, values := range resp.Header {
		h[name] = values
	}
	removeHopByHop(h)
	stampResponse(h, requestID, resp.Header.Values("Via"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(flushWriter{w, http.NewResponseController(w)}, resp.Body)
	return resp.StatusCode
}

// fail answers with the proxy's own error: a status and one plain-text line.
func (p *Proxy) fail(w http.ResponseWriter, requestID string, e *proxyError) int {
	h := w.Header()
	stampResponse(h, requestID, nil)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	_, _ = fmt.Fprintf(w, "flysim proxy: %s\n", e.Error())
	return e.status
}

// stampResponse adds the headers the Fly Proxy puts on every answer.
func stampResponse(h http.Header, requestID string, upstreamVia []string) {
	h.Set(headerRequestID, requestID)
	h.Set("Server", proxyServerHeader)
	h.Del("Via")
	for _, v := range upstreamVia {
		h.Add("Via", v)
	}
	h.Add("Via", "1.1 fly.io")
}

// flushWriter flushes after every write, so streamed answers (server-sent events) pass at once.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if err == nil {
		if ferr := f.rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
			return n, ferr
		}
	}
	return n, err
}

// quoteIfNeeded quotes v (escaping quotes and backslashes) when it holds one of special.
func quoteIfNeeded(v, special string) string {
	if !strings.ContainsAny(v, special) {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
