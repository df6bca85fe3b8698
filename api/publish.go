package api

import "time"

// PublishPath publishes a message on the node's NATS: POST
// PublishPath/{subject} with the message's data as the body (at most
// MaxPublishBytes) and its headers as repeated query parameters
// header=NAME:VALUE (names keep their case, which NATS headers respect).
// When a stream stores the subject, the message goes through JetStream
// and the answer, a PublishResult, names the stream and the sequence;
// otherwise it is a core NATS publish, delivered to whoever subscribes
// at that moment.
const PublishPath = "/gust/v1/publish"

// PublishHeaderParam is the query parameter carrying a header.
const PublishHeaderParam = "header"

// MaxPublishBytes bounds a published message's data.
const MaxPublishBytes = 1 << 20

// PublishResult is the answer of a publish.
type PublishResult struct {
	Subject string `json:"subject"`
	// Stream and Sequence say where the message is stored; both are
	// empty when no stream stores the subject.
	Stream   string `json:"stream,omitempty"`
	Sequence uint64 `json:"sequence,omitempty"`
	// Duplicate is true when the stream had the message already (the
	// same Nats-Msg-Id header within its duplicate window): Sequence is
	// the first one's.
	Duplicate bool `json:"duplicate,omitempty"`
}

// StreamsPath is Gust's collection of queue streams, the JetStream
// streams queue triggers read: GET lists; StreamsPath/{name} PUT creates
// or updates (a PutStreamRequest), GET gets, DELETE deletes. Gust's own
// streams are not listed and cannot be changed.
const StreamsPath = "/gust/v1/streams"

// DefaultStreamMaxAge is how long a queue stream keeps a message unless
// told otherwise.
const DefaultStreamMaxAge = 7 * 24 * time.Hour

// PutStreamRequest is the body of a stream create or update.
type PutStreamRequest struct {
	// Subjects are the subjects the stream stores (wildcards allowed:
	// "orders.>", "events.*.created").
	Subjects []string `json:"subjects"`
	// MaxAgeSeconds is how long a message is kept (default 7 days).
	MaxAgeSeconds int64 `json:"maxAgeSeconds,omitempty"`
}

// Stream is a queue stream as the API reports it.
type Stream struct {
	Name          string    `json:"name"`
	Subjects      []string  `json:"subjects"`
	MaxAgeSeconds int64     `json:"maxAgeSeconds"`
	Messages      uint64    `json:"messages"`
	Bytes         uint64    `json:"bytes"`
	FirstSequence uint64    `json:"firstSequence"`
	LastSequence  uint64    `json:"lastSequence"`
	Consumers     int       `json:"consumers"`
	Created       time.Time `json:"created"`
}

// StreamList is the answer of GET StreamsPath.
type StreamList struct {
	Streams []Stream `json:"streams"`
}
