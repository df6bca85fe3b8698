package api

import "time"

// InvocationsPath serves asynchronous invocations' records: GET
// InvocationsPath/{request id} answers an InvocationRecord.
const InvocationsPath = "/gust/v1/invocations"

// Statuses of an asynchronous invocation (InvocationRecord.Status).
const (
	InvocationQueued       = "queued"
	InvocationRunning      = "running"
	InvocationSucceeded    = "succeeded"
	InvocationFailed       = "failed"
	InvocationDeadLettered = "dead-lettered"
)

// InvocationRecord is the durable state of one asynchronous invocation.
// Lambda keeps no such record; Gust does, for `gust invocation ID`.
type InvocationRecord struct {
	ID        string `json:"id"`
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`
	// Version is the version that ran last.
	Version string `json:"version,omitempty"`
	// Status is one of the Invocation* statuses.
	Status string `json:"status"`
	// Attempts counts runs of the function (a throttled try is not one).
	Attempts int `json:"attempts"`
	// Throttles counts tries refused by the node (throttles, node errors).
	Throttles int       `json:"throttles,omitempty"`
	Enqueued  time.Time `json:"enqueued"`
	// Started is when the first run started; Finished when the outcome
	// was final.
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// NextAttempt is when a queued invocation waiting to retry runs next.
	NextAttempt time.Time        `json:"nextAttempt,omitzero"`
	Error       *InvocationError `json:"error,omitempty"`
	// Reason says why a failed invocation failed for good, as Lambda names
	// the conditions of on-failure destinations: RetriesExhausted,
	// EventAgeExceeded, FunctionNotFound.
	Reason string `json:"reason,omitempty"`
	Source string `json:"source,omitempty"`
	Replay int    `json:"replay,omitempty"`
	// DeadLetter names where a dead-lettered invocation went.
	DeadLetter string `json:"deadLetter,omitempty"`
}

// Final reports whether the record's outcome is decided.
func (r InvocationRecord) Final() bool {
	return r.Status == InvocationSucceeded || r.Status == InvocationFailed || r.Status == InvocationDeadLettered
}

// InvocationError is why an invocation failed: the function's error type
// and message, or a node-side reason.
type InvocationError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}
