package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/trigger/manager"
)

// TriggerManager stores and runs triggers (implemented by
// *manager.Manager). Its errors are *manager.ValidationError,
// manager.ErrNotFound and manager.ErrExists (wrapped), or others.
type TriggerManager interface {
	Create(ctx context.Context, t api.Trigger) (api.Trigger, error)
	Put(ctx context.Context, t api.Trigger) (api.Trigger, error)
	Get(ctx context.Context, name string) (api.TriggerStatus, error)
	List(ctx context.Context) ([]api.TriggerStatus, error)
	Delete(ctx context.Context, name string) error
}

var _ TriggerManager = (*manager.Manager)(nil)

// triggerRoutes registers the trigger endpoints (the path names the
// trigger with {trigger}: authorization reads {name} as a function).
func (g *Gateway) triggerRoutes(route func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte))) {
	if g.cfg.Triggers == nil {
		return
	}
	p := api.TriggersPath
	route("POST "+p, "gust:CreateTrigger", 0, g.createTrigger)
	route("GET "+p, "gust:ListTriggers", 0, g.listTriggers)
	route("GET "+p+"/{$}", "gust:ListTriggers", 0, g.listTriggers)
	route("GET "+p+"/{trigger}", "gust:GetTrigger", 0, g.getTrigger)
	route("PUT "+p+"/{trigger}", "gust:PutTrigger", 0, g.putTrigger)
	route("DELETE "+p+"/{trigger}", "gust:DeleteTrigger", 0, g.deleteTrigger)
}

func (g *Gateway) triggerError(err error, name string) *api.Error {
	var ve *manager.ValidationError
	switch {
	case errors.As(err, &ve):
		return &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest, Message: ve.Message}
	case errors.Is(err, manager.ErrNotFound):
		return &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound, Message: "Trigger not found: " + name}
	case errors.Is(err, manager.ErrExists):
		return &api.Error{Code: api.ErrResourceConflict, Status: http.StatusConflict, Message: "Trigger already exists: " + name}
	}
	return g.apiError(err, name)
}

func (g *Gateway) createTrigger(w http.ResponseWriter, r *http.Request, body []byte) {
	var t api.Trigger
	if !g.decodeJSON(w, r, body, &t) {
		return
	}
	out, err := g.cfg.Triggers.Create(r.Context(), t)
	if err != nil {
		g.writeError(w, r, g.triggerError(err, t.Name))
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (g *Gateway) putTrigger(w http.ResponseWriter, r *http.Request, body []byte) {
	var t api.Trigger
	if !g.decodeJSON(w, r, body, &t) {
		return
	}
	name := r.PathValue("trigger")
	if t.Name == "" {
		t.Name = name
	}
	if t.Name != name {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: "the trigger's name " + t.Name + " differs from the name in the path, " + name})
		return
	}
	out, err := g.cfg.Triggers.Put(r.Context(), t)
	if err != nil {
		g.writeError(w, r, g.triggerError(err, name))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) listTriggers(w http.ResponseWriter, r *http.Request, _ []byte) {
	list, err := g.cfg.Triggers.List(r.Context())
	if err != nil {
		g.writeError(w, r, g.triggerError(err, ""))
		return
	}
	if list == nil {
		list = []api.TriggerStatus{}
	}
	writeJSON(w, http.StatusOK, api.TriggerList{Triggers: list})
}

func (g *Gateway) getTrigger(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := r.PathValue("trigger")
	s, err := g.cfg.Triggers.Get(r.Context(), name)
	if err != nil {
		g.writeError(w, r, g.triggerError(err, name))
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (g *Gateway) deleteTrigger(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := r.PathValue("trigger")
	if err := g.cfg.Triggers.Delete(r.Context(), name); err != nil {
		g.writeError(w, r, g.triggerError(err, name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
