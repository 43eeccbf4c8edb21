package flyapi

import (
	"context"
	"net/http"
	"net/url"
)

// IP address types of an assignment.
const (
	IPTypeV4         = "v4"
	IPTypeV6         = "v6"
	IPTypeSharedV4   = "shared_v4"
	IPTypePrivateV6  = "private_v6" // Flycast: private, reachable from the named network only
	IPTypeEgressV4   = "egress_v4"
	IPTypeEgressV6   = "egress_v6"
	IPTypeEgressPair = "egress_pair"
)

// IPAssignment is an IP address of an app.
type IPAssignment struct {
	IP          string `json:"ip"`
	Region      string `json:"region,omitempty"`
	ServiceName string `json:"service_name,omitempty"`
	Shared      bool   `json:"shared,omitempty"`
	Egress      bool   `json:"egress,omitempty"`
	CreatedAt   string `json:"created_at,omitempty"`
	// Network is set only for private_v6 (Flycast): Name is "" for the org's default network.
	Network *IPNetwork `json:"network,omitempty"`
	// Pair is set instead of IP for egress_pair.
	Pair *IPPair `json:"ip_pair,omitempty"`
}

// IPNetwork names the private network a Flycast address belongs to.
type IPNetwork struct {
	Name    string `json:"name"`
	OrgSlug string `json:"org_slug,omitempty"`
}

// IPPair is the v4/v6 pair of an egress_pair assignment.
type IPPair struct {
	V4 string `json:"v4"`
	V6 string `json:"v6"`
}

// AssignIPRequest asks for an address.
type AssignIPRequest struct {
	Type        string `json:"type"`
	Region      string `json:"region,omitempty"`
	OrgSlug     string `json:"org_slug,omitempty"`
	Network     string `json:"network,omitempty"`
	ServiceName string `json:"service_name,omitempty"`
}

func ipsPath(app string) string { return "/apps/" + url.PathEscape(app) + "/ip_assignments" }

type listIPsResponse struct {
	IPs []IPAssignment `json:"ips"`
}

// ListIPAssignments returns the app's addresses. Retried after 5xx.
func (c *Client) ListIPAssignments(ctx context.Context, app string) ([]IPAssignment, error) {
	var resp listIPsResponse
	_, err := c.do(ctx, call{
		action: ActionListIPs,
		method: http.MethodGet,
		path:   ipsPath(app),
		scope:  app,
		retry:  repeatable,
	}, &resp)
	if err != nil {
		return nil, err
	}
	return resp.IPs, nil
}

// AssignIP allocates an address. Not resent after a 5xx or a lost answer: list the app's
// addresses before asking again, or a second address may be allocated.
func (c *Client) AssignIP(ctx context.Context, app string, req AssignIPRequest) (*IPAssignment, error) {
	var ip IPAssignment
	_, err := c.do(ctx, call{
		action: ActionAssignIP,
		method: http.MethodPost,
		path:   ipsPath(app),
		body:   req,
		scope:  app,
		retry:  sendOnce,
		check: func() error {
			if ip.IP == "" && ip.Pair == nil {
				return missing("address")
			}
			return nil
		},
	}, &ip)
	if err != nil {
		return nil, err
	}
	return &ip, nil
}

// AllocatePrivateV6 allocates a Flycast (private_v6) address in the named network. Fly does not
// default network to the app's own network: an app on an isolated network must name it, or the
// address lands in the org's default network and cannot reach the app's machines.
func (c *Client) AllocatePrivateV6(ctx context.Context, app, network string) (*IPAssignment, error) {
	return c.AssignIP(ctx, app, AssignIPRequest{Type: IPTypePrivateV6, Network: network})
}

// DeleteIPAssignment releases an address. Not resent after a 5xx or a lost answer.
func (c *Client) DeleteIPAssignment(ctx context.Context, app, ip string) error {
	_, err := c.do(ctx, call{
		action: ActionDeleteIP,
		method: http.MethodDelete,
		path:   ipsPath(app) + "/" + url.PathEscape(ip),
		scope:  app,
		retry:  sendOnce,
	}, nil)
	return err
}
