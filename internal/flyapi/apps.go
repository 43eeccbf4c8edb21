package flyapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// App is a Fly app (docs/fly-api.md §2).
type App struct {
	ID           string       `json:"id,omitempty"`
	Name         string       `json:"name,omitempty"`
	Status       string       `json:"status,omitempty"` // pending, deployed, suspended
	Organization Organization `json:"organization,omitzero"`
	// Network is the app's private network: "default" for the org's default network (as list
	// reports it) or the custom network's name. Fly sets it at creation; it never changes.
	Network      string `json:"network,omitempty"`
	NetworkCIDR  string `json:"network_cidr,omitempty"`
	MachineCount int    `json:"machine_count,omitempty"`
	VolumeCount  int    `json:"volume_count,omitempty"`
	CNAMETarget  string `json:"cname_target,omitempty"`
	AppRole      string `json:"app_role,omitempty"`
	// CreatedAt is set only on the App that CreateApp returns (Fly's get does not report it).
	CreatedAt time.Time `json:"-"`
}

// Organization is the org an app belongs to.
type Organization struct {
	Name string `json:"name,omitempty"`
	Slug string `json:"slug,omitempty"`
}

type createAppRequest struct {
	// Fly's docs use app_name and its OpenAPI spec and Go client use name; the API accepts
	// both, so both are sent to work with either reading.
	Name    string `json:"name"`
	AppName string `json:"app_name"`
	OrgSlug string `json:"org_slug"`
	Network string `json:"network,omitempty"`
}

type createAppResponse struct {
	ID        string `json:"id"`
	CreatedAt int64  `json:"created_at"` // epoch milliseconds
}

// CreateApp creates the app name in org, on the private network named network ("" for the org's
// default network; a new name creates that network), and returns it as Fly reads it back. App names
// are one global namespace, so IsNameTaken may mean the name belongs to anyone.
//
// Fly creates apps asynchronously (§11): like Fly's own client, CreateApp asks with ?wait=true and
// then reads the app until it can, retrying the 404 and 401 answers Fly gives while the app
// propagates (with backoff, on the client's clock, for up to Options.CreateAppWait). If the app is
// still not readable when that time is up, or the caller's context ends first, the error is an
// AppNotVisibleError (IsAppNotVisible): the app was created, and the caller finds it by name later.
//
// CreateApp is never resent after a 408, a 5xx or a lost answer (IsOutcomeUnknown): Fly may have
// created the app. On such an error, look the app up with GetApp before creating it again.
func (c *Client) CreateApp(ctx context.Context, org, name, network string) (*App, error) {
	var resp createAppResponse
	_, err := c.do(ctx, call{
		action: ActionCreateApp,
		method: http.MethodPost,
		path:   "/apps",
		query:  url.Values{"wait": {"true"}},
		body:   createAppRequest{Name: name, AppName: name, OrgSlug: org, Network: network},
		scope:  org,
		retry:  sendOnce,
	}, &resp)
	if err != nil {
		return nil, err
	}
	app := &App{ID: resp.ID, Name: name, Organization: Organization{Slug: org}, Network: network}
	if c.createAppWait > 0 {
		read, err := c.waitForApp(ctx, name)
		if err != nil {
			return nil, err
		}
		app = read
		if app.ID == "" {
			app.ID = resp.ID
		}
	}
	if resp.CreatedAt > 0 {
		app.CreatedAt = time.UnixMilli(resp.CreatedAt).UTC()
	}
	return app, nil
}

// appWaitBackoff spaces the reads of an app being created: 250 ms doubling to at most 4 s, jittered.
var appWaitBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: math.MaxInt32, Cap: 4 * time.Second}

// waitForApp reads the app just created until it is readable or createAppWait has passed.
func (c *Client) waitForApp(ctx context.Context, name string) (*App, error) {
	start := c.now()
	deadline := start.Add(c.createAppWait)
	backoff := appWaitBackoff
	for {
		app, err := c.GetApp(ctx, name)
		if err == nil {
			return app, nil
		}
		notVisible := &AppNotVisibleError{App: name, Last: err}
		if !stillPropagating(err) {
			notVisible.Waited = c.now().Sub(start)
			return nil, notVisible
		}
		now := c.now()
		if !now.Before(deadline) {
			notVisible.Waited = now.Sub(start)
			return nil, notVisible
		}
		// The last read is made at the deadline, not skipped because the next step overshoots it.
		delay := min(max(backoff.Step(), RateLimitedAfter(err)), deadline.Sub(now))
		if sleepErr := c.sleep(ctx, delay); sleepErr != nil {
			notVisible.Last, notVisible.Waited = sleepErr, c.now().Sub(start)
			return nil, notVisible
		}
	}
}

// stillPropagating reports a read of a new app that may succeed if made again: the 404 and 401 Fly
// answers until the app has propagated, a transient failure the read's own retries did not outlast,
// and a rate limit.
func stillPropagating(err error) bool {
	return IsNotFound(err) || IsUnauthorized(err) || IsUnavailable(err) || IsRateLimited(err)
}

// AppNotVisibleError is CreateApp's answer when Fly accepted the create but the app could not be
// read back in time: the app exists (or is being made), so the caller must not treat the create as
// failed; looking the app up by name later finds it.
type AppNotVisibleError struct {
	App string
	// Waited is how long CreateApp read the app before giving up.
	Waited time.Duration
	// Last is why the last read failed: Fly's answer (a 404 or 401 while the app propagates) or the
	// context's error when the caller gave up first.
	Last error
}

// Error says the app was created and how the wait ended.
func (e *AppNotVisibleError) Error() string {
	return fmt.Sprintf("flyapi: %s: app %q was created but is not readable yet after %s (last read: %v)",
		ActionCreateApp, e.App, e.Waited.Round(time.Millisecond), e.Last)
}

// Unwrap returns the context's error when the caller's context ended the wait, so that
// errors.Is(err, context.Canceled) holds. Fly's last answer is not returned: IsNotFound on a
// CreateApp error must not claim the app is missing.
func (e *AppNotVisibleError) Unwrap() error {
	if errors.Is(e.Last, context.Canceled) || errors.Is(e.Last, context.DeadlineExceeded) {
		return e.Last
	}
	return nil
}

// IsAppNotVisible reports a CreateApp whose app was created but could not be read back in time
// (AppNotVisibleError).
func IsAppNotVisible(err error) bool {
	var notVisible *AppNotVisibleError
	return errors.As(err, &notVisible)
}

// GetApp returns the app. IsNotFound means no app has the name; IsForbidden means it exists in
// an org the token cannot read. Retried after 5xx.
func (c *Client) GetApp(ctx context.Context, name string) (*App, error) {
	var app App
	_, err := c.do(ctx, call{
		action: ActionGetApp,
		method: http.MethodGet,
		path:   "/apps/" + url.PathEscape(name),
		scope:  name,
		retry:  repeatable,
		check: func() error {
			if app.ID == "" {
				return missing("app id")
			}
			return nil
		},
	}, &app)
	if err != nil {
		return nil, err
	}
	return &app, nil
}

// listAppsPageSize is the page size asked of list apps (Fly allows 1 to 5000).
const listAppsPageSize = 500

type listAppsResponse struct {
	TotalApps  int    `json:"total_apps"`
	Apps       []App  `json:"apps"`
	NextCursor string `json:"next_cursor"`
}

// ListApps returns every app of org, following next_cursor (or a fly-next-cursor header, the
// machine list's form) through all pages. Like the machine list, a page may be shorter than asked
// or empty while a cursor says more remain (see pager); an app listed twice is returned once. Each
// page is one request (and one limiter token), retried after 5xx.
func (c *Client) ListApps(ctx context.Context, org string) ([]App, error) {
	var apps []App
	listed := map[string]bool{}
	var pages pager
	for {
		query := url.Values{"org_slug": {org}, "limit": {strconv.Itoa(listAppsPageSize)}}
		if pages.cursor != "" {
			query.Set("cursor", pages.cursor)
		}
		var page listAppsResponse
		res, err := c.do(ctx, call{
			action: ActionListApps,
			method: http.MethodGet,
			path:   "/apps",
			query:  query,
			scope:  org,
			retry:  repeatable,
			check: func() error {
				for i := range page.Apps {
					if page.Apps[i].Name == "" {
						return missing("name on a listed app")
					}
				}
				return nil
			},
		}, &page)
		if err != nil {
			return nil, err
		}
		for _, app := range page.Apps {
			if !listed[app.Name] {
				listed[app.Name] = true
				apps = append(apps, app)
			}
		}
		cursor := page.NextCursor
		if cursor == "" {
			cursor = res.header.Get(headerNextCursor)
		}
		more, err := pages.next(ActionListApps, cursor)
		if err != nil {
			return nil, err
		}
		if !more {
			return apps, nil
		}
	}
}

// DeleteApp deletes the app with its machines, volumes and IPs. With force, running machines are
// stopped first; without it, Fly may refuse while machines run.
//
// Fly answers 202 Accepted: the deletion is under way, not done, and completes asynchronously
// (§11). For a while after DeleteApp returns, GetApp may still read the app and its name may still
// be taken. Wait for GetApp to answer IsNotFound when that matters.
//
// DeleteApp is not resent after a 5xx or a lost answer (only after a 429): call GetApp to see
// whether it went. Its limiter bucket is per client (Fly limits deletions per org, and the client
// does not know which org an app is in), which is stricter whenever a client spans orgs.
func (c *Client) DeleteApp(ctx context.Context, name string, force bool) error {
	var query url.Values
	if force {
		query = url.Values{"force": {"true"}}
	}
	_, err := c.do(ctx, call{
		action: ActionDeleteApp,
		method: http.MethodDelete,
		path:   "/apps/" + url.PathEscape(name),
		query:  query,
		scope:  "",
		retry:  sendOnce,
	}, nil)
	return err
}
