package destination_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/internal/async"
	"github.com/gustfaas/gust/internal/destination"
	"github.com/gustfaas/gust/internal/engine"
	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/sandbox"
)

// runner runs functions for the real async queue: "poison" always fails,
// anything else echoes its event. It
// counts runs per function and keeps the payloads each received.
type runner struct {
	fns functions

	mu   sync.Mutex
	runs map[string][][]byte
}

func (r *runner) Resolve(name, qualifier string, _ float64) (*registry.Function, *registry.Alias, error) {
	fn, ok := r.fns[name]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s", registry.ErrNotFound, name)
	}
	return fn, nil, nil
}

func (r *runner) Invoke(_ context.Context, fn *registry.Function, _ string, payload []byte) (*engine.Result, error) {
	r.mu.Lock()
	if r.runs == nil {
		r.runs = map[string][][]byte{}
	}
	r.runs[fn.Name] = append(r.runs[fn.Name], payload)
	r.mu.Unlock()
	if fn.Name == "poison" {
		return &engine.Result{Version: registry.Latest, Err: &sandbox.FunctionError{Type: "Runtime.ExitError", Message: "exit status 1"}}, nil
	}
	return &engine.Result{Version: registry.Latest, Payload: payload}, nil
}

func (r *runner) runsOf(name string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.runs[name]...)
}

// checkFor polls cond until it holds or the deadline passes.
func checkFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWithQueue drives the Router as the hooks of a real async queue.
func TestDestinationWithQueue(t *testing.T) {
	ctx := context.Background()
	one := 1
	fns := functions{
		"poison": {Name: "poison", EventInvoke: map[string]*registry.EventInvokeConfig{registry.Latest: {MaximumRetryAttempts: &one}}},
		"ok":     {Name: "ok", EventInvoke: map[string]*registry.EventInvokeConfig{registry.Latest: {OnSuccess: sinkARN}}},
		"sink":   {Name: "sink", EventInvoke: map[string]*registry.EventInvokeConfig{registry.Latest: {OnSuccess: queueARN}}},
	}
	run := &runner{fns: fns}
	sub := openSubstrate(t)
	router := destination.New(destination.Config{Functions: fns, JetStream: sub.JetStream()})
	q, err := async.Open(ctx, sub, async.Config{
		Invoker: run, Functions: run,
		RetryDelays: []time.Duration{20 * time.Millisecond},
		BackoffMin:  10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Policy: router.Policy, OnSuccess: router.OnSuccess, OnFailure: router.OnFailure,
	})
	if err != nil {
		t.Fatal(err)
	}
	router.Attach(q)
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Stop(context.Background()) })

	t.Run("poison event", func(t *testing.T) {
		acc, err := q.Enqueue(ctx, async.Request{Function: "poison", Payload: []byte(`{"exit":1}`), Source: "lambda"})
		if err != nil {
			t.Fatal(err)
		}
		var letters []destinationLetter
		checkFor(t, 10*time.Second, "the poison event is a dead letter", func() bool {
			letters = deadLetters(t, router, "poison")
			return len(letters) == 1
		})
		if got := len(run.runsOf("poison")); got != 2 {
			t.Errorf("poison ran %d times, want 1 + MaximumRetryAttempts = 2", got)
		}
		d := letters[0]
		if d.RequestID != acc.RequestID || d.Attempts != 2 || d.Condition != "RetriesExhausted" || string(d.Payload) != `{"exit":1}` {
			t.Errorf("dead letter = %+v, want request %s, 2 attempts, RetriesExhausted, the event", d, acc.RequestID)
		}
		checkFor(t, 5*time.Second, "the record says where the failure went", func() bool {
			rec, err := q.Record(ctx, acc.RequestID)
			return err == nil && rec.Status == async.StatusDeadLettered && rec.DeadLetter == destination.DeadLetterStream
		})

		// Replay: the same request runs again (and fails again, twice).
		replayed, err := router.Replay(ctx, "poison", d.ID)
		if err != nil || len(replayed) != 1 || replayed[0].RequestID != acc.RequestID {
			t.Fatalf("Replay = %v, %v", replayed, err)
		}
		checkFor(t, 10*time.Second, "the replayed event is a dead letter again", func() bool {
			letters = deadLetters(t, router, "poison")
			return len(letters) == 1 && letters[0].ID != d.ID
		})
		if got := len(run.runsOf("poison")); got != 4 {
			t.Errorf("poison ran %d times after a replay, want 4", got)
		}
	})

	t.Run("on-success chain", func(t *testing.T) {
		acc, err := q.Enqueue(ctx, async.Request{Function: "ok", Payload: []byte(`{"echo":"hi"}`)})
		if err != nil {
			t.Fatal(err)
		}
		// ok's record goes to sink; sink's record (about the record it
		// got) goes to the queue.
		var msgs int
		checkFor(t, 10*time.Second, "sink's record reaches the queue", func() bool {
			msgs = len(readQueueIfAny(t, sub.JetStream(), "failures"))
			return msgs == 1
		})
		got := run.runsOf("sink")
		if len(got) != 1 {
			t.Fatalf("sink ran %d times, want 1", len(got))
		}
		var rec destination.Record
		if err := json.Unmarshal(got[0], &rec); err != nil {
			t.Fatal(err)
		}
		if rec.RequestContext.RequestID != acc.RequestID || rec.RequestContext.Condition != "Success" ||
			string(rec.RequestPayload) != `{"echo":"hi"}` || string(rec.ResponsePayload) != `{"echo":"hi"}` {
			t.Errorf("sink got %+v", rec)
		}
	})
}

type destinationLetter = struct {
	ID, RequestID, Condition string
	Attempts                 int
	Payload                  []byte
}

func deadLetters(t *testing.T, r *destination.Router, function string) []destinationLetter {
	t.Helper()
	list, err := r.DeadLetters(context.Background(), function, true)
	if err != nil {
		t.Fatal(err)
	}
	var out []destinationLetter
	for _, d := range list {
		out = append(out, destinationLetter{ID: d.ID, RequestID: d.RequestID, Condition: d.Condition, Attempts: d.Attempts, Payload: d.Payload})
	}
	return out
}

// readQueueIfAny is readQueue for a queue that may not exist yet.
func readQueueIfAny(t *testing.T, js jetstream.JetStream, queue string) []*jetstream.RawStreamMsg {
	t.Helper()
	if _, err := js.Stream(context.Background(), registry.QueueStream(queue)); errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	return readQueue(t, js, queue)
}
