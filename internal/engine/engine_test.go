package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/sandbox"
)

// fakeRuntime is a sandbox.Runtime whose instances the test controls: it
// counts starts, invocations and closes, and can hold starts and
// invocations at a gate. It stands in for the runtime contract, not for an
// outside service; the node's tests run the same engine on real wasm.
type fakeRuntime struct {
	mu         sync.Mutex
	startGate  chan struct{} // if non-nil, Start waits for a value
	invokeGate chan struct{} // if non-nil, Invoke waits for a value
	starts     atomic.Int64
	invokes    atomic.Int64
	closes     atomic.Int64
	perFn      sync.Map // function name -> *atomic.Int64 invokes
	live       atomic.Int64
}

func (rt *fakeRuntime) Load(_ context.Context, spec sandbox.Spec) (sandbox.Program, error) {
	return &fakeProgram{rt: rt, spec: spec}, nil
}

type fakeProgram struct {
	rt   *fakeRuntime
	spec sandbox.Spec
}

func (p *fakeProgram) Start(ctx context.Context) (sandbox.Instance, error) {
	p.rt.mu.Lock()
	gate := p.rt.startGate
	p.rt.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.rt.starts.Add(1)
	p.rt.live.Add(1)
	return &fakeInstance{p: p}, nil
}

func (p *fakeProgram) Close(context.Context) error { return nil }

type fakeInstance struct {
	p      *fakeProgram
	closed atomic.Bool
}

func (in *fakeInstance) Invoke(ctx context.Context, req sandbox.Request) (sandbox.Response, error) {
	rt := in.p.rt
	rt.mu.Lock()
	gate := rt.invokeGate
	rt.mu.Unlock()
	rt.invokes.Add(1)
	c, _ := rt.perFn.LoadOrStore(in.p.spec.Function, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return sandbox.Response{}, &sandbox.LostError{Kind: sandbox.TimedOut, Err: ctx.Err()}
		}
	}
	return sandbox.Response{Payload: []byte(fmt.Sprintf(`{"digest":%q}`, in.p.spec.Digest))}, nil
}

func (in *fakeInstance) Close(context.Context) error {
	if in.closed.CompareAndSwap(false, true) {
		in.p.rt.closes.Add(1)
		in.p.rt.live.Add(-1)
	}
	return nil
}

func (rt *fakeRuntime) invokesOf(name string) int64 {
	c, ok := rt.perFn.Load(name)
	if !ok {
		return 0
	}
	return c.(*atomic.Int64).Load()
}

// codeSource serves every digest as its own bytes.
type codeSource struct{}

func (codeSource) Code(_ context.Context, digest string) ([]byte, error) { return []byte(digest), nil }

func fn(name string, memMB int) *registry.Function {
	return &registry.Function{Name: name, Runtime: "fake", MemoryMB: memMB, TimeoutSec: 30,
		CodeDigest: "d-" + name, RevisionID: "r1", LastModified: time.Unix(1, 0)}
}

func newTestEngine(t *testing.T, rt *fakeRuntime, cfg Config) *Engine {
	t.Helper()
	cfg.Runtimes = map[string]sandbox.Runtime{"fake": rt}
	cfg.Code = codeSource{}
	e := New(cfg)
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// waitFor polls cond (the engine works in goroutines) within a bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func statsOf(e *Engine, name string) PoolStats {
	for _, p := range e.Stats().Pools {
		if p.Function == name {
			return p
		}
	}
	return PoolStats{Function: name}
}

func TestScaleUpWithoutStampede(t *testing.T) {
	tests := []struct {
		name       string
		concurrent int
	}{
		{"one", 1},
		{"ten", 10},
		{"fifty", 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &fakeRuntime{startGate: make(chan struct{}), invokeGate: make(chan struct{})}
			e := newTestEngine(t, rt, Config{MemoryMB: 1 << 20})
			f := fn("f", 128)
			var wg sync.WaitGroup
			for i := 0; i < tt.concurrent; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := e.Invoke(context.Background(), f, fmt.Sprint(i), nil); err != nil {
						t.Errorf("Invoke: %v", err)
					}
				}()
			}
			waitFor(t, "every request waiting", func() bool { return statsOf(e, "f").Waiting == tt.concurrent })
			if s := statsOf(e, "f"); s.Starting != tt.concurrent {
				t.Fatalf("starting = %d with %d waiting, want one start per waiter", s.Starting, tt.concurrent)
			}
			// Let starts and invocations through one at a time: each start
			// serves one waiter; nothing else starts.
			for i := 0; i < tt.concurrent; i++ {
				rt.startGate <- struct{}{}
				rt.invokeGate <- struct{}{}
			}
			wg.Wait()
			// A waiter may have been served by an instance that freed
			// first; the start meant for it then idles.
			waitFor(t, "all starts settled", func() bool { return statsOf(e, "f").Starting == 0 })
			if got := rt.starts.Load(); got != int64(tt.concurrent) {
				t.Errorf("instances started = %d, want %d", got, tt.concurrent)
			}
			if s := statsOf(e, "f"); s.Idle != tt.concurrent || s.Busy != 0 || s.Waiting != 0 {
				t.Errorf("after the burst: %+v, want %d idle", s, tt.concurrent)
			}
		})
	}
}

// A waiter takes whichever instance frees or starts first, and no extra
// instance starts for it.
func TestWaiterTakesFreedInstance(t *testing.T) {
	rt := &fakeRuntime{invokeGate: make(chan struct{})}
	e := newTestEngine(t, rt, Config{MemoryMB: 1 << 20})
	f := fn("f", 128)
	done := make(chan error, 2)
	go func() { _, err := e.Invoke(context.Background(), f, "1", nil); done <- err }()
	waitFor(t, "first invocation running", func() bool { return rt.invokes.Load() == 1 })

	rt.mu.Lock()
	rt.startGate = make(chan struct{}) // the second instance cannot start yet
	rt.mu.Unlock()
	go func() { _, err := e.Invoke(context.Background(), f, "2", nil); done <- err }()
	waitFor(t, "second request waiting", func() bool { return statsOf(e, "f").Waiting == 1 })

	rt.invokeGate <- struct{}{} // the first finishes; its instance goes to the waiter
	waitFor(t, "second invocation running on the freed instance", func() bool { return rt.invokes.Load() == 2 })
	if rt.starts.Load() != 1 {
		t.Errorf("starts = %d before the pending start finished, want 1", rt.starts.Load())
	}
	rt.invokeGate <- struct{}{}
	for i := 0; i < 2; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	rt.startGate <- struct{}{} // the start that was pending completes and idles
	waitFor(t, "pending start idles", func() bool { return statsOf(e, "f").Idle == 2 })
	if rt.starts.Load() != 2 {
		t.Errorf("starts = %d, want 2 (no more than requests waited)", rt.starts.Load())
	}
}

func TestReapToZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &fakeRuntime{}
		e := New(Config{Runtimes: map[string]sandbox.Runtime{"fake": rt}, Code: codeSource{}, MemoryMB: 1024, IdleTimeout: time.Minute})
		defer e.Close(context.Background())
		f := fn("f", 128)
		short := fn("short", 128)
		short.IdleTimeoutSec = 5
		for _, g := range []*registry.Function{f, short} {
			if _, err := e.Invoke(context.Background(), g, "1", nil); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if s := statsOf(e, "short"); s.Idle != 0 {
			t.Errorf("short after 10s: %+v, want reaped by its own 5s keep-alive", s)
		}
		if s := statsOf(e, "f"); s.Idle != 1 {
			t.Errorf("f after 10s: %+v, want still warm", s)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if s := e.Stats(); s.UsedMB != 0 || rt.live.Load() != 0 {
			t.Errorf("after the keep-alive: used %d MB, %d live instances; want zero", s.UsedMB, rt.live.Load())
		}
	})
}

// A request arriving while instances are being reaped is served.
func TestRequestDuringReapIsServed(t *testing.T) {
	rt := &fakeRuntime{}
	e := newTestEngine(t, rt, Config{MemoryMB: 1 << 20, IdleTimeout: time.Hour})
	f := fn("f", 128)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 300; j++ {
				if _, err := e.Invoke(context.Background(), f, "x", nil); err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	stop := make(chan struct{})
	reaps := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				reaps <- n
				return
			default:
				e.Reap(time.Now().Add(2 * time.Hour)) // everything idle is past its keep-alive
				n++
			}
		}
	}()
	wg.Wait()
	close(stop)
	n := <-reaps
	if failures.Load() != 0 {
		t.Errorf("%d invocations failed while %d reaps ran", failures.Load(), n)
	}
	if rt.closes.Load() == 0 {
		t.Errorf("no instance was reaped in %d reaps; the test raced nothing", n)
	}
}

func TestProvisionedSurviveReaping(t *testing.T) {
	rt := &fakeRuntime{}
	e := newTestEngine(t, rt, Config{MemoryMB: 1 << 20, IdleTimeout: time.Second})
	f := fn("f", 128)
	f.ProvisionedConcurrency = 3
	e.Update(registry.Change{New: f})
	waitFor(t, "provisioned instances", func() bool { return statsOf(e, "f").Idle == 3 })
	if got := rt.invokes.Load(); got != 0 {
		t.Errorf("provisioning invoked the function %d times", got)
	}
	// A burst takes the pool above its minimum; reaping returns it to 3.
	rt.mu.Lock()
	rt.invokeGate = make(chan struct{})
	rt.mu.Unlock()
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); e.Invoke(context.Background(), f, "x", nil) }()
	}
	waitFor(t, "five busy", func() bool { return statsOf(e, "f").Busy == 5 })
	for i := 0; i < 5; i++ {
		rt.invokeGate <- struct{}{}
	}
	wg.Wait()
	e.Reap(time.Now().Add(time.Hour))
	if s := statsOf(e, "f"); s.Idle != 3 {
		t.Errorf("after reaping: %+v, want the 3 provisioned instances", s)
	}
	// A lost provisioned instance is replaced at the next reap.
	e.mu.Lock()
	p := e.pools[poolKey("f", "")]
	in := p.idle[0]
	p.removeIdleLocked(in)
	e.usedMB -= 128
	e.mu.Unlock()
	in.inst.Close(context.Background())
	e.Reap(time.Now())
	waitFor(t, "replacement", func() bool { return statsOf(e, "f").Idle == 3 })
}

func TestEvictLeastRecentlyUsed(t *testing.T) {
	rt := &fakeRuntime{}
	e := newTestEngine(t, rt, Config{MemoryMB: 512, IdleTimeout: time.Hour})
	for _, name := range []string{"a", "b", "c", "d"} {
		if _, err := e.Invoke(context.Background(), fn(name, 128), "x", nil); err != nil {
			t.Fatal(err)
		}
	}
	// Touch a again: b is now the least recently used.
	if _, err := e.Invoke(context.Background(), fn("a", 128), "x", nil); err != nil {
		t.Fatal(err)
	}
	if s := e.Stats(); s.UsedMB != 512 {
		t.Fatalf("used = %d MB, want the budget full (512)", s.UsedMB)
	}
	if _, err := e.Invoke(context.Background(), fn("e", 256), "x", nil); err != nil {
		t.Fatalf("Invoke(e) with a full budget of idle instances: %v", err)
	}
	got := map[string]int{}
	for _, p := range e.Stats().Pools {
		got[p.Function] = p.Idle
	}
	want := map[string]int{"a": 1, "b": 0, "c": 0, "d": 1, "e": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("idle instances of %s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

func TestThrottleWithoutRunning(t *testing.T) {
	t.Run("reserved concurrency", func(t *testing.T) {
		rt := &fakeRuntime{invokeGate: make(chan struct{})}
		e := newTestEngine(t, rt, Config{MemoryMB: 1 << 20})
		f := fn("f", 128)
		one := 1
		f.ReservedConcurrency = &one
		var recs []*Record
		var mu sync.Mutex
		e.cfg.OnRecord = func(r *Record) { mu.Lock(); recs = append(recs, r); mu.Unlock() }
		done := make(chan error)
		go func() { _, err := e.Invoke(context.Background(), f, "1", nil); done <- err }()
		waitFor(t, "first running", func() bool { return rt.invokes.Load() == 1 })
		_, err := e.Invoke(context.Background(), f, "2", nil)
		var te *ThrottleError
		if !errors.As(err, &te) || te.Reason != ReasonReservedConcurrency || te.RetryAfter <= 0 {
			t.Fatalf("second Invoke error = %v, want ThrottleError %s", err, ReasonReservedConcurrency)
		}
		if got := rt.invokes.Load(); got != 1 {
			t.Errorf("the function ran %d times, want 1 (the throttled request must not run)", got)
		}
		rt.invokeGate <- struct{}{}
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(recs) != 2 || recs[0].Outcome != Throttled {
			t.Errorf("records = %d, first %v; want the throttle recorded", len(recs), recs[0].Outcome)
		}
	})
	t.Run("node full of busy instances", func(t *testing.T) {
		rt := &fakeRuntime{invokeGate: make(chan struct{})}
		e := newTestEngine(t, rt, Config{MemoryMB: 256})
		done := make(chan error)
		go func() { _, err := e.Invoke(context.Background(), fn("big", 256), "1", nil); done <- err }()
		waitFor(t, "big running", func() bool { return rt.invokes.Load() == 1 })
		_, err := e.Invoke(context.Background(), fn("small", 128), "2", nil)
		var te *ThrottleError
		if !errors.As(err, &te) || te.Reason != ReasonNodeFull {
			t.Fatalf("Invoke(small) error = %v, want ThrottleError %s", err, ReasonNodeFull)
		}
		if got := rt.invokesOf("small"); got != 0 {
			t.Errorf("small ran %d times, want 0", got)
		}
		rt.invokeGate <- struct{}{}
		<-done
		// Once big is idle, small evicts it and runs.
		rt.mu.Lock()
		rt.invokeGate = nil
		rt.mu.Unlock()
		if _, err := e.Invoke(context.Background(), fn("small", 128), "3", nil); err != nil {
			t.Errorf("Invoke(small) after big went idle: %v", err)
		}
	})
}

func TestDrainOnNewVersion(t *testing.T) {
	gate := make(chan struct{})
	rt := &fakeRuntime{invokeGate: gate}
	e := newTestEngine(t, rt, Config{MemoryMB: 1 << 20})
	v1 := fn("f", 128)
	type out struct {
		payload string
		err     error
	}
	first := make(chan out, 1)
	go func() {
		r, err := e.Invoke(context.Background(), v1, "1", nil)
		if err != nil {
			first <- out{err: err}
			return
		}
		first <- out{payload: string(r.Payload)}
	}()
	waitFor(t, "v1 running", func() bool { return rt.invokes.Load() == 1 })

	v2 := fn("f", 128)
	v2.CodeDigest, v2.RevisionID, v2.LastModified = "d-f2", "r2", time.Unix(2, 0)
	e.Update(registry.Change{Old: v1, New: v2})
	rt.mu.Lock()
	rt.invokeGate = nil
	rt.mu.Unlock()
	r, err := e.Invoke(context.Background(), v2, "2", nil)
	if err != nil || string(r.Payload) != `{"digest":"d-f2"}` {
		t.Fatalf("Invoke after deploy = %v, %v; want the new code", r, err)
	}
	// A caller still holding the old configuration is served by the new
	// version too.
	r, err = e.Invoke(context.Background(), v1, "3", nil)
	if err != nil || string(r.Payload) != `{"digest":"d-f2"}` {
		t.Errorf("Invoke with a stale view = %s, %v; want the new code", r.Payload, err)
	}
	close(gate)
	o := <-first
	if o.err != nil || o.payload != `{"digest":"d-f"}` {
		t.Errorf("in-flight invocation = %q, %v; want it to finish on the old code", o.payload, o.err)
	}
	waitFor(t, "old instance closed", func() bool { return rt.closes.Load() == 1 })
}

// versionOf is a published version of f.
func versionOf(f *registry.Function, v string) *registry.Function {
	c := f.Clone()
	c.Version = v
	c.RevisionID = "r-" + v
	return c
}

func TestVersionsHaveTheirOwnPools(t *testing.T) {
	rt := &fakeRuntime{}
	e := newTestEngine(t, rt, Config{MemoryMB: 1 << 20, IdleTimeout: time.Minute})
	latest := fn("f", 128)
	v1 := versionOf(latest, "1")
	for _, f := range []*registry.Function{latest, v1} {
		res, err := e.Invoke(context.Background(), f, "x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Version != f.Qualifier() || res.Record.Version != f.Qualifier() {
			t.Errorf("invoking %s reported version %s (record %s)", f.Qualifier(), res.Version, res.Record.Version)
		}
	}
	if got := e.Available("f", "$LATEST") + e.Available("f", "1"); got != 2 {
		t.Errorf("instances of $LATEST and 1: %d, want one each", got)
	}
	// A version's pool that idles past its keep-alive is closed and
	// dropped; $LATEST's pool stays (empty).
	e.Reap(time.Now().Add(2 * time.Minute))
	e.mu.Lock()
	_, keptLatest := e.pools[poolKey("f", "")]
	_, keptV1 := e.pools[poolKey("f", "1")]
	e.mu.Unlock()
	if !keptLatest || keptV1 {
		t.Errorf("after reaping: $LATEST pool kept %v (want true), version 1 pool kept %v (want false)", keptLatest, keptV1)
	}
	if s := statsOf(e, "f"); s.Idle+s.Busy+s.Starting != 0 {
		t.Errorf("instances left after reaping: %+v", s)
	}
	// Invoking the version again loads it again.
	if _, err := e.Invoke(context.Background(), v1, "y", nil); err != nil {
		t.Errorf("invoke version 1 after its pool was dropped: %v", err)
	}
}

func TestReservedConcurrencySpansVersions(t *testing.T) {
	rt := &fakeRuntime{invokeGate: make(chan struct{})}
	latest := fn("f", 128)
	limit := 1
	latest.ReservedConcurrency = &limit
	e := newTestEngine(t, rt, Config{MemoryMB: 1 << 20, Latest: func(string) (*registry.Function, bool) { return latest, true }})
	done := make(chan error)
	go func() { _, err := e.Invoke(context.Background(), latest, "1", nil); done <- err }()
	waitFor(t, "$LATEST running", func() bool { return rt.invokes.Load() == 1 })
	_, err := e.Invoke(context.Background(), versionOf(latest, "3"), "2", nil)
	var te *ThrottleError
	if !errors.As(err, &te) || te.Reason != ReasonReservedConcurrency {
		t.Errorf("version 3 while $LATEST holds the only reserved slot: %v, want a reserved-concurrency throttle", err)
	}
	rt.invokeGate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A cap of zero refuses even with a warm instance idle.
	limit = 0
	_, err = e.Invoke(context.Background(), latest, "3", nil)
	if !errors.As(err, &te) {
		t.Errorf("reserved 0 with an idle instance: %v, want a throttle", err)
	}
}

func TestSetProvisionedKeepsVersionWarm(t *testing.T) {
	rt := &fakeRuntime{}
	e := newTestEngine(t, rt, Config{MemoryMB: 1 << 20, IdleTimeout: time.Second})
	v2 := versionOf(fn("f", 128), "2")
	e.Update(registry.Change{New: v2})
	e.SetProvisioned("f", "2", 2)
	waitFor(t, "two provisioned instances", func() bool { return e.Available("f", "2") == 2 })
	e.Reap(time.Now().Add(time.Hour))
	if got := e.Available("f", "2"); got != 2 {
		t.Errorf("provisioned instances after reaping: %d, want 2", got)
	}
	e.SetProvisioned("f", "2", 0)
	e.Reap(time.Now().Add(time.Hour))
	if got := e.Available("f", "2"); got != 0 {
		t.Errorf("instances once no longer provisioned: %d, want 0", got)
	}
}
