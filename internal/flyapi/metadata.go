package flyapi

import (
	"context"
	"net/http"
	"net/url"
)

// Metadata calls edit config.metadata in place, without a full update. Fly does not guard them
// with the machine's lease, so they carry no nonce.

func metadataPath(app, id, key string) string {
	p := machinePath(app, id) + "/metadata"
	if key != "" {
		p += "/" + url.PathEscape(key)
	}
	return p
}

// GetMetadata returns the machine's metadata. Retried after 5xx.
func (c *Client) GetMetadata(ctx context.Context, app, id string) (map[string]string, error) {
	metadata := map[string]string{}
	_, err := c.do(ctx, call{
		action: ActionGetMetadata,
		method: http.MethodGet,
		path:   metadataPath(app, id, ""),
		scope:  machineScope(app, id),
		retry:  repeatable,
	}, &metadata)
	if err != nil {
		return nil, err
	}
	return metadata, nil
}

// SetMetadata sets one metadata key. Not resent after a 5xx or a lost answer.
func (c *Client) SetMetadata(ctx context.Context, app, id, key, value string) error {
	_, err := c.do(ctx, call{
		action: ActionSetMetadata,
		method: http.MethodPost,
		path:   metadataPath(app, id, key),
		body:   map[string]string{"value": value},
		scope:  machineScope(app, id),
		retry:  sendOnce,
	}, nil)
	return err
}

// DeleteMetadata removes one metadata key. Not resent after a 5xx or a lost answer.
func (c *Client) DeleteMetadata(ctx context.Context, app, id, key string) error {
	_, err := c.do(ctx, call{
		action: ActionDeleteMetadata,
		method: http.MethodDelete,
		path:   metadataPath(app, id, key),
		scope:  machineScope(app, id),
		retry:  sendOnce,
	}, nil)
	return err
}

type patchMetadataRequest struct {
	Metadata       map[string]*string `json:"metadata"`
	MachineVersion string             `json:"machine_version,omitempty"`
}

// PatchMetadata changes only the listed keys: a nil value removes the key. With machineVersion
// set, Fly refuses the patch (IsFailedPrecondition, 412) if the machine has another version.
// Not resent after a 5xx or a lost answer.
func (c *Client) PatchMetadata(ctx context.Context, app, id string, changes map[string]*string, machineVersion string) error {
	_, err := c.do(ctx, call{
		action: ActionPatchMetadata,
		method: http.MethodPatch,
		path:   metadataPath(app, id, ""),
		body:   patchMetadataRequest{Metadata: changes, MachineVersion: machineVersion},
		scope:  machineScope(app, id),
		retry:  sendOnce,
	}, nil)
	return err
}
