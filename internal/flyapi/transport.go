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
	// emptyBodyOK accepts a 2xx without a body for calls whose answer is informative only.
	emptyBodyOK bool
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
		case apiErr.Status >= 500:
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
	return false, 0, false // token errors, decoding errors, context errors
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
			return nil, fmt.Errorf("flyapi: %s: %w", cl.action, ctxErr)
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
			return resp.Header, fmt.Errorf("flyapi: %s: %w", cl.action, ctxErr)
		}
		// The answer was cut off: like any other lost answer, the outcome is unknown.
		return resp.Header, &TransportError{Action: cl.action, Err: err}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if cl.emptyBodyOK {
			return resp.Header, nil
		}
		return resp.Header, fmt.Errorf("flyapi: %s: empty response body (status %d)", cl.action, resp.StatusCode)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.Header, fmt.Errorf("flyapi: %s: decoding response: %w", cl.action, err)
	}
	return resp.Header, nil
}
