// Package queue consumes NATS for queue triggers, and publishes to it for
// `gust publish`.
//
// A queue trigger reads one of two sources, on the node's own NATS or on
// an external NATS server:
//
//   - A core NATS subject (wildcards allowed), read in a queue group named
//     after the trigger, so that in a cluster each message goes to one
//     node. Core NATS keeps nothing: delivery is at most once. A message
//     published while no node consumes the subject is lost, and so is a
//     message whose batch fails (the failure is logged) or that is still
//     buffered when the consumer stops.
//   - A JetStream stream (optionally narrowed by a filter subject), read
//     through a durable pull consumer named by the caller: delivery is at
//     least once. Messages published while the trigger is stopped wait in
//     the stream, and the consumer resumes where it stopped, after a
//     restart or a reconnect. A message of a batch that fails comes back
//     after a backoff; once it has failed MaxDeliver times it is handed to
//     an exhausted hook (the caller dead-letters it) and terminated.
//
// Run delivers messages in batches (1 to BatchSize messages, waiting at
// most BatchWindow for a batch to fill once its first message arrived),
// with up to Concurrency batches in flight. Event shapes a batch as an SQS
// event, so Lambda code written for SQS (aws-lambda-go events.SQSEvent)
// reads it unchanged; BatchItemFailures reads the SQS partial-batch
// response ({"batchItemFailures":[{"itemIdentifier":...}]}) so that only
// the failed messages of a batch come back.
//
// Publisher is the other direction: it publishes a message on the node's
// NATS (through JetStream, waiting for the stream's ack, when a stream
// stores the subject) and manages the streams that queue triggers read
// ("queue streams").
//
// Subjects and stream names of Gust's own state are out of reach on the
// node's NATS: subjects starting with '$' (NATS's APIs, KV and object
// stores) or "_INBOX.", subjects under "gust." (except a Gust queue's
// "gust.queue.NAME" where publishing makes sense), and streams named
// GUST_*, KV_* or OBJ_* (except GUST_QUEUE_*, Gust's queues).
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
)

// Defaults and bounds of Config.
const (
	DefaultBatchSize  = 10
	MaxBatchSize      = api.MaxTriggerBatchSize
	MaxBatchWindow    = api.MaxTriggerBatchWindow
	MinBatchWindow    = 10 * time.Millisecond
	MaxConcurrency    = api.MaxTriggerConcurrency
	DefaultMaxDeliver = 3
	MaxMaxDeliver     = api.MaxQueueDeliver
	DefaultRetryDelay = time.Second
	// MaxRetryDelay caps the backoff before a failed message comes back.
	MaxRetryDelay  = 5 * time.Minute
	DefaultAckWait = 30 * time.Second
	MinAckWait     = time.Second
	MaxAckWait     = time.Hour
	// MaxNameLen bounds stream and consumer names.
	MaxNameLen = 255
)

const (
	// pollWait is how long one fetch waits for messages: also how long
	// a stream consumer may take to stop.
	pollWait = time.Second
	// retryWait is the pause after a failed fetch (a reconnect, a server
	// restarting).
	retryWait = time.Second
	// ackTimeout bounds waiting for the server to confirm an ack.
	ackTimeout = 10 * time.Second
	// connectTimeout bounds a connection attempt.
	connectTimeout = 5 * time.Second
)

// Config is one queue trigger's source and delivery settings. The zero
// value of each optional field means its default.
type Config struct {
	// URL is an external NATS server ("nats://host:4222", or several
	// separated by commas); empty means the node's own NATS, whose
	// connection the caller passes to Check and Run.
	URL string
	// Subject is a core NATS subject, wildcards allowed: at most once
	// (see the package documentation).
	Subject string
	// Stream is a JetStream stream name, read at least once through the
	// durable pull consumer Durable; FilterSubject optionally narrows
	// it to some of the stream's subjects.
	Stream        string
	FilterSubject string
	// Durable names the consumer: the durable consumer of a stream, the
	// queue group of a subject. Required.
	Durable string
	// BatchSize is the most messages per delivery (default 10, at most
	// 1000).
	BatchSize int
	// BatchWindow is how long a batch may wait to fill, from its first
	// message: 0 (the default) delivers at once whatever is ready, as
	// Lambda's SQS event source does by default; otherwise 10 ms to 5
	// minutes.
	BatchWindow time.Duration
	// Concurrency is how many batches may be in flight at once (default
	// 1: one batch at a time, in order; at most 100). A stream message
	// that failed comes back after its backoff, behind later messages.
	Concurrency int
	// MaxDeliver (streams) is how many times a message is delivered
	// before it is given up: after its MaxDeliver-th failure it goes to
	// the exhausted hook and is terminated (default 3, at most 100).
	MaxDeliver int
	// RetryDelay (streams) is the wait before a failed message comes
	// back the first time, doubled for each further delivery up to
	// MaxRetryDelay (default 1 s).
	RetryDelay time.Duration
	// AckWait (streams) is how long a delivered message may go without
	// an ack or a sign of progress before the server delivers it again;
	// Run signals progress every AckWait/3 while a batch runs (default
	// 30 s, 1 s to 1 h).
	AckWait time.Duration
	// Ready, when set, is called once the subscription or the consumer
	// is in place (each time Run starts).
	Ready func()
	// Logger receives what goes wrong (default: discarded).
	Logger *slog.Logger
}

// ValidationError is a setting that breaks a rule, or a source that
// refuses the trigger (an unreachable server, a missing stream). Field
// names the setting ("subject", "stream", "url", "batchSize", ...).
type ValidationError struct {
	Field   string
	Message string
	// Err is the underlying error, if any.
	Err error
}

func (e *ValidationError) Error() string { return e.Message }

// Unwrap returns the underlying error.
func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// external reports whether the source is an external server.
func (c Config) external() bool { return c.URL != "" }

// Validate checks the settings without reaching the source; zero values
// stand for their defaults. Its errors are *ValidationError.
func (c Config) Validate() error {
	switch {
	case c.Subject == "" && c.Stream == "":
		return invalid("subject", "a queue trigger needs a subject (core NATS, at most once) or a stream (JetStream, at least once)")
	case c.Subject != "" && c.Stream != "":
		return invalid("subject", "subject %q and stream %q exclude each other: a queue trigger reads one of them", c.Subject, c.Stream)
	case c.Stream == "" && c.FilterSubject != "":
		return invalid("filterSubject", "filterSubject %q needs a stream: it narrows a stream's subjects", c.FilterSubject)
	}
	if c.URL != "" {
		if _, err := parseURLs(c.URL); err != nil {
			return &ValidationError{Field: "url", Message: err.Error(), Err: err}
		}
	}
	if c.Subject != "" {
		if err := ValidatePattern(c.Subject); err != nil {
			return invalid("subject", "subject: %v", err)
		}
		if err := c.checkReserved(c.Subject); err != nil {
			return invalid("subject", "subject: %v", err)
		}
	}
	if c.Stream != "" {
		if err := validateName("stream", c.Stream); err != nil {
			return err
		}
		if !c.external() {
			if err := readableStream(c.Stream); err != nil {
				return invalid("stream", "%v", err)
			}
		}
		if c.FilterSubject != "" {
			if err := ValidatePattern(c.FilterSubject); err != nil {
				return invalid("filterSubject", "filterSubject: %v", err)
			}
		}
	}
	if c.Durable == "" {
		return invalid("durable", "the consumer needs a name (durable)")
	}
	if err := validateName("durable", c.Durable); err != nil {
		return err
	}
	switch {
	case c.BatchSize < 0 || c.BatchSize > MaxBatchSize:
		return invalid("batchSize", "batch size %d is out of range: 1 to %d (0 for the default, %d)", c.BatchSize, MaxBatchSize, DefaultBatchSize)
	case c.BatchWindow < 0 || c.BatchWindow > MaxBatchWindow:
		return invalid("batchWindow", "batch window %s is out of range: 0 to %s", c.BatchWindow, MaxBatchWindow)
	case c.BatchWindow > 0 && c.BatchWindow < MinBatchWindow:
		return invalid("batchWindow", "batch window %s is too short: 0 (deliver what is ready) or at least %s", c.BatchWindow, MinBatchWindow)
	case c.Concurrency < 0 || c.Concurrency > MaxConcurrency:
		return invalid("concurrency", "concurrency %d is out of range: 1 to %d (0 for the default, 1)", c.Concurrency, MaxConcurrency)
	case c.MaxDeliver < 0 || c.MaxDeliver > MaxMaxDeliver:
		return invalid("maxDeliver", "maxDeliver %d is out of range: 1 to %d (0 for the default, %d)", c.MaxDeliver, MaxMaxDeliver, DefaultMaxDeliver)
	case c.RetryDelay < 0 || c.RetryDelay > MaxRetryDelay:
		return invalid("retryDelay", "retry delay %s is out of range: 0 to %s", c.RetryDelay, MaxRetryDelay)
	case c.AckWait != 0 && (c.AckWait < MinAckWait || c.AckWait > MaxAckWait):
		return invalid("ackWait", "ack wait %s is out of range: %s to %s", c.AckWait, MinAckWait, MaxAckWait)
	}
	return nil
}

// checkReserved refuses, on the node's own NATS, the subjects of Gust's
// state; on any server, NATS's own ('$' and "_INBOX.").
func (c Config) checkReserved(pattern string) error {
	if err := systemSubject(pattern); err != nil {
		return err
	}
	if c.external() {
		return nil
	}
	first, _, _ := strings.Cut(pattern, ".")
	if first == "*" || first == ">" {
		return fmt.Errorf("%q would also receive Gust's own messages on the node's NATS: start it with a literal token", pattern)
	}
	return gustSubject(pattern, true)
}

// WithDefaults returns c with every zero setting replaced by its default.
func (c Config) WithDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// where names the server for messages.
func (c Config) where() string {
	if c.URL == "" {
		return "the node's NATS"
	}
	return "NATS at " + RedactURL(c.URL)
}

// ARN is the eventSourceARN of the trigger's events:
// arn:gust:nats:REGION:ACCOUNT:STREAM (a stream) or :SUBJECT.
func (c Config) ARN(region, account string) string {
	src := c.Stream
	if src == "" {
		src = c.Subject
	}
	return fmt.Sprintf("arn:gust:nats:%s:%s:%s", region, account, src)
}

// Message is one message handed to deliver.
type Message struct {
	// Subject is the subject it was published on.
	Subject string
	Data    []byte
	// Headers are the NATS headers it was published with.
	Headers map[string][]string
	// Stream and Sequence locate it in a stream (empty and 0 for a core
	// subject).
	Stream   string
	Sequence uint64
	// Delivered counts its deliveries, this one included (1 for a core
	// subject).
	Delivered int
	// Time is when the stream stored it, or when a core message arrived.
	Time time.Time
	// ID identifies it: STREAM:SEQUENCE for a stream message (the same
	// on every delivery), a random id for a core message. It is the SQS
	// event's messageId and what a partial-batch response names.
	ID string
}

// Connect connects to an external NATS server for a trigger: the
// connection reconnects forever once made, but the first attempt fails
// at once, with an error naming the server, when it cannot be reached.
// The caller closes the connection.
func Connect(ctx context.Context, rawURL string) (*nats.Conn, error) {
	if _, err := parseURLs(rawURL); err != nil {
		return nil, err
	}
	timeout := connectTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("connect to nats at %s: %w", RedactURL(rawURL), context.DeadlineExceeded)
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(rawURL,
			nats.Name("gust-trigger"),
			nats.Timeout(timeout),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(time.Second),
			nats.PingInterval(10*time.Second),
			nats.MaxPingsOutstanding(3),
		)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect to nats at %s: %w", RedactURL(rawURL), r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect to nats at %s: %w", RedactURL(rawURL), ctx.Err())
	}
}

// parseURLs checks a comma-separated list of NATS server URLs.
func parseURLs(raw string) ([]*url.URL, error) {
	var out []*url.URL
	for part := range strings.SplitSeq(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("url %q has an empty server in its list", RedactURL(raw))
		}
		u, err := url.Parse(part)
		if err != nil {
			return nil, fmt.Errorf("url %q does not parse: want nats://host:port", RedactURL(part))
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, fmt.Errorf("url %q: want scheme nats://, tls://, ws:// or wss://, not %q", RedactURL(part), u.Scheme)
		}
		if u.Hostname() == "" {
			return nil, fmt.Errorf("url %q has no host: want nats://host:port", RedactURL(part))
		}
		out = append(out, u)
	}
	return out, nil
}

// RedactURL hides the credentials of NATS server URLs (a user and
// password, or a token in the user part) for messages and logs.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			if err != nil && strings.Contains(p, "@") {
				parts[i] = "(unparsable url)"
			}
			continue
		}
		u.User = url.User("xxxxx")
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// Check verifies at configuration time that the trigger can run: the
// server is reachable (an error naming it otherwise) and, for a stream,
// that the stream exists and that the filter subject is one of its
// subjects. nc is the node's connection; with nil and an external URL,
// Check connects to the URL itself. Its refusals are *ValidationError.
func Check(ctx context.Context, nc *nats.Conn, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if nc == nil {
		if !c.external() {
			return errors.New("queue: check needs the node's NATS connection")
		}
		var err error
		if nc, err = Connect(ctx, c.URL); err != nil {
			return &ValidationError{Field: "url", Message: err.Error(), Err: err}
		}
		defer nc.Close()
	}
	fctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return &ValidationError{Field: "url", Message: fmt.Sprintf("%s is unreachable: %v", c.where(), err), Err: err}
	}
	if c.Stream == "" {
		return nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	st, err := js.Stream(fctx, c.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return &ValidationError{Field: "stream", Message: fmt.Sprintf("stream %q does not exist on %s", c.Stream, c.where()), Err: err}
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, nats.ErrNoResponders):
		return &ValidationError{Field: "stream", Message: fmt.Sprintf("%s has no JetStream: stream %q cannot be read", c.where(), c.Stream), Err: err}
	case err != nil:
		return fmt.Errorf("look up stream %q on %s: %w", c.Stream, c.where(), err)
	}
	if c.FilterSubject != "" {
		subjects := st.CachedInfo().Config.Subjects
		ok := false
		for _, s := range subjects {
			if overlap(c.FilterSubject, s) {
				ok = true
				break
			}
		}
		if !ok {
			return invalid("filterSubject", "filterSubject %q matches none of stream %q's subjects (%s)", c.FilterSubject, c.Stream, strings.Join(subjects, ", "))
		}
	}
	return nil
}

// Run consumes the source until ctx is done, then waits for the batches
// in flight and returns nil; it returns an error when it cannot go on
// (the server refused the consumer, the stream or the consumer was
// deleted), for the caller to run it again later.
//
// deliver gets batches of 1 to BatchSize messages, at most Concurrency
// at once (with 1, one after another in order); it gets ctx, so a batch
// in flight is cancelled when Run stops. For a stream, every message of
// a batch is acked when deliver returns nil; when it returns an error,
// every message (or, for a *PartialError, those it names) is given back
// to be delivered again after a backoff, unless it has been delivered
// MaxDeliver times: then onExhausted gets it with the error, and it is
// terminated. A batch cut short because ctx ended is given back at once
// (that delivery counts). A core subject's failed batch is logged and
// dropped (at most once); onExhausted is not called for it.
//
// nc is the node's connection; with nil and an external URL, Run
// connects (see Connect) and closes the connection when it returns.
func Run(ctx context.Context, nc *nats.Conn, c Config, deliver func(ctx context.Context, batch []Message) error, onExhausted func(ctx context.Context, m Message, err error)) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if deliver == nil {
		return errors.New("queue: run needs a deliver function")
	}
	c = c.WithDefaults()
	if nc == nil {
		if !c.external() {
			return errors.New("queue: run needs the node's NATS connection")
		}
		var err error
		if nc, err = Connect(ctx, c.URL); err != nil {
			return err
		}
		defer nc.Close()
	}
	if onExhausted == nil {
		onExhausted = func(context.Context, Message, error) {}
	}
	r := &runner{cfg: c, nc: nc, deliver: deliver, exhausted: onExhausted, log: c.Logger,
		slots: make(chan struct{}, c.Concurrency)}
	defer r.wg.Wait()
	if c.Stream != "" {
		return r.runStream(ctx)
	}
	return r.runCore(ctx)
}

// runner is one Run.
type runner struct {
	cfg       Config
	nc        *nats.Conn
	deliver   func(context.Context, []Message) error
	exhausted func(context.Context, Message, error)
	log       *slog.Logger
	slots     chan struct{} // one per batch in flight
	wg        sync.WaitGroup
}

// acquire takes a batch slot; false when ctx ends first.
func (r *runner) acquire(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	select {
	case r.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *runner) release() { <-r.slots }

// dispatch runs a batch: in line with one slot (so batches stay in
// order), else in its own goroutine. The batch holds a slot already.
func (r *runner) dispatch(f func()) {
	if r.cfg.Concurrency == 1 {
		defer r.release()
		f()
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.release()
		f()
	}()
}

func (r *runner) ready() {
	if r.cfg.Ready != nil {
		r.cfg.Ready()
	}
}

// runCore reads a core subject in the queue group Durable.
func (r *runner) runCore(ctx context.Context) error {
	sub, err := r.nc.QueueSubscribeSync(r.cfg.Subject, r.cfg.Durable)
	if err != nil {
		return fmt.Errorf("subscribe to %q on %s: %w", r.cfg.Subject, r.cfg.where(), err)
	}
	defer sub.Unsubscribe()
	fctx, cancel := context.WithTimeout(ctx, connectTimeout)
	err = r.nc.FlushWithContext(fctx)
	cancel()
	if err != nil && ctx.Err() == nil && r.nc.IsConnected() {
		return fmt.Errorf("subscribe to %q on %s: %w", r.cfg.Subject, r.cfg.where(), err)
	}
	r.ready()
	for r.acquire(ctx) {
		msgs, err := r.coreBatch(ctx, sub)
		if err != nil {
			r.release()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read %q on %s: %w", r.cfg.Subject, r.cfg.where(), err)
		}
		r.dispatch(func() {
			if err := r.deliver(ctx, msgs); err != nil {
				r.log.Error("queue batch failed; core NATS messages are dropped (at most once)",
					"subject", r.cfg.Subject, "messages", len(msgs), "err", err)
			}
		})
	}
	return nil
}

// coreBatch waits for a first message, then fills the batch for at most
// the window (or with what is buffered already).
func (r *runner) coreBatch(ctx context.Context, sub *nats.Subscription) ([]Message, error) {
	m, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return nil, err
	}
	batch := []Message{coreMessage(m)}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if r.cfg.BatchWindow > 0 {
		wctx, cancel = context.WithTimeout(ctx, r.cfg.BatchWindow)
	}
	defer cancel()
	for len(batch) < r.cfg.BatchSize {
		var m *nats.Msg
		if r.cfg.BatchWindow > 0 {
			m, err = sub.NextMsgWithContext(wctx)
		} else {
			m, err = sub.NextMsg(time.Nanosecond) // only what is buffered
		}
		if err != nil {
			break // the window closed, or nothing more is ready
		}
		batch = append(batch, coreMessage(m))
	}
	return batch, nil
}

func coreMessage(m *nats.Msg) Message {
	return Message{Subject: m.Subject, Data: m.Data, Headers: headersOf(m.Header), Delivered: 1,
		Time: time.Now().UTC(), ID: uuid.NewString()}
}

func headersOf(h nats.Header) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// runStream reads a stream through the durable consumer.
func (r *runner) runStream(ctx context.Context) error {
	js, err := jetstream.New(r.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	cfg := r.cfg
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "gust queue trigger",
		FilterSubject: cfg.FilterSubject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		// Run counts deliveries itself: the server never gives up on a
		// message silently (a delivery cut short by a crash counts as
		// one, and the message comes back).
		MaxDeliver:    -1,
		MaxAckPending: max(1000, 2*cfg.BatchSize*cfg.Concurrency),
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %q does not exist on %s: %w", cfg.Stream, cfg.where(), err)
		}
		return fmt.Errorf("consumer %q of stream %q on %s: %w", cfg.Durable, cfg.Stream, cfg.where(), err)
	}
	r.ready()
	for r.acquire(ctx) {
		msgs, err := r.streamBatch(ctx, cons)
		if len(msgs) == 0 {
			r.release()
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound),
				errors.Is(err, jetstream.ErrStreamNotFound):
				return fmt.Errorf("consumer %q of stream %q on %s: %w", cfg.Durable, cfg.Stream, cfg.where(), err)
			case r.nc.IsClosed():
				return fmt.Errorf("read stream %q on %s: %w", cfg.Stream, cfg.where(), nats.ErrConnectionClosed)
			case err != nil:
				// Disconnected, or the server is restarting: the
				// connection reconnects and the consumer resumes.
				r.log.Warn("fetch from stream", "stream", cfg.Stream, "consumer", cfg.Durable, "err", err)
				sleep(ctx, retryWait)
			}
			continue
		}
		r.dispatch(func() { r.runBatch(ctx, msgs) })
	}
	return nil
}

// streamBatch waits (a long poll) for a first message, then fills the
// batch for at most the window, or with what is ready. When ctx ends
// meanwhile, what came is given back at once.
//
// Pull requests are never abandoned: each one ends by itself (within
// pollWait), so that no message goes to a request nobody reads any more,
// where it would wait for AckWait before coming back. Stopping therefore
// takes up to pollWait.
func (r *runner) streamBatch(ctx context.Context, cons jetstream.Consumer) ([]jetstream.Msg, error) {
	msgs, err := collect(cons.Fetch(1, jetstream.FetchMaxWait(pollWait)))
	if len(msgs) == 0 {
		return nil, err
	}
	switch {
	case r.cfg.BatchSize == 1:
	case r.cfg.BatchWindow == 0:
		more, _ := collect(cons.FetchNoWait(r.cfg.BatchSize - 1))
		msgs = append(msgs, more...)
	default:
		deadline := time.Now().Add(r.cfg.BatchWindow)
		for len(msgs) < r.cfg.BatchSize && ctx.Err() == nil {
			wait := min(time.Until(deadline), pollWait)
			if wait <= 0 {
				break
			}
			more, err := collect(cons.Fetch(r.cfg.BatchSize-len(msgs), jetstream.FetchMaxWait(wait)))
			msgs = append(msgs, more...)
			if err != nil {
				break
			}
		}
	}
	if ctx.Err() != nil {
		for _, m := range msgs {
			_ = m.Nak()
		}
		return nil, ctx.Err()
	}
	return msgs, nil
}

// collect reads a fetched batch to its end.
func collect(batch jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, batch.Error()
}

// runBatch delivers one batch of stream messages and settles each one.
func (r *runner) runBatch(ctx context.Context, msgs []jetstream.Msg) {
	batch := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		batch = append(batch, streamMessage(m))
	}
	stop := r.progress(msgs)
	err := r.deliver(ctx, batch)
	stop()

	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	if err == nil {
		for i, m := range msgs {
			if aerr := m.DoubleAck(actx); aerr != nil {
				r.log.Warn("ack queue message (it may be delivered again)", "id", batch[i].ID, "err", aerr)
			}
		}
		return
	}
	var pe *PartialError
	failed := func(string) bool { return true }
	if errors.As(err, &pe) {
		failed = pe.failed
	}
	for i, m := range msgs {
		msg := batch[i]
		switch {
		case !failed(msg.ID):
			if aerr := m.DoubleAck(actx); aerr != nil {
				r.log.Warn("ack queue message (it may be delivered again)", "id", msg.ID, "err", aerr)
			}
		case ctx.Err() != nil:
			// Stopping: give it back now, for another node or a restart.
			_ = m.Nak()
		case msg.Delivered >= r.cfg.MaxDeliver:
			r.exhausted(ctx, msg, err)
			if terr := m.TermWithReason("gust: delivery attempts exhausted"); terr != nil {
				r.log.Warn("terminate exhausted queue message", "id", msg.ID, "err", terr)
			}
		default:
			_ = m.NakWithDelay(r.backoff(msg.Delivered))
		}
	}
}

// progress tells the server, every AckWait/3, that the batch is still
// being worked on, until the returned function is called.
func (r *runner) progress(msgs []jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// backoff is the wait before the next delivery of a message delivered n
// times: RetryDelay doubled per delivery, capped, with ±10% jitter.
func (r *runner) backoff(n int) time.Duration {
	d := r.cfg.RetryDelay
	for i := 1; i < n && d < MaxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, MaxRetryDelay)
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

func streamMessage(m jetstream.Msg) Message {
	msg := Message{Subject: m.Subject(), Data: m.Data(), Headers: headersOf(m.Headers())}
	if meta, err := m.Metadata(); err == nil {
		msg.Stream, msg.Sequence = meta.Stream, meta.Sequence.Stream
		msg.Delivered, msg.Time = int(meta.NumDelivered), meta.Timestamp.UTC()
		msg.ID = fmt.Sprintf("%s:%d", meta.Stream, meta.Sequence.Stream)
	}
	return msg
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
