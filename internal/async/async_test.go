package async_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/internal/async"
	"github.com/gustfaas/gust/internal/engine"
	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/sandbox"
	"github.com/gustfaas/gust/internal/substrate"
)

// fake is an Invoker and Functions: each function's behaviour is a func
// of the call number (from 1) for that request id.
type fake struct {
	mu    sync.Mutex
	fns   map[string]func(id string, n int) (*engine.Result, error)
	calls map[string]int // by request id
	total atomic.Int64
}

func newFake() *fake {
	return &fake{fns: map[string]func(string, int) (*engine.Result, error){}, calls: map[string]int{}}
}

func (f *fake) set(name string, b func(id string, n int) (*engine.Result, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fns[name] = b
}

func (f *fake) Resolve(name, qualifier string, _ float64) (*registry.Function, *registry.Alias, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.fns[name]; !ok {
		return nil, nil, fmt.Errorf("%w: %s", registry.ErrNotFound, name)
	}
	return &registry.Function{Name: name, Version: qualifier}, nil, nil
}

func (f *fake) Invoke(ctx context.Context, fn *registry.Function, id string, payload []byte) (*engine.Result, error) {
	f.mu.Lock()
	b := f.fns[fn.Name]
	f.calls[id]++
	n := f.calls[id]
	f.mu.Unlock()
	f.total.Add(1)
	return b(id, n)
}

func (f *fake) callsOf(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func ok(payload string) func(string, int) (*engine.Result, error) {
	return func(string, int) (*engine.Result, error) { return &engine.Result{Payload: []byte(payload)}, nil }
}

func fnErr(msg string) *engine.Result {
	return &engine.Result{Err: &sandbox.FunctionError{Type: "Unhandled", Message: msg}}
}

func throttle() error {
	return &engine.ThrottleError{Reason: engine.ReasonReservedConcurrency, Message: "Rate Exceeded"}
}

func openSubstrate(t testing.TB) *substrate.Substrate {
	t.Helper()
	sub, err := substrate.Open(context.Background(), substrate.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// fastConfig shortens every wait.
func fastConfig(f *fake) async.Config {
	return async.Config{Invoker: f, Functions: f,
		RetryDelays: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond},
		BackoffMin:  10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, AckWait: 2 * time.Second}
}

func openQueue(t testing.TB, sub *substrate.Substrate, cfg async.Config, start bool) *async.Queue {
	t.Helper()
	q, err := async.Open(context.Background(), sub, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if start {
		if err := q.Start(); err != nil {
			t.Fatalf("Start: %v", err)
		}
	}
	t.Cleanup(func() { q.Stop(context.Background()) })
	return q
}

func enqueue(t testing.TB, q *async.Queue, r async.Request) string {
	t.Helper()
	acc, err := q.Enqueue(context.Background(), r)
	if err != nil {
		t.Fatalf("Enqueue(%s): %v", r.Function, err)
	}
	return acc.RequestID
}

// waitFinal polls until id's record is final.
func waitFinal(t testing.TB, q *async.Queue, id string, within time.Duration) async.Record {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rec, err := q.Record(context.Background(), id)
		if err == nil && rec.Final() {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("record %s not final after %s: %+v, %v", id, within, rec, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAsyncOutcomes(t *testing.T) {
	sub := openSubstrate(t)
	f := newFake()
	var mu sync.Mutex
	successes, failures := map[string]int{}, map[string]async.Record{}
	cfg := fastConfig(f)
	cfg.Policy = func(fn, _ string) (int, time.Duration) {
		switch fn {
		case "noretry":
			return 0, -1
		case "shortage":
			return -1, 300 * time.Millisecond
		}
		return -1, -1
	}
	cfg.OnSuccess = func(_ context.Context, inv async.Invocation, rec async.Record, resp []byte) error {
		mu.Lock()
		defer mu.Unlock()
		successes[inv.ID]++
		if string(resp) != `"done"` {
			t.Errorf("OnSuccess(%s) response = %s, want \"done\"", inv.ID, resp)
		}
		return nil
	}
	cfg.OnFailure = func(_ context.Context, inv async.Invocation, rec async.Record) error {
		mu.Lock()
		defer mu.Unlock()
		failures[inv.ID] = rec
		return nil
	}
	q := openQueue(t, sub, cfg, true)

	f.set("ok", ok(`"done"`))
	f.set("fails", func(string, int) (*engine.Result, error) { return fnErr("boom"), nil })
	f.set("noretry", func(string, int) (*engine.Result, error) { return fnErr("boom"), nil })
	f.set("flaky", func(_ string, n int) (*engine.Result, error) {
		if n < 3 {
			return fnErr("not yet"), nil
		}
		return &engine.Result{Payload: []byte(`"done"`)}, nil
	})
	f.set("throttled", func(_ string, n int) (*engine.Result, error) {
		if n <= 3 {
			return nil, throttle()
		}
		return &engine.Result{Payload: []byte(`"done"`)}, nil
	})
	f.set("nodeerr", func(_ string, n int) (*engine.Result, error) {
		if n == 1 {
			return nil, errors.New("load program: disk on fire")
		}
		return &engine.Result{Payload: []byte(`"done"`)}, nil
	})
	f.set("shortage", func(string, int) (*engine.Result, error) { return nil, throttle() })

	tests := []struct {
		fn        string
		status    string
		attempts  int
		throttles int // minimum
		reason    string
		calls     int // function calls (throttled tries included); 0: do not check
	}{
		{"ok", async.StatusSucceeded, 1, 0, "", 1},
		{"fails", async.StatusFailed, 3, 0, async.ReasonRetriesExhausted, 3},
		{"noretry", async.StatusFailed, 1, 0, async.ReasonRetriesExhausted, 1},
		{"flaky", async.StatusSucceeded, 3, 0, "", 3},
		{"throttled", async.StatusSucceeded, 1, 3, "", 4},
		{"nodeerr", async.StatusSucceeded, 1, 1, "", 2},
		{"shortage", async.StatusFailed, 0, 2, async.ReasonEventAgeExceeded, 0},
		{"deleted", async.StatusFailed, 0, 0, async.ReasonFunctionNotFound, 0},
	}
	ids := map[string]string{}
	for _, tt := range tests {
		ids[tt.fn] = enqueue(t, q, async.Request{Function: tt.fn, Payload: []byte(`{"n":1}`), Source: "test"})
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			id := ids[tt.fn]
			rec := waitFinal(t, q, id, 10*time.Second)
			if rec.Status != tt.status || rec.Attempts != tt.attempts || rec.Reason != tt.reason || rec.Throttles < tt.throttles {
				t.Errorf("record = status %s, attempts %d, throttles %d, reason %q; want %s, %d, >=%d, %q (%+v)",
					rec.Status, rec.Attempts, rec.Throttles, rec.Reason, tt.status, tt.attempts, tt.throttles, tt.reason, rec.Error)
			}
			if rec.ID != id || rec.Function != tt.fn || rec.Source != "test" || rec.Enqueued.IsZero() || rec.Finished.IsZero() {
				t.Errorf("record = %+v, want id, function, source and times filled in", rec)
			}
			if tt.calls > 0 {
				if got := f.callsOf(id); got != tt.calls {
					t.Errorf("function called %d times, want %d", got, tt.calls)
				}
			}
			// The hook runs before the ack, so it has run by now... but
			// the record is written before the hook: poll for it.
			checkFor(t, "the outcome hook", func() bool {
				mu.Lock()
				defer mu.Unlock()
				if tt.status == async.StatusSucceeded {
					return successes[id] == 1
				}
				return failures[id].Status == async.StatusFailed
			})
			if tt.status == async.StatusFailed && rec.Error == nil {
				t.Errorf("failed record has no error")
			}
		})
	}
	if f.callsOf(ids["deleted"]) != 0 {
		t.Errorf("a deleted function ran")
	}
}

func checkFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAsyncRecordQueuedAndAgeAtPickup(t *testing.T) {
	sub := openSubstrate(t)
	f := newFake()
	f.set("fn", ok(`"done"`))
	cfg := fastConfig(f)
	cfg.Policy = func(string, string) (int, time.Duration) { return -1, 200 * time.Millisecond }
	q := openQueue(t, sub, cfg, false)

	if _, err := q.Record(context.Background(), "00000000-0000-0000-0000-000000000000"); !errors.Is(err, async.ErrNotFound) {
		t.Errorf("Record(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := q.Record(context.Background(), "a.b>"); !errors.Is(err, async.ErrNotFound) {
		t.Errorf("Record(bad id) = %v, want ErrNotFound", err)
	}
	id := enqueue(t, q, async.Request{Function: "fn", Qualifier: "live", Payload: []byte(`{}`)})
	rec, err := q.Record(context.Background(), id)
	if err != nil || rec.Status != async.StatusQueued || rec.Function != "fn" || rec.Qualifier != "live" || rec.Enqueued.IsZero() {
		t.Fatalf("Record(queued) = %+v, %v; want queued fn:live", rec, err)
	}
	time.Sleep(300 * time.Millisecond) // let it age past its 200ms
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	rec = waitFinal(t, q, id, 5*time.Second)
	if rec.Status != async.StatusFailed || rec.Reason != async.ReasonEventAgeExceeded || f.callsOf(id) != 0 {
		t.Errorf("record = %+v after %d calls; want failed EventAgeExceeded without a run", rec, f.callsOf(id))
	}
}

func TestAsyncEnqueueValidation(t *testing.T) {
	sub := openSubstrate(t)
	q := openQueue(t, sub, async.Config{}, false)
	tests := []struct {
		name string
		r    async.Request
	}{
		{"no function", async.Request{}},
		{"bad function", async.Request{Function: "a b"}},
		{"bad qualifier", async.Request{Function: "f", Qualifier: "no such!"}},
		{"too large", async.Request{Function: "f", Payload: make([]byte, async.MaxPayload+1)}},
		{"long key", async.Request{Function: "f", IdempotencyKey: strings.Repeat("k", 257)}},
		{"unprintable key", async.Request{Function: "f", IdempotencyKey: "a\x00b"}},
		{"bad id", async.Request{Function: "f", ID: "a.b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := q.Enqueue(context.Background(), tt.r); !errors.Is(err, async.ErrInvalid) {
				t.Errorf("Enqueue = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := q.Enqueue(context.Background(), async.Request{Function: "f", Payload: make([]byte, async.MaxPayload)}); err != nil {
		t.Errorf("Enqueue(1 MB) = %v, want nil", err)
	}
}

func TestAsyncIdempotencyRace(t *testing.T) {
	sub := openSubstrate(t)
	f := newFake()
	f.set("fn", ok(`"done"`))
	q := openQueue(t, sub, fastConfig(f), true)

	const racers = 8
	for round := range 3 {
		key := fmt.Sprintf("order-%d ✓", round)
		var wg sync.WaitGroup
		accs := make([]async.Accepted, racers)
		errs := make([]error, racers)
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				accs[i], errs[i] = q.Enqueue(context.Background(), async.Request{Function: "fn", IdempotencyKey: key})
			}()
		}
		close(start)
		wg.Wait()
		firsts := 0
		for i := range racers {
			if errs[i] != nil {
				t.Fatalf("Enqueue: %v", errs[i])
			}
			if accs[i].RequestID != accs[0].RequestID {
				t.Errorf("request ids differ: %s and %s", accs[i].RequestID, accs[0].RequestID)
			}
			if !accs[i].Duplicate {
				firsts++
			}
		}
		if firsts != 1 {
			t.Errorf("%d of %d enqueues were not duplicates, want 1", firsts, racers)
		}
		id := accs[0].RequestID
		waitFinal(t, q, id, 5*time.Second)
		// A later repeat is a duplicate too and runs nothing.
		acc, err := q.Enqueue(context.Background(), async.Request{Function: "fn", IdempotencyKey: key})
		if err != nil || acc.RequestID != id || !acc.Duplicate {
			t.Errorf("repeat = %+v, %v; want %s duplicate", acc, err, id)
		}
		time.Sleep(50 * time.Millisecond)
		if n := f.callsOf(id); n != 1 {
			t.Errorf("function ran %d times for one key, want 1", n)
		}
	}
	// The same key for another function is another invocation.
	f.set("other", ok(`"done"`))
	a, _ := q.Enqueue(context.Background(), async.Request{Function: "fn", IdempotencyKey: "k"})
	b, _ := q.Enqueue(context.Background(), async.Request{Function: "other", IdempotencyKey: "k"})
	if a.RequestID == b.RequestID || b.Duplicate {
		t.Errorf("same key, two functions: %+v and %+v, want two invocations", a, b)
	}
}

func TestAsyncDedupID(t *testing.T) {
	sub := openSubstrate(t)
	f := newFake()
	f.set("fn", ok(`"done"`))
	q := openQueue(t, sub, fastConfig(f), true)
	a, err := q.Enqueue(context.Background(), async.Request{Function: "fn", DedupID: "tick-1"})
	if err != nil {
		t.Fatal(err)
	}
	waitFinal(t, q, a.RequestID, 5*time.Second)
	b, err := q.Enqueue(context.Background(), async.Request{Function: "fn", DedupID: "tick-1"})
	if err != nil || b.RequestID != a.RequestID || !b.Duplicate {
		t.Errorf("repeat = %+v, %v; want %s duplicate", b, err, a.RequestID)
	}
	time.Sleep(50 * time.Millisecond)
	if n := f.callsOf(a.RequestID); n != 1 {
		t.Errorf("function ran %d times, want 1", n)
	}
}

// A failing hook sends the message back: the hook runs again, the
// function does not.
func TestAsyncHookFailureRedelivers(t *testing.T) {
	sub := openSubstrate(t)
	f := newFake()
	f.set("fn", ok(`"done"`))
	f.set("bad", func(string, int) (*engine.Result, error) { return fnErr("boom"), nil })
	var okHooks, failHooks atomic.Int32
	cfg := fastConfig(f)
	cfg.Policy = func(string, string) (int, time.Duration) { return 0, -1 }
	cfg.OnSuccess = func(context.Context, async.Invocation, async.Record, []byte) error {
		if okHooks.Add(1) < 3 {
			return errors.New("destination down")
		}
		return nil
	}
	cfg.OnFailure = func(_ context.Context, _ async.Invocation, rec async.Record) error {
		if rec.Status != async.StatusFailed {
			t.Errorf("OnFailure got status %s", rec.Status)
		}
		if failHooks.Add(1) < 2 {
			return errors.New("dead letter queue down")
		}
		return nil
	}
	q := openQueue(t, sub, cfg, true)
	id := enqueue(t, q, async.Request{Function: "fn"})
	bad := enqueue(t, q, async.Request{Function: "bad"})
	checkFor(t, "three success hooks", func() bool { return okHooks.Load() >= 3 })
	checkFor(t, "two failure hooks", func() bool { return failHooks.Load() >= 2 })
	checkFor(t, "the streams to empty", func() bool { return pending(t, sub) == 0 })
	if n := f.callsOf(id); n != 1 {
		t.Errorf("function ran %d times, want 1", n)
	}
	if n := f.callsOf(bad); n != 1 {
		t.Errorf("failing function ran %d times, want 1", n)
	}
	if okHooks.Load() != 3 || failHooks.Load() != 2 {
		t.Errorf("hooks ran %d and %d times, want 3 and 2", okHooks.Load(), failHooks.Load())
	}
	if err := q.MarkDeadLettered(context.Background(), bad, "queue:dlq"); err != nil {
		t.Fatal(err)
	}
	rec, _ := q.Record(context.Background(), bad)
	if rec.Status != async.StatusDeadLettered || rec.DeadLetter != "queue:dlq" {
		t.Errorf("record = %+v, want dead-lettered to queue:dlq", rec)
	}
	if err := q.MarkDeadLettered(context.Background(), id, "queue:dlq"); err == nil {
		t.Errorf("MarkDeadLettered(succeeded) = nil, want an error")
	}
}

// pending counts messages left in the async streams.
func pending(t testing.TB, sub *substrate.Substrate) uint64 {
	t.Helper()
	var n uint64
	for p := range async.Partitions {
		s, err := sub.JetStream().Stream(context.Background(), fmt.Sprintf("GUST_ASYNC_%d", p))
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += info.State.Msgs
	}
	return n
}

func TestAsyncRequeue(t *testing.T) {
	sub := openSubstrate(t)
	f := newFake()
	f.set("fn", func(_ string, n int) (*engine.Result, error) {
		if n == 1 {
			return fnErr("first time fails"), nil
		}
		return &engine.Result{Payload: []byte(`"done"`)}, nil
	})
	var failed sync.Map
	cfg := fastConfig(f)
	cfg.Policy = func(string, string) (int, time.Duration) { return 0, -1 }
	cfg.OnFailure = func(_ context.Context, inv async.Invocation, _ async.Record) error {
		failed.Store(inv.ID, inv)
		return nil
	}
	q := openQueue(t, sub, cfg, true)
	id := enqueue(t, q, async.Request{Function: "fn", Payload: []byte(`{"x":1}`)})
	if rec := waitFinal(t, q, id, 5*time.Second); rec.Status != async.StatusFailed {
		t.Fatalf("record = %+v, want failed", rec)
	}
	var v any
	checkFor(t, "the failure hook", func() bool { var ok bool; v, ok = failed.Load(id); return ok })
	inv := v.(async.Invocation)
	if string(inv.Payload) != `{"x":1}` || inv.Function != "fn" {
		t.Fatalf("hook invocation = %+v", inv)
	}
	if err := q.Requeue(context.Background(), inv); err != nil {
		t.Fatal(err)
	}
	checkFor(t, "the replay to succeed", func() bool {
		rec, err := q.Record(context.Background(), id)
		return err == nil && rec.Status == async.StatusSucceeded
	})
	rec, _ := q.Record(context.Background(), id)
	if rec.Replay != 1 || rec.Attempts != 1 {
		t.Errorf("replayed record = %+v, want replay 1 with 1 attempt", rec)
	}
}

// 10,000 invocations: none lost, none run twice, each with one succeeded
// record.
func TestAsyncTenThousand(t *testing.T) {
	const n = 10000
	sub := openSubstrate(t)
	f := newFake()
	f.set("fn", ok(`"done"`))
	cfg := fastConfig(f)
	cfg.MaxInFlight = 64
	var succeeded sync.Map
	var dupSuccess atomic.Int32
	cfg.OnSuccess = func(_ context.Context, inv async.Invocation, _ async.Record, _ []byte) error {
		if _, loaded := succeeded.LoadOrStore(inv.ID, true); loaded {
			dupSuccess.Add(1)
		}
		return nil
	}
	q := openQueue(t, sub, cfg, true)

	ids := make([]string, n)
	var wg sync.WaitGroup
	var next atomic.Int64
	t0 := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				acc, err := q.Enqueue(context.Background(), async.Request{Function: "fn", Payload: []byte(`{}`)})
				if err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				ids[i] = acc.RequestID
			}
		}()
	}
	wg.Wait()
	enq := time.Since(t0)
	deadline := time.Now().Add(2 * time.Minute)
	for f.total.Load() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	checkFor(t, "every success hook", func() bool {
		c := 0
		succeeded.Range(func(any, any) bool { c++; return true })
		return c == n || time.Now().After(deadline)
	})
	t.Logf("%d enqueues in %s (%.0f/s); all ran after %s", n, enq, n/enq.Seconds(), time.Since(t0))
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("request id %s returned twice", id)
		}
		seen[id] = true
		if c := f.callsOf(id); c != 1 {
			t.Errorf("invocation %s ran %d times, want 1", id, c)
		}
		if _, ok := succeeded.Load(id); !ok {
			t.Errorf("invocation %s never succeeded", id)
		}
	}
	if dupSuccess.Load() != 0 {
		t.Errorf("%d invocations succeeded twice", dupSuccess.Load())
	}
	for _, id := range ids[:100] {
		if rec, err := q.Record(context.Background(), id); err != nil || rec.Status != async.StatusSucceeded || rec.Attempts != 1 {
			t.Errorf("Record(%s) = %+v, %v; want succeeded after 1 attempt", id, rec, err)
		}
	}
	checkFor(t, "the streams to empty", func() bool { return pending(t, sub) == 0 })
}

// Stop cancels what still runs when its context ends; the invocation runs
// again on the next start.
func TestAsyncStopRedelivers(t *testing.T) {
	dir := t.TempDir()
	sub, err := substrate.Open(context.Background(), substrate.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	f := newFake()
	started := make(chan struct{}, 1)
	f.set("slow", func(_ string, n int) (*engine.Result, error) {
		if n == 1 {
			started <- struct{}{}
			return nil, context.Canceled // what the engine says when cancelled
		}
		return &engine.Result{Payload: []byte(`"done"`)}, nil
	})
	cfg := fastConfig(f)
	cfg.AckWait = 500 * time.Millisecond
	// The first run blocks until Stop cancels it.
	cfg1 := cfg
	cfg1.Invoker = &blockingInvoker{fake: f}
	q1, err := async.Open(context.Background(), sub, cfg1)
	if err != nil {
		t.Fatal(err)
	}
	if err := q1.Start(); err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, q1, async.Request{Function: "slow"})
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := q1.Stop(ctx); err == nil {
		t.Errorf("Stop with a run in flight past its deadline = nil, want an error")
	}
	rec, _ := q1.Record(context.Background(), id)
	if rec.Final() {
		t.Fatalf("record after a cancelled run = %+v, want not final", rec)
	}
	q2 := openQueue(t, sub, cfg, true)
	rec = waitFinal(t, q2, id, 10*time.Second)
	if rec.Status != async.StatusSucceeded || rec.Attempts != 1 {
		t.Errorf("record = %+v, want succeeded with 1 attempt (the cancelled run does not count)", rec)
	}
}

// blockingInvoker blocks each call until ctx is cancelled, then calls
// the fake.
type blockingInvoker struct{ *fake }

func (b *blockingInvoker) Invoke(ctx context.Context, fn *registry.Function, id string, payload []byte) (*engine.Result, error) {
	res, err := b.fake.Invoke(ctx, fn, id, payload)
	<-ctx.Done()
	return res, err
}

// TestAsyncRunningRecordOnlyWhenRunLasts checks that a run is recorded as
// running once it outlasts RunningAfter, and that a fast run writes its
// record once: queued (no record) straight to succeeded.
func TestAsyncRunningRecordOnlyWhenRunLasts(t *testing.T) {
	sub := openSubstrate(t)
	f := newFake()
	release := make(chan struct{})
	f.set("fast", ok(`"quick"`))
	f.set("slow", func(string, int) (*engine.Result, error) {
		<-release
		return &engine.Result{Payload: []byte(`"late"`)}, nil
	})
	cfg := fastConfig(f)
	cfg.RunningAfter = 20 * time.Millisecond
	q := openQueue(t, sub, cfg, true)
	ctx := context.Background()
	if err := q.Ready(ctx); err != nil {
		t.Fatal(err)
	}

	// Count every write of each record with a watch (the buckets keep
	// one revision per key).
	writes := func(id string) func() []string {
		h := fnv.New32a()
		h.Write([]byte(id))
		kv, err := sub.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: fmt.Sprintf("gust_async_records_%d", h.Sum32()%async.Partitions)})
		if err != nil {
			t.Fatal(err)
		}
		w, err := kv.Watch(ctx, id, jetstream.UpdatesOnly())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Stop() })
		var mu sync.Mutex
		var seen []string
		go func() {
			for e := range w.Updates() {
				if e == nil {
					continue
				}
				var r async.Record
				json.Unmarshal(e.Value(), &r)
				mu.Lock()
				seen = append(seen, r.Status)
				mu.Unlock()
			}
		}()
		return func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(seen)
		}
	}
	slowWrites, fastWrites := writes("slow-1"), writes("fast-1")

	slow := enqueue(t, q, async.Request{ID: "slow-1", Function: "slow", Payload: []byte(`{}`)})
	checkFor(t, "the slow run recorded as running", func() bool {
		rec, err := q.Record(ctx, slow)
		return err == nil && rec.Status == async.StatusRunning && rec.Attempts == 1 && !rec.Started.IsZero()
	})
	close(release)
	if rec := waitFinal(t, q, slow, 5*time.Second); rec.Status != async.StatusSucceeded || rec.Attempts != 1 {
		t.Errorf("slow record = %+v, want succeeded after 1 attempt", rec)
	}
	fast := enqueue(t, q, async.Request{ID: "fast-1", Function: "fast", Payload: []byte(`{}`)})
	if rec := waitFinal(t, q, fast, 5*time.Second); rec.Status != async.StatusSucceeded || rec.Attempts != 1 || rec.Started.IsZero() {
		t.Errorf("fast record = %+v, want succeeded after 1 attempt with its start time", rec)
	}
	want := map[string][]string{"slow": {async.StatusRunning, async.StatusSucceeded}, "fast": {async.StatusSucceeded}}
	for name, got := range map[string]func() []string{"slow": slowWrites, "fast": fastWrites} {
		checkFor(t, name+"'s record writes", func() bool { return len(got()) >= len(want[name]) })
		if diff := cmp.Diff(want[name], got()); diff != "" {
			t.Errorf("%s record writes (-want +got):\n%s", name, diff)
		}
	}
}
