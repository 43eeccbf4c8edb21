package flyapi

import (
	"context"
	"net/http"
	"time"
)

// Lease is an exclusive hold on a machine: while it lasts, mutations need its nonce.
type Lease struct {
	Nonce       string
	ExpiresAt   time.Time
	Owner       string
	Description string
	Version     string
}

// leaseEnvelope is Fly's lease answer: {"status":"success","data":{...}}.
type leaseEnvelope struct {
	Status string `json:"status"`
	Data   struct {
		Nonce       string `json:"nonce"`
		ExpiresAt   int64  `json:"expires_at"` // Unix seconds
		Owner       string `json:"owner"`
		Description string `json:"description"`
		Version     string `json:"version"`
	} `json:"data"`
}

func (e leaseEnvelope) lease() *Lease {
	l := &Lease{
		Nonce:       e.Data.Nonce,
		Owner:       e.Data.Owner,
		Description: e.Data.Description,
		Version:     e.Data.Version,
	}
	if e.Data.ExpiresAt > 0 {
		l.ExpiresAt = time.Unix(e.Data.ExpiresAt, 0).UTC()
	}
	return l
}

type acquireLeaseRequest struct {
	TTL         int    `json:"ttl,omitempty"` // seconds
	Description string `json:"description,omitempty"`
}

// leaseTTLSeconds rounds a TTL up to Fly's whole seconds (0 leaves Fly's default).
func leaseTTLSeconds(ttl time.Duration) int {
	if ttl <= 0 {
		return 0
	}
	return int((ttl + time.Second - 1) / time.Second)
}

// AcquireLease takes the machine's lease for ttl (rounded up to whole seconds; 0 = Fly's
// default). IsConflict means someone else holds it; the message names the holder.
//
// AcquireLease is not resent after a 5xx or a lost answer: the lease may have been granted to
// this caller with a nonce it never saw, and a second request would then be refused as held by
// someone else. Wait for the TTL to pass or read it with GetLease.
func (c *Client) AcquireLease(ctx context.Context, app, id string, ttl time.Duration, description string) (*Lease, error) {
	return c.postLease(ctx, app, id, acquireLeaseRequest{TTL: leaseTTLSeconds(ttl), Description: description}, "")
}

// RefreshLease extends a lease this caller holds by ttl. Not resent after a 5xx or a lost answer.
func (c *Client) RefreshLease(ctx context.Context, app, id, nonce string, ttl time.Duration) (*Lease, error) {
	return c.postLease(ctx, app, id, acquireLeaseRequest{TTL: leaseTTLSeconds(ttl)}, nonce)
}

func (c *Client) postLease(ctx context.Context, app, id string, body acquireLeaseRequest, nonce string) (*Lease, error) {
	var env leaseEnvelope
	_, err := c.do(ctx, call{
		action: ActionAcquireLease,
		method: http.MethodPost,
		path:   machinePath(app, id) + "/lease",
		body:   body,
		scope:  machineScope(app, id),
		nonce:  nonce,
		retry:  sendOnce,
		check: func() error {
			if env.Data.Nonce == "" {
				return missing("lease nonce")
			}
			return nil
		},
	}, &env)
	if err != nil {
		return nil, err
	}
	return env.lease(), nil
}

// GetLease returns the machine's current lease; IsNotFound when there is none. Retried after
// 5xx.
func (c *Client) GetLease(ctx context.Context, app, id string) (*Lease, error) {
	var env leaseEnvelope
	_, err := c.do(ctx, call{
		action: ActionGetLease,
		method: http.MethodGet,
		path:   machinePath(app, id) + "/lease",
		scope:  machineScope(app, id),
		retry:  repeatable,
	}, &env)
	if err != nil {
		return nil, err
	}
	return env.lease(), nil
}

// ReleaseLease gives the lease back. A wrong or missing nonce is IsBadRequest.
//
// ReleaseLease is retried after a 5xx or a lost answer (releasing twice ends the same way). If a
// retry then finds no lease (404), the earlier attempt released it and ReleaseLease returns nil.
func (c *Client) ReleaseLease(ctx context.Context, app, id, nonce string) error {
	res, err := c.do(ctx, call{
		action: ActionReleaseLease,
		method: http.MethodDelete,
		path:   machinePath(app, id) + "/lease",
		scope:  machineScope(app, id),
		nonce:  nonce,
		retry:  repeatable,
	}, nil)
	if err != nil && res.resentAfterUnknown && IsNotFound(err) {
		return nil
	}
	return err
}
