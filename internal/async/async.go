// Package async owns durable asynchronous invocations (InvocationType
// Event): the queue they wait in, the workers that run them with retries
// and backoff, their records, and idempotency keys.
//
// Storage, all in JetStream:
//
//   - 16 work-queue streams GUST_ASYNC_0..15; an invocation is one message
//     on gust.async.<partition>.<requestID>, the partition a hash of the
//     request id. Enqueue is one synchronous publish with the request id as
//     Nats-Msg-Id and nothing else, so enqueue throughput grows with the
//     number of streams (each fsyncs on its own). The message is the queued
//     state of its record.
//   - 16 KV buckets gust_async_records_0..15 hold each invocation's record,
//     written when a run starts and when it ends (and when it goes back to
//     wait for a retry). Records expire RecordTTL after their last write.
//   - The KV bucket gust_idempotency maps a hashed (function, idempotency
//     key) to its request id for IdempotencyTTL.
//
// Delivery is at least once: a message is acknowledged only after the
// final record is written and the OnSuccess or OnFailure hook returned
// nil. A node that dies mid-run leaves its messages unacknowledged; they
// are redelivered AckWait later and run again, updating the same record.
// The records are written with compare-and-set, so two overlapping
// deliveries cannot both record an outcome. A message whose ack came too
// late returns with its outcome recorded; the node that called its hook
// remembers that for a while (outcomes.go) and only acknowledges it, so
// a hook runs twice only if another node takes the late message.
package async

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/engine"
	"github.com/gustfaas/gust/internal/registry"
)

// Fixed layout: changing Partitions would strand queued invocations.
const (
	Partitions     = 16
	streamPrefix   = "GUST_ASYNC_"
	subjectPrefix  = "gust.async."
	recordsPrefix  = "gust_async_records_"
	IdempotencyKV  = "gust_idempotency"
	consumerName   = "gust-async-workers"
	maxStoredMsg   = MaxPayload + 64<<10
	dedupeWindow   = 10 * time.Minute
	maxAckPending  = 20000
	fetchWait      = time.Second
	maxFetchBatch  = 16
	maxIDLength    = 64
	maxKeyLength   = 256
	heartbeatParts = 4 // heartbeats per AckWait
)

// Limits and defaults.
const (
	// MaxPayload is the largest asynchronous invocation payload (Lambda's
	// current limit, 1 MB).
	MaxPayload = 1 << 20
	// RecordTTL is how long a record is kept after its last write.
	RecordTTL = 72 * time.Hour
	// IdempotencyTTL is how long an idempotency key is remembered.
	IdempotencyTTL = 24 * time.Hour
	// DefaultMaxRetries and DefaultMaxAge are Lambda's defaults.
	DefaultMaxRetries = 2
	DefaultMaxAge     = 6 * time.Hour
	// MinMaxAge and MaxMaxAge bound MaximumEventAgeInSeconds.
	MinMaxAge = 60 * time.Second
	MaxMaxAge = 6 * time.Hour
	// MaxMaxRetries bounds MaximumRetryAttempts.
	MaxMaxRetries = 2
	// DefaultAckWait is how long a delivered invocation may go without a
	// heartbeat before it is redelivered (also how long a crashed node's
	// invocations wait before they run again).
	DefaultAckWait = 10 * time.Second
	// DefaultRunningAfter is how long a run lasts before it is recorded
	// as running.
	DefaultRunningAfter = 50 * time.Millisecond
	// DefaultBackoffMax caps the backoff after throttles and node errors.
	DefaultBackoffMax  = 5 * time.Minute
	DefaultMaxInFlight = 32
)

// DefaultRetryDelays are the waits before the first and second retry of
// a function error, as Lambda waits.
var DefaultRetryDelays = []time.Duration{time.Minute, 2 * time.Minute}

// Record statuses.
const (
	StatusQueued       = api.InvocationQueued
	StatusRunning      = api.InvocationRunning
	StatusSucceeded    = api.InvocationSucceeded
	StatusFailed       = api.InvocationFailed
	StatusDeadLettered = api.InvocationDeadLettered
)

// Reasons an invocation failed for good (Record.Reason), as Lambda names
// the conditions of on-failure destinations.
const (
	ReasonRetriesExhausted = "RetriesExhausted"
	ReasonEventAgeExceeded = "EventAgeExceeded"
	ReasonFunctionNotFound = "FunctionNotFound"
)

// Errors.
var (
	ErrNotFound = errors.New("async invocation not found")
	// ErrInvalid wraps every validation error of Enqueue and Record.
	ErrInvalid = errors.New("invalid async invocation")
	// ErrTooLarge is returned for a payload over MaxPayload.
	ErrTooLarge = fmt.Errorf("%w: payload larger than %d bytes", ErrInvalid, MaxPayload)
	ErrStopped  = errors.New("async queue is stopped")
)

// Request is one asynchronous invocation as a caller asks for it.
type Request struct {
	// Function and Qualifier name what to run; the qualifier (a version,
	// an alias or $LATEST; empty means $LATEST) is resolved when the
	// invocation runs, so an alias's weights apply per run.
	Function, Qualifier string
	Payload             []byte
	// ID is the request id to use (optional; the gateway passes its
	// own). Ignored when DedupID or IdempotencyKey is set: the id is then
	// derived from them, so a repeat maps to the first id.
	ID string
	// DedupID makes repeats of one event (a trigger's event id) one
	// invocation: within the streams' duplicate window (10 minutes) a
	// repeat is not stored again, and later a repeat whose record still
	// exists is dropped by the worker.
	DedupID string
	// IdempotencyKey is a client's key (X-Gust-Idempotency-Key): a repeat
	// for the same function within IdempotencyTTL returns the first
	// request id and runs nothing.
	IdempotencyKey string
	// Source says where the invocation came from ("lambda", "url", a
	// trigger's name); informational.
	Source string
}

// Accepted is the answer to Enqueue: the invocation is durably stored.
type Accepted struct {
	RequestID string `json:"requestId"`
	// Duplicate is true when an idempotency key or dedupe id repeated an
	// earlier request: RequestID is the first one's and nothing new runs.
	Duplicate bool `json:"duplicate"`
}

// Invocation is exactly what a queued message holds.
type Invocation struct {
	ID             string
	Function       string
	Qualifier      string
	Payload        []byte
	Enqueued       time.Time
	Source         string
	IdempotencyKey string
	// Replay counts Requeue calls; Requeued is the last one's time, from
	// which the event age then counts.
	Replay   int
	Requeued time.Time
}

// start is when the invocation's age starts counting.
func (inv Invocation) start() time.Time {
	if !inv.Requeued.IsZero() {
		return inv.Requeued
	}
	return inv.Enqueued
}

// Error is why an invocation failed (api.InvocationError).
type Error = api.InvocationError

// Record is the durable state of one invocation (api.InvocationRecord).
type Record = api.InvocationRecord

// stored is a record as kept in KV: with the stream sequence of the
// message it belongs to (to tell a redelivery from a repeat) and, while
// the success hook may still need it, the response.
type stored struct {
	Record
	Seq      uint64 `json:"seq"`
	Response []byte `json:"response,omitempty"`
}

// Invoker runs an invocation (engine.Engine).
type Invoker interface {
	Invoke(ctx context.Context, fn *registry.Function, requestID string, payload []byte) (*engine.Result, error)
}

// Functions resolves a function and qualifier (registry.Registry).
type Functions interface {
	Resolve(name, qualifier string, rnd float64) (*registry.Function, *registry.Alias, error)
}

// Store is what the queue needs from the substrate.
type Store interface {
	Stream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error)
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
	JetStream() jetstream.JetStream
}

// Config configures a Queue. Zero values mean defaults.
type Config struct {
	// Invoker and Functions run invocations; both are needed by Start.
	Invoker   Invoker
	Functions Functions
	// MaxInFlight bounds the async invocations this node runs at once,
	// leaving the rest of its capacity to synchronous traffic (default
	// DefaultMaxInFlight).
	MaxInFlight int
	// RetryDelays are the waits before each retry after a function
	// error or timeout (default DefaultRetryDelays; the last repeats).
	RetryDelays []time.Duration
	// BackoffMin and BackoffMax bound the exponential backoff after a
	// throttle or node error (default 1s and DefaultBackoffMax).
	BackoffMin, BackoffMax time.Duration
	// AckWait is how long a running invocation may go without a
	// heartbeat before another delivery (default DefaultAckWait).
	AckWait time.Duration
	// Policy returns a function's retry policy; negative values (or a
	// nil Policy) mean the defaults. Values over Lambda's maxima are
	// clamped to them.
	Policy func(function, qualifier string) (maxRetries int, maxAge time.Duration)
	// OnSuccess and OnFailure are called when an invocation ends for
	// good, after its final record is written and before its message is
	// acknowledged: an error means the hook runs again later (at least
	// once; the function does not run again).
	OnSuccess func(ctx context.Context, inv Invocation, rec Record, response []byte) error
	OnFailure func(ctx context.Context, inv Invocation, rec Record) error
	// RunningAfter is how long a run goes before its "running" record is
	// written (default DefaultRunningAfter); shorter runs are recorded
	// only with their outcome.
	RunningAfter time.Duration
	// OnStart, if set, is called when a run starts (benchmarks measure
	// enqueue-to-start with it); it must be fast.
	OnStart func(inv Invocation, rec Record)
	Logger  *slog.Logger
}

// Queue is the durable async invocation queue and, once started, its
// workers. Safe for concurrent use.
type Queue struct {
	cfg     Config
	log     *slog.Logger
	js      jetstream.JetStream
	streams [Partitions]jetstream.Stream
	cons    [Partitions]jetstream.Consumer
	records [Partitions]jetstream.KeyValue
	idem    jetstream.KeyValue

	ready       chan struct{} // closed when setup is over
	setupErr    error
	cancelSetup context.CancelFunc

	mu       sync.Mutex
	started  bool
	stopping bool
	cancel   context.CancelFunc // stops pollers
	kill     context.CancelFunc // cancels running invocations
	runCtx   context.Context
	pollers  sync.WaitGroup
	inflight sync.WaitGroup
	sem      chan struct{}
	hooks    *outcomes
}

// Open returns a queue and creates (or opens) its streams, consumers and
// buckets in the background; Enqueue, Record and the workers wait for
// them (see Ready). Start runs the workers; Stop must be called to end
// the background work.
func Open(ctx context.Context, st Store, cfg Config) (*Queue, error) {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if len(cfg.RetryDelays) == 0 {
		cfg.RetryDelays = DefaultRetryDelays
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = time.Second
	}
	cfg.BackoffMin = min(cfg.BackoffMin, cfg.BackoffMax)
	if cfg.RunningAfter <= 0 {
		cfg.RunningAfter = DefaultRunningAfter
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// A late acknowledgement shows within a few AckWaits.
	q := &Queue{cfg: cfg, log: cfg.Logger, js: st.JetStream(), ready: make(chan struct{}), hooks: newOutcomes(4 * cfg.AckWait)}
	sctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	q.cancelSetup = cancel
	go q.setup(sctx, st)
	return q, nil
}

// setupTimeout bounds creating the streams and buckets.
const setupTimeout = time.Minute

// setup creates the streams, consumers and buckets, then closes ready.
// With SyncAlways each creation waits for its fsyncs (about 10 ms each,
// 0.15-0.4 s for all), which is why it does not hold up Open.
func (q *Queue) setup(ctx context.Context, st Store) {
	defer q.cancelSetup()
	defer close(q.ready)
	errs := make([]error, Partitions+1)
	var wg sync.WaitGroup
	for p := range Partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = q.openPartition(ctx, st, p)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		q.idem, errs[Partitions] = st.KeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      IdempotencyKV,
			Description: "Gust async idempotency keys: hash of function and key -> request id",
			TTL:         IdempotencyTTL,
		})
	}()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		q.setupErr = fmt.Errorf("async queue unavailable: %w", err)
		if ctx.Err() == nil {
			q.log.Error("open async invocation queue", "err", err)
		}
	}
}

// Ready waits until the streams and buckets exist (Open creates them in
// the background) and reports whether that failed.
func (q *Queue) Ready(ctx context.Context) error {
	select {
	case <-q.ready:
		return q.setupErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// openPartition creates partition p's stream, consumer and record bucket.
func (q *Queue) openPartition(ctx context.Context, st Store, p int) error {
	s, err := st.Stream(ctx, jetstream.StreamConfig{
		Name:        streamPrefix + strconv.Itoa(p),
		Description: "Gust asynchronous invocations, partition " + strconv.Itoa(p),
		Subjects:    []string{subjectPrefix + strconv.Itoa(p) + ".*"},
		Retention:   jetstream.WorkQueuePolicy,
		Duplicates:  dedupeWindow,
		MaxMsgSize:  maxStoredMsg,
	})
	if err != nil {
		return err
	}
	q.streams[p] = s
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "Gust async workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
	})
	if err != nil {
		return fmt.Errorf("async consumer %d: %w", p, err)
	}
	q.cons[p] = c
	kv, err := st.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      recordsPrefix + strconv.Itoa(p),
		Description: "Gust async invocation records",
		TTL:         RecordTTL,
	})
	if err != nil {
		return err
	}
	q.records[p] = kv
	return nil
}

// partition is where a request id lives.
func partition(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % Partitions)
}

func subject(p int, id string) string {
	return subjectPrefix + strconv.Itoa(p) + "." + id
}

// ValidID reports whether id can name an invocation: 1-64 letters,
// digits, '-' or '_'.
func ValidID(id string) bool {
	if id == "" || len(id) > maxIDLength {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidateIdempotencyKey checks a client's key: 1-256 printable
// characters.
func ValidateIdempotencyKey(key string) error {
	if key == "" || len(key) > maxKeyLength {
		return fmt.Errorf("%w: idempotency key must be 1 to %d bytes long", ErrInvalid, maxKeyLength)
	}
	for _, c := range key {
		if c == unicode.ReplacementChar || !unicode.IsPrint(c) {
			return fmt.Errorf("%w: idempotency key must hold printable characters only", ErrInvalid)
		}
	}
	return nil
}

var idNamespace = uuid.MustParse("5c1e8a52-3f0e-4c53-9a55-6d2b8f7e9c01")

// derivedID maps a dedupe id or idempotency key to a stable request id.
func derivedID(kind, function, key string) string {
	return uuid.NewSHA1(idNamespace, []byte(kind+"\x00"+function+"\x00"+key)).String()
}

func idemKey(function, key string) string {
	sum := sha256.Sum256([]byte(function + "\x00" + key))
	return hex.EncodeToString(sum[:])
}

// Message headers of a queued invocation.
const (
	hRequestID = "Gust-Request-Id"
	hFunction  = "Gust-Function"
	hQualifier = "Gust-Qualifier"
	hEnqueued  = "Gust-Enqueued"
	hSource    = "Gust-Source"
	hIdemKey   = "Gust-Idempotency-Key"
	hReplay    = "Gust-Replay"
	hRequeued  = "Gust-Requeued"
)

func (inv Invocation) msg() *nats.Msg {
	p := partition(inv.ID)
	m := nats.NewMsg(subject(p, inv.ID))
	m.Header.Set(hRequestID, inv.ID)
	m.Header.Set(hFunction, inv.Function)
	if inv.Qualifier != "" {
		m.Header.Set(hQualifier, inv.Qualifier)
	}
	m.Header.Set(hEnqueued, inv.Enqueued.UTC().Format(time.RFC3339Nano))
	if inv.Source != "" {
		m.Header.Set(hSource, inv.Source)
	}
	if inv.IdempotencyKey != "" {
		m.Header.Set(hIdemKey, inv.IdempotencyKey)
	}
	if inv.Replay > 0 {
		m.Header.Set(hReplay, strconv.Itoa(inv.Replay))
		m.Header.Set(hRequeued, inv.Requeued.UTC().Format(time.RFC3339Nano))
	}
	m.Data = inv.Payload
	return m
}

func invocationOf(h nats.Header, data []byte) (Invocation, error) {
	inv := Invocation{
		ID:             h.Get(hRequestID),
		Function:       h.Get(hFunction),
		Qualifier:      h.Get(hQualifier),
		Payload:        data,
		Source:         h.Get(hSource),
		IdempotencyKey: h.Get(hIdemKey),
	}
	var err error
	if inv.Enqueued, err = time.Parse(time.RFC3339Nano, h.Get(hEnqueued)); err != nil {
		return inv, fmt.Errorf("queued invocation %s: bad %s header: %w", inv.ID, hEnqueued, err)
	}
	if s := h.Get(hReplay); s != "" {
		if inv.Replay, err = strconv.Atoi(s); err != nil {
			return inv, fmt.Errorf("queued invocation %s: bad %s header: %w", inv.ID, hReplay, err)
		}
		if inv.Requeued, err = time.Parse(time.RFC3339Nano, h.Get(hRequeued)); err != nil {
			return inv, fmt.Errorf("queued invocation %s: bad %s header: %w", inv.ID, hRequeued, err)
		}
	}
	if inv.ID == "" || inv.Function == "" {
		return inv, fmt.Errorf("queued invocation lacks its id or function")
	}
	return inv, nil
}

// msgID is the Nats-Msg-Id of an invocation: its id, and its replay
// number for a replay (so a replay is not dropped as a duplicate).
func (inv Invocation) msgID() string {
	if inv.Replay == 0 {
		return inv.ID
	}
	return inv.ID + "/replay/" + strconv.Itoa(inv.Replay)
}

// Enqueue stores an invocation durably and returns its request id. It
// writes one message (and, with an idempotency key, the key first).
func (q *Queue) Enqueue(ctx context.Context, r Request) (Accepted, error) {
	if err := q.Ready(ctx); err != nil {
		return Accepted{}, err
	}
	if err := registry.ValidateName(r.Function); err != nil {
		return Accepted{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if r.Qualifier != "" {
		if err := registry.ValidateQualifier(r.Qualifier); err != nil {
			return Accepted{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if len(r.Payload) > MaxPayload {
		return Accepted{}, ErrTooLarge
	}
	id := r.ID
	switch {
	case r.IdempotencyKey != "":
		if err := ValidateIdempotencyKey(r.IdempotencyKey); err != nil {
			return Accepted{}, err
		}
		id = derivedID("idempotency", r.Function, r.IdempotencyKey)
	case r.DedupID != "":
		if len(r.DedupID) > maxKeyLength {
			return Accepted{}, fmt.Errorf("%w: dedupe id longer than %d bytes", ErrInvalid, maxKeyLength)
		}
		id = derivedID("dedupe", r.Function, r.DedupID)
	case id == "":
		id = uuid.NewString()
	case !ValidID(id):
		return Accepted{}, fmt.Errorf("%w: request id %q must be 1 to %d letters, digits, '-' or '_'", ErrInvalid, id, maxIDLength)
	}
	inv := Invocation{ID: id, Function: r.Function, Qualifier: r.Qualifier, Payload: r.Payload,
		Enqueued: time.Now(), Source: r.Source, IdempotencyKey: r.IdempotencyKey}

	dup, created := false, false
	var hk string
	if r.IdempotencyKey != "" {
		hk = idemKey(r.Function, r.IdempotencyKey)
		_, err := q.idem.Create(ctx, hk, []byte(id))
		switch {
		case err == nil:
			created = true
		case errors.Is(err, jetstream.ErrKeyExists):
			dup = true
			// The first request stored the key before its message. If
			// that message or its record exists, we are done; if not,
			// the first request failed or died between the two writes:
			// store the message (a concurrent first publish of the same
			// id is dropped by the stream's duplicate check).
			ok, err := q.exists(ctx, id)
			if err != nil {
				return Accepted{}, err
			}
			if ok {
				return Accepted{RequestID: id, Duplicate: true}, nil
			}
		default:
			return Accepted{}, fmt.Errorf("store idempotency key: %w", err)
		}
	}
	ack, err := q.js.PublishMsg(ctx, inv.msg(), jetstream.WithMsgID(inv.msgID()),
		jetstream.WithExpectStream(streamPrefix+strconv.Itoa(partition(id))))
	if err != nil {
		if created {
			// Let a retry with the same key try again.
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = q.idem.Delete(dctx, hk)
			cancel()
		}
		return Accepted{}, fmt.Errorf("enqueue invocation: %w", err)
	}
	if created {
		// This request stored the key, so it is the first: a concurrent
		// repeat may have published the same message a moment earlier
		// (it found the key but not yet the message), which makes our
		// publish a stream duplicate, yet that repeat is the duplicate.
		return Accepted{RequestID: id}, nil
	}
	return Accepted{RequestID: id, Duplicate: dup || ack.Duplicate}, nil
}

// Requeue stores an invocation again as it was (a replay of a failed or
// dead-lettered one): same id, function, qualifier and payload. Its
// record starts over (attempts, status), and its age counts from now.
func (q *Queue) Requeue(ctx context.Context, inv Invocation) error {
	if err := q.Ready(ctx); err != nil {
		return err
	}
	if !ValidID(inv.ID) || inv.Function == "" {
		return fmt.Errorf("%w: requeue needs an invocation with an id and a function", ErrInvalid)
	}
	if len(inv.Payload) > MaxPayload {
		return ErrTooLarge
	}
	if inv.Enqueued.IsZero() {
		inv.Enqueued = time.Now()
	}
	// Replay must exceed the record's, or the worker takes the message
	// for a repeat of the finished invocation.
	if st, _, err := q.load(ctx, inv.ID); err == nil && st.Replay >= inv.Replay {
		inv.Replay = st.Replay
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	inv.Replay++
	inv.Requeued = time.Now()
	_, err := q.js.PublishMsg(ctx, inv.msg(), jetstream.WithMsgID(inv.msgID()),
		jetstream.WithExpectStream(streamPrefix+strconv.Itoa(partition(inv.ID))))
	if err != nil {
		return fmt.Errorf("requeue invocation %s: %w", inv.ID, err)
	}
	return nil
}

// exists reports whether id is queued or has a record.
func (q *Queue) exists(ctx context.Context, id string) (bool, error) {
	_, err := q.Record(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// load reads a stored record and its revision.
func (q *Queue) load(ctx context.Context, id string) (stored, uint64, error) {
	e, err := q.records[partition(id)].Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return stored{}, 0, ErrNotFound
	}
	if err != nil {
		return stored{}, 0, fmt.Errorf("read record %s: %w", id, err)
	}
	var s stored
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return stored{}, 0, fmt.Errorf("decode record %s: %w", id, err)
	}
	return s, e.Revision(), nil
}

// Record returns an invocation's record: the stored one, or, for an
// invocation that has not started yet, its queued state read from its
// message. ErrNotFound when id is unknown (or its record expired).
func (q *Queue) Record(ctx context.Context, id string) (Record, error) {
	if !ValidID(id) {
		return Record{}, fmt.Errorf("%w: %q is not a request id", ErrNotFound, id)
	}
	if err := q.Ready(ctx); err != nil {
		return Record{}, err
	}
	s, _, err := q.load(ctx, id)
	if err == nil {
		return s.Record, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Record{}, err
	}
	p := partition(id)
	m, err := q.streams[p].GetLastMsgForSubject(ctx, subject(p, id))
	if err == nil {
		inv, err := invocationOf(m.Header, m.Data)
		if err != nil {
			return Record{}, err
		}
		return Record{ID: id, Function: inv.Function, Qualifier: inv.Qualifier, Status: StatusQueued,
			Enqueued: inv.Enqueued, Source: inv.Source, Replay: inv.Replay}, nil
	}
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return Record{}, fmt.Errorf("read queued invocation %s: %w", id, err)
	}
	// The message may have been acknowledged since the first look: its
	// final record was written before that.
	s, _, err = q.load(ctx, id)
	if err != nil {
		return Record{}, err
	}
	return s.Record, nil
}

// MarkDeadLettered records that a failed invocation was sent to a dead
// letter destination (OnFailure calls it).
func (q *Queue) MarkDeadLettered(ctx context.Context, id, destination string) error {
	if err := q.Ready(ctx); err != nil {
		return err
	}
	for range 5 {
		s, rev, err := q.load(ctx, id)
		if err != nil {
			return err
		}
		if s.Status != StatusFailed && s.Status != StatusDeadLettered {
			return fmt.Errorf("invocation %s is %s, not failed", id, s.Status)
		}
		s.Status, s.DeadLetter = StatusDeadLettered, destination
		if _, err = q.save(ctx, s, rev); err == nil || !errors.Is(err, errConflict) {
			return err
		}
	}
	return fmt.Errorf("mark %s dead-lettered: the record keeps changing", id)
}

// save writes a record: created when rev is 0, else compare-and-set on
// rev. A lost race is an error wrapping errConflict.
func (q *Queue) save(ctx context.Context, s stored, rev uint64) (uint64, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return 0, err
	}
	kv := q.records[partition(s.ID)]
	if rev == 0 {
		rev, err = kv.Create(ctx, s.ID, b)
	} else {
		rev, err = kv.Update(ctx, s.ID, b, rev)
	}
	var ae *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return 0, fmt.Errorf("write record %s: %w", s.ID, errConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("write record %s: %w", s.ID, err)
	}
	return rev, nil
}

// errConflict is a lost compare-and-set on a record.
var errConflict = errors.New("record changed concurrently")

// Start runs the workers: one poller per partition, at most
// Config.MaxInFlight invocations at once.
func (q *Queue) Start() error {
	if q.cfg.Invoker == nil || q.cfg.Functions == nil {
		return errors.New("async: Start needs Config.Invoker and Config.Functions")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		return errors.New("async: already started")
	}
	q.started = true
	var pctx context.Context
	pctx, q.cancel = context.WithCancel(context.Background())
	q.runCtx, q.kill = context.WithCancel(context.Background())
	q.sem = make(chan struct{}, q.cfg.MaxInFlight)
	for p := range Partitions {
		q.pollers.Add(1)
		go q.poll(pctx, p)
	}
	return nil
}

// Stop stops taking invocations and waits for running ones until ctx
// ends; those still running then are cancelled and left unacknowledged,
// to run again (here after a restart, or on another node) once their
// AckWait passes.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	if q.stopping {
		q.mu.Unlock()
		return nil
	}
	q.stopping = true
	started := q.started
	q.mu.Unlock()
	q.cancelSetup()
	<-q.ready
	if !started {
		return nil
	}
	q.cancel()
	q.pollers.Wait()
	done := make(chan struct{})
	go func() { q.inflight.Wait(); close(done) }()
	select {
	case <-done:
		q.kill()
		return nil
	case <-ctx.Done():
	}
	q.kill()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return fmt.Errorf("async invocations still running at shutdown (they will run again): %w", ctx.Err())
}

func (q *Queue) isStopping() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stopping
}

// poll fetches invocations of one partition while slots are free: it
// waits (long-polls) for one, then takes whatever else is ready without
// waiting, up to the free slots.
func (q *Queue) poll(ctx context.Context, p int) {
	defer q.pollers.Done()
	select {
	case <-q.ready:
		if q.setupErr != nil {
			return
		}
	case <-ctx.Done():
		return
	}
	c := q.cons[p]
	for {
		select {
		case q.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(fetchWait))
		if !q.take(ctx, batch, err, 1) {
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				q.log.Warn("fetch async invocations", "partition", p, "err", err)
				sleep(ctx, fetchWait)
			}
			continue
		}
		n := 0
	grab:
		for n < maxFetchBatch-1 {
			select {
			case q.sem <- struct{}{}:
				n++
			default:
				break grab
			}
		}
		if n > 0 {
			batch, err := c.FetchNoWait(n)
			q.take(ctx, batch, err, n)
		}
	}
}

// take starts a handler per fetched message, each holding one of the
// slots reserved for the batch; unused slots are released. It reports
// whether any message came.
func (q *Queue) take(ctx context.Context, batch jetstream.MessageBatch, err error, slots int) bool {
	got := 0
	if err == nil {
		for m := range batch.Messages() {
			got++
			if ctx.Err() != nil {
				// Stopping: hand it back at once (another node may
				// take it).
				_ = m.Nak()
				<-q.sem
				continue
			}
			q.inflight.Add(1)
			go func() {
				defer q.inflight.Done()
				defer func() { <-q.sem }()
				q.handle(m)
			}()
		}
	}
	for range slots - got {
		<-q.sem
	}
	return got > 0
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// policy returns the retry policy of a function, defaulted and clamped.
func (q *Queue) policy(inv Invocation) (int, time.Duration) {
	retries, age := -1, time.Duration(-1)
	if q.cfg.Policy != nil {
		retries, age = q.cfg.Policy(inv.Function, inv.Qualifier)
	}
	if retries < 0 {
		retries = DefaultMaxRetries
	}
	if age < 0 {
		age = DefaultMaxAge
	}
	// The lower bound of the age (MinMaxAge) is the configuration API's
	// to enforce; tests use shorter ones.
	return min(retries, MaxMaxRetries), min(age, MaxMaxAge)
}

// backoff is the wait after the n-th throttle (n from 1): exponential
// from BackoffMin, capped at BackoffMax, with ±20% jitter.
func (q *Queue) backoff(n int) time.Duration {
	d := q.cfg.BackoffMin
	for i := 1; i < n && d < q.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, q.cfg.BackoffMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (q *Queue) retryDelay(attempt int) time.Duration {
	return q.cfg.RetryDelays[min(attempt, len(q.cfg.RetryDelays))-1]
}

// handle runs one delivered invocation to its next state.
func (q *Queue) handle(m jetstream.Msg) {
	ctx := q.runCtx
	meta, err := m.Metadata()
	if err != nil {
		q.log.Error("async message without metadata", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	inv, err := invocationOf(m.Headers(), m.Data())
	if err != nil {
		q.log.Error("drop malformed async invocation", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	seq := meta.Sequence.Stream

	// Keep the message ours while we work on it.
	stopBeat := q.heartbeat(m)
	defer stopBeat()

	s, rev, err := q.load(ctx, inv.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		s = stored{Record: Record{ID: inv.ID, Function: inv.Function, Qualifier: inv.Qualifier,
			Status: StatusQueued, Enqueued: inv.Enqueued, Source: inv.Source, Replay: inv.Replay}, Seq: seq}
		rev = 0
	case err != nil:
		q.retryLater(m, err, meta.NumDelivered)
		return
	case inv.Replay > s.Replay:
		// A replay starts its record over.
		s.Record = Record{ID: inv.ID, Function: inv.Function, Qualifier: inv.Qualifier,
			Status: StatusQueued, Enqueued: inv.Enqueued, Source: inv.Source, Replay: inv.Replay}
		s.Seq, s.Response = seq, nil
	case s.Seq != seq && inv.Replay == s.Replay:
		// A repeat of an invocation already recorded (a dedupe id or
		// idempotency key sent again after the duplicate window): the
		// first message owns the record, finished or not. Drop this one.
		_ = m.Ack()
		return
	}
	if s.Final() {
		// Redelivered after its outcome was recorded: only the hook
		// (and the acknowledgement) may be missing.
		q.finish(ctx, m, inv, s, meta.NumDelivered)
		return
	}
	prior := s.Attempts
	if s.Status == StatusRunning {
		prior-- // that run was lost with its node; it does not count
	}
	maxRetries, maxAge := q.policy(inv)
	now := time.Now()
	if now.Sub(inv.start()) > maxAge {
		q.fail(ctx, m, inv, s, rev, meta.NumDelivered, ReasonEventAgeExceeded, &Error{Type: ReasonEventAgeExceeded,
			Message: fmt.Sprintf("the event was not processed within its maximum age of %s", maxAge)})
		return
	}
	fn, _, err := q.cfg.Functions.Resolve(inv.Function, inv.Qualifier, rand.Float64())
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			what := inv.Function
			if inv.Qualifier != "" {
				what += ":" + inv.Qualifier
			}
			q.fail(ctx, m, inv, s, rev, meta.NumDelivered, ReasonFunctionNotFound, &Error{Type: "ResourceNotFoundException",
				Message: fmt.Sprintf("function %s does not exist (deleted after the invocation was queued?): %v", what, err)})
			return
		}
		q.throttled(ctx, m, inv, s, rev, maxAge, err)
		return
	}

	// The run starts. Its "running" record is written only if it lasts
	// (see Config.RunningAfter): most runs are shorter than the write.
	s.Status, s.Attempts, s.NextAttempt, s.Version = StatusRunning, prior+1, time.Time{}, fn.Qualifier()
	if s.Started.IsZero() {
		s.Started = now
	}
	s.Seq = seq
	running := q.recordRunning(ctx, s, rev)
	if q.cfg.OnStart != nil {
		q.cfg.OnStart(inv, s.Record)
	}
	res, invokeErr := q.cfg.Invoker.Invoke(ctx, fn, inv.ID, inv.Payload)
	if rev, err = running.stop(); err != nil {
		// Another delivery of this message is at work (our heartbeat
		// lapsed): leave the record to that one.
		q.lostRecord(m, s, err, meta.NumDelivered)
		return
	}
	if ctx.Err() != nil && (invokeErr != nil || res.Err != nil) {
		// Cancelled by Stop: not an outcome. Hand the message back.
		_ = m.Nak()
		return
	}
	if invokeErr != nil {
		s.Attempts = prior
		q.throttled(ctx, m, inv, s, rev, maxAge, invokeErr)
		return
	}
	if res.Version != "" {
		s.Version = res.Version
	}
	if res.Err == nil {
		s.Status, s.Finished, s.Error, s.Reason = StatusSucceeded, time.Now(), nil, ""
		if q.cfg.OnSuccess != nil {
			s.Response = res.Payload
		}
		if _, err := q.save(ctx, s, rev); err != nil {
			q.lostRecord(m, s, err, meta.NumDelivered)
			return
		}
		q.finish(ctx, m, inv, s, meta.NumDelivered)
		return
	}
	s.Error = &Error{Type: res.Err.Type, Message: res.Err.Message}
	if s.Attempts > maxRetries {
		q.fail(ctx, m, inv, s, rev, meta.NumDelivered, ReasonRetriesExhausted, s.Error)
		return
	}
	delay := q.retryDelay(s.Attempts)
	if left := time.Until(inv.start().Add(maxAge)); delay > left {
		delay = max(left, 0) + time.Millisecond // it expires on pick-up
	}
	s.Status, s.NextAttempt = StatusQueued, time.Now().Add(delay)
	if _, err := q.save(ctx, s, rev); err != nil {
		q.lostRecord(m, s, err, meta.NumDelivered)
		return
	}
	_ = m.NakWithDelay(delay)
}

// lazyRecord is a "running" record that is written only if the run
// outlasts Config.RunningAfter.
type lazyRecord struct {
	timer *time.Timer
	done  chan struct{} // closed once the timer's write is over
	rev   uint64        // the record's revision after the write (or before)
	err   error         // a lost compare-and-set
}

// recordRunning arranges for s, a running record, to be written over
// revision rev after Config.RunningAfter unless stop comes first. A run
// is thus recorded as running only when it lasts: a fast one goes from
// queued to its outcome in one write, which halves the record writes (and
// their fsyncs) per invocation. A lost run is recognised by its
// unacknowledged message either way.
func (q *Queue) recordRunning(ctx context.Context, s stored, rev uint64) *lazyRecord {
	lr := &lazyRecord{rev: rev, done: make(chan struct{})}
	lr.timer = time.AfterFunc(q.cfg.RunningAfter, func() {
		defer close(lr.done)
		r, err := q.save(ctx, s, rev)
		switch {
		case err == nil:
			lr.rev = r
		case errors.Is(err, errConflict):
			lr.err = err
		default:
			// The record stays as it was; the outcome's write will
			// replace it.
			q.log.Warn("write running record", "id", s.ID, "err", err)
		}
	})
	return lr
}

// stop cancels the write if it has not begun, else waits for it, and
// returns the record's revision. An error means another delivery of the
// message owns the record.
func (lr *lazyRecord) stop() (uint64, error) {
	if lr.timer.Stop() {
		return lr.rev, nil
	}
	<-lr.done
	return lr.rev, lr.err
}

// throttled puts an invocation the node could not run (throttle, node
// error) back to wait, with backoff, unless it is past its age.
func (q *Queue) throttled(ctx context.Context, m jetstream.Msg, inv Invocation, s stored, rev uint64, maxAge time.Duration, cause error) {
	s.Throttles++
	var te *engine.ThrottleError
	typ := "ServiceException"
	if errors.As(cause, &te) {
		typ = "TooManyRequestsException"
	}
	s.Error = &Error{Type: typ, Message: cause.Error()}
	delay := q.backoff(s.Throttles)
	left := time.Until(inv.start().Add(maxAge))
	if left <= 0 {
		q.fail(ctx, m, inv, s, rev, 0, ReasonEventAgeExceeded, &Error{Type: ReasonEventAgeExceeded,
			Message: fmt.Sprintf("the event was not processed within its maximum age of %s; last: %s", maxAge, cause)})
		return
	}
	delay = min(delay, left+time.Millisecond)
	s.Status, s.NextAttempt = StatusQueued, time.Now().Add(delay)
	if _, err := q.save(ctx, s, rev); err != nil {
		q.lostRecord(m, s, err, 0)
		return
	}
	_ = m.NakWithDelay(delay)
}

// fail records a final failure, then runs the hook and acknowledges.
func (q *Queue) fail(ctx context.Context, m jetstream.Msg, inv Invocation, s stored, rev uint64, delivered uint64, reason string, e *Error) {
	s.Status, s.Finished, s.Reason, s.Error, s.NextAttempt = StatusFailed, time.Now(), reason, e, time.Time{}
	if _, err := q.save(ctx, s, rev); err != nil {
		q.lostRecord(m, s, err, delivered)
		return
	}
	q.finish(ctx, m, inv, s, delivered)
}

// finish calls the outcome's hook and acknowledges the message; a failed
// hook sends the message back to try the hook again later.
func (q *Queue) finish(ctx context.Context, m jetstream.Msg, inv Invocation, s stored, delivered uint64) {
	// A replay is another outcome of the same id, with its own hook.
	key := inv.ID + "#" + strconv.Itoa(inv.Replay)
	switch st, first := q.hooks.begin(key); {
	case st == hookRunning && !first:
		// Another delivery of this message is calling the hook: it
		// acknowledges, or sends the message back if the hook fails.
		return
	case st == hookDone:
		// Its hook was called and its ack sent, which came too late.
		_ = m.Ack()
		return
	}
	var err error
	switch {
	case s.Status == StatusSucceeded && q.cfg.OnSuccess != nil:
		err = q.cfg.OnSuccess(ctx, inv, s.Record, s.Response)
	case s.Status == StatusFailed && q.cfg.OnFailure != nil:
		err = q.cfg.OnFailure(ctx, inv, s.Record)
	}
	q.hooks.end(key, err == nil)
	if err != nil {
		q.log.Warn("async outcome hook failed; will retry", "id", inv.ID, "status", s.Status, "err", err)
		_ = m.NakWithDelay(q.backoff(int(min(delivered, 30))))
		return
	}
	if err := m.Ack(); err != nil {
		q.log.Warn("ack async invocation", "id", inv.ID, "err", err)
	}
}

// lostRecord handles a failed record write: a lost compare-and-set means
// another delivery owns the record; anything else is retried later.
func (q *Queue) lostRecord(m jetstream.Msg, s stored, err error, delivered uint64) {
	if errors.Is(err, errConflict) {
		q.log.Warn("async record changed under a run; leaving it to the other delivery", "id", s.ID)
		_ = m.NakWithDelay(q.cfg.AckWait)
		return
	}
	q.retryLater(m, err, delivered)
}

// retryLater sends the message back after a substrate error.
func (q *Queue) retryLater(m jetstream.Msg, err error, delivered uint64) {
	if q.isStopping() {
		_ = m.Nak()
		return
	}
	q.log.Warn("async invocation: substrate error; retrying", "subject", m.Subject(), "err", err)
	_ = m.NakWithDelay(q.backoff(int(min(delivered, 30))))
}

// heartbeat tells the server the message is still being worked on,
// several times per AckWait, until the returned func is called.
func (q *Queue) heartbeat(m jetstream.Msg) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(q.cfg.AckWait / heartbeatParts)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = m.InProgress()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// Pending is the number of invocations stored and not yet finished:
// queued, waiting to retry, or running.
func (q *Queue) Pending(ctx context.Context) (int, error) {
	if err := q.Ready(ctx); err != nil {
		return 0, err
	}
	n := 0
	for _, s := range q.streams {
		info, err := s.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("async stream info: %w", err)
		}
		n += int(info.State.Msgs)
	}
	return n, nil
}
