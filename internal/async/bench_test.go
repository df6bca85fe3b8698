package async_test

import (
	"context"
	"testing"

	"github.com/gustfaas/gust/internal/async"
)

// BenchmarkEnqueue measures durable enqueues without workers, from many
// goroutines (go test -bench Enqueue -cpu 1 ./internal/async/; the
// ns/op is per enqueue across all of them).
func BenchmarkEnqueue(b *testing.B) {
	sub := openSubstrate(b)
	q := openQueue(b, sub, async.Config{}, false)
	if err := q.Ready(context.Background()); err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"echo":"async"}`)
	b.SetParallelism(128)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := q.Enqueue(context.Background(), async.Request{Function: "echo", Payload: payload}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enqueues/s")
}
