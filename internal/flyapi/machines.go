package flyapi

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
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
// header through all pages (one request and one limiter token per page). Fly's list can lag
// behind a create for a moment, so a machine just created may be missing. Retried after 5xx.
func (c *Client) ListMachines(ctx context.Context, app string, opts ListMachinesOptions) ([]Machine, error) {
	base := opts.query()
	var machines []Machine
	seen := map[string]bool{}
	cursor := ""
	for {
		query := url.Values{}
		for k, v := range base {
			query[k] = v
		}
		if cursor != "" {
			query.Set("cursor", cursor)
		}
		var page []Machine
		res, err := c.do(ctx, call{
			action: ActionListMachines,
			method: http.MethodGet,
			path:   machinePath(app, ""),
			query:  query,
			scope:  app,
			retry:  repeatable,
		}, &page)
		if err != nil {
			return nil, err
		}
		machines = append(machines, page...)
		cursor = res.header.Get("fly-next-cursor")
		if cursor == "" || len(page) == 0 {
			return machines, nil
		}
		if seen[cursor] {
			return nil, errCursorLoop
		}
		seen[cursor] = true
	}
}

// UpdateMachineRequest is the body of a machine update. Config replaces the whole config: start
// from the machine's current Config (which keeps fields this package does not model) and edit it.
type UpdateMachineRequest struct {
	Config MachineConfig `json:"config"`
	// CurrentVersion makes Fly refuse the update (409, IsConflict) if the machine has changed
	// since that version was read, so a concurrent change is never overwritten.
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
// UpdateMachine is never resent after a 5xx or a lost answer: Fly may have applied it. Read the
// machine again and compare before retrying (CurrentVersion makes a blind retry fail safely).
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
	}, &m)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// StartResult is the answer to a start.
type StartResult struct {
	PreviousState string `json:"previous_state"`
	Migrated      bool   `json:"migrated"`
	NewHost       string `json:"new_host"`
}

// StartMachine starts a stopped, suspended, failed or (skip_launch) created machine; a suspended
// one resumes from its snapshot when it can. leaseNonce is "" unless the caller holds the lease.
// Not resent after a 5xx or a lost answer.
func (c *Client) StartMachine(ctx context.Context, app, id, leaseNonce string) (*StartResult, error) {
	var res StartResult
	cl := c.machineAction(ActionStartMachine, app, id, "/start", leaseNonce)
	cl.emptyBodyOK = true // the start happened; its details are a courtesy
	_, err := c.do(ctx, cl, &res)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// StopOptions tune a stop. Zero values leave Fly's defaults (the config's stop_config).
type StopOptions struct {
	Signal  string        // e.g. SIGTERM
	Timeout time.Duration // how long before SIGKILL
}

type stopRequest struct {
	Signal  string    `json:"signal,omitempty"`
	Timeout *Duration `json:"timeout,omitempty"`
}

// StopMachine stops the machine (a suspended one loses its snapshot). Not resent after a 5xx or
// a lost answer.
func (c *Client) StopMachine(ctx context.Context, app, id string, opts StopOptions, leaseNonce string) error {
	cl := c.machineAction(ActionStopMachine, app, id, "/stop", leaseNonce)
	if opts.Signal != "" || opts.Timeout > 0 {
		body := stopRequest{Signal: opts.Signal}
		if opts.Timeout > 0 {
			body.Timeout = DurationOf(opts.Timeout)
		}
		cl.body = body
	}
	_, err := c.do(ctx, cl, nil)
	return err
}

// SuspendMachine snapshots a started machine's memory and stops it; the next start resumes.
// Not resent after a 5xx or a lost answer.
func (c *Client) SuspendMachine(ctx context.Context, app, id, leaseNonce string) error {
	_, err := c.do(ctx, c.machineAction(ActionSuspendMachine, app, id, "/suspend", leaseNonce), nil)
	return err
}

// RestartOptions tune a restart. Zero values leave Fly's defaults.
type RestartOptions struct {
	ForceStop bool
	Timeout   time.Duration
	Signal    string
}

// RestartMachine restarts a started machine. Not resent after a 5xx or a lost answer.
func (c *Client) RestartMachine(ctx context.Context, app, id string, opts RestartOptions, leaseNonce string) error {
	cl := c.machineAction(ActionRestartMachine, app, id, "/restart", leaseNonce)
	q := url.Values{}
	if opts.ForceStop {
		q.Set("force_stop", "true")
	}
	if opts.Timeout > 0 {
		q.Set("timeout", opts.Timeout.String())
	}
	if opts.Signal != "" {
		q.Set("signal", opts.Signal)
	}
	cl.query = q
	_, err := c.do(ctx, cl, nil)
	return err
}

// SignalMachine sends a signal (e.g. "SIGUSR1") to the machine's main process. Not resent after a
// 5xx or a lost answer.
func (c *Client) SignalMachine(ctx context.Context, app, id, signal, leaseNonce string) error {
	cl := c.machineAction(ActionSignalMachine, app, id, "/signal", leaseNonce)
	cl.body = map[string]string{"signal": signal}
	_, err := c.do(ctx, cl, nil)
	return err
}

// CordonMachine takes the machine out of Fly Proxy routing. Not resent after a 5xx or a lost
// answer.
func (c *Client) CordonMachine(ctx context.Context, app, id, leaseNonce string) error {
	_, err := c.do(ctx, c.machineAction(ActionCordonMachine, app, id, "/cordon", leaseNonce), nil)
	return err
}

// UncordonMachine puts the machine back into Fly Proxy routing. Not resent after a 5xx or a lost
// answer.
func (c *Client) UncordonMachine(ctx context.Context, app, id, leaseNonce string) error {
	_, err := c.do(ctx, c.machineAction(ActionUncordonMachine, app, id, "/uncordon", leaseNonce), nil)
	return err
}

func (c *Client) machineAction(action, app, id, suffix, leaseNonce string) call {
	return call{
		action: action,
		method: http.MethodPost,
		path:   machinePath(app, id) + suffix,
		scope:  machineScope(app, id),
		nonce:  leaseNonce,
		retry:  sendOnce,
	}
}

// DestroyMachine destroys the machine; without force Fly refuses (IsFailedPrecondition) unless it
// is stopped, suspended, failed or created. Destruction finishes asynchronously: WaitMachine for
// StateDestroyed.
//
// DestroyMachine is retried after a 5xx or a lost answer, since destroying twice ends the same
// way. When such a retry is refused because the machine is already gone (404) or already being
// destroyed (412 with the machine destroying or destroyed, checked with one GetMachine), the
// earlier attempt did the work and DestroyMachine returns nil. A 404 without a retry before it is
// returned as IsNotFound: the caller asked to destroy a machine that did not exist.
func (c *Client) DestroyMachine(ctx context.Context, app, id string, force bool, leaseNonce string) error {
	var query url.Values
	if force {
		query = url.Values{"force": {"true"}}
	}
	res, err := c.do(ctx, call{
		action: ActionDestroyMachine,
		method: http.MethodDelete,
		path:   machinePath(app, id),
		query:  query,
		scope:  machineScope(app, id),
		nonce:  leaseNonce,
		retry:  repeatable,
	}, nil)
	if err == nil || !res.resentAfterUnknown {
		return err
	}
	switch {
	case IsNotFound(err):
		return nil
	case IsFailedPrecondition(err):
		m, getErr := c.GetMachine(ctx, app, id)
		if IsNotFound(getErr) || (getErr == nil && (m.State == StateDestroying || m.State == StateDestroyed)) {
			return nil
		}
	}
	return err
}

// WaitOptions say what to wait for.
type WaitOptions struct {
	// States to wait for; empty means started. Fly accepts started, stopped, suspended,
	// destroyed, failed and settled.
	States []string
	// Version (instance ID) to watch; Fly requires it when waiting for stopped.
	Version string
	// Timeout is how long Fly holds the request; it is clamped to 1..60 s (Fly's range), rounded
	// up to whole seconds. 0 means 60 s.
	Timeout time.Duration
	// FromEventID waits for a transition after that event.
	FromEventID string
}

// WaitResult is the state the machine reached.
type WaitResult struct {
	OK      bool   `json:"ok"`
	State   string `json:"state"`
	Version string `json:"version"`
	EventID string `json:"event_id"`
}

// clampWaitSeconds turns a wait timeout into Fly's whole seconds, within 1..60.
func clampWaitSeconds(d time.Duration) int {
	if d <= 0 {
		return 60
	}
	secs := int(math.Ceil(d.Seconds()))
	return min(max(secs, 1), 60)
}

// WaitMachine blocks until the machine reaches one of opts.States or the timeout passes
// (IsWaitTimeout, a 408, which is not retried: call again to keep waiting). Retried after 5xx.
func (c *Client) WaitMachine(ctx context.Context, app, id string, opts WaitOptions) (*WaitResult, error) {
	secs := clampWaitSeconds(opts.Timeout)
	q := url.Values{"timeout": {strconv.Itoa(secs)}}
	// Several states are sent as repeated parameters, the form Fly's Go client uses.
	for _, s := range opts.States {
		q.Add("state", s)
	}
	if len(opts.States) == 0 {
		q.Set("state", StateStarted)
	}
	if opts.Version != "" {
		q.Set("version", opts.Version)
	}
	if opts.FromEventID != "" {
		q.Set("from_event_id", opts.FromEventID)
	}
	var res WaitResult
	_, err := c.do(ctx, call{
		action:       ActionWaitMachine,
		method:       http.MethodGet,
		path:         machinePath(app, id) + "/wait",
		query:        q,
		scope:        machineScope(app, id),
		retry:        repeatable,
		extraTimeout: time.Duration(secs) * time.Second,
	}, &res)
	if err != nil {
		return nil, err
	}
	return &res, nil
}
