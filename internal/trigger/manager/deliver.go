package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gustfaas/gust/api"
)

// Invoker runs a function synchronously. A function error (the code
// failed, timed out or crashed) is a *FunctionError; any other error
// (a throttle, the node shutting down) means the function did not run
// and the call should be retried later.
type Invoker interface {
	Invoke(ctx context.Context, function, qualifier string, payload []byte) ([]byte, error)
}

// FunctionError is a function's own failure.
type FunctionError struct {
	Type    string
	Message string
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// Enqueuer queues an asynchronous invocation; the same dedupID twice runs
// the function once.
type Enqueuer interface {
	Enqueue(ctx context.Context, function, qualifier string, payload []byte, dedupID, source string) (requestID string, err error)
}

// DeadLetters keeps an event that failed for good (the function's
// dead-letter and on-failure destinations, else Gust's dead-letter
// queue, where `gust dlq` shows it).
type DeadLetters interface {
	DeadLetter(ctx context.Context, t api.Trigger, payload []byte, attempts int, cause error) error
}

// retry is how a synchronous source retries a failing batch.
type retry struct {
	attempts int           // tries of one batch (and of each event alone)
	first    time.Duration // wait before the second try, doubling
	max      time.Duration
}

// invokeBatch invokes the function with payload, retrying function
// errors up to r.attempts times in all. It returns nil on success, the
// last *FunctionError when every try failed, or another error when the
// function could not run (the caller retries later).
func invokeBatch(ctx context.Context, inv Invoker, t api.Trigger, payload []byte, r retry) error {
	wait := r.first
	var last error
	for attempt := 1; attempt <= r.attempts; attempt++ {
		_, err := inv.Invoke(ctx, t.Function, t.Qualifier, payload)
		if err == nil {
			return nil
		}
		var fe *FunctionError
		if !errors.As(err, &fe) {
			return err
		}
		last = err
		if attempt == r.attempts {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(wait*2, r.max)
	}
	return fmt.Errorf("after %d attempts: %w", r.attempts, last)
}

// deliverInOrder hands events to the function as one batch; if the batch
// keeps failing, each event is tried alone, in order, and those that
// still fail are dead-lettered, so one poison event does not hold the
// rest back. It returns nil once every event succeeded or was
// dead-lettered, or an error when the function could not run (the
// source delivers the batch again later).
func deliverInOrder(ctx context.Context, inv Invoker, dl DeadLetters, st *Status, t api.Trigger, r retry,
	events int, payload func(from, to int) ([]byte, error)) error {
	all, err := payload(0, events)
	if err != nil {
		return err
	}
	err = invokeBatch(ctx, inv, t, all, r)
	var fe *FunctionError
	switch {
	case err == nil:
		st.Delivered(events)
		return nil
	case !errors.As(err, &fe):
		return err
	case events == 1:
		if err := dl.DeadLetter(ctx, t, all, r.attempts, err); err != nil {
			return fmt.Errorf("dead-letter a failing event: %w", err)
		}
		st.DeadLettered(1)
		return nil
	}
	for i := range events {
		one, err := payload(i, i+1)
		if err != nil {
			return err
		}
		err = invokeBatch(ctx, inv, t, one, r)
		switch {
		case err == nil:
			st.Delivered(1)
		case errors.As(err, &fe):
			if err := dl.DeadLetter(ctx, t, one, r.attempts, err); err != nil {
				return fmt.Errorf("dead-letter a failing event: %w", err)
			}
			st.DeadLettered(1)
		default:
			return err
		}
	}
	return nil
}
