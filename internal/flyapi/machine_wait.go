package flyapi

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

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
