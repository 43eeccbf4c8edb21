package flysim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// request is what a handler receives: the HTTP request plus what the pipeline established about it.
type request struct {
	r         *http.Request
	org       string // org of the token
	owner     string // lease owner identity of the token
	appName   string // from the path
	machineID string // from the path
	// Set by handlers whose subject is not in the path, for the call log.
	logApp     string
	logMachine string
}

// handle registers an endpoint. Every call runs the same pipeline: authenticate → rate limit →
// fault (latency, early failure) → CallHook → handler → CallHook → commit-then-fail (a fault, or the
// profile's unclear failures) → write → call log.
func (s *Server) handle(pattern, action string, scope limitScope, h func(*request) reply) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		req := &request{r: r, appName: r.PathValue("app"), machineID: r.PathValue("id")}
		call := Call{Time: s.now(), Action: action, Method: r.Method, Path: r.URL.Path, App: req.appName, Machine: req.machineID}
		rep, dropped := s.run(req, s.callSeq.Add(1), action, scope, h, &call)
		if req.logApp != "" {
			call.App = req.logApp
		}
		if req.logMachine != "" {
			call.Machine = req.logMachine
		}
		if dropped {
			call.Status = 0
			s.record(call)
			dropConnection(w)
			return
		}
		call.Status = rep.status
		s.record(call)
		writeReply(w, rep)
	})
}

// run decides the answer of one call; dropped means the connection must be closed without one.
func (s *Server) run(req *request, seq uint64, action string, scope limitScope, h func(*request) reply, call *Call) (rep reply, dropped bool) {
	info, authErr := s.authenticate(req.r)
	if authErr != nil {
		return errReply(authErr), false
	}
	req.org, req.owner = info.org, info.owner
	call.Org, call.Caller = info.org, info.owner

	if !s.opts.DisableRateLimits {
		key := info.org
		switch scope {
		case perApp:
			key = req.appName
		case perMachine:
			key = req.machineID
		}
		if ok, retryAfter := s.limits.take(action, key, s.now()); !ok {
			call.RateLimited = true
			rep := errorf(http.StatusTooManyRequests, "rate limited")
			rep.header = map[string]string{"Retry-After": strconv.Itoa(retryAfter)}
			return rep, false
		}
	}

	fault, matched, fail := s.faults.decide(action)
	if matched && fault.Latency > 0 {
		if !s.sleep(req.r, fault.Latency) {
			return errorf(499, "client closed request"), false
		}
	}
	if fail && !fault.CommitThenFail {
		call.Faulted = true
		if fault.DropConnection {
			return reply{}, true
		}
		return faultReply(fault), false
	}

	point := CallPoint{Seq: seq, Action: action, Method: req.r.Method, Path: req.r.URL.Path, Org: req.org,
		Caller: req.owner, App: req.appName, Machine: req.machineID}
	s.callHook(point)
	rep = h(req)
	point.Committed, point.Status = true, rep.status
	point.App, point.Machine = cmp.Or(req.logApp, point.App), cmp.Or(req.logMachine, point.Machine)
	s.callHook(point)

	if fail && fault.CommitThenFail {
		call.Faulted = true
		if fault.DropConnection {
			return reply{}, true
		}
		return faultReply(fault), false
	}
	if !fail && rep.status >= 200 && rep.status < 300 && s.decide.chance(s.profile.UnclearFailures[action]) {
		// The change committed; the answer is lost on the way back (§7, §11 "Unclear create").
		call.Unclear = true
		if s.decide.chance(s.profile.UnclearDrop) {
			return reply{}, true
		}
		return errorf(http.StatusRequestTimeout, "deadline_exceeded: timed out waiting for the machine host to answer"), false
	}
	return rep, false
}

func faultReply(f Fault) reply {
	rep := errorf(f.status(), "flysim: injected fault (status %d)", f.status())
	if f.status() == http.StatusTooManyRequests {
		rep.header = map[string]string{"Retry-After": "1"}
	}
	return rep
}

// sleep waits d, or less when the client goes away or the server closes; it reports whether it slept fully.
func (s *Server) sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	}
}

func (s *Server) record(c Call) {
	s.calls.add(c)
	s.log.V(1).Info("Handled Fly API call", "action", c.Action, "method", c.Method, "path", c.Path,
		"status", c.Status, "org", c.Org, "caller", c.Caller, "faulted", c.Faulted, "rateLimited", c.RateLimited, "unclear", c.Unclear)
}

// dropConnection closes the client connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	// Not hijackable (HTTP/2, or a recorder): net/http aborts the stream on this sentinel panic.
	panic(http.ErrAbortHandler)
}

func writeReply(w http.ResponseWriter, rep reply) {
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	buf, err := marshalJSON(rep.body)
	if err != nil {
		// Only emulator bugs get here: every body is a plain struct or map.
		http.Error(w, `{"error":"flysim: encoding response"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = w.Write(buf)
}

// marshalJSON encodes without HTML escaping, so strings go back exactly as they came.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// maxBodyBytes bounds request bodies; Fly's configs are far smaller.
const maxBodyBytes = 1 << 20

// readBody reads the request body, bounded by maxBodyBytes.
func (req *request) readBody() ([]byte, *apiError) {
	body, err := io.ReadAll(io.LimitReader(req.r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, newAPIError(http.StatusBadRequest, "invalid_argument: could not read request body")
	}
	if len(body) > maxBodyBytes {
		return nil, newAPIError(http.StatusRequestEntityTooLarge, "invalid_argument: request body larger than %d bytes", maxBodyBytes)
	}
	return body, nil
}

// decodeBody decodes a JSON object body into v. An empty body is accepted only when allowEmpty.
// Messages name the offending field or byte offset, never the input itself (it may hold secrets).
func (req *request) decodeBody(v any, allowEmpty bool) *apiError {
	body, apiErr := req.readBody()
	if apiErr != nil {
		return apiErr
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return newAPIError(http.StatusBadRequest, "invalid_argument: request body is required")
	}
	return decodeJSON(body, v)
}

func decodeJSON(body []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 {
		return newAPIError(http.StatusBadRequest, "invalid_argument: unexpected data after the JSON body")
	}
	return nil
}

func jsonError(err error) *apiError {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return newAPIError(http.StatusBadRequest, "invalid_argument: malformed JSON at byte %d", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return newAPIError(http.StatusBadRequest, "invalid_argument: %s: expected %s, got %s", field, typeErr.Type, typeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return newAPIError(http.StatusBadRequest, "invalid_argument: truncated JSON body")
	default:
		return newAPIError(http.StatusBadRequest, "invalid_argument: malformed JSON body")
	}
}

// boolQuery reads a boolean query parameter ("true"/"1"...); a malformed value is a 400.
func (req *request) boolQuery(name string) (bool, *apiError) {
	v := req.r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, newAPIError(http.StatusBadRequest, "invalid_argument: %s must be a boolean", name)
	}
	return b, nil
}
