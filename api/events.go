package api

import "time"

// Paths of asynchronous invocation settings and dead letters.
const (
	// EventInvokeConfigPath is Lambda's FunctionEventInvokeConfig
	// resource, under a function: EventInvokeConfigPath/{name}/event-invoke-config
	// (PUT puts, POST updates, GET gets, DELETE deletes, with ?Qualifier=)
	// and .../event-invoke-config/list (GET lists).
	EventInvokeConfigPath = "/2019-09-25/functions"
	// DeadLettersPath is Gust's dead-letter endpoint: GET
	// DeadLettersPath/{name} lists a function's dead letters, POST
	// DeadLettersPath/{name}/replay re-enqueues them.
	DeadLettersPath = "/gust/v1/dlq"
)

// DeadLetterConfig is a function's dead-letter target (CreateFunction,
// UpdateFunctionConfiguration, FunctionConfiguration). Gust takes a
// function ARN or a Gust queue's SQS ARN; an empty TargetArn on update
// removes it.
type DeadLetterConfig struct {
	TargetArn *string `json:"TargetArn,omitempty"`
}

// OnDestination names one destination (Lambda's OnSuccess and OnFailure).
type OnDestination struct {
	Destination *string `json:"Destination,omitempty"`
}

// DestinationConfig is where asynchronous invocation records go.
type DestinationConfig struct {
	OnSuccess *OnDestination `json:"OnSuccess,omitempty"`
	OnFailure *OnDestination `json:"OnFailure,omitempty"`
}

// EventInvokeConfigRequest is the body of PutFunctionEventInvokeConfig
// and UpdateFunctionEventInvokeConfig.
type EventInvokeConfigRequest struct {
	MaximumRetryAttempts     *int32             `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int32             `json:"MaximumEventAgeInSeconds,omitempty"`
	DestinationConfig        *DestinationConfig `json:"DestinationConfig,omitempty"`
}

// FunctionEventInvokeConfig is one qualifier's asynchronous invocation
// settings. LastModified is in seconds since the epoch, as Lambda sends it.
type FunctionEventInvokeConfig struct {
	FunctionArn              string             `json:"FunctionArn"`
	LastModified             float64            `json:"LastModified"`
	MaximumRetryAttempts     *int32             `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int32             `json:"MaximumEventAgeInSeconds,omitempty"`
	DestinationConfig        *DestinationConfig `json:"DestinationConfig,omitempty"`
}

// ListFunctionEventInvokeConfigsResponse is the body of
// ListFunctionEventInvokeConfigs.
type ListFunctionEventInvokeConfigsResponse struct {
	FunctionEventInvokeConfigs []FunctionEventInvokeConfig `json:"FunctionEventInvokeConfigs"`
	NextMarker                 *string                     `json:"NextMarker,omitempty"`
}

// DeadLetter is one asynchronous invocation that failed for good and had
// no dead-letter target or on-failure destination of its own, as kept in
// Gust's built-in dead-letter stream.
type DeadLetter struct {
	// ID names the dead letter for replay.
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Function  string    `json:"function"`
	Qualifier string    `json:"qualifier,omitempty"`
	RequestID string    `json:"requestId"`
	// Condition is why it failed: RetriesExhausted or EventAgeExceeded.
	Condition string `json:"condition"`
	Attempts  int    `json:"attempts"`
	// Error is the last attempt's error.
	Error       string `json:"error,omitempty"`
	PayloadSize int    `json:"payloadSize"`
	// Payload is the event (only with ?payload=1).
	Payload []byte `json:"payload,omitempty"`
}

// DeadLetterList is the answer of GET DeadLettersPath/{name}.
type DeadLetterList struct {
	DeadLetters []DeadLetter `json:"deadLetters"`
}

// ReplayRequest is the body of POST DeadLettersPath/{name}/replay: one
// dead letter, or all of the function's when ID is empty.
type ReplayRequest struct {
	ID string `json:"id,omitempty"`
}

// Replayed is one dead letter enqueued again.
type Replayed struct {
	ID string `json:"id"`
	// RequestID is the new invocation's request id.
	RequestID string `json:"requestId"`
}

// ReplayResponse is the answer of a replay.
type ReplayResponse struct {
	Replayed []Replayed `json:"replayed"`
}
