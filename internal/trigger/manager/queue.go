package manager

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/trigger/queue"
)

// Queue runs NATS subject and JetStream stream triggers: each batch is one
// synchronous invocation in the shape of an SQS event; a function may
// answer with SQS's batchItemFailures to have only some messages retried.
type Queue struct {
	// Conn is the node's own NATS connection (for triggers without URL).
	Conn        *nats.Conn
	Invoker     Invoker
	DeadLetters DeadLetters
	// Region and Account appear in the events' source ARN.
	Region, Account string
	// RetryDelay is the wait before a failed message's first redelivery
	// (default: the queue package's).
	RetryDelay time.Duration
}

var _ Source = (*Queue)(nil)

func (q *Queue) config(t api.Trigger) queue.Config {
	s := t.Queue
	return queue.Config{URL: s.URL, Subject: s.Subject, Stream: s.Stream, FilterSubject: s.FilterSubject,
		Durable: t.Resource, BatchSize: s.BatchSize, BatchWindow: time.Duration(s.BatchWindowMs) * time.Millisecond,
		Concurrency: s.Concurrency, MaxDeliver: s.MaxDeliver, RetryDelay: q.RetryDelay}
}

func queueInvalid(err error) error {
	var ve *queue.ValidationError
	if errors.As(err, &ve) {
		return invalid("queue."+ve.Field, "queue: %s", ve.Message)
	}
	return invalid("queue", "queue: %v", err)
}

// Validate implements Source.
func (q *Queue) Validate(t *api.Trigger) error {
	cfg := q.config(*t)
	cfg.Durable = "probe"
	if err := cfg.Validate(); err != nil {
		return queueInvalid(err)
	}
	return nil
}

// conn returns the connection a trigger uses: the node's own, or nil for
// an external server (the queue package then connects itself).
func (q *Queue) conn(t api.Trigger) (*nats.Conn, error) {
	if t.Queue.URL != "" {
		return nil, nil
	}
	if q.Conn == nil {
		return nil, errors.New("this node has no NATS connection for queue triggers")
	}
	return q.Conn, nil
}

// Check implements Source.
func (q *Queue) Check(ctx context.Context, t api.Trigger) error {
	nc, err := q.conn(t)
	if err != nil {
		return invalid("queue", "queue: %v", err)
	}
	if err := queue.Check(ctx, nc, q.config(t)); err != nil {
		return queueInvalid(err)
	}
	return nil
}

// Run implements Source.
func (q *Queue) Run(ctx context.Context, t api.Trigger, st *Status) error {
	nc, err := q.conn(t)
	if err != nil {
		return err
	}
	cfg := q.config(t)
	cfg.Ready = st.Running
	source := cfg.ARN(q.Region, q.Account)
	return queue.Run(ctx, nc, cfg,
		func(ctx context.Context, batch []queue.Message) error {
			payload, err := queue.Event(batch, source)
			if err != nil {
				return err
			}
			resp, err := q.Invoker.Invoke(ctx, t.Function, t.Qualifier, payload)
			var fe *FunctionError
			if errors.As(err, &fe) && len(batch) > 1 {
				// Split the failing batch: each message alone, so that
				// only the failing ones come back (and, in the end, go
				// to the dead letters) while the others are done.
				return q.oneByOne(ctx, t, st, source, batch)
			}
			if err != nil {
				st.Failed(err)
				return err
			}
			if err := queue.BatchItemFailures(resp, batch); err != nil {
				var pe *queue.PartialError
				if errors.As(err, &pe) {
					st.Delivered(len(batch) - len(pe.IDs))
				}
				return err
			}
			st.Delivered(len(batch))
			return nil
		},
		func(ctx context.Context, m queue.Message, cause error) {
			payload, err := queue.Event([]queue.Message{m}, source)
			if err == nil {
				err = q.DeadLetters.DeadLetter(ctx, t, payload, m.Delivered, cause)
			}
			if err != nil {
				st.Failed(err)
				return
			}
			st.DeadLettered(1)
		})
}

// oneByOne invokes the function with each message of a failed batch
// alone; it returns a *queue.PartialError naming those that failed, or
// the error that kept the function from running.
func (q *Queue) oneByOne(ctx context.Context, t api.Trigger, st *Status, source string, batch []queue.Message) error {
	var failed []string
	var last error
	for _, m := range batch {
		payload, err := queue.Event([]queue.Message{m}, source)
		if err != nil {
			return err
		}
		resp, err := q.Invoker.Invoke(ctx, t.Function, t.Qualifier, payload)
		var fe *FunctionError
		switch {
		case errors.As(err, &fe):
			failed, last = append(failed, m.ID), err
		case err != nil:
			st.Failed(err)
			return err
		default:
			if perr := queue.BatchItemFailures(resp, []queue.Message{m}); perr != nil {
				failed, last = append(failed, m.ID), perr
				continue
			}
			st.Delivered(1)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	st.Failed(last)
	return &queue.PartialError{IDs: failed, Err: last}
}

// Same implements Source: the same server and subject or stream.
func (q *Queue) Same(a, b api.Trigger) bool {
	x, y := a.Queue, b.Queue
	return x.URL == y.URL && x.Subject == y.Subject && x.Stream == y.Stream && x.FilterSubject == y.FilterSubject
}

// Remove implements Source: a stream trigger's durable consumer is
// deleted (a subject trigger holds nothing).
func (q *Queue) Remove(ctx context.Context, t api.Trigger) error {
	if t.Queue.Stream == "" {
		return nil
	}
	nc, err := q.conn(t)
	if err != nil {
		return err
	}
	if nc == nil {
		if nc, err = queue.Connect(ctx, t.Queue.URL); err != nil {
			return err
		}
		defer nc.Close()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	err = js.DeleteConsumer(ctx, t.Queue.Stream, t.Resource)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	return err
}
