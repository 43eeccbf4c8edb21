package flyapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for decoding Fly's answers: whatever status and body come back, a call returns a
// result that holds what it must (a machine's ID, a lease's nonce...) or a typed error
// (*APIError, *BadResponseError, or ErrPaging for a list whose cursors loop) that keeps at most a few hundred bytes of the body and no piece of
// the token, even when the body echoes it. `go test` runs them on their seeds; run longer with
// go test -run '^$' -fuzz FuzzMachineAnswers ./internal/flyapi/

// fuzzToken is the token the fuzzed client sends; in a body, $TOKEN, $UPPER and $PART stand for it,
// its upper-cased form and a piece of it.
const fuzzToken = "fm2_lJPECAAAAAAAAmMsxBBQ9kZr3ZdvuRPkwrVodHRwczovL2FwaS5mbHkuaW8vdjGWAJLOAAn6zB8"

var fuzzStatuses = []int{200, 201, 202, 204, 301, 400, 401, 403, 404, 408, 409, 412, 422, 429, 500, 502, 503, 504}

// answerTransport answers every request in memory with one status and body.
type answerTransport struct {
	status int
	body   string
}

func (a answerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close() // nothing to read from an in-memory request
	}
	body := strings.NewReplacer("$TOKEN", fuzzToken, "$UPPER", strings.ToUpper(fuzzToken), "$PART", fuzzToken[10:40]).Replace(a.body)
	return &http.Response{
		StatusCode: a.status,
		Header:     http.Header{"Content-Type": {"application/json"}, "Fly-Request-Id": {"req-1"}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
	}, nil
}

// fuzzCall makes one call and checks what its result must hold when it succeeds.
type fuzzCall func(t *testing.T, ctx context.Context, c *Client) error

func fuzzAnswers(f *testing.F, seeds []string, calls map[string]fuzzCall) {
	for _, seed := range seeds {
		for _, status := range []uint8{0, 1, 9, 14} { // 200, 201, 408, 500
			f.Add(status, []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, statusIndex uint8, body []byte) {
		status := fuzzStatuses[int(statusIndex)%len(fuzzStatuses)]
		clock := newFakeClock()
		c, err := New(Options{
			BaseURL: "http://fly.invalid", Token: StaticToken(fuzzToken), Limiter: NewLimiter(NoLimits()),
			HTTPClient: &http.Client{Transport: answerTransport{status: status, body: string(body)}},
			Retry:      RetryOptions{MaxAttempts: 1}, Now: clock.Now, Sleep: clock.Sleep,
		})
		if err != nil {
			t.Fatal(err)
		}
		for name, call := range calls {
			err := call(t, context.Background(), c)
			if err == nil {
				if status > 299 {
					t.Errorf("%s: answered %d, yet no error", name, status)
				}
				continue
			}
			checkAnswerError(t, name, status, err)
		}
	})
}

// checkAnswerError checks that err is one of the client's typed errors and keeps nothing it must
// not.
func checkAnswerError(t *testing.T, name string, status int, err error) {
	t.Helper()
	var apiErr *APIError
	var bad *BadResponseError
	switch {
	case errors.As(err, &bad):
		if status < 200 || status > 299 || bad.Status != status {
			t.Errorf("%s: BadResponseError for a %d answer: %v", name, status, err)
		}
		if len(bad.Body) > maxKeptBody || !utf8.ValidString(bad.Body) {
			t.Errorf("%s: kept %d bytes of the body", name, len(bad.Body))
		}
	case errors.As(err, &apiErr):
		if apiErr.Status != status {
			t.Errorf("%s: APIError with status %d for a %d answer", name, apiErr.Status, status)
		}
		if len(apiErr.Message) > maxKeptBody || len(apiErr.Code) > maxKeptCode {
			t.Errorf("%s: kept a %d-byte message and a %d-byte code", name, len(apiErr.Message), len(apiErr.Code))
		}
	case IsAppNotVisible(err):
		// A create accepted, then read back unusably (the same answer serves both requests).
	case errors.Is(err, ErrPaging):
		// A list whose every page hands back the same cursor.
	default:
		t.Errorf("%s: error %v (%T) is neither an APIError nor a BadResponseError", name, err, err)
	}
	if piece := tokenPiece(err.Error(), fuzzToken); piece != "" {
		t.Errorf("%s: error %q holds %q, a piece of the token", name, err, piece)
	}
}

func nonEmpty(t *testing.T, call, what, value string) {
	t.Helper()
	if value == "" {
		t.Errorf("%s succeeded with no %s", call, what)
	}
}

var commonAnswerSeeds = []string{
	``, `null`, `{}`, `[]`, `"x"`, `0`, `<html><body>Bad Gateway $TOKEN</body></html>`,
	`{"error":"token $TOKEN rejected","status":"$UPPER"}`, `{"status":"error","message":"held by $PART","code":"invalid"}`,
	`{"error":"machine not found"}`, `{"error":"Validation failed: Name has already been taken","status":"name_taken"}`,
	`{"error":"deadline_exceeded: machine failed to reach desired state, started, currently stopped"}`,
}

func FuzzMachineAnswers(f *testing.F) {
	seeds := append([]string{
		`{"id":"3d8d413b29d089","state":"started","version":"01HEPA330HZ37A78TK080NAK1M","config":` + fullConfig + `}`,
		`[{"id":"m1","state":"started"},{"id":"m2","config":{"image":"a","services":[{"autostop":"suspend"}]}}]`,
		`[{"id":"m1"},{"state":"started"}]`, `{"id":42}`, `{"id":"m1","config":{"stop_config":{"timeout":"ten"}}}`,
		`{"id":"m1","state":"sta`, `{"id":"m1","events":[{"timestamp":"x"}]}`,
	}, commonAnswerSeeds...)
	fuzzAnswers(f, seeds, map[string]fuzzCall{
		"get machine": func(t *testing.T, ctx context.Context, c *Client) error {
			m, err := c.GetMachine(ctx, "app", "m1")
			if err == nil {
				nonEmpty(t, "get machine", "id", m.ID)
			}
			return err
		},
		"create machine": func(t *testing.T, ctx context.Context, c *Client) error {
			m, err := c.CreateMachine(ctx, "app", CreateMachineRequest{Config: MachineConfig{Image: "a"}})
			if err == nil {
				nonEmpty(t, "create machine", "id", m.ID)
			}
			return err
		},
		"update machine": func(t *testing.T, ctx context.Context, c *Client) error {
			m, err := c.UpdateMachine(ctx, "app", "m1", UpdateMachineRequest{Config: MachineConfig{Image: "a"}})
			if err == nil {
				nonEmpty(t, "update machine", "id", m.ID)
			}
			return err
		},
		"list machines": func(t *testing.T, ctx context.Context, c *Client) error {
			ms, err := c.ListMachines(ctx, "app", ListMachinesOptions{})
			for _, m := range ms {
				nonEmpty(t, "list machines", "id on a machine", m.ID)
			}
			return err
		},
		"wait": func(_ *testing.T, ctx context.Context, c *Client) error {
			_, err := c.WaitMachine(ctx, "app", "m1", WaitOptions{})
			return err
		},
		"start": func(_ *testing.T, ctx context.Context, c *Client) error {
			_, err := c.StartMachine(ctx, "app", "m1", "")
			return err
		},
		"metadata": func(_ *testing.T, ctx context.Context, c *Client) error {
			_, err := c.GetMetadata(ctx, "app", "m1")
			return err
		},
	})
}

func FuzzAppAnswers(f *testing.F) {
	seeds := append([]string{
		`{"id":"z4k69dxd8r31p5mx","created_at":1708631799000}`,
		`{"id":"jlyv9r5d56v18xrg","name":"my-app","status":"pending","organization":{"name":"My Org","slug":"personal"},"network":"n"}`,
		`{"total_apps":2,"apps":[{"id":"a","name":"a","network":"default"},{"id":"b","name":"b"}],"next_cursor":""}`,
		`{"apps":[{"id":"a"}]}`, `{"created_at":"yesterday"}`, `{"organization":[]}`,
	}, commonAnswerSeeds...)
	fuzzAnswers(f, seeds, map[string]fuzzCall{
		"create app": func(_ *testing.T, ctx context.Context, c *Client) error {
			_, err := c.CreateApp(ctx, "org", "app", "net")
			return err
		},
		"get app": func(t *testing.T, ctx context.Context, c *Client) error {
			app, err := c.GetApp(ctx, "app")
			if err == nil {
				nonEmpty(t, "get app", "id", app.ID)
			}
			return err
		},
		"list apps": func(t *testing.T, ctx context.Context, c *Client) error {
			apps, err := c.ListApps(ctx, "org")
			for _, a := range apps {
				nonEmpty(t, "list apps", "name on an app", a.Name)
			}
			return err
		},
		"delete app": func(_ *testing.T, ctx context.Context, c *Client) error { return c.DeleteApp(ctx, "app", true) },
	})
}

func FuzzLeaseAnswers(f *testing.F) {
	seeds := append([]string{
		`{"status":"success","data":{"nonce":"5c35f65c9f95","expires_at":1708569778,"owner":"hello@fly.io","version":"v1"}}`,
		`{"status":"success","data":{"ok":true}}`, `{"data":{"nonce":7}}`, `{"data":{"expires_at":"soon","nonce":"n"}}`,
		`{"status":"success","data":{"nonce":"","expires_at":-1}}`,
	}, commonAnswerSeeds...)
	fuzzAnswers(f, seeds, map[string]fuzzCall{
		"acquire lease": func(t *testing.T, ctx context.Context, c *Client) error {
			l, err := c.AcquireLease(ctx, "app", "m1", 0, "")
			if err == nil {
				nonEmpty(t, "acquire lease", "nonce", l.Nonce)
			}
			return err
		},
		"get lease": func(_ *testing.T, ctx context.Context, c *Client) error {
			_, err := c.GetLease(ctx, "app", "m1")
			return err
		},
		"release lease": func(_ *testing.T, ctx context.Context, c *Client) error {
			return c.ReleaseLease(ctx, "app", "m1", "nonce")
		},
	})
}

func FuzzSecretsAnswers(f *testing.F) {
	seeds := append([]string{
		`{"secrets":[{"name":"A","digest":"d1"},{"name":"B","digest":"d2"}],"version":4}`,
		`{"secrets":null,"Version":5}`, `{"version":-1}`, `{"version":1e30}`, `{"name":"A","digest":"d","version":6}`,
		`{"secrets":[{"name":7}]}`,
	}, commonAnswerSeeds...)
	fuzzAnswers(f, seeds, map[string]fuzzCall{
		"list secrets": func(_ *testing.T, ctx context.Context, c *Client) error {
			_, err := c.ListSecrets(ctx, "app", 0)
			return err
		},
		"get secret": func(_ *testing.T, ctx context.Context, c *Client) error {
			_, err := c.GetSecret(ctx, "app", "A", 0)
			return err
		},
		"set secrets": func(_ *testing.T, ctx context.Context, c *Client) error {
			_, err := c.SetSecrets(ctx, "app", map[string]string{"A": "x"})
			return err
		},
		"delete secret": func(_ *testing.T, ctx context.Context, c *Client) error {
			_, err := c.DeleteSecret(ctx, "app", "A")
			return err
		},
	})
}

func FuzzIPAnswers(f *testing.F) {
	seeds := append([]string{
		`{"ips":[{"ip":"fdaa:0:1::2","region":"global","network":{"name":"n","org_slug":"personal"}},{"ip":"1.2.3.4","network":null}]}`,
		`{"ip":"fdaa:0:1::3","network":{"name":"my-net"}}`, `{"ip":null,"ip_pair":{"v4":"1.2.3.4","v6":"::1"}}`,
		`{"ips":[{"ip":1}]}`, `{"network":"net"}`,
	}, commonAnswerSeeds...)
	fuzzAnswers(f, seeds, map[string]fuzzCall{
		"list IPs": func(_ *testing.T, ctx context.Context, c *Client) error {
			_, err := c.ListIPAssignments(ctx, "app")
			return err
		},
		"allocate IP": func(t *testing.T, ctx context.Context, c *Client) error {
			ip, err := c.AllocatePrivateV6(ctx, "app", "net")
			if err == nil && ip.IP == "" && ip.Pair == nil {
				t.Error("allocate IP succeeded with no address")
			}
			return err
		},
		"delete IP": func(_ *testing.T, ctx context.Context, c *Client) error {
			return c.DeleteIPAssignment(ctx, "app", "::1")
		},
	})
}

// FuzzErrorAnswers parses error bodies directly: any status, any body.
func FuzzErrorAnswers(f *testing.F) {
	for _, seed := range commonAnswerSeeds {
		f.Add(400, []byte(seed))
		f.Add(503, []byte(seed))
	}
	f.Add(404, []byte("404 page not found\n"))
	f.Add(409, []byte(`{"status":"error","message":"machine ID 3d8d413b29d089 lease currently held by hello@fly.io","code":"invalid"}`))
	f.Add(502, []byte(strings.Repeat("<p>$TOKEN</p>", 200)))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {string(body[:min(len(body), 30)])}}}
		echoed := strings.NewReplacer("$TOKEN", fuzzToken, "$UPPER", strings.ToUpper(fuzzToken), "$PART", fuzzToken[10:40]).Replace(string(body))
		apiErr := newAPIError(ActionGetMachine, resp, []byte(echoed), newFakeClock().Now(), []string{fuzzToken})
		if apiErr.Status != status || apiErr.RetryAfter < 0 {
			t.Errorf("APIError %+v for status %d", apiErr, status)
		}
		if len(apiErr.Message) > maxKeptBody || !utf8.ValidString(apiErr.Message) {
			t.Errorf("kept a %d-byte message", len(apiErr.Message))
		}
		if piece := tokenPiece(apiErr.Error(), fuzzToken); piece != "" {
			t.Errorf("error %q holds %q, a piece of the token", apiErr, piece)
		}
	})
}
