package gateway

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
)

// urlConfigRoutes registers the function URL configuration operations:
// Create, Get, Update and Delete on URLConfigPath/{name}/url (qualified
// by ?Qualifier= or a qualified name, for an alias's URL), and
// ListFunctionUrlConfigs on URLConfigPath/{name}/urls.
func (g *Gateway) urlConfigRoutes(route func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte))) {
	p := api.URLConfigPath + "/{name}/url"
	route("POST "+p, "lambda:CreateFunctionUrlConfig", 0, g.createURLConfig)
	route("GET "+p, "lambda:GetFunctionUrlConfig", 0, g.getURLConfig)
	route("PUT "+p, "lambda:UpdateFunctionUrlConfig", 0, g.updateURLConfig)
	route("DELETE "+p, "lambda:DeleteFunctionUrlConfig", 0, g.deleteURLConfig)
	route("GET "+api.URLConfigPath+"/{name}/urls", "lambda:ListFunctionUrlConfigs", 0, g.listURLConfigs)
}

// urlTarget is the function URL a configuration operation addresses: the
// function's unqualified URL (alias empty) or NAME:ALIAS's.
type urlTarget struct {
	name, alias string
	// cfg is the current configuration (nil: none).
	cfg *registry.URLConfig
}

// urlConfigTarget resolves {name} and ?Qualifier= to a function URL. The
// qualifier is empty or $LATEST (the unqualified URL) or an alias; a
// version number is refused, as on Lambda.
func (g *Gateway) urlConfigTarget(r *http.Request) (urlTarget, *api.Error) {
	raw := r.PathValue("name")
	name, q, err := registry.ParseName(raw)
	if err != nil {
		return urlTarget{}, g.apiError(err, raw)
	}
	if qp := r.URL.Query().Get("Qualifier"); qp != "" {
		if q != "" && q != qp {
			return urlTarget{}, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
				Message: fmt.Sprintf("The derived qualifier from the function name (%s) does not match the specified qualifier (%s)", q, qp)}
		}
		q = qp
	}
	if q == registry.Latest {
		q = ""
	}
	if q != "" && strings.Trim(q, "0123456789") == "" {
		return urlTarget{}, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$) (a function URL belongs to the function or to an alias, not to a version number)", q)}
	}
	if q != "" {
		if err := registry.ValidateAliasName(q); err != nil {
			return urlTarget{}, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
				Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)", q)}
		}
	}
	fn, ok := g.cfg.Functions.Get(name)
	if !ok {
		return urlTarget{}, g.notFound(name)
	}
	if q == "" {
		return urlTarget{name: name, cfg: fn.URL}, nil
	}
	a, ok := g.cfg.Functions.Alias(name, q)
	if !ok {
		return urlTarget{}, g.qualifiedNotFound(registry.ErrNotFound, name, q)
	}
	return urlTarget{name: name, alias: q, cfg: a.URL}, nil
}

// noURLConfig is the answer for a function URL without a configuration.
func (g *Gateway) noURLConfig(t urlTarget) *api.Error {
	return &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound,
		Message: fmt.Sprintf("The resource you requested does not exist: %s has no function URL configuration", g.qualifiedArn(t.name, t.alias))}
}

// changeURL replaces the target's configuration with what change returns
// for the current one, and returns the stored result. Only the URL
// changes: no recompilation, warm instances stay. change may run more than
// once.
func (g *Gateway) changeURL(ctx context.Context, t urlTarget, change func(cur *registry.URLConfig) (*registry.URLConfig, error)) (*registry.URLConfig, error) {
	if t.alias == "" {
		f, err := g.cfg.Control.UpdateSettings(ctx, t.name, func(f *registry.Function) error {
			u, err := change(f.URL)
			f.URL = u
			return err
		})
		if err != nil {
			return nil, err
		}
		return f.URL, nil
	}
	a, err := g.cfg.Control.UpdateAliasSettings(ctx, t.name, t.alias, func(a *registry.Alias) error {
		u, err := change(a.URL)
		a.URL = u
		return err
	})
	if err != nil {
		return nil, err
	}
	return a.URL, nil
}

// corsFromAPI converts a request's CORS block; an empty block is no CORS.
func corsFromAPI(c *api.Cors) *registry.Cors {
	if c == nil {
		return nil
	}
	rc := &registry.Cors{
		AllowCredentials: c.AllowCredentials,
		AllowHeaders:     slices.Clone(c.AllowHeaders),
		AllowMethods:     slices.Clone(c.AllowMethods),
		AllowOrigins:     slices.Clone(c.AllowOrigins),
		ExposeHeaders:    slices.Clone(c.ExposeHeaders),
		MaxAge:           int(c.MaxAge),
	}
	if !rc.AllowCredentials && rc.MaxAge == 0 && len(rc.AllowHeaders)+len(rc.AllowMethods)+len(rc.AllowOrigins)+len(rc.ExposeHeaders) == 0 {
		return nil
	}
	return rc
}

func corsToAPI(c *registry.Cors) *api.Cors {
	if c == nil {
		return nil
	}
	return &api.Cors{
		AllowCredentials: c.AllowCredentials,
		AllowHeaders:     c.AllowHeaders,
		AllowMethods:     c.AllowMethods,
		AllowOrigins:     c.AllowOrigins,
		ExposeHeaders:    c.ExposeHeaders,
		MaxAge:           int32(c.MaxAge),
	}
}

// urlTimeLayout is the layout of CreationTime and LastModifiedTime.
const urlTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// functionURLOf is the URL that serves t, on the host the request reached.
func functionURLOf(r *http.Request, t urlTarget) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	path := t.name
	if t.alias != "" {
		path += ":" + t.alias
	}
	return scheme + "://" + r.Host + "/fn/" + path + "/"
}

func (g *Gateway) urlConfigJSON(r *http.Request, t urlTarget, u *registry.URLConfig) api.FunctionURLConfig {
	mode := u.InvokeMode
	if mode == "" {
		mode = "BUFFERED"
	}
	return api.FunctionURLConfig{
		FunctionURL:      functionURLOf(r, t),
		FunctionArn:      g.qualifiedArn(t.name, t.alias),
		AuthType:         u.AuthType,
		Cors:             corsToAPI(u.Cors),
		CreationTime:     u.Created.UTC().Format(urlTimeLayout),
		LastModifiedTime: u.Modified.UTC().Format(urlTimeLayout),
		InvokeMode:       mode,
	}
}

func (g *Gateway) createURLConfig(w http.ResponseWriter, r *http.Request, body []byte) {
	t, aerr := g.urlConfigTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var req api.FunctionURLConfigRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	now := g.cfg.Now().UTC()
	stored, err := g.changeURL(r.Context(), t, func(cur *registry.URLConfig) (*registry.URLConfig, error) {
		if cur != nil {
			return cur, &api.Error{Code: api.ErrResourceConflict, Status: http.StatusConflict,
				Message: fmt.Sprintf("Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function", g.qualifiedArn(t.name, t.alias))}
		}
		u := &registry.URLConfig{AuthType: req.AuthType, Cors: corsFromAPI(req.Cors), InvokeMode: req.InvokeMode, Created: now, Modified: now}
		return u, registry.ValidateURLConfig(u)
	})
	if err != nil {
		g.writeError(w, r, g.apiError(err, t.name))
		return
	}
	writeJSON(w, http.StatusCreated, g.urlConfigJSON(r, t, stored))
}

func (g *Gateway) getURLConfig(w http.ResponseWriter, r *http.Request, _ []byte) {
	t, aerr := g.urlConfigTarget(r)
	if aerr == nil && t.cfg == nil {
		aerr = g.noURLConfig(t)
	}
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	writeJSON(w, http.StatusOK, g.urlConfigJSON(r, t, t.cfg))
}

func (g *Gateway) updateURLConfig(w http.ResponseWriter, r *http.Request, body []byte) {
	t, aerr := g.urlConfigTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var req api.FunctionURLConfigRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	now := g.cfg.Now().UTC()
	stored, err := g.changeURL(r.Context(), t, func(cur *registry.URLConfig) (*registry.URLConfig, error) {
		if cur == nil {
			return nil, g.noURLConfig(t)
		}
		u := cur.Clone()
		if req.AuthType != "" {
			u.AuthType = req.AuthType
		}
		if req.Cors != nil {
			u.Cors = corsFromAPI(req.Cors)
		}
		if req.InvokeMode != "" {
			u.InvokeMode = req.InvokeMode
		}
		u.Modified = now
		return u, registry.ValidateURLConfig(u)
	})
	if err != nil {
		g.writeError(w, r, g.apiError(err, t.name))
		return
	}
	writeJSON(w, http.StatusOK, g.urlConfigJSON(r, t, stored))
}

func (g *Gateway) deleteURLConfig(w http.ResponseWriter, r *http.Request, _ []byte) {
	t, aerr := g.urlConfigTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	_, err := g.changeURL(r.Context(), t, func(cur *registry.URLConfig) (*registry.URLConfig, error) {
		if cur == nil {
			return nil, g.noURLConfig(t)
		}
		return nil, nil
	})
	if err != nil {
		g.writeError(w, r, g.apiError(err, t.name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) listURLConfigs(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	marker, max, ok := g.pageParams(w, r)
	if !ok {
		return
	}
	var all []urlTarget
	if fn.URL != nil {
		all = append(all, urlTarget{name: fn.Name, cfg: fn.URL})
	}
	for _, a := range g.cfg.Functions.Aliases(fn.Name) {
		if a.URL != nil {
			all = append(all, urlTarget{name: fn.Name, alias: a.Name, cfg: a.URL})
		}
	}
	items, next := pageOf(all, func(t urlTarget) string {
		if t.alias == "" {
			return registry.Latest
		}
		return t.alias
	}, marker, max)
	resp := api.ListFunctionURLConfigsResponse{FunctionURLConfigs: []api.FunctionURLConfig{}, NextMarker: next}
	for _, t := range items {
		resp.FunctionURLConfigs = append(resp.FunctionURLConfigs, g.urlConfigJSON(r, t, t.cfg))
	}
	writeJSON(w, http.StatusOK, resp)
}

// CORS, as function URLs apply it. With a CORS configuration the gateway
// owns every Access-Control-* response header: it answers preflights
// itself and replaces what the function set on actual responses. Without
// one, requests and responses pass through untouched (the function may do
// its own CORS).

// corsResponseHeaders are the headers the gateway owns under a CORS
// configuration.
var corsResponseHeaders = []string{
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers",
	"Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age",
}

// maxOriginLen bounds the Origin header the matcher looks at.
const maxOriginLen = 2048

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// matchOrigin reports whether origin matches one AllowOrigins entry,
// ignoring case. "*" matches every origin. Elsewhere '*' matches any run
// of characters other than '/', so "https://*.example.com" matches
// "https://api.example.com" and "http://localhost:*" any local port.
func matchOrigin(pattern, origin string) bool {
	if pattern == "*" {
		return true
	}
	if !strings.Contains(pattern, "*") {
		return strings.EqualFold(pattern, origin)
	}
	pattern, origin = asciiLower(pattern), asciiLower(origin)
	ps, ss := strings.Split(pattern, "/"), strings.Split(origin, "/")
	if len(ps) != len(ss) {
		return false
	}
	for i := range ps {
		if !globMatch(ps[i], ss[i]) {
			return false
		}
	}
	return true
}

// asciiLower lowercases ASCII letters only (origins are ASCII; other
// bytes are kept as they are).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// globMatch matches s against p, where '*' matches any run of characters,
// in time linear in len(p)*len(s) at worst.
func globMatch(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// corsAllowOrigin is the Access-Control-Allow-Origin value for origin
// under c, or "" when origin is not allowed. An allowed "*" answers "*"
// unless credentials are allowed (browsers refuse "*" with credentials);
// every other match echoes the origin.
func corsAllowOrigin(c *registry.Cors, origin string) string {
	if origin == "" || len(origin) > maxOriginLen || strings.ContainsAny(origin, "\r\n") {
		return ""
	}
	for _, p := range c.AllowOrigins {
		if !matchOrigin(p, origin) {
			continue
		}
		if p == "*" && !c.AllowCredentials {
			return "*"
		}
		return origin
	}
	return ""
}

// addVary adds v to the Vary header unless it is there.
func addVary(h http.Header, v string) {
	for _, line := range h.Values("Vary") {
		for _, f := range strings.Split(line, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, v) {
				return
			}
		}
	}
	h.Add("Vary", v)
}

// setCORSHeaders sets the CORS headers of an actual response to a request
// from origin, replacing any the function set.
func setCORSHeaders(h http.Header, c *registry.Cors, origin string) {
	for _, k := range corsResponseHeaders {
		h.Del(k)
	}
	addVary(h, "Origin")
	allow := corsAllowOrigin(c, origin)
	if allow == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", allow)
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ", "))
	}
}

// setPreflightHeaders sets the headers that answer preflight r under c.
// A "*" in AllowMethods or AllowHeaders echoes what the browser asks for,
// which also works with credentials.
func setPreflightHeaders(h http.Header, c *registry.Cors, r *http.Request) {
	addVary(h, "Origin")
	allow := corsAllowOrigin(c, r.Header.Get("Origin"))
	if allow == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", allow)
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.AllowMethods) > 0 {
		methods := make([]string, len(c.AllowMethods))
		for i, m := range c.AllowMethods {
			methods[i] = strings.ToUpper(m)
		}
		if slices.Contains(methods, "*") {
			methods = []string{strings.ToUpper(r.Header.Get("Access-Control-Request-Method"))}
		}
		h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	}
	if len(c.AllowHeaders) > 0 {
		if slices.Contains(c.AllowHeaders, "*") {
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			}
		} else {
			h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ", "))
		}
	}
	if c.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(c.MaxAge))
	}
}

// corsWriter applies a CORS configuration to a response just before its
// header is written, after the function's headers are in place.
type corsWriter struct {
	http.ResponseWriter
	cors   *registry.Cors
	origin string
	wrote  bool
}

func (cw *corsWriter) WriteHeader(code int) {
	if !cw.wrote && code >= 200 {
		cw.wrote = true
		setCORSHeaders(cw.Header(), cw.cors, cw.origin)
	}
	cw.ResponseWriter.WriteHeader(code)
}

func (cw *corsWriter) Write(b []byte) (int, error) {
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	return cw.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (cw *corsWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }
