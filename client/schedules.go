package client

// Schedules: functions invoked asynchronously on a cron expression or at
// a rate.

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gustfaas/gust/api"
)

// schedulesPath returns the path segments of the schedule collection, or
// of one schedule.
func schedulesPath(name ...string) []string {
	return append(strings.Split(strings.TrimPrefix(api.SchedulesPath, "/"), "/"), name...)
}

func checkScheduleName(name string) error {
	if name == "" {
		return errors.New("client: schedule name is empty")
	}
	return nil
}

// CreateSchedule creates a schedule. A schedule of the same name is an
// *api.Error with Code ResourceConflictException; an invalid one,
// InvalidParameterValueException with a message naming the problem.
func (c *Client) CreateSchedule(ctx context.Context, in api.CreateScheduleRequest) (api.Schedule, error) {
	var out api.Schedule
	if err := checkScheduleName(in.Name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPost, schedulesPath(), nil, in, &out)
	return out, err
}

// GetSchedule returns a schedule; a missing one is an *api.Error with
// Code ResourceNotFoundException.
func (c *Client) GetSchedule(ctx context.Context, name string) (api.Schedule, error) {
	var out api.Schedule
	if err := checkScheduleName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, schedulesPath(name), nil, nil, &out)
	return out, err
}

// ListSchedules returns every schedule, sorted by name.
func (c *Client) ListSchedules(ctx context.Context) ([]api.Schedule, error) {
	var out api.ScheduleList
	if err := c.doJSON(ctx, http.MethodGet, schedulesPath(), nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Schedules == nil {
		out.Schedules = []api.Schedule{}
	}
	return out.Schedules, nil
}

// UpdateSchedule changes the fields in sets and keeps the others.
func (c *Client) UpdateSchedule(ctx context.Context, name string, in api.UpdateScheduleRequest) (api.Schedule, error) {
	var out api.Schedule
	if err := checkScheduleName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPut, schedulesPath(name), nil, in, &out)
	return out, err
}

// PauseSchedule stops a schedule's ticks until ResumeSchedule; the ticks
// in between are never fired.
func (c *Client) PauseSchedule(ctx context.Context, name string) (api.Schedule, error) {
	paused := true
	return c.UpdateSchedule(ctx, name, api.UpdateScheduleRequest{Paused: &paused})
}

// ResumeSchedule starts a paused schedule's ticks again.
func (c *Client) ResumeSchedule(ctx context.Context, name string) (api.Schedule, error) {
	paused := false
	return c.UpdateSchedule(ctx, name, api.UpdateScheduleRequest{Paused: &paused})
}

// DeleteSchedule deletes a schedule.
func (c *Client) DeleteSchedule(ctx context.Context, name string) error {
	if err := checkScheduleName(name); err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, schedulesPath(name), nil, nil, nil)
}
