package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/trigger/schedule"
)

// ScheduleManager stores schedules (implemented by *schedule.Scheduler).
// Its errors are *schedule.ValidationError, schedule.ErrNotFound and
// schedule.ErrExists (wrapped), or others.
type ScheduleManager interface {
	Create(ctx context.Context, in api.CreateScheduleRequest) (api.Schedule, error)
	Get(ctx context.Context, name string) (api.Schedule, error)
	List(ctx context.Context) ([]api.Schedule, error)
	Update(ctx context.Context, name string, in api.UpdateScheduleRequest) (api.Schedule, error)
	Delete(ctx context.Context, name string) error
}

var _ ScheduleManager = (*schedule.Scheduler)(nil)

// scheduleRoutes registers the schedule endpoints. The path names the
// schedule with {schedule}, not {name}: authorization reads {name} as a
// function.
func (g *Gateway) scheduleRoutes(route func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte))) {
	if g.cfg.Schedules == nil {
		return
	}
	const limit = api.MaxSchedulePayload + 64<<10
	p := api.SchedulesPath
	route("POST "+p, "gust:CreateSchedule", limit, g.createSchedule)
	route("GET "+p, "gust:ListSchedules", 0, g.listSchedules)
	route("GET "+p+"/{$}", "gust:ListSchedules", 0, g.listSchedules)
	route("GET "+p+"/{schedule}", "gust:GetSchedule", 0, g.getSchedule)
	route("PUT "+p+"/{schedule}", "gust:UpdateSchedule", limit, g.updateSchedule)
	route("DELETE "+p+"/{schedule}", "gust:DeleteSchedule", 0, g.deleteSchedule)
}

// scheduleError maps the schedule store's errors to Lambda-style ones.
func (g *Gateway) scheduleError(err error, name string) *api.Error {
	var ve *schedule.ValidationError
	switch {
	case errors.As(err, &ve):
		return &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest, Message: ve.Message}
	case errors.Is(err, schedule.ErrNotFound):
		return &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound, Message: "Schedule not found: " + name}
	case errors.Is(err, schedule.ErrExists):
		return &api.Error{Code: api.ErrResourceConflict, Status: http.StatusConflict, Message: "Schedule already exists: " + name}
	}
	return g.apiError(err, name)
}

func (g *Gateway) createSchedule(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.CreateScheduleRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	s, err := g.cfg.Schedules.Create(r.Context(), req)
	if err != nil {
		g.writeError(w, r, g.scheduleError(err, req.Name))
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

func (g *Gateway) listSchedules(w http.ResponseWriter, r *http.Request, _ []byte) {
	list, err := g.cfg.Schedules.List(r.Context())
	if err != nil {
		g.writeError(w, r, g.scheduleError(err, ""))
		return
	}
	if list == nil {
		list = []api.Schedule{}
	}
	writeJSON(w, http.StatusOK, api.ScheduleList{Schedules: list})
}

func (g *Gateway) getSchedule(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := r.PathValue("schedule")
	s, err := g.cfg.Schedules.Get(r.Context(), name)
	if err != nil {
		g.writeError(w, r, g.scheduleError(err, name))
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (g *Gateway) updateSchedule(w http.ResponseWriter, r *http.Request, body []byte) {
	name := r.PathValue("schedule")
	var req api.UpdateScheduleRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	s, err := g.cfg.Schedules.Update(r.Context(), name, req)
	if err != nil {
		g.writeError(w, r, g.scheduleError(err, name))
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (g *Gateway) deleteSchedule(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := r.PathValue("schedule")
	if err := g.cfg.Schedules.Delete(r.Context(), name); err != nil {
		g.writeError(w, r, g.scheduleError(err, name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
