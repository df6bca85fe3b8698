package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
)

// eventInvokeRoutes registers Lambda's FunctionEventInvokeConfig
// operations and Gust's dead-letter endpoints.
func (g *Gateway) eventInvokeRoutes(route func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte))) {
	p := api.EventInvokeConfigPath + "/{name}/event-invoke-config"
	route("PUT "+p, "lambda:PutFunctionEventInvokeConfig", 0, g.putEventInvokeConfig)
	route("POST "+p, "lambda:UpdateFunctionEventInvokeConfig", 0, g.updateEventInvokeConfig)
	route("GET "+p, "lambda:GetFunctionEventInvokeConfig", 0, g.getEventInvokeConfig)
	route("DELETE "+p, "lambda:DeleteFunctionEventInvokeConfig", 0, g.deleteEventInvokeConfig)
	route("GET "+p+"/list", "lambda:ListFunctionEventInvokeConfigs", 0, g.listEventInvokeConfigs)
	if g.cfg.DeadLetters != nil {
		g.deadLetterRoutes(route)
	}
}

// eventInvokeTarget resolves the function and qualifier an
// event-invoke-config operation is about ($LATEST when unqualified). The
// qualifier must exist; the function returned is $LATEST, which holds
// every qualifier's settings.
func (g *Gateway) eventInvokeTarget(r *http.Request) (*registry.Function, string, *api.Error) {
	raw, qualifier := r.PathValue("name"), r.URL.Query().Get("Qualifier")
	name, q, err := registry.ParseName(raw)
	if err != nil {
		return nil, "", g.apiError(err, raw)
	}
	if qualifier == "" {
		qualifier = q
	} else if q != "" && q != qualifier {
		return nil, "", &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("The derived qualifier from the function name (%s) does not match the specified qualifier (%s)", q, qualifier)}
	}
	if qualifier == "" {
		qualifier = registry.Latest
	}
	if err := registry.ValidateQualifier(qualifier); err != nil {
		return nil, "", g.apiError(err, name)
	}
	fn, ok := g.cfg.Functions.Get(name)
	if !ok {
		return nil, "", g.notFound(name)
	}
	if !g.qualifierExists(name, qualifier) {
		return nil, "", &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound,
			Message: fmt.Sprintf("Function not found: %s:%s", g.arn(name), qualifier)}
	}
	return fn, qualifier, nil
}

// qualifierExists reports whether $LATEST, a version or an alias of name
// exists.
func (g *Gateway) qualifierExists(name, qualifier string) bool {
	if qualifier == "" || qualifier == registry.Latest || registry.IsVersionNumber(qualifier) {
		_, ok := g.cfg.Functions.Version(name, qualifier)
		return ok
	}
	_, ok := g.cfg.Functions.Alias(name, qualifier)
	return ok
}

// checkTarget checks a destination or dead-letter ARN beyond its syntax
// (which the registry checks): a function it names must exist, with the
// version or alias it names.
func (g *Gateway) checkTarget(field, arn string) error {
	if arn == "" {
		return nil
	}
	d, err := registry.ParseDestination(field, arn)
	if err != nil {
		return err
	}
	if d.Kind != registry.DestinationFunction {
		return nil
	}
	if _, ok := g.cfg.Functions.Get(d.Name); !ok {
		return &registry.ValidationError{Field: field, Message: fmt.Sprintf("%s %s names the function %s, which does not exist", field, arn, d.Name)}
	}
	if d.Qualifier != "" && !g.qualifierExists(d.Name, d.Qualifier) {
		return &registry.ValidationError{Field: field, Message: fmt.Sprintf("%s %s names %s:%s, which does not exist", field, arn, d.Name, d.Qualifier)}
	}
	return nil
}

// setDeadLetter applies a DeadLetterConfig from CreateFunction or
// UpdateFunctionConfiguration to f (nil leaves f alone; an empty
// TargetArn removes the target).
func (g *Gateway) setDeadLetter(f *registry.Function, c *api.DeadLetterConfig) error {
	if c == nil {
		return nil
	}
	target := ""
	if c.TargetArn != nil {
		target = *c.TargetArn
	}
	f.DeadLetterTarget = target
	if d, err := registry.ParseDestination("", target); err == nil && d.Kind == registry.DestinationFunction && d.Name == f.Name {
		return nil // the registry refuses a function as its own target
	}
	if err := g.checkTarget("DeadLetterConfig.TargetArn", target); err != nil {
		return err
	}
	return nil
}

// deadLetterConfig renders f's dead-letter target (nil when none).
func deadLetterConfig(f *registry.Function) *api.DeadLetterConfig {
	if f.DeadLetterTarget == "" {
		return nil
	}
	t := f.DeadLetterTarget
	return &api.DeadLetterConfig{TargetArn: &t}
}

// applyEventInvoke folds a request into c: every field the request sets
// replaces c's; with replace, fields it leaves out are removed (Put),
// else kept (Update). An OnSuccess or OnFailure without a Destination
// removes that destination.
func applyEventInvoke(c *registry.EventInvokeConfig, req *api.EventInvokeConfigRequest, replace bool) {
	if replace {
		*c = registry.EventInvokeConfig{}
	}
	if req.MaximumRetryAttempts != nil {
		v := int(*req.MaximumRetryAttempts)
		c.MaximumRetryAttempts = &v
	}
	if req.MaximumEventAgeInSeconds != nil {
		v := int(*req.MaximumEventAgeInSeconds)
		c.MaximumEventAgeSec = &v
	}
	if d := req.DestinationConfig; d != nil {
		if d.OnSuccess != nil {
			c.OnSuccess = ""
			if d.OnSuccess.Destination != nil {
				c.OnSuccess = *d.OnSuccess.Destination
			}
		}
		if d.OnFailure != nil {
			c.OnFailure = ""
			if d.OnFailure.Destination != nil {
				c.OnFailure = *d.OnFailure.Destination
			}
		}
	}
}

// eventInvokeConfig renders one qualifier's settings as Lambda does.
func (g *Gateway) eventInvokeConfig(name, qualifier string, c *registry.EventInvokeConfig) api.FunctionEventInvokeConfig {
	out := api.FunctionEventInvokeConfig{
		FunctionArn:  g.arn(name) + ":" + qualifier,
		LastModified: float64(c.LastModified.UnixMilli()) / 1000,
		DestinationConfig: &api.DestinationConfig{
			OnSuccess: &api.OnDestination{},
			OnFailure: &api.OnDestination{},
		},
	}
	if c.MaximumRetryAttempts != nil {
		v := int32(*c.MaximumRetryAttempts)
		out.MaximumRetryAttempts = &v
	}
	if c.MaximumEventAgeSec != nil {
		v := int32(*c.MaximumEventAgeSec)
		out.MaximumEventAgeInSeconds = &v
	}
	if c.OnSuccess != "" {
		s := c.OnSuccess
		out.DestinationConfig.OnSuccess.Destination = &s
	}
	if c.OnFailure != "" {
		s := c.OnFailure
		out.DestinationConfig.OnFailure.Destination = &s
	}
	return out
}

func (g *Gateway) noEventInvokeConfig(name, qualifier string) *api.Error {
	return &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound,
		Message: fmt.Sprintf("The function %s:%s doesn't have an EventInvokeConfig", g.arn(name), qualifier)}
}

func (g *Gateway) putEventInvokeConfig(w http.ResponseWriter, r *http.Request, body []byte) {
	g.writeEventInvokeConfig(w, r, body, true)
}

func (g *Gateway) updateEventInvokeConfig(w http.ResponseWriter, r *http.Request, body []byte) {
	g.writeEventInvokeConfig(w, r, body, false)
}

// writeEventInvokeConfig puts (replace) or updates one qualifier's
// settings. They are stored on $LATEST as a function-level setting, so
// the function keeps its RevisionId.
func (g *Gateway) writeEventInvokeConfig(w http.ResponseWriter, r *http.Request, body []byte, replace bool) {
	fn, qualifier, aerr := g.eventInvokeTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var req api.EventInvokeConfigRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	if !replace && fn.EventInvokeFor(qualifier) == nil {
		g.writeError(w, r, g.noEventInvokeConfig(fn.Name, qualifier))
		return
	}
	if d := req.DestinationConfig; d != nil {
		for _, dest := range []struct {
			field string
			on    *api.OnDestination
		}{{"DestinationConfig.OnSuccess.Destination", d.OnSuccess}, {"DestinationConfig.OnFailure.Destination", d.OnFailure}} {
			if dest.on == nil || dest.on.Destination == nil {
				continue
			}
			if err := g.checkTarget(dest.field, *dest.on.Destination); err != nil {
				g.writeError(w, r, g.apiError(err, fn.Name))
				return
			}
		}
	}
	var stored *registry.EventInvokeConfig
	_, err := g.cfg.Control.UpdateSettings(r.Context(), fn.Name, func(f *registry.Function) error {
		c := f.EventInvoke[qualifier]
		if c == nil {
			if !replace {
				return g.noEventInvokeConfig(fn.Name, qualifier)
			}
			c = &registry.EventInvokeConfig{}
		}
		applyEventInvoke(c, &req, replace)
		c.LastModified = time.Now().UTC()
		if f.EventInvoke == nil {
			f.EventInvoke = map[string]*registry.EventInvokeConfig{}
		}
		f.EventInvoke[qualifier] = c
		stored = c
		return nil
	})
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	writeJSON(w, http.StatusOK, g.eventInvokeConfig(fn.Name, qualifier, stored))
}

func (g *Gateway) getEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, qualifier, aerr := g.eventInvokeTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	c := fn.EventInvokeFor(qualifier)
	if c == nil {
		g.writeError(w, r, g.noEventInvokeConfig(fn.Name, qualifier))
		return
	}
	writeJSON(w, http.StatusOK, g.eventInvokeConfig(fn.Name, qualifier, c))
}

func (g *Gateway) deleteEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, qualifier, aerr := g.eventInvokeTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	if fn.EventInvokeFor(qualifier) == nil {
		g.writeError(w, r, g.noEventInvokeConfig(fn.Name, qualifier))
		return
	}
	_, err := g.cfg.Control.UpdateSettings(r.Context(), fn.Name, func(f *registry.Function) error {
		if f.EventInvoke[qualifier] == nil {
			return g.noEventInvokeConfig(fn.Name, qualifier)
		}
		delete(f.EventInvoke, qualifier)
		if len(f.EventInvoke) == 0 {
			f.EventInvoke = nil
		}
		return nil
	})
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) listEventInvokeConfigs(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	marker, max, ok := g.pageParams(w, r)
	if !ok {
		return
	}
	// $LATEST, then versions by number, then aliases by name. Settings of
	// a version or alias deleted since are left out.
	var qualifiers []string
	for q := range fn.EventInvoke {
		if g.qualifierExists(fn.Name, q) {
			qualifiers = append(qualifiers, q)
		}
	}
	slices.SortFunc(qualifiers, compareQualifiers)
	items, next := pageOf(qualifiers, func(q string) string { return q }, marker, max)
	resp := api.ListFunctionEventInvokeConfigsResponse{FunctionEventInvokeConfigs: []api.FunctionEventInvokeConfig{}, NextMarker: next}
	for _, q := range items {
		resp.FunctionEventInvokeConfigs = append(resp.FunctionEventInvokeConfigs, g.eventInvokeConfig(fn.Name, q, fn.EventInvoke[q]))
	}
	writeJSON(w, http.StatusOK, resp)
}

// compareQualifiers orders $LATEST first, then versions by number, then
// aliases by name.
func compareQualifiers(a, b string) int {
	rank := func(q string) int {
		switch {
		case q == registry.Latest:
			return 0
		case registry.IsVersionNumber(q):
			return 1
		}
		return 2
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	if registry.IsVersionNumber(a) && len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
