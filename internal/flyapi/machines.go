package flyapi

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// machinePath is the escaped path of a machine (or of the app's machine collection when id is "").
func machinePath(app, id string) string {
	p := "/apps/" + url.PathEscape(app) + "/machines"
	if id != "" {
		p += "/" + url.PathEscape(id)
	}
	return p
}

// machineScope is the limiter scope of a machine action. Machine IDs are unique across Fly; the
// app is included anyway so that a scope can never be shared by accident.
func machineScope(app, id string) string { return app + "/" + id }

// CreateMachineRequest is the body of a machine create.
type CreateMachineRequest struct {
	Config MachineConfig `json:"config"`
	// Name is unique within the app; Fly generates one when empty. A deterministic name lets a
	// caller find the machine again after an ambiguous create.
	Name   string `json:"name,omitempty"`
	Region string `json:"region,omitempty"` // empty: the region nearest the caller
	// SkipLaunch creates the machine without booting it (it stays created).
	SkipLaunch bool `json:"skip_launch,omitempty"`
	// SkipServiceRegistration creates the machine cordoned (no proxy traffic until uncordoned).
	SkipServiceRegistration bool `json:"skip_service_registration,omitempty"`
	// LeaseTTL, in whole seconds, takes a lease at creation; Machine.Nonce then holds its nonce.
	LeaseTTL int `json:"lease_ttl,omitempty"`
	// MinSecretsVersion makes Fly wait for (or refuse without) app secrets at least this new.
	MinSecretsVersion *uint64 `json:"min_secrets_version,omitempty"`
	SkipSecrets       bool    `json:"skip_secrets,omitempty"`
}

// CreateMachine creates a machine in app. It answers as soon as the machine exists (usually in
// state created); use WaitMachine to see it start.
//
// CreateMachine is never resent after a 5xx or a lost answer, because Fly may have created the
// machine (a 503 can follow a committed create). On such an error, list machines by name or
// metadata before creating again. It is resent after a 429, which Fly answers before doing
// anything.
func (c *Client) CreateMachine(ctx context.Context, app string, req CreateMachineRequest) (*Machine, error) {
	var m Machine
	_, err := c.do(ctx, call{
		action: ActionCreateMachine,
		method: http.MethodPost,
		path:   machinePath(app, ""),
		body:   req,
		scope:  app,
		retry:  sendOnce,
		check:  machineHasID(&m),
	}, &m)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// GetMachine returns the machine's current version. A destroyed machine is still returned, in
// state destroyed, for a while; an unknown ID is IsNotFound. Retried after 5xx.
func (c *Client) GetMachine(ctx context.Context, app, id string) (*Machine, error) {
	return c.getMachine(ctx, app, id, nil)
}

// GetMachineVersion returns one version of the machine; an old version reports state replaced.
func (c *Client) GetMachineVersion(ctx context.Context, app, id, version string) (*Machine, error) {
	return c.getMachine(ctx, app, id, url.Values{"version": {version}})
}

func (c *Client) getMachine(ctx context.Context, app, id string, query url.Values) (*Machine, error) {
	var m Machine
	_, err := c.do(ctx, call{
		action: ActionGetMachine,
		method: http.MethodGet,
		path:   machinePath(app, id),
		query:  query,
		scope:  machineScope(app, id),
		retry:  repeatable,
		check:  machineHasID(&m),
	}, &m)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// ListMachinesOptions filter a machine list. Every filter is applied by Fly.
type ListMachinesOptions struct {
	// Metadata keeps machines whose config.metadata has every one of these pairs (exact match).
	Metadata map[string]string
	// States keeps machines in these states (created, started, stopped, suspended).
	States []string
	Region string
	// IncludeDeleted also returns destroyed machines.
	IncludeDeleted bool
	// IncludeLeases fills Machine.Lease.
	IncludeLeases bool
	// Summary omits config, checks, events and nonce (smaller answers).
	Summary bool
	// PageSize is the advisory page size (1 to 1000); 0 means 1000.
	PageSize int
}

func (o ListMachinesOptions) query() url.Values {
	q := url.Values{}
	keys := make([]string, 0, len(o.Metadata))
	for k := range o.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q.Set("metadata."+k, o.Metadata[k])
	}
	if len(o.States) > 0 {
		q.Set("state", strings.Join(o.States, ","))
	}
	if o.Region != "" {
		q.Set("region", o.Region)
	}
	if o.IncludeDeleted {
		q.Set("include_deleted", "true")
	}
	if o.IncludeLeases {
		q.Set("include_leases", "true")
	}
	if o.Summary {
		q.Set("summary", "true")
	}
	pageSize := o.PageSize
	if pageSize <= 0 || pageSize > 1000 {
		pageSize = 1000
	}
	q.Set("limit", strconv.Itoa(pageSize))
	return q
}

// ListMachines returns every machine of app that matches opts, following the fly-next-cursor
// header through all pages (one request and one limiter token per page). Fly's page size is
// advisory (§11): a page may be shorter than asked, or empty, while a cursor says more remain, so
// only the absence of a cursor ends the list (see pager). A machine listed on two pages (the list
// moved while it was read) is returned once. Fly's list can lag behind a create for a moment, so a
// machine just created may be missing. Each page is retried after 5xx.
func (c *Client) ListMachines(ctx context.Context, app string, opts ListMachinesOptions) ([]Machine, error) {
	base := opts.query()
	var machines []Machine
	listed := map[string]bool{}
	var pages pager
	for {
		query := url.Values{}
		for k, v := range base {
			query[k] = v
		}
		if pages.cursor != "" {
			query.Set("cursor", pages.cursor)
		}
		var page []Machine
		res, err := c.do(ctx, call{
			action: ActionListMachines,
			method: http.MethodGet,
			path:   machinePath(app, ""),
			query:  query,
			scope:  app,
			retry:  repeatable,
			check: func() error {
				for i := range page {
					if page[i].ID == "" {
						return missing("id on a listed machine")
					}
				}
				return nil
			},
		}, &page)
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			if !listed[m.ID] {
				listed[m.ID] = true
				machines = append(machines, m)
			}
		}
		more, err := pages.next(ActionListMachines, res.header.Get(headerNextCursor))
		if err != nil {
			return nil, err
		}
		if !more {
			return machines, nil
		}
	}
}

// UpdateMachineRequest is the body of a machine update. Config replaces the whole config: start
// from the machine's current Config (which keeps fields this package does not model) and edit it.
type UpdateMachineRequest struct {
	Config MachineConfig `json:"config"`
	// CurrentVersion asks Fly to refuse the update (409, IsConflict) if the machine has changed
	// since that version was read. Only the OpenAPI copy says Fly enforces it (§4.4, unconfirmed):
	// do not rely on it alone; hold the machine's lease and check the version read under it.
	CurrentVersion          string  `json:"current_version,omitempty"`
	SkipLaunch              bool    `json:"skip_launch,omitempty"`
	SkipServiceRegistration bool    `json:"skip_service_registration,omitempty"`
	LeaseTTL                int     `json:"lease_ttl,omitempty"`
	MinSecretsVersion       *uint64 `json:"min_secrets_version,omitempty"`
	SkipSecrets             bool    `json:"skip_secrets,omitempty"`
	// LeaseNonce is sent as fly-machine-lease-nonce; required when the machine is leased.
	LeaseNonce string `json:"-"`
}

// UpdateMachine replaces the machine's config and returns the machine with its new version. A
// started machine restarts on the new version; a stopped one stays stopped.
//
// The machine returned is the update's own answer: a GET made right after may still show the
// previous version for a moment (Fly's reads can lag behind its writes, §11).
//
// UpdateMachine is never resent after a 408, a 5xx or a lost answer (IsOutcomeUnknown): Fly may
// have applied it. Read the machine again and compare before retrying (a read may lag, so compare
// versions, not only configs).
func (c *Client) UpdateMachine(ctx context.Context, app, id string, req UpdateMachineRequest) (*Machine, error) {
	var m Machine
	_, err := c.do(ctx, call{
		action: ActionUpdateMachine,
		method: http.MethodPost,
		path:   machinePath(app, id),
		body:   req,
		scope:  machineScope(app, id),
		nonce:  req.LeaseNonce,
		retry:  sendOnce,
		check:  machineHasID(&m),
	}, &m)
	if err != nil {
		return nil, err
	}
	return &m, nil
}
