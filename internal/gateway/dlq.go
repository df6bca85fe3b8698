package gateway

import (
	"context"
	"net/http"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
)

// DeadLetterStore holds the dead letters of functions whose failed
// asynchronous invocations had nowhere else to go.
type DeadLetterStore interface {
	// DeadLetters lists a function's dead letters, oldest first (payloads
	// only when withPayload).
	DeadLetters(ctx context.Context, function string, withPayload bool) ([]api.DeadLetter, error)
	// Replay enqueues a function's dead letter id (all of them when id is
	// empty) as new invocations and removes it. An unknown id is an
	// *api.Error (ResourceNotFoundException).
	Replay(ctx context.Context, function, id string) ([]api.Replayed, error)
}

// deadLetterRoutes registers Gust's dead-letter endpoints.
func (g *Gateway) deadLetterRoutes(route func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte))) {
	route("GET "+api.DeadLettersPath+"/{name}", "gust:ListDeadLetters", 0, g.listDeadLetters)
	route("POST "+api.DeadLettersPath+"/{name}/replay", "gust:ReplayDeadLetters", 0, g.replayDeadLetters)
}

func (g *Gateway) listDeadLetters(w http.ResponseWriter, r *http.Request, _ []byte) {
	// A deleted function's dead letters stay readable: only the name is
	// checked.
	raw := r.PathValue("name")
	name, q, err := registry.ParseName(raw)
	if err == nil && q != "" {
		err = &registry.ValidationError{Field: "functionName", Message: raw + ": dead letters belong to a function; remove the qualifier"}
	}
	if err != nil {
		g.writeError(w, r, g.apiError(err, raw))
		return
	}
	letters, err := g.cfg.DeadLetters.DeadLetters(r.Context(), name, r.URL.Query().Get("payload") == "1")
	if err != nil {
		g.writeError(w, r, g.apiError(err, name))
		return
	}
	if letters == nil {
		letters = []api.DeadLetter{}
	}
	writeJSON(w, http.StatusOK, api.DeadLetterList{DeadLetters: letters})
}

func (g *Gateway) replayDeadLetters(w http.ResponseWriter, r *http.Request, body []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var req api.ReplayRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	replayed, err := g.cfg.DeadLetters.Replay(r.Context(), fn.Name, req.ID)
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	if replayed == nil {
		replayed = []api.Replayed{}
	}
	writeJSON(w, http.StatusOK, api.ReplayResponse{Replayed: replayed})
}
