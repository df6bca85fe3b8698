package main

// The async scenario: durable asynchronous invocations. Enqueue
// throughput (202s per second) from many concurrent clients through the
// Lambda API (signed), through function URLs (unsigned), and straight
// into the queue (no HTTP); then enqueue-to-start latency with capacity
// free. The node's workers run the invocations meanwhile, as they would.

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/async"
)

func (b *bench) async(ctx context.Context) ([]row, error) {
	q := b.n.Async()
	if err := q.Ready(ctx); err != nil {
		return nil, err
	}
	// Enqueues wait for an fsync each, so throughput grows with the
	// number of callers in flight: measured at 128 and 512.
	const clients = 512
	d := min(b.o.duration, 10*time.Second)
	id, secret := b.n.AdminKey()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	sc := client.New(b.n.URL(), client.Credentials{AccessKeyID: id, SecretAccessKey: secret}, client.WithHTTPClient(hc))
	// hello is an SDK function (instances reused warm), so the workers
	// cost what the queue costs, not a fresh WASI instance per run.
	const fn = "hello"
	payload := []byte(`{"name":"async"}`)

	ways := []struct {
		name string
		send func(ctx context.Context) error
	}{
		{"lambda api", func(ctx context.Context) error {
			_, err := sc.InvokeAsync(ctx, fn, payload, client.AsyncOptions{})
			return err
		}},
		{"function url", func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.n.URL()+"/fn/"+fn, nil)
			req.Header.Set("X-Gust-Invocation-Type", "Event")
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}},
		{"queue", func(ctx context.Context) error {
			_, err := q.Enqueue(ctx, async.Request{Function: fn, Payload: payload, Source: "bench"})
			return err
		}},
	}
	var rows []row
	for _, w := range ways {
		for _, callers := range []int{128, clients} {
			if err := b.drainAsync(ctx); err != nil {
				return nil, err
			}
			var ok, failed atomic.Int64
			var firstErr atomic.Value
			rctx, cancel := context.WithTimeout(ctx, d)
			var wg sync.WaitGroup
			t0 := time.Now()
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for rctx.Err() == nil {
						if err := w.send(rctx); err != nil {
							if rctx.Err() == nil {
								failed.Add(1)
								firstErr.CompareAndSwap(nil, err)
							}
							continue
						}
						ok.Add(1)
					}
				}()
			}
			wg.Wait()
			cancel()
			el := time.Since(t0)
			note := fmt.Sprintf("%d clients for %s, workers running; %d accepted", callers, d, ok.Load())
			if failed.Load() > 0 {
				note += fmt.Sprintf(", %d errors (first: %v)", failed.Load(), firstErr.Load())
			}
			goal := ""
			if w.name == "lambda api" {
				goal = "≥ 5000/s"
			}
			rows = append(rows, row{"async", fmt.Sprintf("durable enqueues via %s, %d clients", w.name, callers), float64(int(float64(ok.Load()) / el.Seconds())), "req/s", goal, note})
		}
	}

	// Enqueue-to-start with capacity free: one at a time, through the
	// Lambda API; start is when a worker begins the run (the record's
	// Started).
	if err := b.drainAsync(ctx); err != nil {
		return nil, err
	}
	const samples = 300
	var fromAccept, fromEnqueue []time.Duration
	for i := range samples {
		acc, err := sc.InvokeAsync(ctx, fn, payload, client.AsyncOptions{})
		accepted := time.Now()
		if err != nil {
			return nil, err
		}
		var rec async.Record
		for {
			rec, err = q.Record(ctx, acc.RequestID)
			if err != nil {
				return nil, err
			}
			if !rec.Started.IsZero() {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		if i >= 10 { // the first ones warm the path
			fromAccept = append(fromAccept, max(rec.Started.Sub(accepted), 0))
			fromEnqueue = append(fromEnqueue, rec.Started.Sub(rec.Enqueued))
		}
		for !rec.Final() {
			time.Sleep(time.Millisecond)
			if rec, err = q.Record(ctx, acc.RequestID); err != nil {
				return nil, err
			}
		}
	}
	sortD(fromAccept)
	sortD(fromEnqueue)
	rows = append(rows,
		row{"async", "enqueue-to-start p50", round2(us(percentile(fromEnqueue, .5)) / 1000), "ms", "< 5 ms", fmt.Sprintf("%d sequential invocations, capacity free; from the node's enqueue time to the worker's start", len(fromEnqueue))},
		row{"async", "enqueue-to-start p99", round2(us(percentile(fromEnqueue, .99)) / 1000), "ms", "", ""},
		row{"async", "202-to-start p50", round2(us(percentile(fromAccept, .5)) / 1000), "ms", "", "from the client holding the 202 (0 when the run started first)"},
		row{"async", "202-to-start p99", round2(us(percentile(fromAccept, .99)) / 1000), "ms", "", ""},
	)
	return rows, nil
}

// drainAsync waits until the async backlog has run.
func (b *bench) drainAsync(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		n, err := b.n.Async().Pending(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("async backlog of %d did not drain", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
