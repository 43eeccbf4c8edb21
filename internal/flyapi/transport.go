package flyapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// retryClass says when a call may be sent again.
type retryClass int

const (
	// sendOnce: only when Fly refused the call before any effect (429) or it never left the
	// client (dial/DNS failure). Creates, updates and all other mutations.
	sendOnce retryClass = iota
	// repeatable: also after a 5xx or a lost answer, because repeating the call cannot change
	// the outcome (reads, lease release, destroy).
	repeatable
)

// call describes one API operation.
type call struct {
	action string
	method string
	path   string     // below /v1, with every segment already escaped
	query  url.Values // may be nil
	body   any        // nil: no body
	scope  string     // limiter scope: machine, app or org (see Limits)
	nonce  string     // fly-machine-lease-nonce, when the caller holds a lease
	retry  retryClass
	// extraTimeout lengthens the attempt timeout for calls the server holds open (wait).
	extraTimeout time.Duration
	// optionalAnswer accepts a 2xx whose body is empty or unreadable, for calls whose answer is
	// informative only: the call succeeded whatever the body says.
	optionalAnswer bool
	// check, when set, is run on a decoded 2xx answer and says what it lacks (a machine without
	// an ID, a lease without a nonce); its error becomes a BadResponseError.
	check func() error
}

// outcome reports what happened beyond the decoded body.
type outcome struct {
	header http.Header
	// resentAfterUnknown is set when the call was sent again after an attempt whose effect is
	// unknown (5xx or lost answer): a 404 then may mean the first attempt succeeded.
	resentAfterUnknown bool
}

// maxResponseBody bounds a decoded success body (a page of 1000 machines fits comfortably).
const maxResponseBody = 64 << 20

// do runs cl: limiter, request, retries. out, when non-nil, receives the decoded JSON body.
func (c *Client) do(ctx context.Context, cl call, out any) (outcome, error) {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return outcome{}, fmt.Errorf("flyapi: %s: encoding request: %w", cl.action, err)
		}
	}
	stats := callStatsFrom(ctx)
	backoff := c.retry.Backoff // Step mutates its receiver: one copy per call
	var res outcome
	var slept time.Duration
	for attempt := 1; ; attempt++ {
		if err := c.waitForLimiter(ctx, cl, stats); err != nil {
			return res, err
		}
		header, err := c.attempt(ctx, cl, body, out, stats)
		res.header = header
		if err == nil {
			return res, nil
		}
		retry, retryAfter, unknownEffect := c.retryDecision(cl, err)
		if !retry || attempt >= c.retry.MaxAttempts || ctx.Err() != nil {
			return res, err
		}
		delay := max(backoff.Step(), retryAfter)
		if slept+delay > c.retry.Budget {
			return res, err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return res, err // the context would end before the retry could be sent
		}
		if sleepErr := c.sleep(ctx, delay); sleepErr != nil {
			return res, fmt.Errorf("flyapi: %s: stopped before retrying (%w): %w", cl.action, sleepErr, err)
		}
		slept += delay
		res.resentAfterUnknown = res.resentAfterUnknown || unknownEffect
	}
}

// retryDecision says whether err allows sending cl again, the server's requested delay, and
// whether the failed attempt may have had an effect.
func (c *Client) retryDecision(cl call, err error) (retry bool, retryAfter time.Duration, unknownEffect bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.Status == http.StatusTooManyRequests:
			return true, apiErr.RetryAfter, false // refused before any effect
		case gaveUp(apiErr): // a 5xx, or a 408 that is not a wait's own timeout
			return cl.retry == repeatable, apiErr.RetryAfter, true
		}
		return false, 0, false
	}
	var transportErr *TransportError
	if errors.As(err, &transportErr) {
		if transportErr.notSent() {
			return true, 0, false
		}
		return cl.retry == repeatable, 0, true
	}
	return false, 0, false // token errors, unreadable answers, context errors
}

// waitForLimiter takes a token for cl, waiting up to maxLimiterWait; beyond that it refuses.
func (c *Client) waitForLimiter(ctx context.Context, cl call, stats *CallStats) error {
	now := c.now()
	delay, cancel := c.limiter.reserve(cl.action, cl.scope, now)
	if delay <= 0 {
		return nil
	}
	if delay > c.maxLimiterWait {
		cancel()
		stats.rateLimited.Add(1)
		c.metrics.observeLimiterRefusal(cl.action)
		return &APIError{
			Action:     cl.action,
			Code:       CodeClientThrottled,
			Message:    "client-side rate limit: the call would have to wait " + delay.Round(time.Millisecond).String(),
			RetryAfter: delay,
		}
	}
	stats.limiterHits.Add(1)
	stats.limiterWait.Add(int64(delay))
	c.metrics.observeLimiterWait(cl.action, delay)
	if err := c.sleep(ctx, delay); err != nil {
		cancel()
		return fmt.Errorf("flyapi: %s: waiting for the rate limiter: %w", cl.action, err)
	}
	return nil
}

// attempt sends one request and decodes its answer.
func (c *Client) attempt(ctx context.Context, cl call, body []byte, out any, stats *CallStats) (http.Header, error) {
	raw, err := c.token.Token()
	if err != nil {
		return nil, fmt.Errorf("flyapi: %s: getting the token: %w", cl.action, err)
	}
	cred, err := credentialFor(raw)
	if err != nil {
		return nil, fmt.Errorf("flyapi: %s: %w", cl.action, err)
	}

	attemptCtx, cancel := context.WithTimeout(ctx, c.attemptTimeout+cl.extraTimeout)
	defer cancel()
	target := c.baseURL + "/v1" + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	var reqBody io.Reader
	if body != nil {
		reqBody = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(attemptCtx, cl.method, target, reqBody)
	if err != nil {
		return nil, fmt.Errorf("flyapi: %s: building request: %w", cl.action, err)
	}
	req.Header.Set("Authorization", cred.header)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.nonce != "" {
		req.Header.Set("fly-machine-lease-nonce", cl.nonce)
	}

	stats.attempts.Add(1)
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.metrics.observeRequest(cl.action, classError, time.Since(start))
		if ctxErr := ctx.Err(); ctxErr != nil {
			// The caller gave up while the request was out: it may have reached Fly, so this is a
			// lost answer like any other, carrying the context's error.
			return nil, &TransportError{Action: cl.action, Err: ctxErr}
		}
		return nil, &TransportError{Action: cl.action, Err: err}
	}
	defer func() { _ = resp.Body.Close() }() // what was needed is read; a close error changes nothing

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		c.metrics.observeRequest(cl.action, statusClass(resp.StatusCode), time.Since(start))
		apiErr := newAPIError(cl.action, resp, data, c.now(), cred.parts)
		if readErr != nil && apiErr.Message == "" {
			apiErr.Message = "(error body unreadable)"
		}
		if apiErr.Status == http.StatusTooManyRequests {
			stats.rateLimited.Add(1)
			c.metrics.observeRateLimited(cl.action)
		}
		return resp.Header, apiErr
	}

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	c.metrics.observeRequest(cl.action, class2xx, time.Since(start))
	if out == nil {
		// The call succeeded; a body cut short does not change that.
		return resp.Header, nil
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		// The answer was cut off: like any other lost answer, the outcome is unknown.
		return resp.Header, &TransportError{Action: cl.action, Err: err}
	}
	return resp.Header, decodeAnswer(cl, resp, data, out, cred.parts)
}

// decodeAnswer decodes a 2xx answer into out and checks it holds what the call must return. An
// answer it cannot use is a BadResponseError carrying the status and the start of the body
// (redacted of secrets), never a panic and never a zero value passed off as a result.
func decodeAnswer(cl call, resp *http.Response, data []byte, out any, secrets []string) error {
	bad := func(err error) error {
		return &BadResponseError{
			Action:    cl.action,
			Status:    resp.StatusCode,
			RequestID: keep(resp.Header.Get("fly-request-id"), maxKeptCode, secrets),
			Body:      keep(string(data), maxKeptBody, secrets),
			Err:       err,
		}
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0 && cl.optionalAnswer:
		return nil
	case len(trimmed) == 0:
		return bad(errEmptyAnswer)
	}
	// A null answer decodes to nothing without an error (Go servers send an empty list as null);
	// a call whose result must hold something says so in its check.
	if err := json.Unmarshal(trimmed, out); err != nil {
		if cl.optionalAnswer {
			return nil
		}
		return bad(fmt.Errorf("decoding the answer: %w", err))
	}
	if cl.check != nil {
		if err := cl.check(); err != nil {
			return bad(err)
		}
	}
	return nil
}

var errEmptyAnswer = errors.New("the answer has no body")

// missing is a check's error: the answer lacks what the call must return.
func missing(what string) error { return fmt.Errorf("the answer has no %s", what) }

// machineHasID is the check of calls answering one machine.
func machineHasID(m *Machine) func() error {
	return func() error {
		if m.ID == "" {
			return missing("machine id")
		}
		return nil
	}
}
