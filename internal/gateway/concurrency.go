package gateway

import (
	"fmt"
	"net/http"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
)

// PoolStatser reports a function's instances (for provisioned concurrency
// status).
type PoolStatser interface {
	Available(name, version string) int
}

func (g *Gateway) concurrencyOf(fn *registry.Function) *api.Concurrency {
	if fn.ReservedConcurrency == nil {
		return nil
	}
	n := int32(*fn.ReservedConcurrency)
	return &api.Concurrency{ReservedConcurrentExecutions: &n}
}

func (g *Gateway) putFunctionConcurrency(w http.ResponseWriter, r *http.Request, body []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var req api.Concurrency
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	if req.ReservedConcurrentExecutions == nil {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: "ReservedConcurrentExecutions is required"})
		return
	}
	n := int(*req.ReservedConcurrentExecutions)
	stored, err := g.cfg.Control.UpdateSettings(r.Context(), fn.Name, func(f *registry.Function) error {
		f.ReservedConcurrency = &n
		return nil
	})
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	writeJSON(w, http.StatusOK, g.concurrencyOf(stored))
}

func (g *Gateway) getFunctionConcurrency(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	c := g.concurrencyOf(fn)
	if c == nil {
		c = &api.Concurrency{}
	}
	writeJSON(w, http.StatusOK, c)
}

func (g *Gateway) deleteFunctionConcurrency(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	if _, err := g.cfg.Control.UpdateSettings(r.Context(), fn.Name, func(f *registry.Function) error {
		f.ReservedConcurrency = nil
		return nil
	}); err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// provisioned is what provisioned concurrency is configured on: $LATEST
// (a Gust extension), a published version or an alias.
type provisioned struct {
	name, qualifier string
	fn              *registry.Function // $LATEST or the version
	alias           *registry.Alias
}

func (t provisioned) requested() int {
	if t.alias != nil {
		return t.alias.ProvisionedConcurrency
	}
	return t.fn.ProvisionedConcurrency
}

func (t provisioned) modified() string {
	if t.alias != nil {
		return t.alias.ProvisionedModified.Format(api.TimeLayout)
	}
	return t.fn.LastModified.Format(api.TimeLayout)
}

// provisionedTarget resolves the function and its required qualifier.
func (g *Gateway) provisionedTarget(w http.ResponseWriter, r *http.Request) (provisioned, bool) {
	q := r.URL.Query().Get("Qualifier")
	raw := r.PathValue("name")
	name, nq, err := registry.ParseName(raw)
	if err != nil {
		g.writeError(w, r, g.apiError(err, raw))
		return provisioned{}, false
	}
	if q == "" {
		q = nq
	}
	if q == "" {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: "Qualifier is required: a version number or an alias name"})
		return provisioned{}, false
	}
	if err := registry.ValidateQualifier(q); err != nil {
		g.writeError(w, r, g.apiError(err, name))
		return provisioned{}, false
	}
	t := provisioned{name: name, qualifier: q}
	if q == registry.Latest || registry.IsVersionNumber(q) {
		fn, ok := g.cfg.Functions.Version(name, q)
		if !ok {
			g.writeError(w, r, g.qualifiedNotFound(registry.ErrNotFound, name, q))
			return provisioned{}, false
		}
		t.fn = fn
		return t, true
	}
	a, ok := g.cfg.Functions.Alias(name, q)
	if !ok {
		g.writeError(w, r, g.qualifiedNotFound(registry.ErrNotFound, name, q))
		return provisioned{}, false
	}
	t.alias = a
	return t, true
}

func (g *Gateway) provisionedConfig(t provisioned) api.ProvisionedConcurrencyConfig {
	want := t.requested()
	avail := 0
	if g.cfg.Pools != nil {
		if t.alias != nil {
			for _, v := range t.alias.Versions() {
				avail += g.cfg.Pools.Available(t.name, v)
			}
		} else {
			avail = g.cfg.Pools.Available(t.name, t.fn.Qualifier())
		}
	}
	avail = min(avail, want)
	status := "READY"
	if avail < want {
		status = "IN_PROGRESS"
	}
	return api.ProvisionedConcurrencyConfig{
		RequestedProvisionedConcurrentExecutions: int32(want),
		AllocatedProvisionedConcurrentExecutions: int32(avail),
		AvailableProvisionedConcurrentExecutions: int32(avail),
		Status:                                   status,
		LastModified:                             t.modified(),
	}
}

// setProvisioned stores n as t's provisioned concurrency.
func (g *Gateway) setProvisioned(r *http.Request, t provisioned, n int) (provisioned, error) {
	if t.alias != nil {
		a, err := g.cfg.Control.UpdateAliasSettings(r.Context(), t.name, t.alias.Name, func(a *registry.Alias) error {
			a.ProvisionedConcurrency = n
			a.ProvisionedModified = g.cfg.Now().UTC()
			return nil
		})
		t.alias = a
		return t, err
	}
	fn, err := g.cfg.Control.UpdateVersion(r.Context(), t.name, t.fn.Version, func(f *registry.Function) error {
		f.ProvisionedConcurrency = n
		return nil
	})
	t.fn = fn
	return t, err
}

func (g *Gateway) putProvisionedConcurrency(w http.ResponseWriter, r *http.Request, body []byte) {
	t, ok := g.provisionedTarget(w, r)
	if !ok {
		return
	}
	var req api.PutProvisionedConcurrencyConfigRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	if req.ProvisionedConcurrentExecutions == nil || *req.ProvisionedConcurrentExecutions < 1 {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: "ProvisionedConcurrentExecutions must be at least 1 (delete the configuration to go back to zero)"})
		return
	}
	n := int(*req.ProvisionedConcurrentExecutions)
	if n > registry.MaxConcurrency {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("ProvisionedConcurrentExecutions %d is over the maximum of %d", n, registry.MaxConcurrency)})
		return
	}
	if latest, ok := g.cfg.Functions.Get(t.name); ok && latest.ReservedConcurrency != nil && n > *latest.ReservedConcurrency {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("Requested Provisioned Concurrency (%d) should not be greater than the reservedConcurrentExecution for function (%d)", n, *latest.ReservedConcurrency)})
		return
	}
	t, err := g.setProvisioned(r, t, n)
	if err != nil {
		g.writeError(w, r, g.apiError(err, t.name))
		return
	}
	writeJSON(w, http.StatusAccepted, g.provisionedConfig(t))
}

func (g *Gateway) getProvisionedConcurrency(w http.ResponseWriter, r *http.Request, _ []byte) {
	if r.URL.Query().Get("List") == "ALL" {
		g.listProvisionedConcurrency(w, r)
		return
	}
	t, ok := g.provisionedTarget(w, r)
	if !ok {
		return
	}
	if t.requested() == 0 {
		g.writeError(w, r, &api.Error{Code: api.ErrProvisionedConcurrencyNotFound, Status: http.StatusNotFound,
			Message: fmt.Sprintf("No Provisioned Concurrency Config found for this function: %s:%s", g.arn(t.name), t.qualifier)})
		return
	}
	writeJSON(w, http.StatusOK, g.provisionedConfig(t))
}

func (g *Gateway) listProvisionedConcurrency(w http.ResponseWriter, r *http.Request) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var all []provisioned
	for _, v := range append([]*registry.Function{fn}, g.cfg.Functions.Versions(fn.Name)...) {
		if v.ProvisionedConcurrency > 0 {
			all = append(all, provisioned{name: fn.Name, qualifier: v.Qualifier(), fn: v})
		}
	}
	for _, a := range g.cfg.Functions.Aliases(fn.Name) {
		if a.ProvisionedConcurrency > 0 {
			all = append(all, provisioned{name: fn.Name, qualifier: a.Name, alias: a})
		}
	}
	resp := api.ListProvisionedConcurrencyConfigsResponse{ProvisionedConcurrencyConfigs: []api.ProvisionedConcurrencyConfigListItem{}}
	for _, t := range all {
		resp.ProvisionedConcurrencyConfigs = append(resp.ProvisionedConcurrencyConfigs, api.ProvisionedConcurrencyConfigListItem{
			FunctionArn:                  g.qualifiedArn(t.name, t.qualifier),
			ProvisionedConcurrencyConfig: g.provisionedConfig(t),
		})
	}
	writeJSON(w, http.StatusOK, resp)
}

func (g *Gateway) deleteProvisionedConcurrency(w http.ResponseWriter, r *http.Request, _ []byte) {
	t, ok := g.provisionedTarget(w, r)
	if !ok {
		return
	}
	if _, err := g.setProvisioned(r, t, 0); err != nil {
		g.writeError(w, r, g.apiError(err, t.name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
