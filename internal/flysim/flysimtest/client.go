package flysimtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// StateFunc reads a machine's state from the emulator itself rather than through its API: pending
// reports a transition still scheduled; ok is false for an unknown machine.
type StateFunc func(app, id string) (state string, pending, ok bool)

// Client calls the emulated Machines API for one test, authenticating with one token.
type Client struct {
	t       testing.TB
	http    *httptest.Server
	token   string
	stateOf StateFunc
}

// Serve serves api on a real local HTTP server (so faults can drop connections) until the test ends,
// and returns a client authenticating with TokenA. stateOf serves WaitSettled.
func Serve(t testing.TB, api http.Handler, stateOf StateFunc) *Client {
	t.Helper()
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	return &Client{t: t, http: ts, token: TokenA, stateOf: stateOf}
}

// As returns a copy of c that authenticates with token ("" sends no Authorization header).
func (c *Client) As(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// Response is one API answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends one request; body may be nil, a string or []byte (sent as is) or any value (JSON-encoded).
// headers are name, value pairs. A transport error fails the test.
func (c *Client) Do(method, path string, body any, headers ...string) Response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("encoding request body: %v", err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, c.http.URL+path, rd)
	if err != nil {
		c.t.Fatalf("building request: %v", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Client().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading %s %s: %v", method, path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// Try sends a request and returns the status, or the transport error instead of failing the test.
func (c *Client) Try(ctx context.Context, method, path, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.http.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Client().Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close() // only the status is wanted
	return resp.StatusCode, nil
}

// Expect checks the status and decodes the JSON body into out (when non-nil).
func (r Response) Expect(t testing.TB, status int, out any) Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			t.Fatalf("decoding %s: %v", r.Body, err)
		}
	}
	return r
}

// ErrorBody is Fly's error answer (§7).
type ErrorBody struct {
	Error  string `json:"error"`
	Status string `json:"status,omitempty"`
}

// ExpectError checks the status and that the body is Fly's JSON error with exactly msg (when non-empty).
func (r Response) ExpectError(t testing.TB, status int, msg string) ErrorBody {
	t.Helper()
	var e ErrorBody
	r.Expect(t, status, &e)
	if e.Error == "" {
		t.Fatalf("error body without error text: %s", r.Body)
	}
	if msg != "" && e.Error != msg {
		t.Fatalf("error %q, want %q", e.Error, msg)
	}
	return e
}
