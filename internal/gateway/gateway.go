// Package gateway is a node's HTTP face: function URLs (/fn/{name}/...),
// the subset of the AWS Lambda API that Gust serves (with Lambda's paths,
// JSON shapes and error shapes, authenticated with SigV4), and Gust's own
// endpoints such as logs. It maps HTTP to invocations and back; it owns no
// state of its own.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/control"
	"github.com/gustfaas/gust/internal/engine"
	"github.com/gustfaas/gust/internal/logs"
	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/sandbox"
)

// Authenticator verifies a signed request and returns the caller's key id.
type Authenticator interface {
	Verify(r *http.Request, body []byte, now time.Time) (string, error)
}

// AuthErrorMapper turns an authentication error into Lambda's error code,
// HTTP status and message.
type AuthErrorMapper func(error) (code string, status int, message string)

// Functions is the read side of the registry the gateway needs.
type Functions interface {
	Get(name string) (*registry.Function, bool)
	List() []*registry.Function
	Version(name, version string) (*registry.Function, bool)
	Versions(name string) []*registry.Function
	Alias(name, alias string) (*registry.Alias, bool)
	Aliases(name string) []*registry.Alias
	Resolve(name, qualifier string, rnd float64) (*registry.Function, *registry.Alias, error)
}

// Invoker runs invocations.
type Invoker interface {
	Invoke(ctx context.Context, fn *registry.Function, requestID string, payload []byte) (*engine.Result, error)
}

// LogReader reads function logs.
type LogReader interface {
	Read(ctx context.Context, name string, o logs.ReadOptions, fn func(api.LogEvent) error) error
}

// Config wires a Gateway.
type Config struct {
	Functions Functions
	Control   *control.Control
	Invoker   Invoker
	Logs      LogReader
	// Pools reports warm instances (optional).
	Pools PoolStatser
	// Usage serves metered usage (optional).
	Usage http.Handler
	// Metrics serves Prometheus metrics (optional).
	Metrics http.Handler
	// Isolation describes how a runtime's instances are isolated
	// (optional; shown in GetFunction).
	Isolation func(runtime string) []string
	Auth      Authenticator
	AuthError AuthErrorMapper
	// Policy says what each access key may do (optional: without it,
	// every valid signature may do everything).
	Policy KeyPolicy
	// Keys manages access keys at KeysPath (optional).
	Keys KeyManager
	// FunctionTokens verifies the bearer tokens functions are given to
	// reach their granted buckets (optional: without it, tokens are
	// refused like any unsigned request).
	FunctionTokens FunctionTokens
	// Async queues InvocationType Event invocations and serves their
	// records (optional: without it Event is refused).
	Async AsyncQueue
	// DeadLetters serves Gust's dead-letter endpoints (optional).
	DeadLetters DeadLetterStore
	// Schedules serves Gust's schedule endpoints (optional).
	Schedules ScheduleManager
	// Triggers serves Gust's trigger endpoints (optional).
	Triggers TriggerManager
	// Storage serves Gust's bucket, KV and object endpoints (optional).
	Storage StorageService
	// Publisher serves gust publish and the queue streams (optional).
	Publisher Publisher
	// Limits are the node's limits, reported by GetAccountSettings.
	Limits AccountLimits
	// Region and Account appear in ARNs.
	Region  string
	Account string
	Logger  *slog.Logger
	// Now is the clock used for signature checks (default time.Now).
	Now func() time.Time
}

// Gateway is the node's http.Handler.
type Gateway struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
}

// maxAPIBody bounds a management request: a 50 MB zip, base64 in JSON.
const maxAPIBody = control.MaxZipBytes*4/3 + 64<<10

// New builds the gateway.
func New(cfg Config) *Gateway {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	g := &Gateway{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}

	g.mux.HandleFunc("/fn/{name}", g.functionURL)
	g.mux.HandleFunc("/fn/{name}/{path...}", g.functionURL)

	fp := api.FunctionsPath
	route := func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte)) {
		g.mux.HandleFunc(pattern, g.signed(action, limit, h))
	}
	route("POST "+fp, "lambda:CreateFunction", maxAPIBody, g.createFunction)
	route("GET "+fp+"/{$}", "lambda:ListFunctions", 0, g.listFunctions)
	route("GET "+fp, "lambda:ListFunctions", 0, g.listFunctions)
	route("GET "+fp+"/{name}", "lambda:GetFunction", 0, g.getFunction)
	route("DELETE "+fp+"/{name}", "lambda:DeleteFunction", 0, g.deleteFunction)
	route("GET "+fp+"/{name}/configuration", "lambda:GetFunctionConfiguration", 0, g.getFunctionConfiguration)
	route("PUT "+fp+"/{name}/configuration", "lambda:UpdateFunctionConfiguration", maxAPIBody, g.updateFunctionConfiguration)
	route("PUT "+fp+"/{name}/code", "lambda:UpdateFunctionCode", maxAPIBody, g.updateFunctionCode)
	route("POST "+fp+"/{name}/invocations", ActionInvoke, api.MaxPayload, g.invoke)
	route("POST "+fp+"/{name}/versions", "lambda:PublishVersion", 0, g.publishVersion)
	route("GET "+fp+"/{name}/versions", "lambda:ListVersionsByFunction", 0, g.listVersions)
	route("POST "+fp+"/{name}/aliases", "lambda:CreateAlias", 0, g.createAlias)
	route("GET "+fp+"/{name}/aliases", "lambda:ListAliases", 0, g.listAliases)
	route("GET "+fp+"/{name}/aliases/{alias}", "lambda:GetAlias", 0, g.getAlias)
	route("PUT "+fp+"/{name}/aliases/{alias}", "lambda:UpdateAlias", 0, g.updateAlias)
	route("DELETE "+fp+"/{name}/aliases/{alias}", "lambda:DeleteAlias", 0, g.deleteAlias)
	route("GET "+api.LogsPath+"/{name}", "gust:ReadLogs", 0, g.readLogs)
	route("PUT /2017-10-31/functions/{name}/concurrency", "lambda:PutFunctionConcurrency", 0, g.putFunctionConcurrency)
	route("GET /2019-09-30/functions/{name}/concurrency", "lambda:GetFunctionConcurrency", 0, g.getFunctionConcurrency)
	route("DELETE /2017-10-31/functions/{name}/concurrency", "lambda:DeleteFunctionConcurrency", 0, g.deleteFunctionConcurrency)
	route("PUT /2019-09-30/functions/{name}/provisioned-concurrency", "lambda:PutProvisionedConcurrencyConfig", 0, g.putProvisionedConcurrency)
	route("GET /2019-09-30/functions/{name}/provisioned-concurrency", "lambda:GetProvisionedConcurrencyConfig", 0, g.getProvisionedConcurrency)
	route("DELETE /2019-09-30/functions/{name}/provisioned-concurrency", "lambda:DeleteProvisionedConcurrencyConfig", 0, g.deleteProvisionedConcurrency)
	route("POST "+api.TagsPath+"/{arn}", "lambda:TagResource", 0, g.tagResource)
	route("DELETE "+api.TagsPath+"/{arn}", "lambda:UntagResource", 0, g.untagResource)
	route("GET "+api.TagsPath+"/{arn}", "lambda:ListTags", 0, g.listTags)
	route("GET "+api.AccountSettingsPath, "lambda:GetAccountSettings", 0, g.getAccountSettings)
	route("GET "+api.AccountSettingsPath+"/{$}", "lambda:GetAccountSettings", 0, g.getAccountSettings)
	g.urlConfigRoutes(route)
	g.asyncRoutes(route)
	g.eventInvokeRoutes(route)
	g.scheduleRoutes(route)
	g.triggerRoutes(route)
	if cfg.Storage != nil {
		g.storageRoutes(route)
	}
	g.publishRoutes(route)
	if cfg.Keys != nil {
		g.keyRoutes(route)
	}
	if cfg.Usage != nil {
		route("GET "+api.UsagePath, "gust:GetUsage", 0, func(w http.ResponseWriter, r *http.Request, _ []byte) { cfg.Usage.ServeHTTP(w, r) })
	}
	if cfg.Metrics != nil {
		g.mux.Handle("GET "+api.MetricsPath, cfg.Metrics)
	}
	g.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	for _, prefix := range []string{"/2014-11-13/", "/2015-03-31/", "/2016-08-19/", "/2017-03-31/", "/2017-10-31/", "/2018-10-31/", "/2019-09-25/", "/2019-09-30/", "/2020-04-22/", "/2020-06-30/", "/2021-07-20/", "/2021-10-31/", "/2021-11-15/", "/2024-08-31/", "/2025-11-30/", "/2025-12-01/", "/2026-07-09/", "/gust/"} {
		route(prefix, "gust:Unknown", 0, g.unknownOperation)
	}
	return g
}

func (g *Gateway) unknownOperation(w http.ResponseWriter, r *http.Request, _ []byte) {
	g.writeError(w, r, &api.Error{Code: "UnknownOperationException", Status: http.StatusNotFound,
		Message: fmt.Sprintf("Gust does not serve %s %s", r.Method, r.URL.Path)})
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := uuid.NewString()
	r = r.WithContext(withRequestID(r.Context(), rid))
	w.Header().Set(api.HeaderRequestID, rid)
	g.mux.ServeHTTP(w, r)
}

type ridKey struct{}

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ridKey{}, id)
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ridKey{}).(string)
	return id
}

// errTooLarge marks a body over its limit.
var errTooLarge = errors.New("request body too large")

// readBody reads at most limit bytes of the body.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}

// signed wraps an API handler: it reads the body (bounded), verifies the
// signature, checks that the key may perform action, and passes the body
// on. limit 0 means a small body.
func (g *Gateway) signed(action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte)) http.HandlerFunc {
	if limit == 0 {
		limit = 1 << 20
	}
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r, limit)
		if err != nil {
			if errors.Is(err, errTooLarge) {
				g.writeError(w, r, &api.Error{Code: api.ErrRequestTooLarge, Status: http.StatusRequestEntityTooLarge,
					Message: fmt.Sprintf("Request must be smaller than %d bytes for this operation", limit)})
				return
			}
			g.writeError(w, r, &api.Error{Code: api.ErrInvalidRequestContent, Status: http.StatusBadRequest, Message: err.Error()})
			return
		}
		if tok, ok := bearerToken(r); ok && g.cfg.FunctionTokens != nil {
			// A function's own credential: only what its grants allow.
			if aerr := g.authorizeFunctionToken(r, tok, action); aerr != nil {
				g.writeError(w, r, aerr)
				return
			}
			h(w, r, body)
			return
		}
		if g.cfg.Auth != nil {
			keyID, err := g.cfg.Auth.Verify(r, body, g.cfg.Now())
			if err != nil {
				code, status, msg := api.ErrInvalidSignature, http.StatusForbidden, err.Error()
				if g.cfg.AuthError != nil {
					code, status, msg = g.cfg.AuthError(err)
				}
				g.writeError(w, r, &api.Error{Code: code, Status: status, Message: msg})
				return
			}
			if aerr := g.authorize(r, keyID, action); aerr != nil {
				g.writeError(w, r, aerr)
				return
			}
		}
		h(w, r, body)
	}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// writeError writes Lambda's error shape: the exception name in
// X-Amzn-ErrorType, and {"Type","message"} in the body.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, e *api.Error) {
	if e.Type == "" {
		e.Type = "User"
		if e.Status >= 500 {
			e.Type = "Service"
		}
	}
	w.Header().Set(api.HeaderErrorType, e.Code)
	if e.Code == api.ErrTooManyRequests {
		w.Header().Set("Retry-After", retryAfter(e.RetryAfter))
	}
	writeJSON(w, e.Status, e)
	if e.Status >= 500 {
		g.log.Error("api error", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", e.Message)
	}
}

// apiError maps an internal error to Lambda's.
func (g *Gateway) apiError(err error, name string) *api.Error {
	var ve *registry.ValidationError
	var ce *control.CodeError
	var ie *sandbox.InvalidCodeError
	var ae *api.Error
	var te *engine.ThrottleError
	var nf *registry.NotFoundError
	var ce2 *registry.ConflictError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &te):
		return &api.Error{Code: api.ErrTooManyRequests, Status: http.StatusTooManyRequests, Message: te.Message,
			Reason: te.Reason, RetryAfter: te.RetryAfter}
	case errors.As(err, &ve):
		return &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest, Message: ve.Message}
	case errors.As(err, &ce):
		return &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest, Message: ce.Reason}
	case errors.As(err, &ie):
		return &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest, Message: ie.Reason}
	case errors.As(err, &nf):
		return &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound, Message: "Function not found: " + nf.What}
	case errors.Is(err, registry.ErrNotFound):
		return g.notFound(name)
	case errors.As(err, &ce2):
		return &api.Error{Code: api.ErrResourceConflict, Status: http.StatusConflict, Message: ce2.Message}
	case errors.Is(err, registry.ErrConflict):
		return &api.Error{Code: api.ErrResourceConflict, Status: http.StatusConflict, Message: "Function already exist: " + name}
	case errors.Is(err, registry.ErrRevisionMismatch):
		return &api.Error{Code: api.ErrPreconditionFailed, Status: http.StatusPreconditionFailed,
			Message: "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id"}
	case errors.Is(err, engine.ErrClosed):
		return &api.Error{Code: api.ErrService, Status: http.StatusServiceUnavailable, Message: "the node is shutting down"}
	}
	return &api.Error{Code: api.ErrService, Status: http.StatusInternalServerError, Message: err.Error()}
}

// retryAfter renders a Retry-After header value in whole seconds (at least 1).
func retryAfter(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprint(s)
}

func (g *Gateway) arn(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", g.cfg.Region, g.cfg.Account, name)
}

func (g *Gateway) notFound(name string) *api.Error {
	return &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound, Message: "Function not found: " + g.arn(name)}
}

// resolve finds the function version a path's {name} and qualifier name
// (a name or an ARN, optionally qualified; an explicit qualifier wins). For
// an alias it returns the alias's main version; see resolveInvoke.
func (g *Gateway) resolve(raw, qualifier string) (*registry.Function, *api.Error) {
	fn, _, aerr := g.resolveWith(raw, qualifier, 1)
	return fn, aerr
}

// resolveInvoke resolves the version one invocation runs: an alias splits
// its traffic by weight.
func (g *Gateway) resolveInvoke(raw, qualifier string) (*registry.Function, *registry.Alias, *api.Error) {
	return g.resolveWith(raw, qualifier, rand.Float64())
}

func (g *Gateway) resolveWith(raw, qualifier string, rnd float64) (*registry.Function, *registry.Alias, *api.Error) {
	name, q, err := registry.ParseName(raw)
	if err != nil {
		return nil, nil, g.apiError(err, raw)
	}
	if qualifier == "" {
		qualifier = q
	} else if q != "" && q != qualifier {
		return nil, nil, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("The derived qualifier from the function name (%s) does not match the specified qualifier (%s)", q, qualifier)}
	}
	if qualifier != "" {
		if err := registry.ValidateQualifier(qualifier); err != nil {
			return nil, nil, g.apiError(err, name)
		}
	}
	fn, alias, err := g.cfg.Functions.Resolve(name, qualifier, rnd)
	if err != nil {
		return nil, nil, g.qualifiedNotFound(err, name, qualifier)
	}
	return fn, alias, nil
}

// qualifiedNotFound renders a missing function, version or alias with its
// ARN, as Lambda does.
func (g *Gateway) qualifiedNotFound(err error, name, qualifier string) *api.Error {
	if !errors.Is(err, registry.ErrNotFound) {
		return g.apiError(err, name)
	}
	if _, ok := g.cfg.Functions.Get(name); !ok || qualifier == "" {
		return g.notFound(name)
	}
	return &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound,
		Message: fmt.Sprintf("Function not found: %s:%s", g.arn(name), qualifier)}
}

// qualifiedArn is a function's ARN with a qualifier unless it is $LATEST
// reported unqualified.
func (g *Gateway) qualifiedArn(name, qualifier string) string {
	if qualifier == "" {
		return g.arn(name)
	}
	return g.arn(name) + ":" + qualifier
}
