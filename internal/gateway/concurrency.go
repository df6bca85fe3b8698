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
	Available(name string) int
}

func (g *Gateway) concurrencyOf(fn *registry.Function) *api.Concurrency {
	if fn.ReservedConcurrency == nil {
		return nil
	}
	n := int32(*fn.ReservedConcurrency)
	return &api.Concurrency{ReservedConcurrentExecutions: &n}
}

func (g *Gateway) putFunctionConcurrency(w http.ResponseWriter, r *http.Request, body []byte) {
	fn, aerr := g.resolve(r.PathValue("name"), "")
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
	stored, err := g.cfg.Control.UpdateConfig(r.Context(), fn.Name, "", func(f *registry.Function) error {
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
	fn, aerr := g.resolve(r.PathValue("name"), "")
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
	fn, aerr := g.resolve(r.PathValue("name"), "")
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	if _, err := g.cfg.Control.UpdateConfig(r.Context(), fn.Name, "", func(f *registry.Function) error {
		f.ReservedConcurrency = nil
		return nil
	}); err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// provisionedTarget resolves the function and checks the qualifier: Gust
// serves one version, so "$LATEST" is the only one that can be provisioned.
func (g *Gateway) provisionedTarget(w http.ResponseWriter, r *http.Request) (*registry.Function, bool) {
	q := r.URL.Query().Get("Qualifier")
	if q == "" {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: "Qualifier is required: Gust serves one version, $LATEST"})
		return nil, false
	}
	fn, aerr := g.resolve(r.PathValue("name"), q)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return nil, false
	}
	return fn, true
}

func (g *Gateway) provisionedConfig(fn *registry.Function) api.ProvisionedConcurrencyConfig {
	avail := 0
	if g.cfg.Pools != nil {
		avail = min(g.cfg.Pools.Available(fn.Name), fn.ProvisionedConcurrency)
	}
	status := "READY"
	if avail < fn.ProvisionedConcurrency {
		status = "IN_PROGRESS"
	}
	return api.ProvisionedConcurrencyConfig{
		RequestedProvisionedConcurrentExecutions: int32(fn.ProvisionedConcurrency),
		AllocatedProvisionedConcurrentExecutions: int32(avail),
		AvailableProvisionedConcurrentExecutions: int32(avail),
		Status:                                   status,
		LastModified:                             fn.LastModified.Format(api.TimeLayout),
	}
}

func (g *Gateway) putProvisionedConcurrency(w http.ResponseWriter, r *http.Request, body []byte) {
	fn, ok := g.provisionedTarget(w, r)
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
	stored, err := g.cfg.Control.UpdateConfig(r.Context(), fn.Name, "", func(f *registry.Function) error {
		f.ProvisionedConcurrency = n
		return nil
	})
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	writeJSON(w, http.StatusAccepted, g.provisionedConfig(stored))
}

func (g *Gateway) getProvisionedConcurrency(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, ok := g.provisionedTarget(w, r)
	if !ok {
		return
	}
	if fn.ProvisionedConcurrency == 0 {
		g.writeError(w, r, &api.Error{Code: "ProvisionedConcurrencyConfigNotFoundException", Status: http.StatusNotFound,
			Message: fmt.Sprintf("No Provisioned Concurrency Config found for this function: %s", g.arn(fn.Name))})
		return
	}
	writeJSON(w, http.StatusOK, g.provisionedConfig(fn))
}

func (g *Gateway) deleteProvisionedConcurrency(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, ok := g.provisionedTarget(w, r)
	if !ok {
		return
	}
	if _, err := g.cfg.Control.UpdateConfig(r.Context(), fn.Name, "", func(f *registry.Function) error {
		f.ProvisionedConcurrency = 0
		return nil
	}); err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
