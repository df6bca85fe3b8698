package client

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gustfaas/gust/api"
)

// keysPath returns the path segments of the key collection, or of one key.
func keysPath(id ...string) []string {
	return append(strings.Split(strings.TrimPrefix(api.KeysPath, "/"), "/"), id...)
}

// CreateKey issues a new access key pair (admin keys only). The answer is
// the only place the node ever shows the key's secret.
func (c *Client) CreateKey(ctx context.Context, in api.CreateKeyRequest) (api.AccessKey, error) {
	var out api.AccessKey
	err := c.doJSON(ctx, http.MethodPost, keysPath(), nil, in, &out)
	return out, err
}

// ListKeys describes every access key of the node, without secrets
// (admin keys only).
func (c *Client) ListKeys(ctx context.Context) ([]api.AccessKey, error) {
	var out api.ListKeysResponse
	if err := c.doJSON(ctx, http.MethodGet, keysPath(), nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Keys == nil {
		out.Keys = []api.AccessKey{}
	}
	return out.Keys, nil
}

// RevokeKey deletes an access key (admin keys only): requests signed with
// it are refused from then on. The node refuses to revoke its last admin
// key.
func (c *Client) RevokeKey(ctx context.Context, accessKeyID string) error {
	if accessKeyID == "" {
		return errors.New("client: access key id is empty")
	}
	return c.doJSON(ctx, http.MethodDelete, keysPath(accessKeyID), nil, nil, nil)
}
