//go:build linux

package process

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/sandbox"
)

// reportPercentiles adds p50 and p99 of ds to the benchmark's output.
func reportPercentiles(b *testing.B, ds []time.Duration, unit time.Duration, name string) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2])/float64(unit), "p50-"+name)
	b.ReportMetric(float64(ds[len(ds)*99/100])/float64(unit), "p99-"+name)
}

// BenchmarkColdStartGo measures no instance -> response for the
// aws-lambda-go bootstrap: Start, one Invoke, Close.
func BenchmarkColdStartGo(b *testing.B) {
	p := load(b, nil, sandbox.Spec{Function: "bench", Code: goFunction(b, "urlfn"), Timeout: 30 * time.Second})
	payload := []byte(`{"rawPath":"/","requestContext":{"http":{"method":"GET"}}}`)
	ctx := context.Background()
	var starts, totals []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		in, err := p.Start(ctx)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		resp, err := in.Invoke(ctx, sandbox.Request{RequestID: fmt.Sprint(i), Deadline: time.Now().Add(10 * time.Second), Payload: payload})
		if err != nil || resp.Err != nil {
			b.Fatal(err, resp.Err)
		}
		totals = append(totals, time.Since(t0))
		starts = append(starts, t1.Sub(t0))
		in.Close(ctx)
	}
	reportPercentiles(b, starts, time.Millisecond, "start-ms")
	reportPercentiles(b, totals, time.Millisecond, "response-ms")
}

// BenchmarkWarmInvokeGo measures one invocation of a warm aws-lambda-go
// instance whose handler does nothing: the runtime's overhead.
func BenchmarkWarmInvokeGo(b *testing.B) {
	p := load(b, nil, sandbox.Spec{Function: "bench", Code: goFunction(b, "urlfn"), Timeout: 30 * time.Second})
	in := start(b, p)
	payload := []byte(`{"rawPath":"/","requestContext":{"http":{"method":"GET"}}}`)
	ctx := context.Background()
	ds := make([]time.Duration, 0, 1024)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		resp, err := in.Invoke(ctx, sandbox.Request{RequestID: "warm", Deadline: time.Now().Add(10 * time.Second), Payload: payload})
		if err != nil || resp.Err != nil {
			b.Fatal(err, resp.Err)
		}
		ds = append(ds, time.Since(t0))
	}
	reportPercentiles(b, ds, time.Microsecond, "µs")
}
