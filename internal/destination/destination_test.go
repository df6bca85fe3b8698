package destination_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/async"
	"github.com/gustfaas/gust/internal/destination"
	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/substrate"
)

func openSubstrate(t *testing.T) *substrate.Substrate {
	t.Helper()
	sub, err := substrate.Open(context.Background(), substrate.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// functions is a fixed registry view.
type functions map[string]*registry.Function

func (f functions) Get(name string) (*registry.Function, bool) {
	fn, ok := f[name]
	return fn, ok
}

// queue is a fake async queue: it records what is enqueued (dropping
// repeated dedupe ids), requeued and marked.
type queue struct {
	mu       sync.Mutex
	seen     map[string]bool
	calls    []enqueued
	requeued []async.Invocation
	marked   map[string]string
	err      error
}

type enqueued struct {
	Function, Qualifier string
	Payload             string
	DedupID             string
}

func (e *queue) Enqueue(_ context.Context, r async.Request) (async.Accepted, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return async.Accepted{}, e.err
	}
	if e.seen == nil {
		e.seen = map[string]bool{}
	}
	if e.seen[r.DedupID] {
		return async.Accepted{RequestID: "dup", Duplicate: true}, nil
	}
	e.seen[r.DedupID] = true
	e.calls = append(e.calls, enqueued{r.Function, r.Qualifier, string(r.Payload), r.DedupID})
	return async.Accepted{RequestID: fmt.Sprintf("rid-%d", len(e.calls))}, nil
}

func (e *queue) Requeue(_ context.Context, inv async.Invocation) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return e.err
	}
	e.requeued = append(e.requeued, inv)
	return nil
}

func (e *queue) MarkDeadLettered(_ context.Context, id, dest string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.marked == nil {
		e.marked = map[string]string{}
	}
	e.marked[id] = dest
	return nil
}

func (e *queue) got() []enqueued {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]enqueued(nil), e.calls...)
}

var fixed = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func newRouter(t *testing.T, fns functions, enq destination.Queue) (*destination.Router, jetstream.JetStream) {
	sub := openSubstrate(t)
	js := sub.JetStream()
	return destination.New(destination.Config{Functions: fns, Queue: enq, JetStream: js, Region: "us-east-1", Account: "000000000000",
		Now: func() time.Time { return fixed }}), js
}

const (
	sinkARN  = "arn:aws:lambda:us-east-1:000000000000:function:sink"
	queueARN = "arn:aws:sqs:us-east-1:000000000000:failures"
)

func TestDestinationRecord(t *testing.T) {
	r := destination.New(destination.Config{Now: func() time.Time { return fixed }})
	tests := []struct {
		name string
		o    destination.Outcome
		want string
	}{
		{"success", destination.Outcome{RequestID: "r1", Function: "f", Payload: []byte(`{"a":1}`), Attempts: 1,
			Condition: destination.ConditionSuccess, Executed: true, ExecutedVersion: "$LATEST", Response: []byte(`{"ok":true}`)},
			`{"version":"1.0","timestamp":"2026-11-27T10:00:00.000Z","requestContext":{"requestId":"r1","functionArn":"arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST","condition":"Success","approximateInvokeCount":1},"requestPayload":{"a":1},"responseContext":{"statusCode":200,"executedVersion":"$LATEST"},"responsePayload":{"ok":true}}`},
		{"retries exhausted", destination.Outcome{RequestID: "r2", Function: "f", Qualifier: "live", Payload: []byte(`{"exit":1}`), Attempts: 3,
			Condition: destination.ConditionRetriesExhausted, Executed: true, ExecutedVersion: "4", FunctionError: "Unhandled",
			Response: []byte(`{"errorMessage":"exit status 1","errorType":"Runtime.ExitError"}`)},
			`{"version":"1.0","timestamp":"2026-11-27T10:00:00.000Z","requestContext":{"requestId":"r2","functionArn":"arn:aws:lambda:us-east-1:000000000000:function:f:live","condition":"RetriesExhausted","approximateInvokeCount":3},"requestPayload":{"exit":1},"responseContext":{"statusCode":200,"executedVersion":"4","functionError":"Unhandled"},"responsePayload":{"errorMessage":"exit status 1","errorType":"Runtime.ExitError"}}`},
		{"age exceeded, never ran", destination.Outcome{RequestID: "r3", Function: "f", Payload: []byte("not json"), Attempts: 0,
			Condition: destination.ConditionEventAgeExceeded, Error: "throttled"},
			`{"version":"1.0","timestamp":"2026-11-27T10:00:00.000Z","requestContext":{"requestId":"r3","functionArn":"arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST","condition":"EventAgeExceeded","approximateInvokeCount":0},"requestPayload":"not json"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(r.MakeRecord(tc.o))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("MakeRecord =\n%s\nwant\n%s", b, tc.want)
			}
		})
	}
}

// readQueue returns every message of a Gust queue.
func readQueue(t *testing.T, js jetstream.JetStream, queue string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, registry.QueueStream(queue))
	if err != nil {
		t.Fatalf("queue %s: %v", queue, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(registry.QueueSubject(queue)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

func recordOf(t *testing.T, b []byte) destination.Record {
	t.Helper()
	var rec destination.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("decode record %s: %v", b, err)
	}
	return rec
}

func TestDestinationRouting(t *testing.T) {
	ctx := context.Background()
	fail := destination.Outcome{RequestID: "req-1", Function: "f", Payload: []byte(`{"exit":1}`), Attempts: 3, Enqueued: fixed, Source: "lambda",
		Condition: destination.ConditionRetriesExhausted, Executed: true, ExecutedVersion: "$LATEST", FunctionError: "Unhandled",
		Response: []byte(`{"errorMessage":"boom"}`), Error: "boom"}
	ok := destination.Outcome{RequestID: "req-2", Function: "f", Payload: []byte(`{"echo":1}`), Attempts: 1,
		Condition: destination.ConditionSuccess, Executed: true, ExecutedVersion: "$LATEST", Response: []byte(`{"echo":1}`)}
	withCfg := func(c *registry.EventInvokeConfig, dlq string) functions {
		f := &registry.Function{Name: "f", DeadLetterTarget: dlq}
		if c != nil {
			f.EventInvoke = map[string]*registry.EventInvokeConfig{registry.Latest: c}
		}
		return functions{"f": f, "sink": {Name: "sink"}}
	}

	t.Run("on-success to a function, once", func(t *testing.T) {
		enq := &queue{}
		r, _ := newRouter(t, withCfg(&registry.EventInvokeConfig{OnSuccess: sinkARN + ":live"}, ""), enq)
		for range 2 { // a redelivered hook
			if err := r.Deliver(ctx, ok); err != nil {
				t.Fatal(err)
			}
		}
		got := enq.got()
		if len(got) != 1 || got[0].Function != "sink" || got[0].Qualifier != "live" || got[0].DedupID != "req-2:success" {
			t.Fatalf("enqueued %+v, want one record for sink:live with dedupe id req-2:success", got)
		}
		rec := recordOf(t, []byte(got[0].Payload))
		if rec.RequestContext.Condition != "Success" || string(rec.ResponsePayload) != `{"echo":1}` || string(rec.RequestPayload) != `{"echo":1}` {
			t.Errorf("record = %+v", rec)
		}
	})

	t.Run("success without destination goes nowhere", func(t *testing.T) {
		enq := &queue{}
		r, js := newRouter(t, withCfg(nil, ""), enq)
		if err := r.Deliver(ctx, ok); err != nil {
			t.Fatal(err)
		}
		if got := enq.got(); len(got) != 0 {
			t.Errorf("enqueued %+v, want nothing", got)
		}
		if _, err := js.Stream(ctx, destination.DeadLetterStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("dead-letter stream exists after a success (err %v)", err)
		}
	})

	t.Run("on-failure to a queue, once", func(t *testing.T) {
		enq := &queue{}
		r, js := newRouter(t, withCfg(&registry.EventInvokeConfig{OnFailure: queueARN}, ""), enq)
		for range 2 {
			if err := r.Deliver(ctx, fail); err != nil {
				t.Fatal(err)
			}
		}
		msgs := readQueue(t, js, "failures")
		if len(msgs) != 1 {
			t.Fatalf("queue holds %d messages, want 1", len(msgs))
		}
		rec := recordOf(t, msgs[0].Data)
		want := destination.RequestContext{RequestID: "req-1", FunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST", Condition: "RetriesExhausted", ApproximateInvokeCount: 3}
		if diff := cmp.Diff(want, rec.RequestContext); diff != "" {
			t.Errorf("requestContext mismatch (-want +got):\n%s", diff)
		}
		if rec.ResponseContext == nil || rec.ResponseContext.FunctionError != "Unhandled" {
			t.Errorf("responseContext = %+v, want functionError Unhandled", rec.ResponseContext)
		}
		if got := msgs[0].Header.Get(destination.HeaderRequestID); got != "req-1" {
			t.Errorf("header %s = %q, want req-1", destination.HeaderRequestID, got)
		}
		if letters, err := r.DeadLetters(ctx, "f", false); err != nil || len(letters) != 0 {
			t.Errorf("DeadLetters = %v, %v; want none: the destination took the failure", letters, err)
		}
	})

	t.Run("dead-letter target gets the event", func(t *testing.T) {
		enq := &queue{}
		r, js := newRouter(t, withCfg(nil, queueARN), enq)
		if err := r.Deliver(ctx, fail); err != nil {
			t.Fatal(err)
		}
		msgs := readQueue(t, js, "failures")
		if len(msgs) != 1 || string(msgs[0].Data) != `{"exit":1}` {
			t.Fatalf("queue = %v, want the event", msgs)
		}
		h := msgs[0].Header
		if h.Get(destination.HeaderAttempts) != "3" || h.Get(destination.HeaderError) != "boom" || h.Get(destination.HeaderCondition) != "RetriesExhausted" {
			t.Errorf("headers = %v", h)
		}
	})

	t.Run("dead-letter target function gets the event", func(t *testing.T) {
		enq := &queue{}
		r, _ := newRouter(t, withCfg(nil, sinkARN), enq)
		if err := r.Deliver(ctx, fail); err != nil {
			t.Fatal(err)
		}
		want := []enqueued{{Function: "sink", Payload: `{"exit":1}`, DedupID: "req-1:dlq"}}
		if diff := cmp.Diff(want, enq.got()); diff != "" {
			t.Errorf("enqueued mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("both on-failure and dead-letter target", func(t *testing.T) {
		enq := &queue{}
		r, js := newRouter(t, withCfg(&registry.EventInvokeConfig{OnFailure: sinkARN}, queueARN), enq)
		if err := r.Deliver(ctx, fail); err != nil {
			t.Fatal(err)
		}
		if got := enq.got(); len(got) != 1 || got[0].DedupID != "req-1:failure" {
			t.Errorf("enqueued %+v, want the record for sink", got)
		}
		if msgs := readQueue(t, js, "failures"); len(msgs) != 1 || string(msgs[0].Data) != `{"exit":1}` {
			t.Errorf("queue = %v, want the event", msgs)
		}
	})

	t.Run("no target: built-in dead letters, listed and replayed", func(t *testing.T) {
		enq := &queue{}
		r, _ := newRouter(t, withCfg(nil, ""), enq)
		second := fail
		second.RequestID, second.Payload, second.Condition = "req-3", []byte(`{"n":2}`), destination.ConditionEventAgeExceeded
		for _, o := range []destination.Outcome{fail, fail, second} {
			if err := r.Deliver(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		// Another function's dead letter is not f's.
		other := fail
		other.Function, other.RequestID = "g", "req-g"
		if err := r.Deliver(ctx, other); err != nil {
			t.Fatal(err)
		}
		letters, err := r.DeadLetters(ctx, "f", true)
		if err != nil {
			t.Fatal(err)
		}
		for i := range letters {
			letters[i].ID, letters[i].Time = "", time.Time{}
		}
		want := []api.DeadLetter{
			{Function: "f", Qualifier: "$LATEST", RequestID: "req-1", Condition: "RetriesExhausted", Attempts: 3, Error: "boom", PayloadSize: 10, Payload: []byte(`{"exit":1}`)},
			{Function: "f", Qualifier: "$LATEST", RequestID: "req-3", Condition: "EventAgeExceeded", Attempts: 3, Error: "boom", PayloadSize: 7, Payload: []byte(`{"n":2}`)},
		}
		if diff := cmp.Diff(want, letters); diff != "" {
			t.Fatalf("DeadLetters mismatch (-want +got):\n%s", diff)
		}
		all, _ := r.DeadLetters(ctx, "f", false)
		if _, err := r.Replay(ctx, "f", "999"); err == nil {
			t.Errorf("Replay of an unknown id succeeded")
		}
		if _, err := r.Replay(ctx, "g", all[0].ID); err == nil {
			t.Errorf("Replay of f's dead letter as g's succeeded")
		}
		replayed, err := r.Replay(ctx, "f", all[1].ID)
		if err != nil || len(replayed) != 1 || replayed[0].ID != all[1].ID || replayed[0].RequestID != "req-3" {
			t.Fatalf("Replay(one) = %v, %v; want dead letter %s as request req-3", replayed, err, all[1].ID)
		}
		want1 := async.Invocation{ID: "req-3", Function: "f", Payload: []byte(`{"n":2}`), Enqueued: fixed, Source: "lambda"}
		if diff := cmp.Diff([]async.Invocation{want1}, enq.requeued); diff != "" {
			t.Fatalf("requeued mismatch (-want +got):\n%s", diff)
		}
		replayed, err = r.Replay(ctx, "f", "")
		if err != nil || len(replayed) != 1 || replayed[0].ID != all[0].ID || replayed[0].RequestID != "req-1" {
			t.Fatalf("Replay(all) = %v, %v", replayed, err)
		}
		if left, _ := r.DeadLetters(ctx, "f", false); len(left) != 0 {
			t.Errorf("dead letters left after replay: %v", left)
		}
		if left, _ := r.DeadLetters(ctx, "g", false); len(left) != 1 {
			t.Errorf("g's dead letters = %v, want its one", left)
		}
	})

	t.Run("replay keeps what failed to enqueue", func(t *testing.T) {
		enq := &queue{err: errors.New("queue closed")}
		r, _ := newRouter(t, withCfg(nil, ""), enq)
		if err := r.Deliver(ctx, fail); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Replay(ctx, "f", ""); err == nil {
			t.Fatal("Replay succeeded with a failing queue")
		}
		if left, _ := r.DeadLetters(ctx, "f", false); len(left) != 1 {
			t.Errorf("dead letters = %v, want the one that failed to replay", left)
		}
	})

	t.Run("a deleted destination function falls back to the dead letters", func(t *testing.T) {
		enq := &queue{}
		fns := withCfg(&registry.EventInvokeConfig{OnFailure: "arn:aws:lambda:us-east-1:000000000000:function:gone"}, "")
		r, _ := newRouter(t, fns, enq)
		if err := r.Deliver(ctx, fail); err != nil {
			t.Fatal(err)
		}
		letters, err := r.DeadLetters(ctx, "f", false)
		if err != nil || len(letters) != 1 {
			t.Fatalf("DeadLetters = %v, %v; want one", letters, err)
		}
		if want := "function does not exist"; !strings.Contains(letters[0].Error, want) {
			t.Errorf("dead letter error = %q, want it to mention %q", letters[0].Error, want)
		}
	})

	t.Run("enqueue failure is returned for redelivery", func(t *testing.T) {
		enq := &queue{err: errors.New("queue closed")}
		r, _ := newRouter(t, withCfg(&registry.EventInvokeConfig{OnSuccess: sinkARN}, ""), enq)
		if err := r.Deliver(ctx, ok); err == nil {
			t.Fatal("Deliver succeeded though the enqueue failed")
		}
	})
}

func TestDestinationHooks(t *testing.T) {
	ctx := context.Background()
	inv := async.Invocation{ID: "req-9", Function: "f", Qualifier: "live", Payload: []byte(`{"exit":1}`), Enqueued: fixed, Source: "lambda"}
	fns := functions{
		"f": {Name: "f", EventInvoke: map[string]*registry.EventInvokeConfig{
			"live": {OnSuccess: sinkARN, OnFailure: queueARN},
		}},
		"g":    {Name: "g"},
		"sink": {Name: "sink"},
	}

	t.Run("retries exhausted", func(t *testing.T) {
		q := &queue{}
		r, js := newRouter(t, fns, q)
		rec := async.Record{ID: "req-9", Function: "f", Qualifier: "live", Version: "3", Status: async.StatusFailed, Attempts: 2,
			Reason: async.ReasonRetriesExhausted, Error: &async.Error{Type: "Runtime.ExitError", Message: "exit status 1"}}
		if err := r.OnFailure(ctx, inv, rec); err != nil {
			t.Fatal(err)
		}
		msgs := readQueue(t, js, "failures")
		if len(msgs) != 1 {
			t.Fatalf("queue holds %d messages, want 1", len(msgs))
		}
		got := recordOf(t, msgs[0].Data)
		want := destination.Record{Version: "1.0", Timestamp: "2026-11-27T10:00:00.000Z",
			RequestContext: destination.RequestContext{RequestID: "req-9", FunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:f:live",
				Condition: "RetriesExhausted", ApproximateInvokeCount: 2},
			RequestPayload:  json.RawMessage(`{"exit":1}`),
			ResponseContext: &destination.ResponseContext{StatusCode: 200, ExecutedVersion: "3", FunctionError: "Unhandled"},
			ResponsePayload: json.RawMessage(`{"errorMessage":"exit status 1","errorType":"Runtime.ExitError"}`)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("record mismatch (-want +got):\n%s", diff)
		}
		if q.marked["req-9"] != queueARN {
			t.Errorf("marked %v, want req-9 -> %s", q.marked, queueARN)
		}
	})

	t.Run("event age exceeded", func(t *testing.T) {
		q := &queue{}
		r, js := newRouter(t, fns, q)
		rec := async.Record{ID: "req-9", Function: "f", Qualifier: "live", Status: async.StatusFailed, Throttles: 4,
			Reason: async.ReasonEventAgeExceeded, Error: &async.Error{Type: "EventAgeExceeded", Message: "too old"}}
		if err := r.OnFailure(ctx, inv, rec); err != nil {
			t.Fatal(err)
		}
		got := recordOf(t, readQueue(t, js, "failures")[0].Data)
		if got.RequestContext.Condition != "EventAgeExceeded" || got.ResponseContext != nil || got.ResponsePayload != nil {
			t.Errorf("record = %+v, want condition EventAgeExceeded and no response", got)
		}
	})

	t.Run("success", func(t *testing.T) {
		q := &queue{}
		r, _ := newRouter(t, fns, q)
		rec := async.Record{ID: "req-9", Function: "f", Qualifier: "live", Version: "3", Status: async.StatusSucceeded, Attempts: 1}
		if err := r.OnSuccess(ctx, inv, rec, []byte(`{"echo":null}`)); err != nil {
			t.Fatal(err)
		}
		got := q.got()
		if len(got) != 1 || got[0].Function != "sink" {
			t.Fatalf("enqueued %+v, want one record for sink", got)
		}
		if rc := recordOf(t, []byte(got[0].Payload)); rc.RequestContext.Condition != "Success" || string(rc.ResponsePayload) != `{"echo":null}` ||
			rc.ResponseContext == nil || rc.ResponseContext.ExecutedVersion != "3" {
			t.Errorf("record = %+v", rc)
		}
	})

	t.Run("no settings: built-in dead letters", func(t *testing.T) {
		q := &queue{}
		r, _ := newRouter(t, fns, q)
		ginv := inv
		ginv.Function, ginv.Qualifier = "g", ""
		rec := async.Record{ID: "req-9", Function: "g", Status: async.StatusFailed, Attempts: 3,
			Reason: async.ReasonRetriesExhausted, Error: &async.Error{Type: "Runtime.ExitError", Message: "exit status 1"}}
		if err := r.OnFailure(ctx, ginv, rec); err != nil {
			t.Fatal(err)
		}
		if q.marked["req-9"] != destination.DeadLetterStream {
			t.Errorf("marked %v, want req-9 -> %s", q.marked, destination.DeadLetterStream)
		}
		letters, err := r.DeadLetters(ctx, "g", false)
		if err != nil || len(letters) != 1 || letters[0].Attempts != 3 || letters[0].Error != "Runtime.ExitError: exit status 1" {
			t.Fatalf("DeadLetters = %+v, %v", letters, err)
		}
	})
}

func TestDestinationPolicy(t *testing.T) {
	n := func(v int) *int { return &v }
	r := destination.New(destination.Config{Functions: functions{
		"f": {Name: "f", EventInvoke: map[string]*registry.EventInvokeConfig{
			registry.Latest: {MaximumRetryAttempts: n(0)},
			"live":          {MaximumEventAgeSec: n(60)},
		}},
	}})
	tests := []struct {
		function, qualifier string
		retries             int
		age                 time.Duration
	}{
		{"f", "", 0, 6 * time.Hour},
		{"f", registry.Latest, 0, 6 * time.Hour},
		{"f", "live", 2, time.Minute},
		{"f", "7", 2, 6 * time.Hour},
		{"gone", "", -1, -1},
	}
	for _, tc := range tests {
		retries, age := r.Policy(tc.function, tc.qualifier)
		if retries != tc.retries || age != tc.age {
			t.Errorf("Policy(%s, %q) = %d, %v; want %d, %v", tc.function, tc.qualifier, retries, age, tc.retries, tc.age)
		}
	}
}
