package router

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// TargetHeader names the UserMachine a management request is for, as "<namespace>/<name>". Without
// it the management listener routes by Host like the public one.
const TargetHeader = "Hangar-Target"

// DefaultMaxBodyBytes is the largest request body the router lets through: the Fly Proxy cannot
// replay a body over 1 MB, so a bigger one is refused here with 413 instead of failing later.
const DefaultMaxBodyBytes = 1 << 20

// DefaultRetryAfter is the Retry-After sent with 503 answers.
const DefaultRetryAfter = 5 * time.Second

// HandlerConfig configures the handler of one listener.
type HandlerConfig struct {
	// Table holds the published index (required). Until it holds one, every request gets 503.
	Table *Table
	// Metrics records requests (required).
	Metrics *Metrics
	// Tokens verifies public tokens for UserApps with routing.auth Token; nil answers their
	// requests 503 (the router has no key to check them with).
	Tokens *TokenVerifier
	// RetryAfter goes with 503 answers (DefaultRetryAfter when zero).
	RetryAfter time.Duration
	// MaxBodyBytes bounds request bodies (DefaultMaxBodyBytes when zero).
	MaxBodyBytes int64
	// Now tells the time for replay state (time.Now when nil).
	Now func() time.Time
}

// handler answers every request of one listener with a replay or a short fixed error. No answer
// ever contains request bytes.
type handler struct {
	listener   Listener
	table      *Table
	metrics    *Metrics
	tokens     *TokenVerifier
	retryAfter []string
	maxBody    int64
	now        func() time.Time
	// decoyToken stands in for the management token when a management request names no target
	// with one, so that request is compared like any other. It is random and never leaves the
	// process, so no request matches it (and a match would still be refused).
	decoyToken []byte
}

// NewHandler returns the handler of listener l.
func NewHandler(l Listener, cfg HandlerConfig) http.Handler {
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	seconds := int64((cfg.RetryAfter + time.Second - 1) / time.Second)
	return &handler{
		listener:   l,
		table:      cfg.Table,
		metrics:    cfg.Metrics,
		tokens:     cfg.Tokens,
		retryAfter: []string{strconv.FormatInt(seconds, 10)},
		maxBody:    cfg.MaxBodyBytes,
		now:        cfg.Now,
		decoyToken: newDecoyToken(),
	}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// One clock read serves the state bucket and the start of the latency; time.Since then reads
	// only the monotonic clock. (With a test clock the latency observed is meaningless, and unused.)
	start := h.now()
	var o outcome
	switch ix := h.table.Load(); {
	case ix == nil:
		o = h.fail(w, outcomeNotReady)
	case len(r.Header[headerReplayFailed]) > 0:
		// The Fly Proxy sends a replay that failed back here (fallback force_self/prefer_self)
		// with fly-replay-failed, and will not follow a second replay: answer it instead. A
		// client forging the header only gets this 503 for itself; nothing else reads it.
		o = h.fail(w, outcomeReplayFailed)
	case h.listener == ListenerManagement:
		o = h.serveManagement(w, r, ix, start)
	default:
		o = h.servePublic(w, r, ix, start)
	}
	h.metrics.observeRequest(h.listener, o, time.Since(start))
}

// servePublic: host → target → the app's auth mode → readiness → body size → replay.
func (h *handler) servePublic(w http.ResponseWriter, r *http.Request, ix *Index, now time.Time) outcome {
	if r.ContentLength > h.maxBody {
		return h.fail(w, outcomeTooLarge)
	}
	t, o := resolveHost(ix, r.Host)
	if t == nil {
		return h.fail(w, o)
	}
	if t.flyApp == "" {
		return h.fail(w, outcomeNotReady)
	}
	deleteAuth := false
	if t.auth == flyv1alpha1.RoutingAuthToken {
		if o := h.checkPublicToken(r, t); o != checkPassed {
			return h.fail(w, o)
		}
		deleteAuth = true
	}
	if !t.ready {
		return h.fail(w, outcomeNotReady)
	}
	if o := h.checkUnsizedBody(r); o != checkPassed {
		return h.fail(w, o)
	}
	return h.replay(w, t, now, deleteAuth)
}

// serveManagement: Hangar-Target (or host) → target → the app's management token → Host agreement →
// readiness → body size → replay. The bearer header stays on the request: the machine's management
// service checks it too.
//
// Nothing a caller learns before the token check depends on which objects exist: a well-formed
// reference to a UserMachine that does not exist, has no Fly app yet, or belongs to another app than
// the caller's token gets the same 401 as a wrong token, after the same constant-time compare (with
// the handler's decoy token when there is no real one). Only syntax (400) and size (413) are judged
// before it, and they say nothing about the cluster.
func (h *handler) serveManagement(w http.ResponseWriter, r *http.Request, ix *Index, now time.Time) outcome {
	if r.ContentLength > h.maxBody {
		return h.fail(w, outcomeTooLarge)
	}
	var t *target
	refs := r.Header[TargetHeader]
	switch {
	case len(refs) > 1:
		return h.fail(w, outcomeBadRequest)
	case len(refs) == 1:
		if !validTargetRef(refs[0]) {
			return h.fail(w, outcomeBadRequest)
		}
		t = ix.lookupMachine(refs[0])
	default:
		var o outcome
		if t, o = resolveHost(ix, r.Host); o == outcomeBadRequest {
			return h.fail(w, o)
		}
	}
	want, previous := h.decoyToken, h.decoyToken
	if t != nil && t.managementToken != nil {
		want = t.managementToken
		if t.previousManagementToken != nil {
			previous = t.previousManagementToken
		}
	}
	// Compare first, then look at why it could not count: every path does the same two compares.
	// The previous generation's token counts while a key rotation overlaps.
	authorization := r.Header.Get(headerAuthorization)
	matched := managementTokenMatches(authorization, want)
	matchedPrevious := managementTokenMatches(authorization, previous)
	accepted := matched || (matchedPrevious && t != nil && t.previousManagementToken != nil)
	if t == nil || t.managementToken == nil || !accepted {
		return h.fail(w, outcomeUnauthorized)
	}
	// The caller holds this app's token from here on, so it may learn more about the target.
	if len(refs) == 1 {
		// A Host that routes to another app contradicts the header: refuse rather than guess.
		if byHost, _ := resolveHost(ix, r.Host); byHost != nil && byHost.flyApp != t.flyApp {
			return h.fail(w, outcomeMisdirected)
		}
	}
	if !t.ready {
		return h.fail(w, outcomeNotReady)
	}
	if o := h.checkUnsizedBody(r); o != checkPassed {
		return h.fail(w, o)
	}
	return h.replay(w, t, now, false)
}

// newDecoyToken is shaped like a derived management token (32 random bytes in unpadded base64url),
// so comparing with it takes as long as comparing with a real one.
func newDecoyToken() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return []byte(base64.RawURLEncoding.EncodeToString(b))
}

// resolveHost finds the target of a Host header (with checkPassed), or refuses it: 400 when it
// cannot be a host, 404 when no object claims it. Canonical hosts (the common case) are looked up
// without allocating.
func resolveHost(ix *Index, host string) (*target, outcome) {
	// Every key of the index is canonical, so a hit on the host as sent (port and trailing dot
	// cut) needs no validation; only a miss pays for checking and normalising.
	if h, ok := stripPortAndDot(host); ok {
		if t := ix.lookupHost(h); t != nil {
			return t, checkPassed
		}
	}
	key, ok := canonicalHostKey(host)
	if !ok {
		var err error
		if key, err = NormalizeHost(host); err != nil {
			return nil, outcomeBadRequest
		}
	}
	if t := ix.lookupHost(key); t != nil {
		return t, checkPassed
	}
	return nil, outcomeNotFound
}

// checkPublicToken checks the coordinator's token of a request to a Token app.
func (h *handler) checkPublicToken(r *http.Request, t *target) outcome {
	if h.tokens == nil {
		return outcomeAuthUnavailable
	}
	token, ok := bearerToken(r.Header.Get(headerAuthorization))
	if !ok {
		return outcomeUnauthorized
	}
	switch err := h.tokens.Verify(token, t.flyApp); {
	case err == nil:
		return checkPassed
	case errors.Is(err, ErrTokenAudience):
		return outcomeForbidden
	default:
		return outcomeUnauthorized
	}
}

// checkUnsizedBody reads a body sent without Content-Length (chunked) far enough to know whether
// the Fly Proxy could replay it. Reading it is harmless: the proxy replays its own copy.
func (h *handler) checkUnsizedBody(r *http.Request) outcome {
	if r.ContentLength >= 0 || r.Body == nil || r.Body == http.NoBody {
		return checkPassed
	}
	n, err := io.CopyN(io.Discard, r.Body, h.maxBody+1)
	switch {
	case n > h.maxBody:
		return outcomeTooLarge
	case err != nil && !errors.Is(err, io.EOF):
		return outcomeBadRequest
	}
	return checkPassed
}

// headerReplayFailed is fly-replay-failed in canonical form.
const headerReplayFailed = "Fly-Replay-Failed"

// Shared header values; net/http only reads them.
var (
	replayJSONType = []string{ReplayJSONMediaType}
	textPlain      = []string{"text/plain; charset=utf-8"}
	noSniff        = []string{"nosniff"}
	noStore        = []string{"no-store"}
	bearerScheme   = []string{"Bearer"}
)

// replay records the request as the target's activity and writes the target's replay for now: the
// header form with an empty body, or the JSON form when configured or when the Authorization header
// must be deleted.
func (h *handler) replay(w http.ResponseWriter, t *target, now time.Time, deleteAuth bool) outcome {
	t.activity.touch(now)
	v := t.replay.values(now)
	hdr := w.Header()
	var body []byte
	switch {
	case deleteAuth:
		body = v.jsonDeleteAuth
		hdr["Content-Type"] = replayJSONType
		hdr["Content-Length"] = v.jsonDeleteAuthLength
	case v.json != nil:
		body = v.json
		hdr["Content-Type"] = replayJSONType
		hdr["Content-Length"] = v.jsonLength
	default:
		// No Content-Length: net/http sends "Content-Length: 0" for a handler that wrote no body.
		hdr[HeaderReplay] = v.header
	}
	w.WriteHeader(ReplayStatus)
	if body != nil {
		_, _ = w.Write(body)
	}
	return outcomeReplayed
}

// answers are the fixed status and body of every outcome but a replay.
var answers = [outcomeCount]struct {
	status int
	body   string
}{
	outcomeNotFound:        {http.StatusNotFound, "no route for this host\n"},
	outcomeNotReady:        {http.StatusServiceUnavailable, "target not ready, retry later\n"},
	outcomeUnauthorized:    {http.StatusUnauthorized, "unauthorized\n"},
	outcomeForbidden:       {http.StatusForbidden, "forbidden\n"},
	outcomeTooLarge:        {http.StatusRequestEntityTooLarge, "request body too large to replay\n"},
	outcomeBadRequest:      {http.StatusBadRequest, "bad request\n"},
	outcomeMisdirected:     {http.StatusMisdirectedRequest, "Hangar-Target and Host name different apps\n"},
	outcomeAuthUnavailable: {http.StatusServiceUnavailable, "authentication unavailable, retry later\n"},
	outcomeReplayFailed:    {http.StatusServiceUnavailable, "the target could not be reached, retry later\n"},
}

func (h *handler) fail(w http.ResponseWriter, o outcome) outcome {
	a := answers[o]
	hdr := w.Header()
	hdr["Content-Type"] = textPlain
	hdr["X-Content-Type-Options"] = noSniff
	hdr["Cache-Control"] = noStore
	switch a.status {
	case http.StatusServiceUnavailable:
		hdr["Retry-After"] = h.retryAfter
	case http.StatusUnauthorized:
		hdr["Www-Authenticate"] = bearerScheme
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
	return o
}

// validTargetRef accepts "<namespace>/<name>": a DNS label, a slash, a DNS subdomain.
func validTargetRef(ref string) bool {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || len(ns) > 63 || len(name) > 253 || ns == "" || name == "" {
		return false
	}
	return dnsChars(ns, false) && dnsChars(name, true)
}

func dnsChars(s string, dots bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && (!dots || c != '.') {
			return false
		}
	}
	return true
}
