package api

import "time"

// TriggersPath is Gust's event-source collection: POST creates (409
// ResourceConflictException if the name is taken), GET lists;
// TriggersPath/{name} GET gets (with its status), PUT creates or replaces
// (a replacement reading the same source resumes where the old one
// stopped: same slot, same durable consumer), DELETE deletes (removing
// what the trigger made at its source: a PostgreSQL slot and
// publication, a durable consumer).
const TriggersPath = "/gust/v1/triggers"

// Bounds of triggers' settings, the same on the node and in `gust deploy`
// and `gust trigger create`, which check them before sending.
const (
	MaxTriggerBatchSize   = 1000
	MaxTriggerConcurrency = 100
	MaxTriggerBatchWindow = 5 * time.Minute
	// MaxQueueDeliver bounds QueueSource.MaxDeliver.
	MaxQueueDeliver = 100
	// MaxPostgresAttempts bounds PostgresSource.MaxAttempts.
	MaxPostgresAttempts = 10
)

// Trigger kinds: exactly one of the matching fields of Trigger is set.
const (
	TriggerKV       = "kv"
	TriggerObjects  = "objects"
	TriggerQueue    = "queue"
	TriggerPostgres = "postgres"
)

// Trigger is an event source wired to a function: changes in a KV or
// object bucket, messages on a NATS subject or JetStream stream, or row
// changes in a PostgreSQL table.
type Trigger struct {
	// Name is 1 to 64 letters, digits, '-' and '_'.
	Name string `json:"name"`
	// Function is the function invoked, and Qualifier its version or
	// alias (empty: $LATEST).
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`

	KV       *KVSource       `json:"kv,omitempty"`
	Objects  *ObjectsSource  `json:"objects,omitempty"`
	Queue    *QueueSource    `json:"queue,omitempty"`
	Postgres *PostgresSource `json:"postgres,omitempty"`

	// Created is set by the node, and Resource is the name of what the
	// trigger holds at its source (its PostgreSQL slot and publication,
	// its durable consumer): kept when a replacement reads the same
	// source, new otherwise.
	Created  time.Time `json:"created,omitzero"`
	Resource string    `json:"resource,omitempty"`
}

// Kind names the trigger's source (TriggerKV, ...), or "" when it sets
// none.
func (t *Trigger) Kind() string {
	switch {
	case t.KV != nil:
		return TriggerKV
	case t.Objects != nil:
		return TriggerObjects
	case t.Queue != nil:
		return TriggerQueue
	case t.Postgres != nil:
		return TriggerPostgres
	}
	return ""
}

// KVSource fires on puts and deletes in a KV bucket. Each change is an
// asynchronous invocation (with the function's retries and
// destinations) whose event is a KV change event.
type KVSource struct {
	Bucket string `json:"bucket"`
	// Prefix limits the keys (empty: all).
	Prefix string `json:"prefix,omitempty"`
	// Events are "put" and/or "delete" (empty: both).
	Events []string `json:"events,omitempty"`
}

// ObjectsSource fires on objects created and deleted in an object
// bucket. Each change is an asynchronous invocation whose event is an
// S3 event notification (events.S3Event decodes it).
type ObjectsSource struct {
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix,omitempty"`
	// Events are "created" and/or "deleted" (empty: both).
	Events []string `json:"events,omitempty"`
}

// QueueSource consumes a NATS subject (at most once, as NATS core is) or
// a JetStream stream (at least once) and invokes the function
// synchronously with batches of messages, in the shape of an SQS event.
type QueueSource struct {
	// URL is an external NATS server (empty: the node's own).
	URL           string `json:"url,omitempty"`
	Subject       string `json:"subject,omitempty"`
	Stream        string `json:"stream,omitempty"`
	FilterSubject string `json:"filterSubject,omitempty"`
	// BatchSize is the most messages per invocation (default 10).
	BatchSize int `json:"batchSize,omitempty"`
	// BatchWindowMs is how long a batch may wait to fill, in ms.
	BatchWindowMs int `json:"batchWindowMs,omitempty"`
	// Concurrency is how many batches run at once (default 1, in order).
	Concurrency int `json:"concurrency,omitempty"`
	// MaxDeliver is how many times a stream message is tried before it
	// goes to the dead letters (default 3).
	MaxDeliver int `json:"maxDeliver,omitempty"`
}

// PostgresSource streams row changes of PostgreSQL tables by logical
// replication and invokes the function synchronously with batches of
// changes, in commit order. The DSN is stored encrypted and never
// reported back (DSNRedacted shows its host and database).
type PostgresSource struct {
	DSN         string `json:"dsn,omitempty"`
	DSNRedacted string `json:"dsnRedacted,omitempty"`
	// Tables are "schema.table" (or "table" for public.table).
	Tables []string `json:"tables"`
	// Events are "insert", "update" and/or "delete" (empty: all).
	Events []string `json:"events,omitempty"`
	// BatchSize is the most changes per invocation (default 100).
	BatchSize int `json:"batchSize,omitempty"`
	// BatchWindowMs is how long a batch may wait to fill, in ms.
	BatchWindowMs int `json:"batchWindowMs,omitempty"`
	// MaxAttempts is how many times a failing change is tried before it
	// goes to the dead letters and the stream moves on (default 3).
	MaxAttempts int `json:"maxAttempts,omitempty"`
}

// TriggerStatus is a trigger with how it runs on the node that answered.
type TriggerStatus struct {
	Trigger
	// State is "running", "starting" or "error".
	State string `json:"state"`
	// Error is the last problem (for example the database being
	// unreachable); it is cleared once the trigger runs again.
	Error string `json:"error,omitempty"`
	// Delivered counts events handed to the function (enqueued or
	// invoked) and DeadLettered those that failed for good, since the
	// node started.
	Delivered    uint64 `json:"delivered"`
	DeadLettered uint64 `json:"deadLettered"`
	// LagBytes and LagSeconds (PostgreSQL) are how far the replication
	// slot is behind: WAL the database keeps for it, and the age of the
	// oldest change not yet confirmed.
	LagBytes   *int64   `json:"lagBytes,omitempty"`
	LagSeconds *float64 `json:"lagSeconds,omitempty"`
}

// TriggerList is the answer of GET TriggersPath.
type TriggerList struct {
	Triggers []TriggerStatus `json:"triggers"`
}
