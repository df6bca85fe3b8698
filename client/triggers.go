package client

// Triggers: event sources wired to functions (bucket changes, NATS
// subjects and streams, PostgreSQL row changes).

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gustfaas/gust/api"
)

// triggersPath returns the path segments of the trigger collection, or of
// one trigger.
func triggersPath(name ...string) []string {
	return append(strings.Split(strings.TrimPrefix(api.TriggersPath, "/"), "/"), name...)
}

func checkTriggerName(name string) error {
	if name == "" {
		return errors.New("client: trigger name is empty")
	}
	return nil
}

// CreateTrigger creates a trigger and returns it as stored (a PostgreSQL
// DSN redacted). A trigger of the same name is an *api.Error with Code
// ResourceConflictException; an invalid one, or one whose source refuses
// it, InvalidParameterValueException with a message naming the problem.
func (c *Client) CreateTrigger(ctx context.Context, t api.Trigger) (api.Trigger, error) {
	var out api.Trigger
	if err := checkTriggerName(t.Name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPost, triggersPath(), nil, t, &out)
	return out, err
}

// PutTrigger creates the trigger t.Name or replaces it. A replacement
// that reads the same source resumes where the old one stopped.
func (c *Client) PutTrigger(ctx context.Context, t api.Trigger) (api.Trigger, error) {
	var out api.Trigger
	if err := checkTriggerName(t.Name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPut, triggersPath(t.Name), nil, t, &out)
	return out, err
}

// GetTrigger returns a trigger with how it runs on the node that answered;
// a missing one is an *api.Error with Code ResourceNotFoundException.
func (c *Client) GetTrigger(ctx context.Context, name string) (api.TriggerStatus, error) {
	var out api.TriggerStatus
	if err := checkTriggerName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, triggersPath(name), nil, nil, &out)
	return out, err
}

// ListTriggers returns every trigger, sorted by name, with how each runs
// on the node that answered.
func (c *Client) ListTriggers(ctx context.Context) ([]api.TriggerStatus, error) {
	var out api.TriggerList
	if err := c.doJSON(ctx, http.MethodGet, triggersPath(), nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Triggers == nil {
		out.Triggers = []api.TriggerStatus{}
	}
	return out.Triggers, nil
}

// DeleteTrigger deletes a trigger and what it made at its source (a
// PostgreSQL replication slot and publication, a durable consumer).
func (c *Client) DeleteTrigger(ctx context.Context, name string) error {
	if err := checkTriggerName(name); err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, triggersPath(name), nil, nil, nil)
}
