// Package destination owns where asynchronous invocations go when they
// end for good: the on-success and on-failure destinations of a
// function's event-invoke settings (an invocation record, shaped as
// Lambda writes it, sent to another function or to a Gust queue), its
// dead-letter target (the event itself), and Gust's built-in dead-letter
// stream, which keeps the failures of functions that configured neither,
// so that none is lost silently. It also lists and replays those built-in
// dead letters.
//
// A Gust queue is a JetStream stream named GUST_QUEUE_<QUEUE>
// (subject gust.queue.<QUEUE>), addressed with an SQS ARN and created on
// first use. The built-in dead letters live in the stream GUST_DLQ,
// subject gust.dlq.<FUNCTION>, one message per failed event.
//
// Every delivery is idempotent: the asynchronous queue may call a hook
// again for the same invocation (a hook error means redelivery), so each
// message carries an id derived from the request id (Nats-Msg-Id for
// streams, the dedupe id for enqueued invocations).
package destination

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/async"
	"github.com/gustfaas/gust/internal/registry"
)

// Conditions of an invocation record, as Lambda names them.
const (
	ConditionSuccess          = "Success"
	ConditionRetriesExhausted = "RetriesExhausted"
	ConditionEventAgeExceeded = "EventAgeExceeded"
)

// The built-in dead-letter stream.
const (
	DeadLetterStream  = "GUST_DLQ"
	deadLetterSubject = "gust.dlq."
	// DeadLetterMaxAge is how long a built-in dead letter is kept (SQS's
	// longest retention).
	DeadLetterMaxAge = 14 * 24 * time.Hour
	// QueueMaxAge is how long a message stays in a Gust queue.
	QueueMaxAge = 14 * 24 * time.Hour
	// dedupeWindow is how long a stream remembers message ids: longer
	// than the async queue's longest wait before a hook runs again.
	dedupeWindow = 10 * time.Minute
)

// Headers on messages written to streams.
const (
	HeaderRequestID = "Gust-Request-Id"
	HeaderFunction  = "Gust-Function"
	HeaderQualifier = "Gust-Qualifier"
	HeaderCondition = "Gust-Condition"
	HeaderAttempts  = "Gust-Attempts"
	HeaderError     = "Gust-Error"
	HeaderEnqueued  = "Gust-Enqueued"
	HeaderSource    = "Gust-Source"
	// HeaderIdempotencyKey is the client's key of the failed request.
	HeaderIdempotencyKey = "Gust-Idempotency-Key"
)

// Functions looks up a function's $LATEST, which holds its event-invoke
// settings and dead-letter target.
type Functions interface {
	Get(name string) (*registry.Function, bool)
}

// Queue is the asynchronous invocation queue (*async.Queue): records
// sent to a function are enqueued, replayed dead letters requeued, and a
// failed invocation's record marked with where it went.
type Queue interface {
	Enqueue(ctx context.Context, r async.Request) (async.Accepted, error)
	Requeue(ctx context.Context, inv async.Invocation) error
	MarkDeadLettered(ctx context.Context, id, destination string) error
}

// Outcome is how one asynchronous invocation ended for good.
type Outcome struct {
	RequestID string
	Function  string
	// Qualifier is what was invoked: "" or $LATEST, a version or an
	// alias; it selects the event-invoke settings.
	Qualifier string
	// Payload is the event.
	Payload []byte
	// Enqueued is when the event was accepted.
	Enqueued time.Time
	// Source is where the invocation came from (async.Request.Source).
	Source         string
	IdempotencyKey string
	// Replay counts replays of the invocation (async.Invocation.Replay):
	// each replay's outcome is delivered anew.
	Replay int
	// Attempts is how many times the function ran.
	Attempts int
	// Condition is ConditionSuccess, ConditionRetriesExhausted or
	// ConditionEventAgeExceeded (or another async.Record Reason, such as
	// FunctionNotFound).
	Condition string
	// Executed reports whether the last attempt ran the function; when
	// it did, ExecutedVersion, FunctionError and Response describe it.
	Executed        bool
	ExecutedVersion string
	// FunctionError is "Unhandled" for a function error or timeout.
	FunctionError string
	// Response is the function's response (on an error, its error
	// document).
	Response []byte
	// Error describes the last failure (a function error, a throttle, a
	// node error).
	Error string
}

// Config wires a Router.
type Config struct {
	Functions Functions
	// Queue may be left nil and set with Attach.
	Queue Queue
	// JetStream holds Gust queues and the built-in dead letters.
	JetStream jetstream.JetStream
	// Region and Account appear in the function ARNs of records.
	Region, Account string
	Logger          *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Router delivers the results of asynchronous invocations. Safe for
// concurrent use.
type Router struct {
	cfg Config

	mu      sync.Mutex
	streams map[string]jetstream.Stream // created streams, by name
}

// New returns a Router.
func New(cfg Config) *Router {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	return &Router{cfg: cfg, streams: map[string]jetstream.Stream{}}
}

// Attach sets the queue the Router enqueues records and replays dead
// letters into, when it could not be passed to New (the queue's hooks
// are the Router's methods). Call it once, before the queue's workers
// start.
func (r *Router) Attach(q Queue) { r.cfg.Queue = q }

// Policy is async.Config.Policy: the retry policy of the invoked
// qualifier of a function, from its event-invoke settings (Lambda's
// defaults when it has none; negative values, meaning the queue's
// defaults, when the function is gone).
func (r *Router) Policy(function, qualifier string) (maxRetries int, maxAge time.Duration) {
	fn, ok := r.cfg.Functions.Get(function)
	if !ok {
		return -1, -1
	}
	c := fn.EventInvokeFor(qualifier)
	return c.Retries(), c.MaxAge()
}

// Record is an invocation record, as Lambda sends it to destinations.
type Record struct {
	Version         string           `json:"version"`
	Timestamp       string           `json:"timestamp"`
	RequestContext  RequestContext   `json:"requestContext"`
	RequestPayload  json.RawMessage  `json:"requestPayload"`
	ResponseContext *ResponseContext `json:"responseContext,omitempty"`
	ResponsePayload json.RawMessage  `json:"responsePayload,omitempty"`
}

// RequestContext identifies the invocation a Record is about.
type RequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionArn            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext describes the last execution.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// jsonOrString is b when it is JSON, else b as a JSON string.
func jsonOrString(b []byte) json.RawMessage {
	if len(b) > 0 && json.Valid(b) {
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b))
	return s
}

// deliveryID names one delivery of o (kind tells deliveries of one
// outcome apart): repeats of it are dropped, a replay's is new.
func (o *Outcome) deliveryID(kind string) string {
	id := o.RequestID + ":" + kind
	if o.Replay > 0 {
		id += ":replay" + strconv.Itoa(o.Replay)
	}
	return id
}

// qualifier is o's qualifier with $LATEST for unqualified.
func (o *Outcome) qualifier() string {
	if o.Qualifier == "" {
		return registry.Latest
	}
	return o.Qualifier
}

// MakeRecord builds the invocation record of o.
func (r *Router) MakeRecord(o Outcome) Record {
	rec := Record{
		Version:   "1.0",
		Timestamp: r.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		RequestContext: RequestContext{
			RequestID:              o.RequestID,
			FunctionArn:            fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s:%s", r.cfg.Region, r.cfg.Account, o.Function, o.qualifier()),
			Condition:              o.Condition,
			ApproximateInvokeCount: o.Attempts,
		},
		RequestPayload: jsonOrString(o.Payload),
	}
	if o.Executed {
		rec.ResponseContext = &ResponseContext{StatusCode: 200, ExecutedVersion: o.ExecutedVersion, FunctionError: o.FunctionError}
		if len(o.Response) > 0 {
			rec.ResponsePayload = jsonOrString(o.Response)
		}
	}
	return rec
}

// OnSuccess is async.Config.OnSuccess: it sends the invocation record to
// the on-success destination of the invoked qualifier, if any.
func (r *Router) OnSuccess(ctx context.Context, inv async.Invocation, rec async.Record, response []byte) error {
	o := outcomeOf(inv, rec)
	o.Condition, o.Executed, o.Response = ConditionSuccess, true, response
	return r.Deliver(ctx, o)
}

// OnFailure is async.Config.OnFailure: it sends the invocation record to
// the on-failure destination and the event to the dead-letter target, or,
// with neither, keeps the event in the built-in dead-letter stream; then
// it marks the invocation's record with where the failure went.
func (r *Router) OnFailure(ctx context.Context, inv async.Invocation, rec async.Record) error {
	o := outcomeOf(inv, rec)
	o.Condition = rec.Reason
	if o.Condition == "" {
		o.Condition = ConditionRetriesExhausted
	}
	if rec.Error != nil {
		o.Error = rec.Error.Type + ": " + rec.Error.Message
		if rec.Reason == async.ReasonRetriesExhausted {
			// The last attempt ran and failed: its error document is
			// the response, as Lambda reports it.
			o.Executed, o.FunctionError = true, "Unhandled"
			o.Response, _ = json.Marshal(map[string]string{"errorMessage": rec.Error.Message, "errorType": rec.Error.Type})
		}
	}
	if err := r.Deliver(ctx, o); err != nil {
		return err
	}
	where := strings.Join(r.failureTargets(o), ",")
	if err := r.cfg.Queue.MarkDeadLettered(ctx, inv.ID, where); err != nil && !errors.Is(err, async.ErrNotFound) {
		return fmt.Errorf("mark %s dead-lettered: %w", inv.ID, err)
	}
	return nil
}

func outcomeOf(inv async.Invocation, rec async.Record) Outcome {
	return Outcome{RequestID: inv.ID, Function: inv.Function, Qualifier: inv.Qualifier, Payload: inv.Payload,
		Enqueued: inv.Enqueued, Source: inv.Source, IdempotencyKey: inv.IdempotencyKey, Replay: inv.Replay,
		Attempts: rec.Attempts, ExecutedVersion: rec.Version}
}

// settings returns o's function and its event-invoke settings (nil when
// none, or when the function is gone).
func (r *Router) settings(o Outcome) (*registry.Function, *registry.EventInvokeConfig) {
	fn, ok := r.cfg.Functions.Get(o.Function)
	if !ok {
		return nil, nil
	}
	return fn, fn.EventInvokeFor(o.qualifier())
}

// failureTargets names where a failure is delivered: the on-failure
// destination and the dead-letter target, else the built-in stream.
func (r *Router) failureTargets(o Outcome) []string {
	fn, cfg := r.settings(o)
	var out []string
	if cfg != nil && cfg.OnFailure != "" {
		out = append(out, cfg.OnFailure)
	}
	if fn != nil && fn.DeadLetterTarget != "" {
		out = append(out, fn.DeadLetterTarget)
	}
	if len(out) == 0 {
		out = append(out, DeadLetterStream)
	}
	return out
}

// Deliver sends o where its function's settings say: a success to the
// on-success destination (if any); a failure to the on-failure
// destination and the dead-letter target (if any), else to the built-in
// dead-letter stream. A target that can never take the delivery (a
// function deleted since it was configured, a record too large for it)
// counts as none, with a note in the dead letter's error. An error means
// nothing may be assumed delivered: call again (deliveries are
// idempotent).
func (r *Router) Deliver(ctx context.Context, o Outcome) error {
	fn, cfg := r.settings(o)
	if o.Condition == ConditionSuccess {
		if cfg == nil || cfg.OnSuccess == "" {
			return nil
		}
		err := r.sendRecord(ctx, cfg.OnSuccess, o)
		var pe *permanentError
		if errors.As(err, &pe) {
			r.cfg.Logger.Warn("on-success destination cannot take the record; dropped", "function", o.Function, "requestId", o.RequestID, "err", err)
			return nil
		}
		return err
	}
	var notes []string
	delivered := false
	deliver := func(err error) error {
		var pe *permanentError
		switch {
		case errors.As(err, &pe):
			notes = append(notes, err.Error())
		case err != nil:
			return err
		default:
			delivered = true
		}
		return nil
	}
	if cfg != nil && cfg.OnFailure != "" {
		if err := deliver(r.sendRecord(ctx, cfg.OnFailure, o)); err != nil {
			return err
		}
	}
	if fn != nil && fn.DeadLetterTarget != "" {
		if err := deliver(r.send(ctx, fn.DeadLetterTarget, o.Payload, o, "dlq")); err != nil {
			return err
		}
	}
	if delivered {
		return nil
	}
	if len(notes) > 0 {
		o.Error = strings.Join(append(notes, o.Error), "; ")
	}
	return r.keep(ctx, o)
}

// permanentError is a delivery that can never succeed.
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

// sendRecord sends o's invocation record to a destination. A record too
// large to enqueue is sent without its response payload.
func (r *Router) sendRecord(ctx context.Context, arn string, o Outcome) error {
	kind := "failure"
	if o.Condition == ConditionSuccess {
		kind = "success"
	}
	rec := r.MakeRecord(o)
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode invocation record: %w", err)
	}
	err = r.send(ctx, arn, b, o, kind)
	if errors.Is(err, async.ErrTooLarge) && rec.ResponsePayload != nil {
		rec.ResponsePayload = nil
		if b, err = json.Marshal(rec); err != nil {
			return fmt.Errorf("encode invocation record: %w", err)
		}
		err = r.send(ctx, arn, b, o, kind)
	}
	return err
}

// send delivers body to the function or queue arn names; kind keeps the
// ids of different deliveries of one request apart.
func (r *Router) send(ctx context.Context, arn string, body []byte, o Outcome, kind string) error {
	d, err := registry.ParseDestination("destination", arn)
	if err != nil {
		return &permanentError{err.Error()}
	}
	id := o.deliveryID(kind)
	switch d.Kind {
	case registry.DestinationFunction:
		if _, ok := r.cfg.Functions.Get(d.Name); !ok {
			return &permanentError{fmt.Sprintf("%s destination %s: the function does not exist", kind, arn)}
		}
		_, err := r.cfg.Queue.Enqueue(ctx, async.Request{Function: d.Name, Qualifier: d.Qualifier, Payload: body, DedupID: id, Source: "destination"})
		switch {
		case errors.Is(err, async.ErrTooLarge):
			return fmt.Errorf("%s destination %s: %w", kind, arn, err)
		case errors.Is(err, async.ErrInvalid):
			return &permanentError{fmt.Sprintf("%s destination %s: %v", kind, arn, err)}
		case err != nil:
			return fmt.Errorf("enqueue %s for %s: %w", kind, arn, err)
		}
		return nil
	case registry.DestinationQueue:
		if _, err := r.stream(ctx, registry.QueueStream(d.Name), registry.QueueSubject(d.Name), QueueMaxAge, "Gust queue "+d.Name); err != nil {
			return err
		}
		msg := nats.NewMsg(registry.QueueSubject(d.Name))
		msg.Data = body
		r.headers(msg.Header, o)
		if _, err := r.cfg.JetStream.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
			r.forget(registry.QueueStream(d.Name))
			return fmt.Errorf("publish %s to queue %s: %w", kind, d.Name, err)
		}
		return nil
	}
	return &permanentError{fmt.Sprintf("destination %s: unsupported kind %v", arn, d.Kind)}
}

// headers describes o on a stream message, as SQS message attributes do
// on Lambda's dead letters.
func (r *Router) headers(h nats.Header, o Outcome) {
	h.Set(HeaderRequestID, o.RequestID)
	h.Set(HeaderFunction, o.Function)
	h.Set(HeaderQualifier, o.qualifier())
	h.Set(HeaderCondition, o.Condition)
	h.Set(HeaderAttempts, strconv.Itoa(o.Attempts))
	if o.Error != "" {
		h.Set(HeaderError, oneLine(o.Error))
	}
	if !o.Enqueued.IsZero() {
		h.Set(HeaderEnqueued, o.Enqueued.UTC().Format(time.RFC3339Nano))
	}
	if o.Source != "" {
		h.Set(HeaderSource, o.Source)
	}
	if o.IdempotencyKey != "" {
		h.Set(HeaderIdempotencyKey, oneLine(o.IdempotencyKey))
	}
}

// oneLine makes s fit a header value.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}

// stream creates (once) and returns a stream holding subjects.
func (r *Router) stream(ctx context.Context, name, subjects string, maxAge time.Duration, desc string) (jetstream.Stream, error) {
	r.mu.Lock()
	st, ok := r.streams[name]
	r.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := r.cfg.JetStream.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: desc,
		Subjects:    []string{subjects},
		Storage:     jetstream.FileStorage,
		MaxAge:      maxAge,
		Duplicates:  dedupeWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	r.mu.Lock()
	r.streams[name] = st
	r.mu.Unlock()
	return st, nil
}

// forget drops a stream from the cache after a failed publish, so the
// next delivery creates it again if it was deleted.
func (r *Router) forget(name string) {
	r.mu.Lock()
	delete(r.streams, name)
	r.mu.Unlock()
}

// deadLetters returns the built-in dead-letter stream.
func (r *Router) deadLetters(ctx context.Context) (jetstream.Stream, error) {
	return r.stream(ctx, DeadLetterStream, deadLetterSubject+">", DeadLetterMaxAge, "Gust dead letters: failed asynchronous invocations with no target of their own")
}

// keep stores o's event in the built-in dead-letter stream.
func (r *Router) keep(ctx context.Context, o Outcome) error {
	if _, err := r.deadLetters(ctx); err != nil {
		return err
	}
	msg := nats.NewMsg(deadLetterSubject + o.Function)
	msg.Data = o.Payload
	r.headers(msg.Header, o)
	if _, err := r.cfg.JetStream.PublishMsg(ctx, msg, jetstream.WithMsgID(o.deliveryID("gust-dlq"))); err != nil {
		r.forget(DeadLetterStream)
		return fmt.Errorf("keep dead letter of %s: %w", o.Function, err)
	}
	r.cfg.Logger.Info("dead letter kept", "function", o.Function, "requestId", o.RequestID, "condition", o.Condition, "attempts", o.Attempts)
	return nil
}

// DeadLetters lists a function's built-in dead letters, oldest first;
// each one's ID is its stream sequence.
func (r *Router) DeadLetters(ctx context.Context, function string, withPayload bool) ([]api.DeadLetter, error) {
	msgs, err := r.deadLetterMsgs(ctx, function)
	if err != nil {
		return nil, err
	}
	out := make([]api.DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		d := toDeadLetter(m)
		if !withPayload {
			d.Payload = nil
		}
		out = append(out, d)
	}
	return out, nil
}

// deadLetterMsgs reads a function's dead letters from the stream.
func (r *Router) deadLetterMsgs(ctx context.Context, function string) ([]*jetstream.RawStreamMsg, error) {
	st, err := r.deadLetters(ctx)
	if err != nil {
		return nil, err
	}
	subject := deadLetterSubject + function
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read dead letters of %s: %w", function, err)
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

func toDeadLetter(m *jetstream.RawStreamMsg) api.DeadLetter {
	attempts, _ := strconv.Atoi(m.Header.Get(HeaderAttempts))
	return api.DeadLetter{
		ID:          strconv.FormatUint(m.Sequence, 10),
		Time:        m.Time,
		Function:    m.Header.Get(HeaderFunction),
		Qualifier:   m.Header.Get(HeaderQualifier),
		RequestID:   m.Header.Get(HeaderRequestID),
		Condition:   m.Header.Get(HeaderCondition),
		Attempts:    attempts,
		Error:       m.Header.Get(HeaderError),
		PayloadSize: len(m.Data),
		Payload:     m.Data,
	}
}

// Replay requeues a function's dead letter id (all of them when id is
// empty): the same request runs again, with fresh retries and an event
// age counted from now; each is removed from the stream once requeued. An id that is not
// one of the function's dead letters is an *api.Error
// (ResourceNotFoundException).
func (r *Router) Replay(ctx context.Context, function, id string) ([]api.Replayed, error) {
	msgs, err := r.deadLetterMsgs(ctx, function)
	if err != nil {
		return nil, err
	}
	if id != "" {
		var one []*jetstream.RawStreamMsg
		for _, m := range msgs {
			if strconv.FormatUint(m.Sequence, 10) == id {
				one = append(one, m)
			}
		}
		if len(one) == 0 {
			return nil, &api.Error{Code: api.ErrResourceNotFound, Status: 404,
				Message: fmt.Sprintf("%s has no dead letter %s: list them with gust dlq ls %s", function, id, function)}
		}
		msgs = one
	}
	st, err := r.deadLetters(ctx)
	if err != nil {
		return nil, err
	}
	out := []api.Replayed{}
	for _, m := range msgs {
		inv := invocationOf(m)
		// Requeue keeps the request id; a replay interrupted between
		// requeue and delete and run again is dropped as a duplicate
		// while the first replay has not run yet.
		if err := r.cfg.Queue.Requeue(ctx, inv); err != nil {
			return out, fmt.Errorf("replay dead letter %d of %s: %w", m.Sequence, function, err)
		}
		if err := st.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, fmt.Errorf("remove replayed dead letter %d of %s: %w", m.Sequence, function, err)
		}
		out = append(out, api.Replayed{ID: strconv.FormatUint(m.Sequence, 10), RequestID: inv.ID})
	}
	return out, nil
}

// invocationOf rebuilds the invocation a dead letter holds.
func invocationOf(m *jetstream.RawStreamMsg) async.Invocation {
	h := m.Header
	inv := async.Invocation{
		ID:             h.Get(HeaderRequestID),
		Function:       h.Get(HeaderFunction),
		Qualifier:      h.Get(HeaderQualifier),
		Payload:        m.Data,
		Source:         h.Get(HeaderSource),
		IdempotencyKey: h.Get(HeaderIdempotencyKey),
	}
	if inv.Qualifier == registry.Latest {
		inv.Qualifier = ""
	}
	inv.Enqueued, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderEnqueued))
	return inv
}
