package client

// Versions, aliases, qualified configuration and provisioned concurrency,
// and tags: what project deploys (gust deploy, promote, rollback) use.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gustfaas/gust/api"
)

// PublishVersion publishes the function's $LATEST as a new version. When
// $LATEST runs the same program as the newest version, the node returns
// that version and publishes nothing. in.CodeSha256 and in.RevisionID, if
// set, must match $LATEST's, which guards against publishing code someone
// else deployed in between.
func (c *Client) PublishVersion(ctx context.Context, name string, in api.PublishVersionRequest) (api.FunctionConfiguration, error) {
	var out api.FunctionConfiguration
	if err := checkName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPost, functionPath(name, "versions"), nil, in, &out)
	return out, err
}

// ListVersions returns the function's $LATEST and every published
// version, following NextMarker across pages.
func (c *Client) ListVersions(ctx context.Context, name string) ([]api.FunctionConfiguration, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	all := []api.FunctionConfiguration{}
	err := pages(func(q url.Values) (*string, error) {
		var page api.ListVersionsResponse
		if err := c.doJSON(ctx, http.MethodGet, functionPath(name, "versions"), q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Versions...)
		return page.NextMarker, nil
	})
	return all, err
}

// GetFunctionConfigurationAt returns the configuration of one version of a
// function: qualifier is "$LATEST", a version number or an alias name
// (whose main version is returned).
func (c *Client) GetFunctionConfigurationAt(ctx context.Context, name, qualifier string) (api.FunctionConfiguration, error) {
	var out api.FunctionConfiguration
	if err := checkName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, functionPath(name, "configuration"), qualifierQuery(qualifier), nil, &out)
	return out, err
}

// CreateAlias creates an alias of a function.
func (c *Client) CreateAlias(ctx context.Context, name string, in api.CreateAliasRequest) (api.AliasConfiguration, error) {
	var out api.AliasConfiguration
	if err := checkName(name); err != nil {
		return out, err
	}
	if in.Name == "" {
		return out, errors.New("client: alias name is empty")
	}
	err := c.doJSON(ctx, http.MethodPost, functionPath(name, "aliases"), nil, in, &out)
	return out, err
}

// GetAlias returns an alias of a function.
func (c *Client) GetAlias(ctx context.Context, name, alias string) (api.AliasConfiguration, error) {
	var out api.AliasConfiguration
	if err := checkAlias(name, alias); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, functionPath(name, "aliases", alias), nil, nil, &out)
	return out, err
}

// UpdateAlias moves an alias or changes its traffic split. Empty fields of
// in are left unchanged; a RoutingConfig with no weights removes the
// split. in.RevisionID, if set, must be the alias's current one.
func (c *Client) UpdateAlias(ctx context.Context, name, alias string, in api.UpdateAliasRequest) (api.AliasConfiguration, error) {
	var out api.AliasConfiguration
	if err := checkAlias(name, alias); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPut, functionPath(name, "aliases", alias), nil, in, &out)
	return out, err
}

// DeleteAlias deletes an alias of a function.
func (c *Client) DeleteAlias(ctx context.Context, name, alias string) error {
	if err := checkAlias(name, alias); err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, functionPath(name, "aliases", alias), nil, nil, nil)
}

// ListAliases returns every alias of a function, following NextMarker
// across pages.
func (c *Client) ListAliases(ctx context.Context, name string) ([]api.AliasConfiguration, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	all := []api.AliasConfiguration{}
	err := pages(func(q url.Values) (*string, error) {
		var page api.ListAliasesResponse
		if err := c.doJSON(ctx, http.MethodGet, functionPath(name, "aliases"), q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Aliases...)
		return page.NextMarker, nil
	})
	return all, err
}

// PutProvisionedConcurrencyConfig asks the node to keep n instances warm
// for a published version or an alias (split between the alias's versions
// by weight).
func (c *Client) PutProvisionedConcurrencyConfig(ctx context.Context, name, qualifier string, n int32) (api.ProvisionedConcurrencyConfig, error) {
	var out api.ProvisionedConcurrencyConfig
	if err := checkName(name); err != nil {
		return out, err
	}
	in := api.PutProvisionedConcurrencyConfigRequest{ProvisionedConcurrentExecutions: &n}
	err := c.doJSON(ctx, http.MethodPut, provisionedPath(name), qualifierQuery(qualifier), in, &out)
	return out, err
}

// GetProvisionedConcurrencyConfig returns the provisioned concurrency of a
// version or an alias. When none is configured the error is an *api.Error
// with Code api.ErrProvisionedConcurrencyNotFound.
func (c *Client) GetProvisionedConcurrencyConfig(ctx context.Context, name, qualifier string) (api.ProvisionedConcurrencyConfig, error) {
	var out api.ProvisionedConcurrencyConfig
	if err := checkName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, provisionedPath(name), qualifierQuery(qualifier), nil, &out)
	return out, err
}

// DeleteProvisionedConcurrencyConfig removes the provisioned concurrency
// of a version or an alias.
func (c *Client) DeleteProvisionedConcurrencyConfig(ctx context.Context, name, qualifier string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, provisionedPath(name), qualifierQuery(qualifier), nil, nil)
}

// TagResource adds tags to a function (resource is its ARN or name),
// replacing the values of keys it already has.
func (c *Client) TagResource(ctx context.Context, resource string, tags map[string]string) error {
	if resource == "" {
		return errors.New("client: resource is empty")
	}
	return c.doJSON(ctx, http.MethodPost, []string{"2017-03-31", "tags", resource}, nil, api.TagResourceRequest{Tags: tags}, nil)
}

// qualifierQuery returns ?Qualifier=q, or nothing for an empty q.
func qualifierQuery(q string) url.Values {
	if q == "" {
		return nil
	}
	return url.Values{"Qualifier": {q}}
}

// checkAlias refuses an empty function or alias name.
func checkAlias(name, alias string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if alias == "" {
		return errors.New("client: alias name is empty")
	}
	return nil
}

// pages calls page with Marker and MaxItems until it returns no next
// marker, and fails if the server repeats one.
func pages(page func(q url.Values) (next *string, err error)) error {
	seen := map[string]bool{}
	marker := ""
	for {
		q := url.Values{"MaxItems": {strconv.Itoa(listPageSize)}}
		if marker != "" {
			q.Set("Marker", marker)
		}
		next, err := page(q)
		if err != nil {
			return err
		}
		if next == nil || *next == "" {
			return nil
		}
		if seen[*next] {
			return fmt.Errorf("list: server repeated marker %q", *next)
		}
		seen[*next] = true
		marker = *next
	}
}
