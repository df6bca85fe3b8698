package api

import (
	"encoding/json"
	"time"
)

// SchedulesPath is Gust's schedule collection: POST creates, GET lists;
// SchedulesPath/{name} GET gets, PUT updates (pause and resume with
// {"paused":true|false}), DELETE deletes.
const SchedulesPath = "/gust/v1/schedules"

// MaxSchedulePayload bounds a schedule's payload.
const MaxSchedulePayload = 256 << 10

// CreateScheduleRequest is the body of a schedule create.
type CreateScheduleRequest struct {
	// Name is 1 to 64 letters, digits, '-' and '_'.
	Name string `json:"name"`
	// Function is the function each tick invokes asynchronously, and
	// Qualifier its version or alias (empty: $LATEST).
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`
	// Expression is a five-field cron expression ("0 3 * * *"), a macro
	// (@daily) or an interval ("rate(5 minutes)", "@every 10s").
	Expression string `json:"expression"`
	// Timezone is the IANA time zone cron fields are read in (default
	// UTC).
	Timezone string `json:"timezone,omitempty"`
	// Payload, when set, is the JSON event each tick sends instead of
	// EventBridge's scheduled event, as an EventBridge target's constant
	// input is; <aws.scheduler.scheduled-time>,
	// <aws.scheduler.schedule-arn> and <aws.scheduler.execution-id> in
	// it are replaced by the tick's values.
	Payload json.RawMessage `json:"payload,omitempty"`
	// CatchUp fires the ticks missed while every node was down, oldest
	// first (at most 1000); without it they are skipped.
	CatchUp bool `json:"catchUp,omitempty"`
	// Paused creates the schedule paused.
	Paused bool `json:"paused,omitempty"`
}

// UpdateScheduleRequest changes the fields it sets and keeps the others.
// A payload of null removes the payload.
type UpdateScheduleRequest struct {
	Function   *string         `json:"function,omitempty"`
	Qualifier  *string         `json:"qualifier,omitempty"`
	Expression *string         `json:"expression,omitempty"`
	Timezone   *string         `json:"timezone,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	CatchUp    *bool           `json:"catchUp,omitempty"`
	Paused     *bool           `json:"paused,omitempty"`
}

// Schedule is a schedule as the API reports it.
type Schedule struct {
	Name string `json:"name"`
	// Arn is the ARN ticks name as their EventBridge rule.
	Arn        string          `json:"arn"`
	Function   string          `json:"function"`
	Qualifier  string          `json:"qualifier,omitempty"`
	Expression string          `json:"expression"`
	Timezone   string          `json:"timezone"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	CatchUp    bool            `json:"catchUp"`
	Paused     bool            `json:"paused"`
	Created    time.Time       `json:"created"`
	Updated    time.Time       `json:"updated"`
	// LastFired is the last tick fired and LastRequestID the
	// asynchronous invocation it enqueued.
	LastFired     *time.Time `json:"lastFired,omitempty"`
	LastRequestID string     `json:"lastRequestId,omitempty"`
	// NextFire is the next tick (absent while paused).
	NextFire *time.Time `json:"nextFire,omitempty"`
}

// ScheduleList is the answer of GET SchedulesPath.
type ScheduleList struct {
	Schedules []Schedule `json:"schedules"`
}
