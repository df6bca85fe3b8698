package gateway

import (
	"net/http"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
)

func (g *Gateway) aliasConfiguration(a *registry.Alias) api.AliasConfiguration {
	c := api.AliasConfiguration{
		AliasArn:        g.arn(a.Function) + ":" + a.Name,
		Name:            a.Name,
		FunctionVersion: a.Version,
		Description:     a.Description,
		RevisionID:      a.RevisionID,
	}
	if len(a.Weights) > 0 {
		c.RoutingConfig = &api.AliasRoutingConfiguration{AdditionalVersionWeights: a.Weights}
	}
	return c
}

// aliasTarget resolves {name} and {alias} to an existing alias.
func (g *Gateway) aliasTarget(r *http.Request) (*registry.Alias, *api.Error) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		return nil, aerr
	}
	name := r.PathValue("alias")
	if err := registry.ValidateAliasName(name); err != nil {
		return nil, g.apiError(err, fn.Name)
	}
	a, ok := g.cfg.Functions.Alias(fn.Name, name)
	if !ok {
		return nil, &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound,
			Message: "Alias not found: " + g.arn(fn.Name) + ":" + name}
	}
	return a, nil
}

func (g *Gateway) createAlias(w http.ResponseWriter, r *http.Request, body []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var req api.CreateAliasRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	a := &registry.Alias{Function: fn.Name, Name: req.Name, Version: req.FunctionVersion, Description: req.Description}
	if req.RoutingConfig != nil {
		a.Weights = req.RoutingConfig.AdditionalVersionWeights
	}
	stored, err := g.cfg.Control.CreateAlias(r.Context(), a)
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	writeJSON(w, http.StatusCreated, g.aliasConfiguration(stored))
}

func (g *Gateway) listAliases(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	marker, max, ok := g.pageParams(w, r)
	if !ok {
		return
	}
	version := r.URL.Query().Get("FunctionVersion")
	var all []*registry.Alias
	for _, a := range g.cfg.Functions.Aliases(fn.Name) {
		if version == "" || a.References(version) {
			all = append(all, a)
		}
	}
	items, next := pageOf(all, func(a *registry.Alias) string { return a.Name }, marker, max)
	resp := api.ListAliasesResponse{Aliases: []api.AliasConfiguration{}, NextMarker: next}
	for _, a := range items {
		resp.Aliases = append(resp.Aliases, g.aliasConfiguration(a))
	}
	writeJSON(w, http.StatusOK, resp)
}

func (g *Gateway) getAlias(w http.ResponseWriter, r *http.Request, _ []byte) {
	a, aerr := g.aliasTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	writeJSON(w, http.StatusOK, g.aliasConfiguration(a))
}

func (g *Gateway) updateAlias(w http.ResponseWriter, r *http.Request, body []byte) {
	a, aerr := g.aliasTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var req api.UpdateAliasRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	stored, err := g.cfg.Control.UpdateAlias(r.Context(), a.Function, a.Name, req.RevisionID, func(x *registry.Alias) error {
		if req.FunctionVersion != "" {
			x.Version = req.FunctionVersion
		}
		if req.Description != nil {
			x.Description = *req.Description
		}
		if req.RoutingConfig != nil {
			x.Weights = req.RoutingConfig.AdditionalVersionWeights
		}
		return nil
	})
	if err != nil {
		g.writeError(w, r, g.apiError(err, a.Function))
		return
	}
	writeJSON(w, http.StatusOK, g.aliasConfiguration(stored))
}

func (g *Gateway) deleteAlias(w http.ResponseWriter, r *http.Request, _ []byte) {
	a, aerr := g.aliasTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	if err := g.cfg.Control.DeleteAlias(r.Context(), a.Function, a.Name); err != nil {
		g.writeError(w, r, g.apiError(err, a.Function))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
