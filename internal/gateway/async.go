package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/async"
	"github.com/gustfaas/gust/internal/registry"
)

// Asynchronous invocation: paths and headers Gust adds to Lambda's.
const (
	// HeaderGustInvocationType set to Event makes a function URL request
	// an asynchronous invocation.
	HeaderGustInvocationType = "X-Gust-Invocation-Type"
	// HeaderIdempotencyKey carries a client's idempotency key for an
	// asynchronous invocation.
	HeaderIdempotencyKey = "X-Gust-Idempotency-Key"
	// HeaderDuplicate is "true" on a 202 that repeated an earlier
	// invocation (its request id is the first one's).
	HeaderDuplicate = "X-Gust-Duplicate"
)

// AsyncQueue stores asynchronous invocations and reads their records
// (async.Queue).
type AsyncQueue interface {
	Enqueue(ctx context.Context, r async.Request) (async.Accepted, error)
	Record(ctx context.Context, id string) (async.Record, error)
}

var _ AsyncQueue = (*async.Queue)(nil)

// asyncRoutes registers the asynchronous invocation endpoints.
func (g *Gateway) asyncRoutes(route func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte))) {
	if g.cfg.Async == nil {
		return
	}
	route("GET "+api.InvocationsPath+"/{id}", "gust:GetInvocation", 0, g.getInvocation)
}

func (g *Gateway) getInvocation(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("id")
	rec, err := g.cfg.Async.Record(r.Context(), id)
	if errors.Is(err, async.ErrNotFound) {
		g.writeError(w, r, &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound,
			Message: fmt.Sprintf("Invocation not found: %s (unknown, or its record expired after %s)", id, async.RecordTTL)})
		return
	}
	if err != nil {
		g.writeError(w, r, g.apiError(err, ""))
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// asyncUnavailable is the answer to InvocationType Event on a node
// without a queue.
var asyncUnavailable = &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
	Message: "InvocationType Event (asynchronous invocation) is not available on this node; use RequestResponse"}

// invokeEvent serves Invoke with InvocationType Event: the invocation is
// stored durably, then answered 202 with its request id and no body.
// fn is the version resolved now (it proves the function exists); the
// qualifier is stored as asked and resolved again when the invocation
// runs, so an alias's weights apply then.
func (g *Gateway) invokeEvent(w http.ResponseWriter, r *http.Request, fn *registry.Function, body []byte) {
	if g.cfg.Async == nil {
		g.writeError(w, r, asyncUnavailable)
		return
	}
	if len(body) > async.MaxPayload {
		g.writeError(w, r, &api.Error{Code: api.ErrRequestTooLarge, Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("%d byte payload is too large for the Event invocation type (limit %d bytes)", len(body), async.MaxPayload)})
		return
	}
	payload := bytes.TrimSpace(body)
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	if !json.Valid(payload) {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidRequestContent, Status: http.StatusBadRequest,
			Message: "Could not parse request body into json: the payload is not valid JSON"})
		return
	}
	_, qualifier, _ := registry.ParseName(r.PathValue("name"))
	if q := r.URL.Query().Get("Qualifier"); q != "" {
		qualifier = q
	}
	acc, err := g.cfg.Async.Enqueue(r.Context(), async.Request{
		Function: fn.Name, Qualifier: qualifier, Payload: payload, ID: requestID(r.Context()),
		IdempotencyKey: r.Header.Get(HeaderIdempotencyKey), Source: "lambda",
	})
	if err != nil {
		g.writeError(w, r, g.asyncError(err, fn.Name))
		return
	}
	accepted(w, acc)
}

// urlEvent serves a function URL request sent with X-Gust-Invocation-Type:
// Event: the URL event is queued and the answer is 202 with the request id.
func (g *Gateway) urlEvent(w http.ResponseWriter, r *http.Request, fn *registry.Function, qualifier, rid string, payload []byte) {
	fail := func(e *api.Error) {
		w.Header().Set(api.HeaderErrorType, e.Code)
		writeJSON(w, e.Status, map[string]string{"Message": e.Message})
	}
	if g.cfg.Async == nil {
		fail(asyncUnavailable)
		return
	}
	if len(payload) > async.MaxPayload {
		fail(&api.Error{Code: api.ErrRequestTooLarge, Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("Request must be smaller than %d bytes once encoded as an event for an asynchronous invocation", async.MaxPayload)})
		return
	}
	acc, err := g.cfg.Async.Enqueue(r.Context(), async.Request{
		Function: fn.Name, Qualifier: qualifier, Payload: payload, ID: rid,
		IdempotencyKey: r.Header.Get(HeaderIdempotencyKey), Source: "url",
	})
	if err != nil {
		fail(g.asyncError(err, fn.Name))
		return
	}
	accepted(w, acc)
}

// asyncError maps an Enqueue error.
func (g *Gateway) asyncError(err error, name string) *api.Error {
	switch {
	case errors.Is(err, async.ErrTooLarge):
		return &api.Error{Code: api.ErrRequestTooLarge, Status: http.StatusRequestEntityTooLarge, Message: err.Error()}
	case errors.Is(err, async.ErrInvalid):
		return &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest, Message: err.Error()}
	}
	return g.apiError(err, name)
}

// accepted answers a stored asynchronous invocation: 202, no body.
func accepted(w http.ResponseWriter, acc async.Accepted) {
	w.Header().Set(api.HeaderRequestID, acc.RequestID)
	if acc.Duplicate {
		w.Header().Set(HeaderDuplicate, "true")
	}
	w.WriteHeader(http.StatusAccepted)
}
