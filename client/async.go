package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

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

// InvocationRecord is the durable state of an asynchronous invocation.
type InvocationRecord struct {
	ID        string `json:"id"`
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`
	// Version is the version that ran last.
	Version string `json:"version,omitempty"`
	// Status is queued, running, succeeded, failed or dead-lettered.
	Status string `json:"status"`
	// Attempts counts runs of the function; Throttles tries the node
	// refused (throttles, node errors).
	Attempts    int              `json:"attempts"`
	Throttles   int              `json:"throttles,omitempty"`
	Enqueued    time.Time        `json:"enqueued"`
	Started     time.Time        `json:"started,omitzero"`
	Finished    time.Time        `json:"finished,omitzero"`
	NextAttempt time.Time        `json:"nextAttempt,omitzero"`
	Error       *InvocationError `json:"error,omitempty"`
	// Reason says why a failed invocation failed for good
	// (RetriesExhausted, EventAgeExceeded, FunctionNotFound).
	Reason     string `json:"reason,omitempty"`
	Source     string `json:"source,omitempty"`
	Replay     int    `json:"replay,omitempty"`
	DeadLetter string `json:"deadLetter,omitempty"`
}

// InvocationError is why an invocation failed.
type InvocationError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Invocation returns an asynchronous invocation's record; an unknown id
// is an *api.Error with code ResourceNotFoundException.
func (c *Client) Invocation(ctx context.Context, id string) (InvocationRecord, error) {
	if id == "" {
		return InvocationRecord{}, errors.New("client: request id is empty")
	}
	var out InvocationRecord
	err := c.doJSON(ctx, http.MethodGet, []string{"gust", "v1", "invocations", id}, nil, nil, &out)
	return out, err
}
