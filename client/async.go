package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/gustfaas/gust/api"
)

// Asynchronous invocation: Gust's path and headers.
const (
	headerIdempotencyKey = "X-Gust-Idempotency-Key"
	headerDuplicate      = "X-Gust-Duplicate"
)

// AsyncOptions are the optional parts of an asynchronous invocation.
type AsyncOptions struct {
	// Qualifier selects a version or alias (resolved when it runs).
	Qualifier string
	// IdempotencyKey makes a repeat within 24 hours return the first
	// request id and run nothing (at most 256 printable characters).
	IdempotencyKey string
}

// Accepted is a queued invocation.
type Accepted struct {
	RequestID string `json:"requestId"`
	// Duplicate is true when the idempotency key repeated an earlier
	// request: RequestID is that request's.
	Duplicate bool `json:"duplicate"`
}

// InvokeAsync queues an invocation (InvocationType Event). It returns
// once the node stored it durably.
func (c *Client) InvokeAsync(ctx context.Context, name string, payload []byte, o AsyncOptions) (Accepted, error) {
	if err := checkName(name); err != nil {
		return Accepted{}, err
	}
	var q url.Values
	if o.Qualifier != "" {
		q = url.Values{"Qualifier": {o.Qualifier}}
	}
	h := http.Header{"Content-Type": {"application/json"}}
	h.Set(api.HeaderInvocationType, api.InvocationEvent)
	if o.IdempotencyKey != "" {
		h.Set(headerIdempotencyKey, o.IdempotencyKey)
	}
	resp, err := c.do(ctx, http.MethodPost, functionPath(name, "invocations"), q, h, payload)
	if err != nil {
		return Accepted{}, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode != http.StatusAccepted {
		return Accepted{}, fmt.Errorf("invoke %s asynchronously: status %d, want 202", name, resp.StatusCode)
	}
	acc := Accepted{RequestID: resp.Header.Get(api.HeaderRequestID), Duplicate: resp.Header.Get(headerDuplicate) == "true"}
	if acc.RequestID == "" {
		return Accepted{}, errors.New("invoke " + name + " asynchronously: the answer has no request id")
	}
	return acc, nil
}

// Invocation returns an asynchronous invocation's record; an unknown id
// is an *api.Error with code ResourceNotFoundException.
func (c *Client) Invocation(ctx context.Context, id string) (api.InvocationRecord, error) {
	if id == "" {
		return api.InvocationRecord{}, errors.New("client: request id is empty")
	}
	var out api.InvocationRecord
	err := c.doJSON(ctx, http.MethodGet, []string{"gust", "v1", "invocations", id}, nil, nil, &out)
	return out, err
}
