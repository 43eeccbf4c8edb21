package flyapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestBadAnswers: a 2xx answer the client cannot use is a BadResponseError carrying the status
// and the start of the body, never a panic and never a zero value passed off as a result.
func TestBadAnswers(t *testing.T) {
	bodies := []struct {
		name string
		body string
		// which calls accept it: a body that is valid for some calls (null for a list) is skipped
		// for those.
		okFor map[string]bool
	}{
		{name: "HTML page", body: "<!DOCTYPE html><html><body>Fly is down for maintenance</body></html>"},
		{name: "truncated JSON", body: `{"id":"3d8d413b29d089","state":"sta`},
		{name: "wrong types", body: `{"id":42,"state":["started"],"ips":"x","apps":{},"data":"x","secrets":7,"version":"v"}`},
		{name: "empty body", body: ""},
		{name: "whitespace only", body: " \n\t "},
		{name: "a JSON array for an object", body: `[{"id":"m1"}]`, okFor: map[string]bool{ActionListMachines: true}},
		{name: "an empty object", body: `{}`, okFor: map[string]bool{ActionListSecrets: true, ActionListIPs: true, ActionSetSecrets: true}},
		{name: "null", body: `null`, okFor: map[string]bool{ActionListMachines: true, ActionListSecrets: true, ActionListIPs: true, ActionSetSecrets: true}},
		{name: "trailing garbage", body: `{"id":"m1","name":"a"} <html>`},
		{name: "a long page", body: "<html>" + strings.Repeat("é", 4000) + "</html>"},
		{name: "listed machine without an id", body: `[{"id":"m1"},{"state":"started"}]`},
	}
	calls := map[string]func(context.Context, *Client) error{
		ActionGetMachine: func(ctx context.Context, c *Client) error {
			_, err := c.GetMachine(ctx, "app", "m1")
			return err
		},
		ActionCreateMachine: func(ctx context.Context, c *Client) error {
			_, err := c.CreateMachine(ctx, "app", CreateMachineRequest{})
			return err
		},
		ActionUpdateMachine: func(ctx context.Context, c *Client) error {
			_, err := c.UpdateMachine(ctx, "app", "m1", UpdateMachineRequest{})
			return err
		},
		ActionListMachines: func(ctx context.Context, c *Client) error {
			_, err := c.ListMachines(ctx, "app", ListMachinesOptions{})
			return err
		},
		ActionGetApp: func(ctx context.Context, c *Client) error {
			_, err := c.GetApp(ctx, "app")
			return err
		},
		ActionAcquireLease: func(ctx context.Context, c *Client) error {
			_, err := c.AcquireLease(ctx, "app", "m1", 0, "")
			return err
		},
		ActionAssignIP: func(ctx context.Context, c *Client) error {
			_, err := c.AllocatePrivateV6(ctx, "app", "net")
			return err
		},
		ActionListIPs: func(ctx context.Context, c *Client) error {
			_, err := c.ListIPAssignments(ctx, "app")
			return err
		},
		ActionListSecrets: func(ctx context.Context, c *Client) error {
			_, err := c.ListSecrets(ctx, "app", 0)
			return err
		},
		ActionSetSecrets: func(ctx context.Context, c *Client) error {
			_, err := c.SetSecrets(ctx, "app", map[string]string{"A": "b"})
			return err
		},
	}
	for action, callFn := range calls {
		for _, b := range bodies {
			t.Run(action+"/"+b.name, func(t *testing.T) {
				if b.okFor[action] {
					t.Skip("a valid answer for this call")
				}
				if b.name == "listed machine without an id" && action != ActionListMachines {
					t.Skip("only a list lists")
				}
				srv := &script{t: t, steps: []step{{status: http.StatusOK, body: b.body}}}
				c, _ := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
				err := callFn(context.Background(), c)
				var bad *BadResponseError
				if !errors.As(err, &bad) {
					t.Fatalf("error = %v (%T), want a BadResponseError", err, err)
				}
				if bad.Status != http.StatusOK || bad.Action != action || bad.Err == nil {
					t.Errorf("BadResponseError = %+v", bad)
				}
				if len(bad.Body) > maxKeptBody || !utf8.ValidString(bad.Body) {
					t.Errorf("kept %d bytes of the body (valid UTF-8: %v), want at most %d", len(bad.Body), utf8.ValidString(bad.Body), maxKeptBody)
				}
				if want := strings.TrimSpace(b.body); !strings.HasPrefix(want, strings.TrimSuffix(bad.Body, "…")) {
					t.Errorf("kept body %q is not the start of the answer", bad.Body)
				}
				if !strings.Contains(err.Error(), "200") || !strings.Contains(err.Error(), action) {
					t.Errorf("Error() = %q lacks the status or the action", err)
				}
				if got, want := IsOutcomeUnknown(err), hasSideEffects(action); got != want {
					t.Errorf("IsOutcomeUnknown = %v, want %v (the call took effect, its result is unknown)", got, want)
				}
				if srv.requests() != 1 {
					t.Errorf("%d requests: an unreadable answer is not retried", srv.requests())
				}
			})
		}
	}
}

// TestStartAnswerIsACourtesy: a start answered 2xx succeeded whatever its body says.
func TestStartAnswerIsACourtesy(t *testing.T) {
	for _, body := range []string{"", "<html>ok</html>", `{"previous_state":1}`} {
		srv := &script{t: t, steps: []step{{status: http.StatusOK, body: body}}}
		c, _ := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
		if _, err := c.StartMachine(context.Background(), "app", "m1", ""); err != nil {
			t.Errorf("StartMachine answered 200 %q: %v", body, err)
		}
	}
}

func TestRedact(t *testing.T) {
	const token = "fm2_lJPECAAAAAAAAmMsxBBQ9kZr3ZdvuRPk"
	tests := []struct {
		name, in, want string
	}{
		{"whole", "bad token " + token + " here", "bad token [redacted] here"},
		{"changed case", "bad token " + strings.ToUpper(token), "bad token [redacted]"},
		{"lower case", strings.ToLower(token) + "!", "[redacted]!"},
		{"a prefix cut short", "echo: " + token[:12] + "…", "echo: [redacted]…"},
		{"a suffix", "…" + token[20:], "…[redacted]"},
		{"a piece in the middle", "x" + token[5:15] + "y", "x[redacted]y"},
		{"twice", token + " and " + token, "[redacted] and [redacted]"},
		{"a piece shorter than the minimum is left", "fm2_lJP is a prefix", "fm2_lJP is a prefix"},
		{"unrelated text", "machine not found", "machine not found"},
		{"non-ASCII around it", "é" + token + "ü", "é[redacted]ü"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact(tt.in, []string{token}); got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got := redact("the key abc is short", []string{"abc"}); got != "the key [redacted] is short" {
		t.Errorf("a short secret is redacted where it appears whole: got %q", got)
	}
	if got := redact("ab", []string{"abc"}); got != "ab" {
		t.Errorf("a short secret's piece is kept: got %q", got)
	}
}

// TestTokenTracesNeverLeak: whatever part of the token Fly echoes back, in whatever case, in an
// error answer or in an unreadable 2xx, no piece of it long enough to matter reaches the error.
func TestTokenTracesNeverLeak(t *testing.T) {
	const token = "fm2_lJPECAAAAAAAAmMsxBBQ9kZr3ZdvuRPkwrVodHRwczovL2FwaS5mbHkuaW8vdjGWAJLOAAn6zB8"
	echoes := []struct {
		name   string
		status int
		body   func(tok string) string
		header func(tok string) string // fly-request-id
	}{
		{"whole, in a JSON message", 401, func(tok string) string { return `{"error":"token ` + tok + ` rejected"}` }, nil},
		{"upper-cased", 401, func(tok string) string { return `{"error":"TOKEN ` + strings.ToUpper(tok) + `"}` }, nil},
		{"cut short", 403, func(tok string) string { return `{"error":"token ` + tok[:24] + `... not allowed"}` }, nil},
		{"in the status code member", 422, func(tok string) string { return `{"error":"bad","status":"` + tok + `"}` }, nil},
		{"in an HTML page", 502, func(tok string) string { return "<html><pre>Authorization: FlyV1 " + tok + "</pre></html>" }, nil},
		{"in an unreadable 200", 200, func(tok string) string { return "<html>" + strings.ToLower(tok) + "</html>" }, nil},
		{"straddling the length limit", 500, func(tok string) string { return strings.Repeat("x", maxKeptBody-20) + tok }, nil},
		{"in the request ID header", 500, func(string) string { return `{"error":"oops"}` }, func(tok string) string { return "req-" + tok }},
	}
	for _, e := range echoes {
		t.Run(e.name, func(t *testing.T) {
			srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tok := strings.TrimPrefix(r.Header.Get("Authorization"), "FlyV1 ")
				if e.header != nil {
					w.Header().Set("fly-request-id", e.header(tok))
				}
				w.WriteHeader(e.status)
				_, _ = w.Write([]byte(e.body(tok))) // a failed write fails the client's call
			})
			c, _ := newTestClient(t, srv, func(o *Options) {
				o.Limiter = NewLimiter(NoLimits())
				o.Token = StaticToken(token)
				o.Retry.MaxAttempts = 1
			})
			_, err := c.GetMachine(context.Background(), "app", "m1")
			if err == nil {
				t.Fatal("the call succeeded")
			}
			if piece := tokenPiece(err.Error(), token); piece != "" {
				t.Errorf("error %q holds %q, a piece of the token", err, piece)
			}
		})
	}
}

// tokenPiece returns a piece of token at least minRedactedRun bytes long found in s (ASCII case
// ignored), or "".
func tokenPiece(s, token string) string {
	ls, lt := strings.ToLower(s), strings.ToLower(token)
	for i := 0; i+minRedactedRun <= len(lt); i++ {
		if strings.Contains(ls, lt[i:i+minRedactedRun]) {
			return token[i : i+minRedactedRun]
		}
	}
	return ""
}
