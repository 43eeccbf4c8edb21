package flyapi

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strconv"
)

// Secret is an app secret as Fly lists it: its digest, never its value.
type Secret struct {
	Name      string `json:"name"`
	Digest    string `json:"digest,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

// Machines read app secrets when they are created or updated, so after a change existing machines
// must be updated (with MinSecretsVersion set to the returned version) to see it.
//
// Secrets reads can lag behind a change (§11): like flyctl, a caller that changed the secrets
// passes the version the change returned as minVersion to the reads that must see it. Fly's sources
// disagree on the parameter's name (§10: min_version in the OpenAPI spec, version in Fly's Go
// client), so both are sent with the same value. A read asking for a version Fly does not have yet
// is refused (IsFailedPrecondition on the emulator); read again later.

func secretsPath(app, name string) string {
	p := "/apps/" + url.PathEscape(app) + "/secrets"
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

type listSecretsResponse struct {
	Secrets []Secret `json:"secrets"`
}

// secretsQuery is the minimum-version filter of a secrets read; nil when minVersion is 0.
func secretsQuery(minVersion uint64) url.Values {
	if minVersion == 0 {
		return nil
	}
	v := strconv.FormatUint(minVersion, 10)
	return url.Values{"min_version": {v}, "version": {v}}
}

// ListSecrets returns the app's secrets (names and digests), sorted by name, as of at least
// secrets version minVersion (0: whatever Fly has; see the note on versions above). Retried after
// 5xx.
func (c *Client) ListSecrets(ctx context.Context, app string, minVersion uint64) ([]Secret, error) {
	var resp listSecretsResponse
	_, err := c.do(ctx, call{
		action: ActionListSecrets,
		method: http.MethodGet,
		path:   secretsPath(app, ""),
		query:  secretsQuery(minVersion),
		scope:  app,
		retry:  repeatable,
	}, &resp)
	if err != nil {
		return nil, err
	}
	sort.Slice(resp.Secrets, func(i, j int) bool { return resp.Secrets[i].Name < resp.Secrets[j].Name })
	return resp.Secrets, nil
}

type setSecretsRequest struct {
	Values map[string]*string `json:"values"` // null deletes
}

type secretsVersionResponse struct {
	Version uint64 `json:"version"`
}

// SetSecrets sets the given secrets in one change and returns the app's new secrets version.
// Not resent after a 5xx or a lost answer (list the digests to see whether it applied).
func (c *Client) SetSecrets(ctx context.Context, app string, values map[string]string) (uint64, error) {
	return c.UpdateSecrets(ctx, app, values, nil)
}

// UnsetSecrets removes the named secrets in one change and returns the new secrets version.
// Not resent after a 5xx or a lost answer.
func (c *Client) UnsetSecrets(ctx context.Context, app string, names ...string) (uint64, error) {
	return c.UpdateSecrets(ctx, app, nil, names)
}

// UpdateSecrets sets set and removes unset in one change (one new secrets version, so a machine
// never sees half of it) and returns the app's new secrets version. A name in both is set. Not
// resent after a 5xx or a lost answer (IsOutcomeUnknown): list the digests to see whether it
// applied.
func (c *Client) UpdateSecrets(ctx context.Context, app string, set map[string]string, unset []string) (uint64, error) {
	body := setSecretsRequest{Values: make(map[string]*string, len(set)+len(unset))}
	for _, name := range unset {
		body.Values[name] = nil
	}
	for k, v := range set {
		body.Values[k] = &v
	}
	return c.postSecrets(ctx, app, body)
}

func (c *Client) postSecrets(ctx context.Context, app string, body setSecretsRequest) (uint64, error) {
	var resp secretsVersionResponse
	_, err := c.do(ctx, call{
		action: ActionSetSecrets,
		method: http.MethodPost,
		path:   secretsPath(app, ""),
		body:   body,
		scope:  app,
		retry:  sendOnce,
	}, &resp)
	if err != nil {
		return 0, err
	}
	return resp.Version, nil
}

// GetSecret returns one secret's name and digest, as of at least secrets version minVersion (0:
// whatever Fly has); IsNotFound when unset. Retried after 5xx.
func (c *Client) GetSecret(ctx context.Context, app, name string, minVersion uint64) (*Secret, error) {
	var s Secret
	_, err := c.do(ctx, call{
		action: ActionGetSecret,
		method: http.MethodGet,
		path:   secretsPath(app, name),
		query:  secretsQuery(minVersion),
		scope:  app,
		retry:  repeatable,
	}, &s)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// SetSecret sets one secret and returns the new secrets version. Not resent after a 5xx or a
// lost answer.
func (c *Client) SetSecret(ctx context.Context, app, name, value string) (uint64, error) {
	var resp secretsVersionResponse
	_, err := c.do(ctx, call{
		action: ActionSetSecret,
		method: http.MethodPost,
		path:   secretsPath(app, name),
		body:   map[string]string{"value": value},
		scope:  app,
		retry:  sendOnce,
	}, &resp)
	if err != nil {
		return 0, err
	}
	return resp.Version, nil
}

// DeleteSecret removes one secret and returns the new secrets version. Not resent after a 5xx
// or a lost answer.
func (c *Client) DeleteSecret(ctx context.Context, app, name string) (uint64, error) {
	var resp secretsVersionResponse
	_, err := c.do(ctx, call{
		action: ActionDeleteSecret,
		method: http.MethodDelete,
		path:   secretsPath(app, name),
		scope:  app,
		retry:  sendOnce,
	}, &resp)
	if err != nil {
		return 0, err
	}
	return resp.Version, nil
}
