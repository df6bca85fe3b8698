package wasm

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/sandbox"
)

// Benchmarks report; they never decide whether a test passes. Run them as
//
//	go test -run x -bench . -benchtime 2000x ./internal/sandbox/wasm/

var benchReq = sandbox.Request{RequestID: "0d8f6f38-6c1c-4b1e-9d3a-5f7f0e6a1b2c", Payload: []byte(`{"name":"Ada"}`)}

// BenchmarkWarmInvoke is one invocation of a warm hello instance, with a
// deadline as every real invocation has.
func BenchmarkWarmInvoke(b *testing.B) {
	p := load(b, nil, sandbox.Spec{Code: guest(b, "hello")})
	in := start(b, p)
	b.Run("deadline", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		benchInvoke(b, ctx, in)
	})
	b.Run("no-deadline", func(b *testing.B) {
		benchInvoke(b, context.Background(), in)
	})
}

func benchInvoke(b *testing.B, ctx context.Context, in sandbox.Instance) {
	b.ReportAllocs()
	for b.Loop() {
		resp, err := in.Invoke(ctx, benchReq)
		if err != nil || resp.Err != nil {
			b.Fatal(err, resp.Err)
		}
	}
}

// BenchmarkColdStart is a cold start of the hello SDK module: Start, one
// Invoke, Close.
func BenchmarkColdStart(b *testing.B) {
	p := load(b, nil, sandbox.Spec{Code: guest(b, "hello")})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		in, err := p.Start(ctx)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := in.Invoke(ctx, benchReq)
		if err != nil || resp.Err != nil {
			b.Fatal(err, resp.Err)
		}
		in.Close(ctx)
	}
}

// BenchmarkStart is Start and Close alone.
func BenchmarkStart(b *testing.B) {
	p := load(b, nil, sandbox.Spec{Code: guest(b, "hello")})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		in, err := p.Start(ctx)
		if err != nil {
			b.Fatal(err)
		}
		in.Close(ctx)
	}
}

// BenchmarkColdStartCommand is one invocation of a WASI command (the Go
// test command in echo mode): a fresh instance, _start, close.
func BenchmarkColdStartCommand(b *testing.B) {
	p := load(b, nil, sandbox.Spec{Code: guest(b, "command")})
	in := start(b, p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := in.Invoke(ctx, benchReq)
		if err != nil || resp.Err != nil {
			b.Fatal(err, resp.Err)
		}
	}
}

// BenchmarkIdleInstanceMemory starts 200 hello instances, invokes each
// once (so each holds what a warm idle instance holds) and reports the
// growth of the process's memory per instance: rss-MB/instance from
// smaps_rollup (which counts a shared page once per mapping),
// pss-MB/instance (shared pages divided among their users) and
// private-MB/instance (pages only that instance has: its real cost). The
// measurement is made once, whatever b.N; ns/op means nothing here.
func BenchmarkIdleInstanceMemory(b *testing.B) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		b.Skip("no /proc/self/smaps_rollup")
	}
	const n = 200
	p := load(b, nil, sandbox.Spec{Code: guest(b, "hello")})
	ctx := context.Background()
	// Let the program learn its hot pages first, as a deployed one has.
	warm := start(b, p)
	invoke(b, warm, `{"name":"warm"}`)

	runtime.GC()
	before := smaps(b)
	ins := make([]sandbox.Instance, 0, n)
	for range n {
		in, err := p.Start(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if resp, err := in.Invoke(ctx, benchReq); err != nil || resp.Err != nil {
			b.Fatal(err, resp.Err)
		}
		ins = append(ins, in)
	}
	runtime.GC()
	after := smaps(b)
	for _, in := range ins {
		in.Close(ctx)
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(after["Rss"]-before["Rss"])/1024/n, "rss-MB/instance")
	b.ReportMetric(float64(after["Pss"]-before["Pss"])/1024/n, "pss-MB/instance")
	b.ReportMetric(float64(after["Private_Dirty"]+after["Private_Clean"]-before["Private_Dirty"]-before["Private_Clean"])/1024/n, "private-MB/instance")
}

// smaps reads /proc/self/smaps_rollup, in kB.
func smaps(tb testing.TB) map[string]int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		tb.Fatal(err)
	}
	m := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && bytes.HasSuffix(f[0], []byte(":")) {
			v, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err == nil {
				m[string(bytes.TrimSuffix(f[0], []byte(":")))] = v
			}
		}
	}
	return m
}

// BenchmarkColdStartPhases splits BenchmarkColdStart into its phases and
// reports each as a metric: Start, the first Invoke (the guest touching
// its fresh memory), a second Invoke (warm), Close.
func BenchmarkColdStartPhases(b *testing.B) {
	p := load(b, nil, sandbox.Spec{Code: guest(b, "hello")})
	ctx := context.Background()
	var st, first, second, closing time.Duration
	for b.Loop() {
		t0 := time.Now()
		in, err := p.Start(ctx)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := in.Invoke(ctx, benchReq); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := in.Invoke(ctx, benchReq); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		in.Close(ctx)
		t4 := time.Now()
		st, first, second, closing = st+t1.Sub(t0), first+t2.Sub(t1), second+t3.Sub(t2), closing+t4.Sub(t3)
	}
	n := float64(b.N) * 1e3
	b.ReportMetric(float64(st)/n, "start-µs")
	b.ReportMetric(float64(first)/n, "first-invoke-µs")
	b.ReportMetric(float64(second)/n, "second-invoke-µs")
	b.ReportMetric(float64(closing)/n, "close-µs")
}
