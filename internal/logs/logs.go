// Package logs frames each invocation's output as Lambda does (START, the
// guest's output, END and REPORT lines) and keeps it in a bounded JetStream
// stream, one subject per function, from which `gust logs` reads.
//
// Writes are batched off the invoke path: a hot invocation appends to an
// in-memory buffer and returns; a background loop publishes one message per
// function per flush. A crash loses at most the last flush interval of logs.
package logs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/engine"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream and subject names.
const (
	StreamName    = "GUST_LOGS"
	subjectPrefix = "gust.logs."
)

// Limits of the log stream.
const (
	MaxStreamBytes     = 512 << 20
	MaxAge             = 7 * 24 * time.Hour
	FlushInterval      = 100 * time.Millisecond
	maxPendingBytes    = 64 << 20
	maxBatchBytes      = 1 << 20
	tailBytesForInvoke = 4096
)

// Format renders a record as Lambda frames a log: START, the guest's
// output, a timeout line when it timed out, END and REPORT.
func Format(r *engine.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "START RequestId: %s Version: %s\n", r.RequestID, r.Version)
	if len(r.Log) > 0 {
		b.Write(r.Log)
		if r.Log[len(r.Log)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	if r.Outcome == engine.Timeout && r.Err != nil {
		fmt.Fprintf(&b, "%s %s %s\n", r.Start.UTC().Format(time.RFC3339Nano), r.RequestID, r.Err.Message)
	}
	fmt.Fprintf(&b, "END RequestId: %s\n", r.RequestID)
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB",
		r.RequestID, float64(r.Duration)/float64(time.Millisecond), r.BilledMs, r.MemoryMB, r.MaxMemoryMB)
	if r.Cold {
		fmt.Fprintf(&b, "\tInit Duration: %.2f ms", float64(r.InitDuration)/float64(time.Millisecond))
	}
	if r.Outcome == engine.Timeout {
		b.WriteString("\tStatus: timeout")
	}
	b.WriteString("\t\n")
	return b.String()
}

// Tail returns the last 4 KB of s, as Lambda returns in X-Amz-Log-Result.
func Tail(s string) string {
	if len(s) <= tailBytesForInvoke {
		return s
	}
	return s[len(s)-tailBytesForInvoke:]
}

// Store is what the log writer needs from the substrate.
type Store interface {
	Stream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error)
	JetStream() jetstream.JetStream
}

// Log writes and reads function logs. Safe for concurrent use.
type Log struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger

	mu      sync.Mutex
	pending map[string][]api.LogEvent
	bytes   int
	dropped int
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// Open creates the log stream and starts the flusher.
func Open(ctx context.Context, st Store, logger *slog.Logger) (*Log, error) {
	s, err := st.Stream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Gust function logs",
		Subjects:    []string{subjectPrefix + ">"},
		MaxBytes:    MaxStreamBytes,
		MaxAge:      MaxAge,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{
		js:      st.JetStream(),
		stream:  s,
		log:     logger,
		pending: map[string][]api.LogEvent{},
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go l.run()
	return l, nil
}

// Add queues one invocation's framed log. It never blocks on I/O.
func (l *Log) Add(r *engine.Record, text string) {
	ev := api.LogEvent{Time: r.Start, Function: r.Function, RequestID: r.RequestID, Text: text}
	l.mu.Lock()
	if l.bytes+len(text) > maxPendingBytes {
		l.dropped++
		l.mu.Unlock()
		return
	}
	l.pending[r.Function] = append(l.pending[r.Function], ev)
	l.bytes += len(text)
	big := l.bytes >= maxBatchBytes
	l.mu.Unlock()
	if big {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

func (l *Log) run() {
	defer close(l.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-l.kick:
		case <-l.stop:
			l.flush()
			return
		}
		l.flush()
	}
}

// flush publishes pending events, one message per function (split when a
// batch grows past maxBatchBytes).
func (l *Log) flush() {
	l.mu.Lock()
	pending := l.pending
	dropped := l.dropped
	l.pending = map[string][]api.LogEvent{}
	l.bytes = 0
	l.dropped = 0
	l.mu.Unlock()
	if dropped > 0 {
		l.log.Warn("function logs dropped: writer fell behind", "invocations", dropped)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for fn, evs := range pending {
		for len(evs) > 0 {
			n, size := 0, 0
			for n < len(evs) && (n == 0 || size+len(evs[n].Text) < maxBatchBytes) {
				size += len(evs[n].Text)
				n++
			}
			b, err := json.Marshal(evs[:n])
			if err == nil {
				_, err = l.js.Publish(ctx, subjectPrefix+fn, b)
			}
			if err != nil {
				l.log.Warn("publish function logs", "function", fn, "err", err)
			}
			evs = evs[n:]
		}
	}
}

// Flush publishes everything queued so far (used by tests and at shutdown).
func (l *Log) Flush() { l.flush() }

// Close flushes and stops the writer.
func (l *Log) Close() {
	close(l.stop)
	<-l.done
}

// ReadOptions select what Read returns.
type ReadOptions struct {
	Since  time.Time // zero: from the beginning that is kept
	Follow bool      // keep waiting for new events until ctx ends
}

// Read calls fn for every kept log event of function name, in order.
func (l *Log) Read(ctx context.Context, name string, o ReadOptions, fn func(api.LogEvent) error) error {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjectPrefix + name},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if !o.Since.IsZero() {
		t := o.Since
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &t
	}
	cons, err := l.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read logs of %s: %w", name, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read logs of %s: %w", name, err)
	}
	if !o.Follow && info.NumPending == 0 {
		return nil
	}
	for {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read logs of %s: %w", name, err)
		}
		for m := range batch.Messages() {
			var evs []api.LogEvent
			if err := json.Unmarshal(m.Data(), &evs); err != nil {
				continue
			}
			for _, ev := range evs {
				if !o.Since.IsZero() && ev.Time.Before(o.Since) {
					continue
				}
				if err := fn(ev); err != nil {
					return err
				}
			}
			if !o.Follow {
				if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
					return nil
				}
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read logs of %s: %w", name, err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
