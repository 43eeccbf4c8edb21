package flyapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recordedRequest is what the wire tests check of a request.
type recordedRequest struct {
	method  string
	path    string // escaped
	query   url.Values
	body    string
	nonce   string
	ctype   string
	headers http.Header
}

// recorder answers with a fixed response and records the requests.
type recorder struct {
	t        *testing.T
	status   int
	body     string
	header   http.Header
	mu       sync.Mutex
	requests []recordedRequest
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests = append(r.requests, recordedRequest{
		method:  req.Method,
		path:    req.URL.EscapedPath(),
		query:   req.URL.Query(),
		body:    string(body),
		nonce:   req.Header.Get("fly-machine-lease-nonce"),
		ctype:   req.Header.Get("Content-Type"),
		headers: req.Header.Clone(),
	})
	r.mu.Unlock()
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = io.WriteString(w, r.body) // a failed write fails the client's call
}

func jsonEqual(t *testing.T, want, got string) bool {
	t.Helper()
	if want == "" || got == "" {
		return want == got
	}
	var a, b any
	if err := json.Unmarshal([]byte(want), &a); err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(got), &b); err != nil {
		return false
	}
	return cmp.Equal(a, b)
}

func TestWireFormat(t *testing.T) {
	type result = any
	tests := []struct {
		name      string
		status    int
		respBody  string
		call      func(context.Context, *Client) (result, error)
		method    string
		path      string
		query     url.Values
		body      string
		nonce     string
		wantValue result
		edit      func(*Options)
	}{
		{
			name: "create app", status: 201, respBody: `{"id":"z4k69dxd8r31p5mx","created_at":1708631799000}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				app, err := c.CreateApp(ctx, "personal", "my-app", "my-net")
				if err != nil {
					return nil, err
				}
				return []any{app.ID, app.Name, app.Network, app.Organization.Slug, app.CreatedAt.UnixMilli()}, nil
			},
			edit:   func(o *Options) { o.CreateAppWait = -1 }, // the read that follows is TestCreateAppWaits
			method: "POST", path: "/v1/apps", query: url.Values{"wait": {"true"}},
			body:      `{"name":"my-app","app_name":"my-app","org_slug":"personal","network":"my-net"}`,
			wantValue: []any{"z4k69dxd8r31p5mx", "my-app", "my-net", "personal", int64(1708631799000)},
		},
		{
			name: "get app", status: 200, respBody: `{"id":"jlyv9r5d56v18xrg","name":"my-app","status":"pending","organization":{"name":"My Org","slug":"personal"},"network":"n","machine_count":2}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				app, err := c.GetApp(ctx, "my-app")
				if err != nil {
					return nil, err
				}
				return []any{app.ID, app.Organization.Slug, app.Network, app.MachineCount}, nil
			},
			method: "GET", path: "/v1/apps/my-app",
			wantValue: []any{"jlyv9r5d56v18xrg", "personal", "n", 2},
		},
		{
			name: "delete app with force", status: 202,
			call:   func(ctx context.Context, c *Client) (result, error) { return nil, c.DeleteApp(ctx, "my-app", true) },
			method: "DELETE", path: "/v1/apps/my-app", query: url.Values{"force": {"true"}},
		},
		{
			name: "create machine", status: 200, respBody: `{"id":"3d8d413b29d089","state":"created","nonce":"5c35f65c9f95"}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				v := uint64(7)
				m, err := c.CreateMachine(ctx, "my-app", CreateMachineRequest{
					Config: MachineConfig{Image: "nginx", Metadata: map[string]string{"hangar.dev/uid": "u"}},
					Name:   "web-1", Region: "ord", SkipLaunch: true, LeaseTTL: 30, MinSecretsVersion: &v,
				})
				if err != nil {
					return nil, err
				}
				return []any{m.ID, m.State, m.Nonce}, nil
			},
			method: "POST", path: "/v1/apps/my-app/machines",
			body:      `{"config":{"image":"nginx","metadata":{"hangar.dev/uid":"u"}},"name":"web-1","region":"ord","skip_launch":true,"lease_ttl":30,"min_secrets_version":7}`,
			wantValue: []any{"3d8d413b29d089", "created", "5c35f65c9f95"},
		},
		{
			name: "get machine version", status: 200, respBody: `{"id":"m1","state":"replaced"}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				m, err := c.GetMachineVersion(ctx, "my-app", "m1", "01HEPA330HZ37A78TK080NAK1M")
				if err != nil {
					return nil, err
				}
				return m.State, nil
			},
			method: "GET", path: "/v1/apps/my-app/machines/m1", query: url.Values{"version": {"01HEPA330HZ37A78TK080NAK1M"}},
			wantValue: "replaced",
		},
		{
			name: "update machine with version and nonce", status: 200, respBody: `{"id":"m1","version":"v2"}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				m, err := c.UpdateMachine(ctx, "my-app", "m1", UpdateMachineRequest{
					Config: MachineConfig{Image: "nginx:2"}, CurrentVersion: "v1", LeaseNonce: "abcdef123456",
				})
				if err != nil {
					return nil, err
				}
				return m.Version, nil
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1",
			body: `{"config":{"image":"nginx:2"},"current_version":"v1"}`, nonce: "abcdef123456",
			wantValue: "v2",
		},
		{
			name: "start", status: 200, respBody: `{"previous_state":"stopped","migrated":false,"new_host":""}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				r, err := c.StartMachine(ctx, "my-app", "m1", "n1")
				if err != nil {
					return nil, err
				}
				return r.PreviousState, nil
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/start", nonce: "n1",
			wantValue: "stopped",
		},
		{
			name: "start with an empty answer", status: 200,
			call: func(ctx context.Context, c *Client) (result, error) {
				r, err := c.StartMachine(ctx, "my-app", "m1", "")
				if err != nil {
					return nil, err
				}
				return r.PreviousState, nil
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/start",
			wantValue: "",
		},
		{
			name: "stop with signal and timeout", status: 200, respBody: `{"ok":true}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.StopMachine(ctx, "my-app", "m1", StopOptions{Signal: "SIGTERM", Timeout: 10 * time.Second}, "")
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/stop",
			body: `{"signal":"SIGTERM","timeout":"10s"}`,
		},
		{
			name: "stop with defaults sends no body", status: 200, respBody: `{"ok":true}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.StopMachine(ctx, "my-app", "m1", StopOptions{}, "")
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/stop",
		},
		{
			name: "suspend", status: 200, respBody: `{"ok":true}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.SuspendMachine(ctx, "my-app", "m1", "")
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/suspend",
		},
		{
			name: "restart", status: 200,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.RestartMachine(ctx, "my-app", "m1", RestartOptions{ForceStop: true, Timeout: 5 * time.Second, Signal: "SIGINT"}, "")
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/restart",
			query: url.Values{"force_stop": {"true"}, "timeout": {"5s"}, "signal": {"SIGINT"}},
		},
		{
			name: "signal", status: 200,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.SignalMachine(ctx, "my-app", "m1", "SIGUSR1", "")
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/signal", body: `{"signal":"SIGUSR1"}`,
		},
		{
			name: "cordon", status: 200, respBody: `{"ok":true}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.CordonMachine(ctx, "my-app", "m1", "")
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/cordon",
		},
		{
			name: "uncordon", status: 200, respBody: `{"ok":true}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.UncordonMachine(ctx, "my-app", "m1", "")
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/uncordon",
		},
		{
			name: "destroy with force", status: 200, respBody: `{"ok":true}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.DestroyMachine(ctx, "my-app", "m1", true, "n")
			},
			method: "DELETE", path: "/v1/apps/my-app/machines/m1", query: url.Values{"force": {"true"}}, nonce: "n",
		},
		{
			name: "wait for several states", status: 200, respBody: `{"ok":true,"state":"stopped","version":"v1","event_id":"e1"}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				r, err := c.WaitMachine(ctx, "my-app", "m1", WaitOptions{States: []string{"stopped", "suspended"}, Version: "v1", Timeout: 1500 * time.Millisecond, FromEventID: "e0"})
				if err != nil {
					return nil, err
				}
				return []any{r.State, r.EventID}, nil
			},
			method: "GET", path: "/v1/apps/my-app/machines/m1/wait",
			query:     url.Values{"state": {"stopped", "suspended"}, "version": {"v1"}, "timeout": {"2"}, "from_event_id": {"e0"}},
			wantValue: []any{"stopped", "e1"},
		},
		{
			name: "acquire lease", status: 201, respBody: `{"status":"success","data":{"nonce":"5c35f65c9f95","expires_at":1708569778,"owner":"hello@fly.io","description":"hangar","version":"v1"}}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				l, err := c.AcquireLease(ctx, "my-app", "m1", 1500*time.Millisecond, "hangar")
				if err != nil {
					return nil, err
				}
				return []any{l.Nonce, l.ExpiresAt.Unix(), l.Owner}, nil
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/lease",
			body:      `{"ttl":2,"description":"hangar"}`,
			wantValue: []any{"5c35f65c9f95", int64(1708569778), "hello@fly.io"},
		},
		{
			name: "refresh lease", status: 201, respBody: `{"status":"success","data":{"nonce":"5c35f65c9f95","expires_at":1708569900}}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				l, err := c.RefreshLease(ctx, "my-app", "m1", "5c35f65c9f95", time.Minute)
				if err != nil {
					return nil, err
				}
				return l.ExpiresAt.Unix(), nil
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/lease", body: `{"ttl":60}`, nonce: "5c35f65c9f95",
			wantValue: int64(1708569900),
		},
		{
			name: "release lease", status: 200, respBody: `{"status":"success","data":{"ok":true}}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.ReleaseLease(ctx, "my-app", "m1", "5c35f65c9f95")
			},
			method: "DELETE", path: "/v1/apps/my-app/machines/m1/lease", nonce: "5c35f65c9f95",
		},
		{
			name: "get metadata", status: 200, respBody: `{"a":"1","b":"2"}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return c.GetMetadata(ctx, "my-app", "m1")
			},
			method: "GET", path: "/v1/apps/my-app/machines/m1/metadata",
			wantValue: map[string]string{"a": "1", "b": "2"},
		},
		{
			name: "set metadata with an escaped key", status: 204,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.SetMetadata(ctx, "my-app", "m1", "hangar.dev/uid", "u1")
			},
			method: "POST", path: "/v1/apps/my-app/machines/m1/metadata/hangar.dev%2Fuid", body: `{"value":"u1"}`,
		},
		{
			name: "delete metadata", status: 204,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.DeleteMetadata(ctx, "my-app", "m1", "k")
			},
			method: "DELETE", path: "/v1/apps/my-app/machines/m1/metadata/k",
		},
		{
			name: "patch metadata", status: 204,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.PatchMetadata(ctx, "my-app", "m1", map[string]*string{"a": StringPtr("1"), "b": nil}, "v1")
			},
			method: "PATCH", path: "/v1/apps/my-app/machines/m1/metadata", body: `{"metadata":{"a":"1","b":null},"machine_version":"v1"}`,
		},
		{
			name: "list secrets", status: 200, respBody: `{"secrets":[{"name":"B","digest":"d2"},{"name":"A","digest":"d1"}]}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				s, err := c.ListSecrets(ctx, "my-app", 0)
				if err != nil {
					return nil, err
				}
				return []any{s[0].Name, s[1].Name}, nil
			},
			method: "GET", path: "/v1/apps/my-app/secrets",
			wantValue: []any{"A", "B"},
		},
		{
			name: "set secrets", status: 200, respBody: `{"secrets":[],"version":4}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return c.SetSecrets(ctx, "my-app", map[string]string{"A": "x"})
			},
			method: "POST", path: "/v1/apps/my-app/secrets", body: `{"values":{"A":"x"}}`,
			wantValue: uint64(4),
		},
		{
			name: "unset secrets", status: 200, respBody: `{"secrets":[],"version":5}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return c.UnsetSecrets(ctx, "my-app", "A", "B")
			},
			method: "POST", path: "/v1/apps/my-app/secrets", body: `{"values":{"A":null,"B":null}}`,
			wantValue: uint64(5),
		},
		{
			name: "list secrets at least as new as a version", status: 200, respBody: `{"secrets":[]}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return c.ListSecrets(ctx, "my-app", 9)
			},
			method: "GET", path: "/v1/apps/my-app/secrets", query: url.Values{"min_version": {"9"}, "version": {"9"}},
			wantValue: []Secret{},
		},
		{
			name: "set and unset secrets in one change", status: 200, respBody: `{"secrets":[],"version":8}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return c.UpdateSecrets(ctx, "my-app", map[string]string{"A": "x", "C": "z"}, []string{"B"})
			},
			method: "POST", path: "/v1/apps/my-app/secrets", body: `{"values":{"A":"x","B":null,"C":"z"}}`,
			wantValue: uint64(8),
		},
		{
			name: "get secret at least as new as a version", status: 200, respBody: `{"name":"A","digest":"d"}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				s, err := c.GetSecret(ctx, "my-app", "A", 3)
				if err != nil {
					return nil, err
				}
				return s.Digest, nil
			},
			method: "GET", path: "/v1/apps/my-app/secrets/A", query: url.Values{"min_version": {"3"}, "version": {"3"}}, wantValue: "d",
		},
		{
			name: "get secret", status: 200, respBody: `{"name":"A","digest":"d"}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				s, err := c.GetSecret(ctx, "my-app", "A", 0)
				if err != nil {
					return nil, err
				}
				return s.Digest, nil
			},
			method: "GET", path: "/v1/apps/my-app/secrets/A", wantValue: "d",
		},
		{
			name: "set secret", status: 201, respBody: `{"name":"A","digest":"d","version":6}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return c.SetSecret(ctx, "my-app", "A", "v")
			},
			method: "POST", path: "/v1/apps/my-app/secrets/A", body: `{"value":"v"}`, wantValue: uint64(6),
		},
		{
			name: "delete secret", status: 200, respBody: `{"version":7}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				return c.DeleteSecret(ctx, "my-app", "A")
			},
			method: "DELETE", path: "/v1/apps/my-app/secrets/A", wantValue: uint64(7),
		},
		{
			name: "list IPs", status: 200, respBody: `{"ips":[{"ip":"fdaa:0:1::2","region":"global","network":{"name":"n","org_slug":"personal"}},{"ip":"1.2.3.4","network":null}]}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				ips, err := c.ListIPAssignments(ctx, "my-app")
				if err != nil {
					return nil, err
				}
				return []any{ips[0].Network.Name, ips[1].Network == nil}, nil
			},
			method: "GET", path: "/v1/apps/my-app/ip_assignments", wantValue: []any{"n", true},
		},
		{
			name: "allocate private_v6 in a network", status: 200, respBody: `{"ip":"fdaa:0:1::3","network":{"name":"my-net"}}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				ip, err := c.AllocatePrivateV6(ctx, "my-app", "my-net")
				if err != nil {
					return nil, err
				}
				return ip.IP, nil
			},
			method: "POST", path: "/v1/apps/my-app/ip_assignments", body: `{"type":"private_v6","network":"my-net"}`,
			wantValue: "fdaa:0:1::3",
		},
		{
			name: "delete IP", status: 204,
			call: func(ctx context.Context, c *Client) (result, error) {
				return nil, c.DeleteIPAssignment(ctx, "my-app", "fdaa:0:1::3")
			},
			method: "DELETE", path: "/v1/apps/my-app/ip_assignments/fdaa:0:1::3",
		},
		{
			name: "names are path-escaped", status: 200, respBody: `{"id":"x"}`,
			call: func(ctx context.Context, c *Client) (result, error) {
				_, err := c.GetMachine(ctx, "a/b", "../x")
				return nil, err
			},
			method: "GET", path: "/v1/apps/a%2Fb/machines/..%2Fx",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{t: t, status: tt.status, body: tt.respBody, header: http.Header{"Content-Type": {"application/json"}}}
			c, _ := newTestClient(t, rec, func(o *Options) {
				o.Limiter = NewLimiter(NoLimits())
				o.UserAgent = "hangar-test/1"
				if tt.edit != nil {
					tt.edit(o)
				}
			})
			got, err := tt.call(context.Background(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if len(rec.requests) != 1 {
				t.Fatalf("%d requests, want 1", len(rec.requests))
			}
			req := rec.requests[0]
			if req.method != tt.method || req.path != tt.path {
				t.Errorf("request %s %s, want %s %s", req.method, req.path, tt.method, tt.path)
			}
			wantQuery := tt.query
			if wantQuery == nil {
				wantQuery = url.Values{}
			}
			if diff := cmp.Diff(wantQuery, req.query); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			if !jsonEqual(t, tt.body, req.body) {
				t.Errorf("body %s, want %s", req.body, tt.body)
			}
			if (req.body != "") != (req.ctype == "application/json") {
				t.Errorf("Content-Type %q with body %q: set only when a body is sent", req.ctype, req.body)
			}
			if req.nonce != tt.nonce {
				t.Errorf("lease nonce header %q, want %q", req.nonce, tt.nonce)
			}
			if ua := req.headers.Get("User-Agent"); ua != "hangar-test/1" {
				t.Errorf("User-Agent %q", ua)
			}
			if tt.wantValue != nil {
				if diff := cmp.Diff(tt.wantValue, got); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestListMachinesPaging(t *testing.T) {
	var mu sync.Mutex
	var queries []url.Values
	pages := map[string]struct {
		body string
		next string
	}{
		"":   {`[{"id":"m1"},{"id":"m2"}]`, "c1"},
		"c1": {`[{"id":"m3"},{"id":"m4"}]`, "c2"},
		"c2": {`[{"id":"m5"}]`, ""},
	}
	srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Query())
		mu.Unlock()
		page := pages[r.URL.Query().Get("cursor")]
		if page.next != "" {
			w.Header().Set("fly-next-cursor", page.next)
		}
		_, _ = io.WriteString(w, page.body) // a failed write fails the client's call
	})
	c, _ := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
	machines, err := c.ListMachines(context.Background(), "app", ListMachinesOptions{
		Metadata: map[string]string{"hangar.dev/uid": "u1", "role": "web"},
		States:   []string{"started", "stopped"},
		Region:   "ord",
		PageSize: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range machines {
		ids = append(ids, m.ID)
	}
	if diff := cmp.Diff([]string{"m1", "m2", "m3", "m4", "m5"}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if len(queries) != 3 {
		t.Fatalf("%d requests, want 3", len(queries))
	}
	want := url.Values{
		"metadata.hangar.dev/uid": {"u1"}, "metadata.role": {"web"},
		"state": {"started,stopped"}, "region": {"ord"}, "limit": {"2"}, "cursor": {"c1"},
	}
	if diff := cmp.Diff(want, queries[1]); diff != "" {
		t.Errorf("second page query (-want +got):\n%s", diff)
	}
}

func TestListAppsPaging(t *testing.T) {
	var cursors []string
	srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("org_slug") != "personal" || r.URL.Query().Get("limit") == "" {
			t.Errorf("query %v", r.URL.Query())
		}
		cursor := r.URL.Query().Get("cursor")
		cursors = append(cursors, cursor)
		n, _ := strconv.Atoi(cursor)
		next := ""
		if n < 2 {
			next = strconv.Itoa(n + 1)
		}
		err := json.NewEncoder(w).Encode(map[string]any{
			"total_apps": 3, "next_cursor": next,
			"apps": []map[string]any{{"id": "id" + cursor, "name": "app" + cursor, "network": "default"}},
		})
		if err != nil {
			t.Errorf("answering page %q: %v", cursor, err)
		}
	})
	c, _ := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
	apps, err := c.ListApps(context.Background(), "personal")
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 3 || apps[2].Name != "app2" || apps[0].Network != "default" {
		t.Errorf("apps = %+v", apps)
	}
	if diff := cmp.Diff([]string{"", "1", "2"}, cursors); diff != "" {
		t.Errorf("cursors (-want +got):\n%s", diff)
	}
}

// page is one scripted page of a list: the IDs (machines) or names (apps) on it and the cursor
// it hands back ("" on the last page).
type page struct {
	items []string
	next  string
}

// pagedServer serves pages by the cursor asked for ("" is the first page), as the machine list
// (a JSON array and a fly-next-cursor header) or the app list ({"apps","next_cursor"}, or the
// cursor in the header when cursorInHeader). It records the cursors asked for.
type pagedServer struct {
	t              *testing.T
	pages          map[string]page
	cursorInHeader bool

	mu      sync.Mutex
	cursors []string
}

func (s *pagedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cursor := r.URL.Query().Get("cursor")
	s.mu.Lock()
	s.cursors = append(s.cursors, cursor)
	s.mu.Unlock()
	pg, ok := s.pages[cursor]
	if !ok {
		s.t.Errorf("asked for cursor %q, which no page handed out", cursor)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var body any
	if strings.HasSuffix(r.URL.Path, "/machines") {
		machines := []map[string]string{}
		for _, id := range pg.items {
			machines = append(machines, map[string]string{"id": id})
		}
		body = machines
		if pg.next != "" {
			w.Header().Set("fly-next-cursor", pg.next)
		}
	} else {
		apps := []map[string]string{}
		for _, name := range pg.items {
			apps = append(apps, map[string]string{"id": "id-" + name, "name": name})
		}
		page := map[string]any{"total_apps": 99, "apps": apps}
		if s.cursorInHeader {
			if pg.next != "" {
				w.Header().Set("fly-next-cursor", pg.next)
			}
		} else {
			page["next_cursor"] = pg.next
		}
		body = page
	}
	if err := json.NewEncoder(w).Encode(body); err != nil {
		s.t.Errorf("answering cursor %q: %v", cursor, err)
	}
}

// TestAdvisoryPaging: Fly's limit is advisory, so pages may be short or empty while a cursor says
// more remain. Every list follows the cursor until there is none, never stops on a page's length,
// returns an item listed twice once, and fails (instead of looping) on a cursor handed back twice.
func TestAdvisoryPaging(t *testing.T) {
	tests := []struct {
		name        string
		pages       map[string]page
		want        []string
		wantCursors []string
		wantLoop    bool
	}{
		{
			name:        "one page, no cursor",
			pages:       map[string]page{"": {items: []string{"a", "b"}}},
			want:        []string{"a", "b"},
			wantCursors: []string{""},
		},
		{
			name:        "empty list",
			pages:       map[string]page{"": {}},
			wantCursors: []string{""},
		},
		{
			name: "short pages",
			pages: map[string]page{
				"": {items: []string{"a"}, next: "c1"}, "c1": {items: []string{"b"}, next: "c2"}, "c2": {items: []string{"c"}},
			},
			want:        []string{"a", "b", "c"},
			wantCursors: []string{"", "c1", "c2"},
		},
		{
			name: "an empty page in the middle",
			pages: map[string]page{
				"": {items: []string{"a", "b"}, next: "c1"}, "c1": {next: "c2"}, "c2": {items: []string{"c"}},
			},
			want:        []string{"a", "b", "c"},
			wantCursors: []string{"", "c1", "c2"},
		},
		{
			name: "an empty first page",
			pages: map[string]page{
				"": {next: "c1"}, "c1": {items: []string{"a"}},
			},
			want:        []string{"a"},
			wantCursors: []string{"", "c1"},
		},
		{
			name: "several empty pages, then the rest",
			pages: map[string]page{
				"": {next: "c1"}, "c1": {next: "c2"}, "c2": {next: "c3"}, "c3": {items: []string{"a", "b"}},
			},
			want:        []string{"a", "b"},
			wantCursors: []string{"", "c1", "c2", "c3"},
		},
		{
			name: "an empty last page with a cursor before it",
			pages: map[string]page{
				"": {items: []string{"a"}, next: "c1"}, "c1": {},
			},
			want:        []string{"a"},
			wantCursors: []string{"", "c1"},
		},
		{
			name: "an item on two pages is returned once",
			pages: map[string]page{
				"": {items: []string{"a", "b"}, next: "c1"}, "c1": {items: []string{"b", "c"}},
			},
			want:        []string{"a", "b", "c"},
			wantCursors: []string{"", "c1"},
		},
		{
			name:        "a page handing back its own cursor",
			pages:       map[string]page{"": {items: []string{"a"}, next: "c1"}, "c1": {items: []string{"b"}, next: "c1"}},
			wantCursors: []string{"", "c1"},
			wantLoop:    true,
		},
		{
			name: "an empty page handing back an earlier cursor",
			pages: map[string]page{
				"": {next: "c1"}, "c1": {next: "c2"}, "c2": {next: "c1"},
			},
			wantCursors: []string{"", "c1", "c2"},
			wantLoop:    true,
		},
	}
	lists := []struct {
		name           string
		cursorInHeader bool
		list           func(context.Context, *Client) ([]string, error)
	}{
		{"machines", true, func(ctx context.Context, c *Client) ([]string, error) {
			ms, err := c.ListMachines(ctx, "app", ListMachinesOptions{PageSize: 2})
			var ids []string
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			return ids, err
		}},
		{"apps", false, listAppNames},
		{"apps with the cursor in a header", true, listAppNames},
	}
	for _, list := range lists {
		for _, tt := range tests {
			t.Run(list.name+"/"+tt.name, func(t *testing.T) {
				srv := &pagedServer{t: t, pages: tt.pages, cursorInHeader: list.cursorInHeader}
				c, _ := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
				got, err := list.list(context.Background(), c)
				switch {
				case tt.wantLoop && !errors.Is(err, ErrPaging):
					t.Fatalf("error = %v, want ErrPaging", err)
				case tt.wantLoop && got != nil:
					t.Errorf("a failed list returned %v", got)
				case !tt.wantLoop && err != nil:
					t.Fatalf("list: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); !tt.wantLoop && diff != "" {
					t.Errorf("items (-want +got):\n%s", diff)
				}
				srv.mu.Lock()
				defer srv.mu.Unlock()
				if diff := cmp.Diff(tt.wantCursors, srv.cursors); diff != "" {
					t.Errorf("cursors asked for (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func listAppNames(ctx context.Context, c *Client) ([]string, error) {
	apps, err := c.ListApps(ctx, "personal")
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	return names, err
}

// TestPagingEnds: a list whose cursors never repeat but never end is failed after maxListPages
// pages, not followed forever.
func TestPagingEnds(t *testing.T) {
	var requests atomic.Int64
	srv := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("fly-next-cursor", strconv.FormatInt(requests.Add(1), 10))
		_, _ = io.WriteString(w, `[]`) // a failed write fails the client's call
	})
	c, _ := newTestClient(t, srv, func(o *Options) { o.Limiter = NewLimiter(NoLimits()) })
	if _, err := c.ListMachines(context.Background(), "app", ListMachinesOptions{}); !errors.Is(err, ErrPaging) {
		t.Fatalf("error = %v, want ErrPaging", err)
	}
	if got := requests.Load(); got != maxListPages {
		t.Errorf("%d pages read, want %d", got, maxListPages)
	}
}

func TestClampWaitSeconds(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want int
	}{
		{0, 60}, {-time.Second, 60}, {time.Nanosecond, 1}, {500 * time.Millisecond, 1}, {time.Second, 1},
		{1500 * time.Millisecond, 2}, {30 * time.Second, 30}, {60 * time.Second, 60}, {61 * time.Second, 60}, {time.Hour, 60},
	}
	for _, tt := range tests {
		if got := clampWaitSeconds(tt.in); got != tt.want {
			t.Errorf("clampWaitSeconds(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
