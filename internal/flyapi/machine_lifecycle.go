package flyapi

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Lifecycle actions: start, stop, suspend, restart, signal, cordon, destroy. Each takes the lease
// nonce ("" when the caller holds no lease); Fly refuses a leased machine's mutations without it.

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
	cl.optionalAnswer = true // the start happened; its details are a courtesy
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
