package queue_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/internal/substrate"
	"github.com/gustfaas/gust/internal/trigger/queue"
)

func openSubstrate(t testing.TB) *substrate.Substrate {
	t.Helper()
	sub, err := substrate.Open(context.Background(), substrate.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder keeps what Run delivered.
type recorder struct {
	mu        sync.Mutex
	batches   [][]queue.Message
	exhausted []exhaustion
	// fail decides whether a batch fails (nil: never).
	fail func(batch []queue.Message) error
}

type exhaustion struct {
	m   queue.Message
	err error
}

func (r *recorder) deliver(_ context.Context, batch []queue.Message) error {
	r.mu.Lock()
	r.batches = append(r.batches, batch)
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		return fail(batch)
	}
	return nil
}

func (r *recorder) onExhausted(_ context.Context, m queue.Message, err error) {
	r.mu.Lock()
	r.exhausted = append(r.exhausted, exhaustion{m, err})
	r.mu.Unlock()
}

// messages returns every delivered message, in delivery order.
func (r *recorder) messages() []queue.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []queue.Message
	for _, b := range r.batches {
		out = append(out, b...)
	}
	return out
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, b := range r.batches {
		out = append(out, len(b))
	}
	return out
}

// count counts the deliveries of the message with data d.
func (r *recorder) count(d string) int {
	n := 0
	for _, m := range r.messages() {
		if string(m.Data) == d {
			n++
		}
	}
	return n
}

func (r *recorder) has(d string) bool { return r.count(d) > 0 }

func (r *recorder) exhaustions() []exhaustion {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.exhausted)
}

// start runs Run until the test ends (or stop is called), once the
// subscription or consumer is in place; stop waits for Run to return and
// checks that it returned nil.
func start(t *testing.T, nc *nats.Conn, cfg queue.Config, deliver func(context.Context, []queue.Message) error, exhausted func(context.Context, queue.Message, error)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var once sync.Once
	cfg.Ready = func() { once.Do(func() { close(ready) }) }
	done := make(chan error, 1)
	go func() { done <- queue.Run(ctx, nc, cfg, deliver, exhausted) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("Run did not become ready within 15s")
	}
	var stopOnce sync.Once
	stop = func() {
		stopOnce.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v, want nil after its context ended", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("Run did not return within 15s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func publishCore(t *testing.T, nc *nats.Conn, subject string, data ...string) {
	t.Helper()
	for _, d := range data {
		if err := nc.Publish(subject, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func makeStream(t *testing.T, js jetstream.JetStream, name string, subjects ...string) {
	t.Helper()
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
}

func publishStream(t *testing.T, js jetstream.JetStream, subject string, data ...string) {
	t.Helper()
	for _, d := range data {
		if _, err := js.Publish(context.Background(), subject, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func TestValidate(t *testing.T) {
	ok := queue.Config{Subject: "orders.*", Durable: "t1"}
	tests := []struct {
		name  string
		cfg   queue.Config
		field string
		want  string // part of the message; "" means valid
	}{
		{"subject", ok, "", ""},
		{"stream", queue.Config{Stream: "ORDERS", FilterSubject: "orders.new", Durable: "t1"}, "", ""},
		{"gust queue", queue.Config{Stream: "GUST_QUEUE_jobs", Durable: "t1"}, "", ""},
		{"gust queue subject", queue.Config{Subject: "gust.queue.jobs", Durable: "t1"}, "", ""},
		{"external wildcard", queue.Config{URL: "nats://127.0.0.1:4222", Subject: ">", Durable: "t1"}, "", ""},
		{"all settings", queue.Config{Stream: "S", Durable: "d", BatchSize: 1000, BatchWindow: 5 * time.Minute, Concurrency: 100, MaxDeliver: 100, RetryDelay: time.Minute, AckWait: time.Hour}, "", ""},
		{"neither", queue.Config{Durable: "t1"}, "subject", "needs a subject"},
		{"both", queue.Config{Subject: "a", Stream: "S", Durable: "t1"}, "subject", "exclude each other"},
		{"filter without stream", queue.Config{Subject: "a", FilterSubject: "a", Durable: "t1"}, "filterSubject", "needs a stream"},
		{"empty token", queue.Config{Subject: "a..b", Durable: "t1"}, "subject", "empty token"},
		{"space", queue.Config{Subject: "a b", Durable: "t1"}, "subject", "white space"},
		{"gt not last", queue.Config{Subject: "a.>.b", Durable: "t1"}, "subject", "'>' before its last token"},
		{"mixed wildcard", queue.Config{Subject: "a.b*", Durable: "t1"}, "subject", "mixing a wildcard"},
		{"system", queue.Config{Subject: "$KV.gust_keys.>", Durable: "t1"}, "subject", "NATS's own"},
		{"inbox", queue.Config{Subject: "_INBOX.>", Durable: "t1"}, "subject", "replies"},
		{"gust state", queue.Config{Subject: "gust.async.>", Durable: "t1"}, "subject", "Gust keeps its own state"},
		{"everything", queue.Config{Subject: ">", Durable: "t1"}, "subject", "start it with a literal token"},
		{"first wildcard", queue.Config{Subject: "*.created", Durable: "t1"}, "subject", "start it with a literal token"},
		{"gust stream", queue.Config{Stream: "GUST_ASYNC_0", Durable: "t1"}, "stream", "Gust's own"},
		{"kv stream", queue.Config{Stream: "KV_gust_functions", Durable: "t1"}, "stream", "kv trigger"},
		{"object stream", queue.Config{Stream: "OBJ_code", Durable: "t1"}, "stream", "objects trigger"},
		{"stream name dot", queue.Config{Stream: "a.b", Durable: "t1"}, "stream", "names have no spaces"},
		{"bad filter", queue.Config{Stream: "S", FilterSubject: "a..b", Durable: "t1"}, "filterSubject", "empty token"},
		{"no durable", queue.Config{Subject: "a"}, "durable", "needs a name"},
		{"durable space", queue.Config{Subject: "a", Durable: "a b"}, "durable", "names have no spaces"},
		{"batch size", queue.Config{Subject: "a", Durable: "d", BatchSize: 1001}, "batchSize", "out of range: 1 to 1000"},
		{"negative batch size", queue.Config{Subject: "a", Durable: "d", BatchSize: -1}, "batchSize", "out of range"},
		{"window", queue.Config{Subject: "a", Durable: "d", BatchWindow: 6 * time.Minute}, "batchWindow", "out of range"},
		{"short window", queue.Config{Subject: "a", Durable: "d", BatchWindow: time.Millisecond}, "batchWindow", "too short"},
		{"concurrency", queue.Config{Subject: "a", Durable: "d", Concurrency: 101}, "concurrency", "out of range"},
		{"max deliver", queue.Config{Subject: "a", Durable: "d", MaxDeliver: -2}, "maxDeliver", "out of range"},
		{"retry delay", queue.Config{Subject: "a", Durable: "d", RetryDelay: time.Hour}, "retryDelay", "out of range"},
		{"ack wait", queue.Config{Subject: "a", Durable: "d", AckWait: time.Millisecond}, "ackWait", "out of range"},
		{"url scheme", queue.Config{URL: "http://x:4222", Subject: "a", Durable: "d"}, "url", "want scheme"},
		{"url host", queue.Config{URL: "nats://", Subject: "a", Durable: "d"}, "url", "no host"},
		{"url list", queue.Config{URL: "nats://a:1,,nats://b:2", Subject: "a", Durable: "d"}, "url", "empty server"},
		{"external system", queue.Config{URL: "nats://x:4222", Subject: "$JS.API.>", Durable: "d"}, "subject", "NATS's own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *queue.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if ve.Field != tt.field || !strings.Contains(ve.Message, tt.want) {
				t.Errorf("Validate() = field %q %q, want field %q and a message with %q", ve.Field, ve.Message, tt.field, tt.want)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	c := queue.Config{Subject: "a", Durable: "d"}.WithDefaults()
	if c.BatchSize != 10 || c.Concurrency != 1 || c.MaxDeliver != 3 || c.RetryDelay != time.Second || c.AckWait != 30*time.Second || c.BatchWindow != 0 || c.Logger == nil {
		t.Errorf("WithDefaults() = %+v", c)
	}
}

func TestCoreBatches(t *testing.T) {
	sub := openSubstrate(t)
	nc := sub.Conn()
	rec := &recorder{}
	start(t, nc, queue.Config{Subject: "orders.*", Durable: "t1", BatchSize: 5, BatchWindow: 500 * time.Millisecond}, rec.deliver, rec.onExhausted)
	data := numbered("m", 1, 12)
	publishCore(t, nc, "orders.new", data...)
	waitFor(t, 10*time.Second, "12 messages", func() bool { return len(rec.messages()) == 12 })
	if got, want := rec.sizes(), []int{5, 5, 2}; !slices.Equal(got, want) {
		t.Errorf("batch sizes = %v, want %v (published together, within the window)", got, want)
	}
	var got []string
	for _, m := range rec.messages() {
		got = append(got, string(m.Data))
		if m.Subject != "orders.new" || m.Delivered != 1 || m.ID == "" || m.Stream != "" || m.Time.IsZero() {
			t.Errorf("message = %+v", m)
		}
	}
	if !slices.Equal(got, data) {
		t.Errorf("delivered %v, want %v in order", got, data)
	}
}

func TestCoreNoWindow(t *testing.T) {
	sub := openSubstrate(t)
	nc := sub.Conn()
	rec := &recorder{}
	start(t, nc, queue.Config{Subject: "jobs", Durable: "t1", BatchSize: 4}, rec.deliver, nil)
	publishCore(t, nc, "jobs", numbered("j", 1, 30)...)
	waitFor(t, 10*time.Second, "30 messages", func() bool { return len(rec.messages()) == 30 })
	for _, n := range rec.sizes() {
		if n < 1 || n > 4 {
			t.Errorf("batch sizes = %v, want 1 to 4 each", rec.sizes())
			break
		}
	}
}

// TestCoreQueueGroup runs two consumers of one trigger (as two nodes
// would) and one of another trigger: each message reaches one consumer
// of the first trigger, and the other trigger's consumer.
func TestCoreQueueGroup(t *testing.T) {
	sub := openSubstrate(t)
	nc := sub.Conn()
	a, b, other := &recorder{}, &recorder{}, &recorder{}
	start(t, nc, queue.Config{Subject: "events.>", Durable: "trig"}, a.deliver, nil)
	start(t, nc, queue.Config{Subject: "events.>", Durable: "trig"}, b.deliver, nil)
	start(t, nc, queue.Config{Subject: "events.>", Durable: "other"}, other.deliver, nil)
	data := numbered("e", 1, 50)
	publishCore(t, nc, "events.x.y", data...)
	waitFor(t, 10*time.Second, "50 messages for each trigger", func() bool {
		return len(a.messages())+len(b.messages()) == 50 && len(other.messages()) == 50
	})
	for _, d := range data {
		if n := a.count(d) + b.count(d); n != 1 {
			t.Errorf("%s reached the trigger %d times, want 1", d, n)
		}
	}
}

// TestCoreErrorDropped: a failed batch of a core subject is not
// delivered again (at most once), and the next messages still are.
func TestCoreErrorDropped(t *testing.T) {
	sub := openSubstrate(t)
	nc := sub.Conn()
	rec := &recorder{fail: func(b []queue.Message) error {
		if string(b[0].Data) == "bad" {
			return errors.New("boom")
		}
		return nil
	}}
	start(t, nc, queue.Config{Subject: "s", Durable: "d", BatchSize: 1}, rec.deliver, rec.onExhausted)
	publishCore(t, nc, "s", "bad", "good")
	waitFor(t, 10*time.Second, "the good message", func() bool { return rec.has("good") })
	if n := rec.count("bad"); n != 1 {
		t.Errorf("the failed message was delivered %d times, want 1", n)
	}
	if len(rec.exhaustions()) != 0 {
		t.Errorf("onExhausted was called for a core message: %v", rec.exhaustions())
	}
}

// TestStreamDurableResume stops the consumer, publishes more, and starts
// it again: every message is delivered, none twice.
func TestStreamDurableResume(t *testing.T) {
	sub := openSubstrate(t)
	nc, js := sub.Conn(), sub.JetStream()
	makeStream(t, js, "ORDERS", "orders.>")
	cfg := queue.Config{Stream: "ORDERS", Durable: "trig-orders", BatchSize: 3}
	rec := &recorder{}

	publishStream(t, js, "orders.new", numbered("a", 1, 5)...)
	stop := start(t, nc, cfg, rec.deliver, rec.onExhausted)
	waitFor(t, 10*time.Second, "the first 5", func() bool { return len(rec.messages()) == 5 })
	stop()

	publishStream(t, js, "orders.new", numbered("b", 1, 5)...)
	start(t, nc, cfg, rec.deliver, rec.onExhausted)
	waitFor(t, 10*time.Second, "all 10", func() bool { return len(rec.messages()) >= 10 })

	seen := map[uint64]int{}
	for _, m := range rec.messages() {
		seen[m.Sequence]++
		if m.Stream != "ORDERS" || m.Delivered != 1 || m.ID != fmt.Sprintf("ORDERS:%d", m.Sequence) || m.Subject != "orders.new" {
			t.Errorf("message = %+v", m)
		}
	}
	for seq := uint64(1); seq <= 10; seq++ {
		if seen[seq] != 1 {
			t.Errorf("sequence %d delivered %d times, want 1", seq, seen[seq])
		}
	}
	cons, err := js.Consumer(context.Background(), "ORDERS", "trig-orders")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "every message acked", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream == 10
	})
}

func TestStreamBatchSize(t *testing.T) {
	sub := openSubstrate(t)
	nc, js := sub.Conn(), sub.JetStream()
	makeStream(t, js, "S", "s.>")
	publishStream(t, js, "s.1", numbered("m", 1, 25)...)
	rec := &recorder{}
	start(t, nc, queue.Config{Stream: "S", Durable: "d", BatchSize: 10}, rec.deliver, nil)
	waitFor(t, 10*time.Second, "25 messages", func() bool { return len(rec.messages()) == 25 })
	if got, want := rec.sizes(), []int{10, 10, 5}; !slices.Equal(got, want) {
		t.Errorf("batch sizes = %v, want %v", got, want)
	}
}

func TestStreamBatchWindow(t *testing.T) {
	sub := openSubstrate(t)
	nc, js := sub.Conn(), sub.JetStream()
	makeStream(t, js, "W", "w.>")

	t.Run("waits to fill", func(t *testing.T) {
		rec := &recorder{}
		start(t, nc, queue.Config{Stream: "W", FilterSubject: "w.fill", Durable: "fill", BatchSize: 10, BatchWindow: 3 * time.Second}, rec.deliver, nil)
		publishStream(t, js, "w.fill", numbered("f", 1, 10)...)
		waitFor(t, 10*time.Second, "10 messages", func() bool { return len(rec.messages()) == 10 })
		if got := rec.sizes(); !slices.Equal(got, []int{10}) {
			t.Errorf("batch sizes = %v, want one batch of 10 (published within the window)", got)
		}
	})
	t.Run("no longer than the window", func(t *testing.T) {
		const window = 300 * time.Millisecond
		rec := &recorder{}
		start(t, nc, queue.Config{Stream: "W", FilterSubject: "w.one", Durable: "one", BatchSize: 10, BatchWindow: window}, rec.deliver, nil)
		published := time.Now()
		publishStream(t, js, "w.one", "lonely")
		waitFor(t, 10*time.Second, "the message", func() bool { return rec.has("lonely") })
		if waited := time.Since(published); waited < window-50*time.Millisecond {
			t.Errorf("a batch of 1 was delivered after %s, want it held for the %s window", waited, window)
		}
	})
}

// TestStreamConcurrency runs 3 batches at once with Concurrency 3, never
// more; with Concurrency 1 one at a time, in stream order.
func TestStreamConcurrency(t *testing.T) {
	sub := openSubstrate(t)
	nc, js := sub.Conn(), sub.JetStream()
	makeStream(t, js, "C", "c.>")

	t.Run("parallel", func(t *testing.T) {
		publishStream(t, js, "c.par", numbered("p", 1, 6)...)
		var inflight, peak, done atomic.Int32
		release := make(chan struct{})
		deliver := func(ctx context.Context, b []queue.Message) error {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			done.Add(int32(len(b)))
			return nil
		}
		start(t, nc, queue.Config{Stream: "C", FilterSubject: "c.par", Durable: "par", BatchSize: 1, Concurrency: 3}, deliver, nil)
		waitFor(t, 10*time.Second, "3 batches in flight at once", func() bool { return peak.Load() == 3 })
		close(release)
		waitFor(t, 10*time.Second, "all 6 messages", func() bool { return done.Load() == 6 })
		if p := peak.Load(); p != 3 {
			t.Errorf("peak batches in flight = %d, want 3", p)
		}
	})
	t.Run("ordered", func(t *testing.T) {
		publishStream(t, js, "c.ord", numbered("o", 1, 20)...)
		var inflight, peak atomic.Int32
		rec := &recorder{}
		deliver := func(ctx context.Context, b []queue.Message) error {
			if n := inflight.Add(1); n > peak.Load() {
				peak.Store(n)
			}
			defer inflight.Add(-1)
			return rec.deliver(ctx, b)
		}
		start(t, nc, queue.Config{Stream: "C", FilterSubject: "c.ord", Durable: "ord", BatchSize: 3}, deliver, nil)
		waitFor(t, 10*time.Second, "20 messages", func() bool { return len(rec.messages()) == 20 })
		var got []string
		for _, m := range rec.messages() {
			got = append(got, string(m.Data))
		}
		if want := numbered("o", 1, 20); !slices.Equal(got, want) {
			t.Errorf("delivered %v, want %v", got, want)
		}
		if p := peak.Load(); p != 1 {
			t.Errorf("peak batches in flight = %d, want 1", p)
		}
	})
}

// TestStreamRedelivery: a failed batch comes back, and succeeds.
func TestStreamRedelivery(t *testing.T) {
	sub := openSubstrate(t)
	nc, js := sub.Conn(), sub.JetStream()
	makeStream(t, js, "R", "r")
	rec := &recorder{fail: func(b []queue.Message) error {
		if string(b[0].Data) == "flaky" && b[0].Delivered == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}}
	start(t, nc, queue.Config{Stream: "R", Durable: "d", BatchSize: 1, RetryDelay: 10 * time.Millisecond}, rec.deliver, rec.onExhausted)
	publishStream(t, js, "r", "flaky", "steady")
	waitFor(t, 10*time.Second, "the flaky message again", func() bool { return rec.count("flaky") == 2 && rec.has("steady") })
	var delivered []int
	for _, m := range rec.messages() {
		if string(m.Data) == "flaky" {
			delivered = append(delivered, m.Delivered)
		}
	}
	if !slices.Equal(delivered, []int{1, 2}) {
		t.Errorf("the flaky message's Delivered = %v, want [1 2]", delivered)
	}
	if rec.count("steady") != 1 || len(rec.exhaustions()) != 0 {
		t.Errorf("steady delivered %d times, exhausted %v; want 1 and none", rec.count("steady"), rec.exhaustions())
	}
}

// TestStreamExhausted: a message failing MaxDeliver times goes to
// onExhausted once and is not delivered again.
func TestStreamExhausted(t *testing.T) {
	sub := openSubstrate(t)
	nc, js := sub.Conn(), sub.JetStream()
	makeStream(t, js, "X", "x")
	boom := errors.New("poisoned")
	rec := &recorder{fail: func(b []queue.Message) error {
		if string(b[0].Data) == "poison" {
			return boom
		}
		return nil
	}}
	start(t, nc, queue.Config{Stream: "X", Durable: "d", BatchSize: 1, MaxDeliver: 2, RetryDelay: 10 * time.Millisecond}, rec.deliver, rec.onExhausted)
	publishStream(t, js, "x", "poison", "fine")
	waitFor(t, 10*time.Second, "the poison message exhausted", func() bool { return len(rec.exhaustions()) == 1 })
	// Anything still to come of the poison message would come before a
	// message published now is acked.
	publishStream(t, js, "x", "marker")
	waitFor(t, 10*time.Second, "the marker", func() bool { return rec.has("marker") })
	cons, err := js.Consumer(context.Background(), "X", "d")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "nothing pending", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if n := rec.count("poison"); n != 2 {
		t.Errorf("the poison message was delivered %d times, want MaxDeliver = 2", n)
	}
	ex := rec.exhaustions()
	if len(ex) != 1 || string(ex[0].m.Data) != "poison" || ex[0].m.Delivered != 2 || ex[0].m.Sequence != 1 || !errors.Is(ex[0].err, boom) {
		t.Errorf("exhausted = %+v, want the poison message (sequence 1, delivered 2) with its error", ex)
	}
	if rec.count("fine") != 1 {
		t.Errorf("the fine message was delivered %d times, want 1", rec.count("fine"))
	}
}

// TestStreamPartialFailure: only the messages a *PartialError names come
// back.
func TestStreamPartialFailure(t *testing.T) {
	sub := openSubstrate(t)
	nc, js := sub.Conn(), sub.JetStream()
	makeStream(t, js, "P", "p")
	publishStream(t, js, "p", "a", "b", "c")
	rec := &recorder{fail: func(batch []queue.Message) error {
		for _, m := range batch {
			if string(m.Data) == "b" && m.Delivered == 1 {
				resp := fmt.Sprintf(`{"batchItemFailures":[{"itemIdentifier":%q}]}`, m.ID)
				return queue.BatchItemFailures([]byte(resp), batch)
			}
		}
		return nil
	}}
	start(t, nc, queue.Config{Stream: "P", Durable: "d", BatchSize: 3, RetryDelay: 10 * time.Millisecond}, rec.deliver, rec.onExhausted)
	waitFor(t, 10*time.Second, "b again", func() bool { return rec.count("b") == 2 })
	if rec.count("a") != 1 || rec.count("c") != 1 {
		t.Errorf("a and c delivered %d and %d times, want once each", rec.count("a"), rec.count("c"))
	}
}

// TestStreamStopsMidBatch: a batch in flight when Run stops is given
// back and delivered again by the next Run.
func TestStreamStopsMidBatch(t *testing.T) {
	sub := openSubstrate(t)
	nc, js := sub.Conn(), sub.JetStream()
	makeStream(t, js, "M", "m")
	publishStream(t, js, "m", "slow")
	entered := make(chan struct{}, 1)
	block := func(ctx context.Context, _ []queue.Message) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	cfg := queue.Config{Stream: "M", Durable: "d", BatchSize: 1}
	stop := start(t, nc, cfg, block, nil)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the message was not delivered")
	}
	stop()
	rec := &recorder{}
	start(t, nc, cfg, rec.deliver, nil)
	waitFor(t, 10*time.Second, "the message again", func() bool { return rec.has("slow") })
	if m := rec.messages()[0]; m.Delivered != 2 {
		t.Errorf("Delivered = %d, want 2", m.Delivered)
	}
}

func TestRunErrors(t *testing.T) {
	sub := openSubstrate(t)
	nc := sub.Conn()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	noop := func(context.Context, []queue.Message) error { return nil }
	if err := queue.Run(ctx, nc, queue.Config{Stream: "NOPE", Durable: "d"}, noop, nil); err == nil || !strings.Contains(err.Error(), `stream "NOPE" does not exist`) {
		t.Errorf("Run on a missing stream = %v, want it named", err)
	}
	var ve *queue.ValidationError
	if err := queue.Run(ctx, nc, queue.Config{Subject: "a"}, noop, nil); !errors.As(err, &ve) {
		t.Errorf("Run with an invalid config = %v, want a *ValidationError", err)
	}
	if err := queue.Run(ctx, nil, queue.Config{Subject: "a", Durable: "d"}, noop, nil); err == nil {
		t.Error("Run without a connection or a URL = nil, want an error")
	}
}

func TestCheck(t *testing.T) {
	sub := openSubstrate(t)
	nc, js := sub.Conn(), sub.JetStream()
	makeStream(t, js, "ORDERS", "orders.>", "refunds")
	ctx := context.Background()
	tests := []struct {
		name  string
		nc    *nats.Conn
		cfg   queue.Config
		field string
		want  string
	}{
		{"subject", nc, queue.Config{Subject: "a.b", Durable: "d"}, "", ""},
		{"stream", nc, queue.Config{Stream: "ORDERS", Durable: "d"}, "", ""},
		{"filter", nc, queue.Config{Stream: "ORDERS", FilterSubject: "orders.new", Durable: "d"}, "", ""},
		{"filter wildcard", nc, queue.Config{Stream: "ORDERS", FilterSubject: "*.new", Durable: "d"}, "", ""},
		{"missing stream", nc, queue.Config{Stream: "NOPE", Durable: "d"}, "stream", `stream "NOPE" does not exist on the node's NATS`},
		{"filter outside", nc, queue.Config{Stream: "ORDERS", FilterSubject: "invoices.>", Durable: "d"}, "filterSubject", `matches none of stream "ORDERS"'s subjects (orders.>, refunds)`},
		{"unreachable", nil, queue.Config{URL: "nats://127.0.0.1:1", Subject: "a", Durable: "d"}, "url", "nats://127.0.0.1:1"},
		{"invalid", nc, queue.Config{Subject: "a..b", Durable: "d"}, "subject", "empty token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := queue.Check(ctx, tt.nc, tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			var ve *queue.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(ve.Message, tt.want) {
				t.Errorf("Check = %v, want a *ValidationError of field %s with %q", err, tt.field, tt.want)
			}
		})
	}
	t.Run("credentials redacted", func(t *testing.T) {
		err := queue.Check(ctx, nil, queue.Config{URL: "nats://user:s3cret@127.0.0.1:1", Subject: "a", Durable: "d"})
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("Check = %v, want the server named without its password", err)
		}
	})
}

// externalNATS is the NATS server (with JetStream) this machine runs for
// tests; CI starts it.
const externalNATS = "nats://127.0.0.1:4222"

// TestExternalStream consumes a stream of an external NATS server through
// Config.URL.
func TestExternalStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := queue.Connect(ctx, externalNATS)
	if err != nil {
		t.Fatalf("the test NATS server (with JetStream) must run at %s: %v", externalNATS, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.ReplaceAll(fmt.Sprintf("%d", time.Now().UnixNano()), "-", "")
	name, subject := "gust_queue_test_"+id, "gust_queue_test."+id
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject + ".>"}, Storage: jetstream.MemoryStorage, MaxAge: time.Hour}); err != nil {
		t.Fatalf("create stream %s on %s: %v", name, externalNATS, err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), name) })

	cfg := queue.Config{URL: externalNATS, Stream: name, Durable: "trig", BatchSize: 2}
	if err := queue.Check(ctx, nil, cfg); err != nil {
		t.Fatalf("Check = %v", err)
	}
	publishStream(t, js, subject+".a", "x1", "x2", "x3")
	rec := &recorder{}
	stop := start(t, nil, cfg, rec.deliver, rec.onExhausted)
	waitFor(t, 10*time.Second, "3 messages", func() bool { return len(rec.messages()) == 3 })
	stop()
	publishStream(t, js, subject+".b", "x4", "x5")
	start(t, nil, cfg, rec.deliver, rec.onExhausted)
	waitFor(t, 10*time.Second, "5 messages", func() bool { return len(rec.messages()) == 5 })
	for _, d := range numbered("x", 1, 5) {
		if n := rec.count(d); n != 1 {
			t.Errorf("%s delivered %d times, want 1", d, n)
		}
	}
	if err := queue.Check(ctx, nil, queue.Config{URL: externalNATS, Stream: name + "_missing", Durable: "d"}); err == nil ||
		!strings.Contains(err.Error(), "does not exist on NATS at "+externalNATS) {
		t.Errorf("Check of a missing stream = %v, want it and the server named", err)
	}
}

// TestReconnect stops the NATS server under a running consumer and
// starts it again: the consumer reconnects and resumes where it stopped.
func TestReconnect(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := substrate.Open(ctx, substrate.Config{DataDir: dir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	serverURL := srv.ClientURL()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	makeStream(t, srv.JetStream(), "RC", "rc")
	publishStream(t, srv.JetStream(), "rc", "before1", "before2")
	rec := &recorder{}
	start(t, nil, queue.Config{URL: serverURL, Stream: "RC", Durable: "d"}, rec.deliver, rec.onExhausted)
	waitFor(t, 10*time.Second, "the first messages", func() bool { return len(rec.messages()) == 2 })
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	var port int
	fmt.Sscan(u.Port(), &port)
	srv, err = substrate.Open(ctx, substrate.Config{DataDir: dir, Port: port})
	if err != nil {
		t.Fatalf("restart the server on port %d: %v", port, err)
	}
	t.Cleanup(func() { srv.Close() })
	publishStream(t, srv.JetStream(), "rc", "after1", "after2")
	waitFor(t, 20*time.Second, "the messages published after the restart", func() bool { return rec.has("after1") && rec.has("after2") })
	for _, d := range []string{"before1", "before2", "after1", "after2"} {
		if n := rec.count(d); n != 1 {
			t.Errorf("%s delivered %d times, want 1", d, n)
		}
	}
}

func TestConnectErrors(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct{ url, want string }{
		{"nats://127.0.0.1:1", "connect to nats at nats://127.0.0.1:1"},
		{"http://127.0.0.1:4222", "want scheme"},
		{"nats://tok3n@127.0.0.1:1", "nats://xxxxx@127.0.0.1:1"},
	} {
		nc, err := queue.Connect(ctx, tt.url)
		if err == nil {
			nc.Close()
			t.Errorf("Connect(%q) = nil error", tt.url)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "tok3n") {
			t.Errorf("Connect(%q) = %v, want %q in it and no credentials", tt.url, err, tt.want)
		}
	}
}

// TestNoLeaks: once Run returns, none of its goroutines is left.
func TestNoLeaks(t *testing.T) {
	sub := openSubstrate(t)
	nc, js := sub.Conn(), sub.JetStream()
	makeStream(t, js, "L", "l.>")
	for _, cfg := range []queue.Config{
		{Stream: "L", Durable: "d", BatchSize: 2, Concurrency: 3, BatchWindow: 50 * time.Millisecond},
		{Subject: "core.>", Durable: "d", BatchSize: 2, Concurrency: 3},
	} {
		rec := &recorder{}
		stop := start(t, nc, cfg, rec.deliver, nil)
		publishStream(t, js, "l.x", "1", "2", "3", "4", "5")
		publishCore(t, nc, "core.x", "1", "2", "3", "4", "5")
		waitFor(t, 10*time.Second, "5 messages", func() bool { return len(rec.messages()) == 5 })
		stop()
	}
	left := func() string {
		var left string
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "internal/trigger/queue.") && !strings.Contains(g, "queue_test.") {
				left += g + "\n\n"
			}
		}
		return left
	}
	deadline := time.Now().Add(10 * time.Second)
	for l := left(); l != ""; l = left() {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines of Run are left after it returned:\n%s", l)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
