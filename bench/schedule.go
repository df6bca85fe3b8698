package main

// The schedule scenario: a one-second schedule on the echo function,
// through the node as a user creates it. For each tick, the jitter is
// when the scheduler handed the invocation to the async queue (the
// record's enqueue time, after the tick's lease was taken) minus the
// tick's time; the start latency is when the invocation started running.

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/gustfaas/gust/api"
)

// scheduleTicks is how many ticks are measured.
const scheduleTicks = 30

func (b *bench) schedule(ctx context.Context) ([]row, error) {
	const name = "bench-tick"
	if _, err := b.c.CreateSchedule(ctx, api.CreateScheduleRequest{Name: name, Function: "echo", Expression: "rate(1 second)"}); err != nil {
		return nil, err
	}
	defer b.c.DeleteSchedule(context.Background(), name)

	// Collect each tick's request id as the schedule reports it.
	ids := map[int64]string{}
	first := int64(0)
	deadline := time.Now().Add(time.Duration(scheduleTicks+10) * time.Second)
	for len(ids) < scheduleTicks+1 && time.Now().Before(deadline) {
		s, err := b.c.GetSchedule(ctx, name)
		if err != nil {
			return nil, err
		}
		if s.LastFired != nil {
			if first == 0 {
				first = s.LastFired.Unix() // may have fired before the node was warm: not counted
			}
			if s.LastFired.Unix() > first {
				ids[s.LastFired.Unix()] = s.LastRequestID
			}
		}
		time.Sleep(150 * time.Millisecond)
	}
	if err := b.c.DeleteSchedule(ctx, name); err != nil {
		return nil, err
	}
	var jitter, start []time.Duration
	for slot, id := range ids {
		var rec struct{ Enqueued, Started time.Time }
		for range 50 { // wait for the run to start
			r, err := b.n.Async().Record(ctx, id)
			if err == nil && !r.Started.IsZero() {
				rec.Enqueued, rec.Started = r.Enqueued, r.Started
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if rec.Started.IsZero() {
			return nil, fmt.Errorf("tick %d (request %s) did not run", slot, id)
		}
		at := time.Unix(slot, 0)
		jitter = append(jitter, rec.Enqueued.Sub(at))
		start = append(start, rec.Started.Sub(at))
	}
	if len(jitter) < scheduleTicks/2 {
		return nil, fmt.Errorf("only %d ticks observed", len(jitter))
	}
	pct := func(ds []time.Duration, p float64) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	note := fmt.Sprintf("%d one-second ticks", len(jitter))
	return []row{
		{Scenario: "schedule", Metric: "firing jitter p50", Value: pct(jitter, 0.5), Unit: "ms", Note: "tick -> enqueued, " + note},
		{Scenario: "schedule", Metric: "firing jitter p99", Value: pct(jitter, 0.99), Unit: "ms", Goal: "< 50", Note: "tick -> enqueued, " + note},
		{Scenario: "schedule", Metric: "firing jitter max", Value: pct(jitter, 1), Unit: "ms", Note: note},
		{Scenario: "schedule", Metric: "tick to start p50", Value: pct(start, 0.5), Unit: "ms", Note: "tick -> invocation running"},
		{Scenario: "schedule", Metric: "tick to start p99", Value: pct(start, 0.99), Unit: "ms", Note: "tick -> invocation running"},
	}, nil
}
