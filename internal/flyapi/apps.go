package flyapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
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
// default network; a new name creates that network). App names are one global namespace, so
// IsNameTaken may mean the name belongs to anyone.
//
// CreateApp is never resent after a 5xx or a lost answer: Fly may have created the app. On such
// an error, look the app up with GetApp before creating it again.
func (c *Client) CreateApp(ctx context.Context, org, name, network string) (*App, error) {
	var resp createAppResponse
	_, err := c.do(ctx, call{
		action: ActionCreateApp,
		method: http.MethodPost,
		path:   "/apps",
		body:   createAppRequest{Name: name, AppName: name, OrgSlug: org, Network: network},
		scope:  org,
		retry:  sendOnce,
	}, &resp)
	if err != nil {
		return nil, err
	}
	app := &App{ID: resp.ID, Name: name, Organization: Organization{Slug: org}, Network: network}
	if resp.CreatedAt > 0 {
		app.CreatedAt = time.UnixMilli(resp.CreatedAt).UTC()
	}
	return app, nil
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
