package client

// Asynchronous invocation settings (retries, event age, destinations) and
// Gust's dead letters.

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/gustfaas/gust/api"
)

// eventInvokePath returns the path segments of a function's
// event-invoke-config resource.
func eventInvokePath(name string, rest ...string) []string {
	p := append(strings.Split(strings.TrimPrefix(api.EventInvokeConfigPath, "/"), "/"), name, "event-invoke-config")
	return append(p, rest...)
}

// PutFunctionEventInvokeConfig replaces the asynchronous invocation
// settings of a function's qualifier ("" for $LATEST, a version or an
// alias); settings left out of in take their defaults.
func (c *Client) PutFunctionEventInvokeConfig(ctx context.Context, name, qualifier string, in api.EventInvokeConfigRequest) (api.FunctionEventInvokeConfig, error) {
	var out api.FunctionEventInvokeConfig
	if err := checkName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPut, eventInvokePath(name), qualifierQuery(qualifier), in, &out)
	return out, err
}

// UpdateFunctionEventInvokeConfig changes the settings in sets and keeps
// the others; the qualifier must have settings already.
func (c *Client) UpdateFunctionEventInvokeConfig(ctx context.Context, name, qualifier string, in api.EventInvokeConfigRequest) (api.FunctionEventInvokeConfig, error) {
	var out api.FunctionEventInvokeConfig
	if err := checkName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPost, eventInvokePath(name), qualifierQuery(qualifier), in, &out)
	return out, err
}

// GetFunctionEventInvokeConfig returns a qualifier's settings; none is an
// *api.Error with Code ResourceNotFoundException.
func (c *Client) GetFunctionEventInvokeConfig(ctx context.Context, name, qualifier string) (api.FunctionEventInvokeConfig, error) {
	var out api.FunctionEventInvokeConfig
	if err := checkName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, eventInvokePath(name), qualifierQuery(qualifier), nil, &out)
	return out, err
}

// DeleteFunctionEventInvokeConfig removes a qualifier's settings.
func (c *Client) DeleteFunctionEventInvokeConfig(ctx context.Context, name, qualifier string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, eventInvokePath(name), qualifierQuery(qualifier), nil, nil)
}

// ListFunctionEventInvokeConfigs returns the settings of every qualifier
// of a function that has some, following NextMarker across pages.
func (c *Client) ListFunctionEventInvokeConfigs(ctx context.Context, name string) ([]api.FunctionEventInvokeConfig, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	all := []api.FunctionEventInvokeConfig{}
	err := pages(func(q url.Values) (*string, error) {
		var page api.ListFunctionEventInvokeConfigsResponse
		if err := c.doJSON(ctx, http.MethodGet, eventInvokePath(name, "list"), q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.FunctionEventInvokeConfigs...)
		return page.NextMarker, nil
	})
	return all, err
}

// deadLettersPath returns the path segments of a function's dead letters.
func deadLettersPath(name string, rest ...string) []string {
	p := append(strings.Split(strings.TrimPrefix(api.DeadLettersPath, "/"), "/"), name)
	return append(p, rest...)
}

// ListDeadLetters returns a function's dead letters in Gust's built-in
// dead-letter stream, oldest first; with withPayload each carries its
// event.
func (c *Client) ListDeadLetters(ctx context.Context, name string, withPayload bool) ([]api.DeadLetter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var q url.Values
	if withPayload {
		q = url.Values{"payload": {"1"}}
	}
	var out api.DeadLetterList
	if err := c.doJSON(ctx, http.MethodGet, deadLettersPath(name), q, nil, &out); err != nil {
		return nil, err
	}
	return out.DeadLetters, nil
}

// ReplayDeadLetters enqueues a function's dead letter id again as a new
// asynchronous invocation, or all of them when id is empty; replayed
// dead letters are removed.
func (c *Client) ReplayDeadLetters(ctx context.Context, name, id string) ([]api.Replayed, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var out api.ReplayResponse
	if err := c.doJSON(ctx, http.MethodPost, deadLettersPath(name, "replay"), nil, api.ReplayRequest{ID: id}, &out); err != nil {
		return nil, err
	}
	return out.Replayed, nil
}
