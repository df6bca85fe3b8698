// Package meter turns invocation records into usage you could bill from
// and metrics you can watch. Usage is aggregated in memory per function
// version per minute and flushed to a JetStream stream every second, so a
// crash loses at most the last second of usage; a query flushes first and
// then sums the stream, so totals are exact. Prometheus metrics are kept
// beside it.
package meter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/engine"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream and subject names.
const (
	StreamName    = "GUST_USAGE"
	subjectPrefix = "gust.usage."
)

// FlushInterval bounds what a crash can lose.
const FlushInterval = time.Second

// Prices is the price table usage is costed with, in US dollars.
type Prices = api.Prices

// DefaultPrices are Lambda's list prices (x86, first tier).
var DefaultPrices = Prices{PerRequest: 0.20 / 1e6, PerGBSecond: 0.0000166667}

// Usage is an aggregate of invocations: of one function version in one
// minute when stored, or any sum of those.
type Usage struct {
	Function   string    `json:"function,omitempty"`
	Version    string    `json:"version,omitempty"`
	Minute     time.Time `json:"minute,omitzero"`
	Requests   int64     `json:"requests"`
	Errors     int64     `json:"errors"`
	Timeouts   int64     `json:"timeouts"`
	Throttles  int64     `json:"throttles"`
	ColdStarts int64     `json:"coldStarts"`
	DurationUs int64     `json:"durationUs"`
	BilledMs   int64     `json:"billedMs"`
	// MBMs is the sum over invocations of billed ms times memory MB;
	// GB-seconds are MBMs / 1024 / 1000.
	MBMs   int64 `json:"mbMs"`
	InitUs int64 `json:"initUs"`
}

// add folds o into u.
func (u *Usage) add(o *Usage) {
	u.Requests += o.Requests
	u.Errors += o.Errors
	u.Timeouts += o.Timeouts
	u.Throttles += o.Throttles
	u.ColdStarts += o.ColdStarts
	u.DurationUs += o.DurationUs
	u.BilledMs += o.BilledMs
	u.MBMs += o.MBMs
	u.InitUs += o.InitUs
}

// GBSeconds is the compute used.
func (u *Usage) GBSeconds() float64 { return float64(u.MBMs) / 1024 / 1000 }

type key struct {
	fn, version string
	minute      int64
}

// Store is what the meter needs from the substrate.
type Store interface {
	Stream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error)
	JetStream() jetstream.JetStream
}

// Meter aggregates records. Safe for concurrent use.
type Meter struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	log     *slog.Logger
	prices  Prices
	metrics *Metrics
	node    string

	mu      sync.Mutex
	pending map[key]*Usage
	retry   []*nats.Msg // failed publishes, resent as they were (same id)
	seq     uint64

	flushMu sync.Mutex // one flush at a time
	stop    chan struct{}
	done    chan struct{}
}

// Config configures a Meter.
type Config struct {
	Prices  Prices
	Metrics *Metrics // optional
	Logger  *slog.Logger
	// NodeID makes publish ids unique across nodes.
	NodeID string
}

// Open creates the usage stream and starts the flusher.
func Open(ctx context.Context, st Store, cfg Config) (*Meter, error) {
	s, err := st.Stream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Gust metered usage, per function version per minute",
		Subjects:    []string{subjectPrefix + ">"},
		MaxAge:      400 * 24 * time.Hour,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Prices == (Prices{}) {
		cfg.Prices = DefaultPrices
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NodeID == "" {
		cfg.NodeID = fmt.Sprintf("n%d", time.Now().UnixNano())
	}
	m := &Meter{
		js: st.JetStream(), stream: s, log: cfg.Logger, prices: cfg.Prices, metrics: cfg.Metrics,
		node: cfg.NodeID, pending: map[key]*Usage{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	go m.run()
	return m, nil
}

// Prices returns the price table in use.
func (m *Meter) Prices() Prices { return m.prices }

// Record accounts one invocation. It never blocks on I/O.
func (m *Meter) Record(r *engine.Record) {
	k := key{fn: r.Function, version: r.Version, minute: r.Start.Unix() / 60}
	m.mu.Lock()
	u := m.pending[k]
	if u == nil {
		u = &Usage{Function: r.Function, Version: r.Version, Minute: time.Unix(k.minute*60, 0).UTC()}
		m.pending[k] = u
	}
	u.Requests++
	switch r.Outcome {
	case engine.FunctionError:
		u.Errors++
	case engine.Timeout:
		u.Errors++
		u.Timeouts++
	case engine.Throttled:
		u.Throttles++
	}
	if r.Outcome != engine.Throttled {
		u.DurationUs += r.Duration.Microseconds()
		u.BilledMs += r.BilledMs
		u.MBMs += r.BilledMs * int64(r.MemoryMB)
		if r.Cold {
			u.ColdStarts++
			u.InitUs += r.InitDuration.Microseconds()
		}
	}
	m.mu.Unlock()
	if m.metrics != nil {
		m.metrics.observe(r)
	}
}

func (m *Meter) run() {
	defer close(m.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := m.Flush(context.Background()); err != nil {
				m.log.Warn("flush usage", "err", err)
			}
		case <-m.stop:
			if err := m.Flush(context.Background()); err != nil {
				m.log.Warn("flush usage", "err", err)
			}
			return
		}
	}
}

// Flush publishes pending usage. A message that fails to publish is kept
// and resent unchanged, with the same publish id, so that it counts once
// even if the first attempt was stored and only its ack was lost.
func (m *Meter) Flush(ctx context.Context) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.mu.Lock()
	pending := m.pending
	m.pending = map[key]*Usage{}
	msgs := m.retry
	m.retry = nil
	for k, u := range pending {
		b, err := json.Marshal(u)
		if err != nil {
			continue
		}
		m.seq++
		msg := &nats.Msg{Subject: subjectPrefix + k.fn, Data: b, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s-%d", m.node, m.seq))
		msgs = append(msgs, msg)
	}
	m.mu.Unlock()
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var errs []error
	var failed []*nats.Msg
	for _, msg := range msgs {
		if _, err := m.js.PublishMsg(ctx, msg); err != nil {
			errs = append(errs, err)
			failed = append(failed, msg)
		}
	}
	if len(failed) > 0 {
		m.mu.Lock()
		m.retry = append(failed, m.retry...)
		m.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Close flushes and stops the flusher.
func (m *Meter) Close() {
	close(m.stop)
	<-m.done
}

func (m *Meter) line(u Usage) api.UsageLine {
	l := api.UsageLine{
		Function: u.Function, Version: u.Version, Requests: u.Requests, Errors: u.Errors,
		Timeouts: u.Timeouts, Throttles: u.Throttles, ColdStarts: u.ColdStarts, DurationUs: u.DurationUs,
		BilledMs: u.BilledMs, MBMs: u.MBMs, InitUs: u.InitUs, GBSeconds: u.GBSeconds(),
	}
	// Throttled requests are not billed, as on Lambda.
	l.Cost.Requests = float64(u.Requests-u.Throttles) * m.prices.PerRequest
	l.Cost.Compute = l.GBSeconds * m.prices.PerGBSecond
	l.Cost.Total = l.Cost.Requests + l.Cost.Compute
	return l
}

// Query sums usage from the minute containing since until now, for one
// function or ("" ) all. It flushes pending usage first, so the totals
// include every invocation recorded before the call.
func (m *Meter) Query(ctx context.Context, since time.Time, function string) (*api.UsageReport, error) {
	if err := m.Flush(ctx); err != nil {
		return nil, fmt.Errorf("flush usage: %w", err)
	}
	from := since.Truncate(time.Minute)
	subject := subjectPrefix + ">"
	if function != "" {
		subject = subjectPrefix + function
	}
	cons, err := m.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subject},
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &from,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	sums := map[[2]string]*Usage{}
	remaining := info.NumPending
	for remaining > 0 {
		batch, err := cons.Fetch(int(min(remaining, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read usage: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			var u Usage
			if err := json.Unmarshal(msg.Data(), &u); err != nil {
				continue
			}
			if u.Minute.Before(from) {
				continue
			}
			k := [2]string{u.Function, u.Version}
			s := sums[k]
			if s == nil {
				s = &Usage{Function: u.Function, Version: u.Version}
				sums[k] = s
			}
			s.add(&u)
			if md, err := msg.Metadata(); err == nil {
				remaining = md.NumPending
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read usage: %w", err)
		}
		if n == 0 {
			break
		}
	}
	rep := &api.UsageReport{Since: from, Until: time.Now().UTC(), Prices: m.prices, Functions: []api.UsageLine{}}
	var total Usage
	for _, u := range sums {
		rep.Functions = append(rep.Functions, m.line(*u))
		total.add(u)
	}
	sort.Slice(rep.Functions, func(i, j int) bool {
		a, b := rep.Functions[i], rep.Functions[j]
		if a.Function != b.Function {
			return a.Function < b.Function
		}
		return strings.Compare(a.Version, b.Version) < 0
	})
	rep.Total = m.line(total)
	return rep, nil
}
