package engine

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/sandbox"
)

// errDraining tells Invoke to resolve the function's pool again: the one it
// had was replaced by a newer version.
var errDraining = errors.New("pool is draining")

// instance is one execution environment and its bookkeeping. All fields
// but inst are guarded by the engine's mutex.
type instance struct {
	inst     sandbox.Instance
	pool     *pool
	lastUsed time.Time
	elem     *list.Element // in the engine's LRU while idle
}

// grant is what a waiter receives: an instance (fresh or reused) or the
// error that kept one from starting.
type grant struct {
	in      *instance
	cold    bool
	initDur time.Duration
	err     error
}

type waiter struct {
	ch   chan grant // buffered, capacity 1
	elem *list.Element
}

// pool holds the instances of one function version. Its fields are
// guarded by the engine's mutex, except those set once by load.
type pool struct {
	e   *Engine
	key string                            // poolKey of its version
	cur atomic.Pointer[registry.Function] // the configuration; see fn

	ready   chan struct{} // closed once prog or loadErr is set
	prog    sandbox.Program
	loadErr error

	idle     []*instance // LIFO: the most recently used is warmest
	busy     int
	starting int
	waiters  list.List // of *waiter, FIFO
	draining bool
	progDone bool
	lastUsed time.Time // when the pool was created or an instance last went idle
}

func newPool(e *Engine, fn *registry.Function) *pool {
	p := &pool{e: e, key: keyOf(fn), ready: make(chan struct{}), lastUsed: time.Now()}
	p.cur.Store(fn)
	return p
}

// fn is the pool's function configuration. Fields a program depends on
// (code, memory, timeout, environment) never change for a pool; the others
// (concurrency, keep-alive) can be updated in place.
func (p *pool) fn() *registry.Function { return p.cur.Load() }

func (p *pool) load() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p.prog, p.loadErr = p.e.program(ctx, p.fn())
	if p.loadErr != nil {
		p.e.log.Error("load function", "function", p.fn().Name, "err", p.loadErr)
	}
	close(p.ready)
	if p.loadErr == nil {
		p.e.mu.Lock()
		p.provisionLocked()
		p.e.mu.Unlock()
	}
}

func (p *pool) wait(ctx context.Context) error {
	select {
	case <-p.ready:
		if p.loadErr != nil {
			return fmt.Errorf("load %s: %w", p.fn().Name, p.loadErr)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pool) total() int { return len(p.idle) + p.busy + p.starting }

// provisionLocked starts instances until the pool holds its provisioned
// minimum (as far as the budget allows without evicting).
func (p *pool) provisionLocked() {
	if p.draining || p.e.closed || p.loadErr != nil {
		return
	}
	for p.total() < p.target() && p.e.usedMB+p.fn().MemoryMB <= p.e.cfg.MemoryMB {
		p.startLocked()
	}
}

// startLocked reserves memory and starts one instance in the background.
// The caller has checked the budget.
func (p *pool) startLocked() {
	p.starting++
	p.e.usedMB += p.fn().MemoryMB
	go p.start()
}

func (p *pool) start() {
	ctx, cancel := context.WithTimeout(context.Background(), max(p.fn().Timeout(), 10*time.Second))
	defer cancel()
	t0 := time.Now()
	inst, err := p.prog.Start(ctx)
	initDur := time.Since(t0)

	e := p.e
	e.mu.Lock()
	p.starting--
	if err != nil {
		e.usedMB -= p.fn().MemoryMB
		e.log.Warn("start instance", "function", p.fn().Name, "err", err)
		// The waiter this start was for learns why; the others keep
		// waiting for instances that are running or starting.
		if w := p.popWaiterLocked(); w != nil {
			w.ch <- grant{err: fmt.Errorf("start instance of %s: %w", p.fn().Name, err)}
		}
		e.mu.Unlock()
		return
	}
	in := &instance{inst: inst, pool: p, lastUsed: time.Now()}
	if w := p.popWaiterLocked(); w != nil {
		p.busy++
		e.mu.Unlock()
		w.ch <- grant{in: in, cold: true, initDur: initDur}
		return
	}
	if p.draining {
		e.usedMB -= p.fn().MemoryMB
		last := p.total() == 0
		e.mu.Unlock()
		_ = inst.Close(context.Background())
		if last {
			p.closeProgram()
		}
		return
	}
	p.pushIdleLocked(in)
	e.mu.Unlock()
}

func (p *pool) popWaiterLocked() *waiter {
	f := p.waiters.Front()
	if f == nil {
		return nil
	}
	w := p.waiters.Remove(f).(*waiter)
	w.elem = nil
	return w
}

func (p *pool) pushIdleLocked(in *instance) {
	in.lastUsed = time.Now()
	p.lastUsed = in.lastUsed
	p.idle = append(p.idle, in)
	in.elem = p.e.lru.PushFront(in)
}

// removeIdleLocked takes in out of the idle set (it must be there).
func (p *pool) removeIdleLocked(in *instance) {
	for i, x := range p.idle {
		if x == in {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			break
		}
	}
	if in.elem != nil {
		p.e.lru.Remove(in.elem)
		in.elem = nil
	}
}

// evictLocked frees at least needMB of budget by removing idle instances of
// other pools, least recently used first, never going below a pool's
// provisioned minimum. It returns the instances to close, or nil if the
// budget cannot be freed (then nothing is removed).
func (e *Engine) evictLocked(needMB int, except *pool) ([]*instance, bool) {
	free := e.cfg.MemoryMB - e.usedMB
	var victims []*instance
	kept := map[*pool]int{}
	for el := e.lru.Back(); el != nil && free < needMB; el = el.Prev() {
		in := el.Value.(*instance)
		q := in.pool
		if q == except {
			continue
		}
		if !q.draining && q.total()-kept[q] <= q.target() {
			continue
		}
		kept[q]++
		victims = append(victims, in)
		free += q.fn().MemoryMB
	}
	if free < needMB {
		return nil, false
	}
	for _, in := range victims {
		in.pool.removeIdleLocked(in)
		e.usedMB -= in.pool.fn().MemoryMB
	}
	return victims, true
}

func closeAll(ins []*instance) {
	for _, in := range ins {
		_ = in.inst.Close(context.Background())
		in.pool.afterClose()
	}
}

// afterClose closes the program once a draining pool is empty.
func (p *pool) afterClose() {
	p.e.mu.Lock()
	last := p.draining && p.total() == 0
	p.e.mu.Unlock()
	if last {
		p.closeProgram()
	}
}

// acquire returns an instance for one invocation: an idle one, one that
// frees up, or a new one.
func (p *pool) acquire(ctx context.Context) (grant, error) {
	e := p.e
	fn := p.fn()
	e.mu.Lock()
	if p.draining {
		e.mu.Unlock()
		return grant{}, errDraining
	}
	// The cap counts every version's invocations, so it is checked even
	// when an idle instance is at hand.
	if limit, ok := e.reservedOf(fn); ok && e.concurrencyLocked(fn.Name) >= limit {
		e.mu.Unlock()
		return grant{}, &ThrottleError{
			Reason:     ReasonReservedConcurrency,
			Message:    fmt.Sprintf("Rate Exceeded: %s is running at its reserved concurrency of %d", fn.Name, limit),
			RetryAfter: time.Second,
		}
	}
	if n := len(p.idle); n > 0 {
		in := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		e.lru.Remove(in.elem)
		in.elem = nil
		p.busy++
		e.mu.Unlock()
		return grant{in: in}, nil
	}
	w := &waiter{ch: make(chan grant, 1)}
	w.elem = p.waiters.PushBack(w)
	var victims []*instance
	if p.starting < p.waiters.Len() {
		ok := true
		if e.usedMB+fn.MemoryMB > e.cfg.MemoryMB {
			victims, ok = e.evictLocked(fn.MemoryMB, p)
		}
		if ok {
			p.startLocked()
		} else if p.starting == 0 && p.busy == 0 {
			// Nothing of this function runs or starts, and the node is
			// full of busy instances: refuse now, the function did not run.
			p.waiters.Remove(w.elem)
			e.mu.Unlock()
			return grant{}, &ThrottleError{
				Reason:     ReasonNodeFull,
				Message:    fmt.Sprintf("Rate Exceeded: the node's memory (%d MB) is held by busy instances", e.cfg.MemoryMB),
				RetryAfter: time.Second,
			}
		}
		// Otherwise wait for one of this function's instances to free.
	}
	e.mu.Unlock()
	if victims != nil {
		go closeAll(victims)
	}

	select {
	case g := <-w.ch:
		return g, g.err
	case <-ctx.Done():
		e.mu.Lock()
		if w.elem != nil {
			p.waiters.Remove(w.elem)
			w.elem = nil
			e.mu.Unlock()
			return grant{}, ctx.Err()
		}
		e.mu.Unlock()
		// An instance was granted as we gave up: hand it back.
		g := <-w.ch
		if g.in != nil {
			p.release(g.in, true)
		}
		return grant{}, ctx.Err()
	}
}

// reservedOf is fn's function-level reserved concurrency.
func (e *Engine) reservedOf(fn *registry.Function) (int, bool) {
	fn = e.settingsOf(fn)
	if fn.ReservedConcurrency != nil {
		return *fn.ReservedConcurrency, true
	}
	return 0, false
}

// settingsOf is the function whose function-level settings apply to fn:
// its $LATEST when known.
func (e *Engine) settingsOf(fn *registry.Function) *registry.Function {
	if e.cfg.Latest != nil {
		if l, ok := e.cfg.Latest(fn.Name); ok {
			return l
		}
	}
	return fn
}

// concurrencyLocked counts the invocations of every version of a function
// that hold or wait for an instance.
func (e *Engine) concurrencyLocked(name string) int {
	n := 0
	for _, p := range e.pools {
		if p.fn().Name == name {
			n += p.busy + p.waiters.Len()
		}
	}
	for p := range e.draining {
		if p.fn().Name == name {
			n += p.busy
		}
	}
	return n
}

// release returns in to the pool (keep) or discards it.
func (p *pool) release(in *instance, keep bool) {
	e := p.e
	e.mu.Lock()
	p.busy--
	if keep && !e.closed {
		// Waiters are served first, even by a draining pool: they arrived
		// before the new version did.
		if w := p.popWaiterLocked(); w != nil {
			p.busy++
			in.lastUsed = time.Now()
			e.mu.Unlock()
			w.ch <- grant{in: in}
			return
		}
		if !p.draining {
			p.pushIdleLocked(in)
			e.mu.Unlock()
			return
		}
	}
	e.usedMB -= p.fn().MemoryMB
	// A lost instance may leave waiters uncovered: start a replacement.
	if !p.draining && !e.closed && p.starting < p.waiters.Len() && e.usedMB+p.fn().MemoryMB <= e.cfg.MemoryMB {
		p.startLocked()
	}
	last := p.draining && p.total() == 0
	e.mu.Unlock()
	_ = in.inst.Close(context.Background())
	if last {
		p.closeProgram()
	}
}

// drainLocked stops the pool: idle instances close now, busy ones when they
// finish, and the program after the last.
func (e *Engine) drainLocked(p *pool) {
	if p.draining {
		return
	}
	p.draining = true
	idle := p.idle
	p.idle = nil
	for _, in := range idle {
		if in.elem != nil {
			e.lru.Remove(in.elem)
			in.elem = nil
		}
		e.usedMB -= p.fn().MemoryMB
	}
	e.draining[p] = struct{}{}
	last := p.total() == 0
	go func() {
		for _, in := range idle {
			_ = in.inst.Close(context.Background())
		}
		if last {
			<-p.ready
			p.closeProgram()
		}
	}()
}

func (p *pool) closeProgram() {
	p.e.mu.Lock()
	if p.progDone {
		p.e.mu.Unlock()
		return
	}
	p.progDone = true
	delete(p.e.draining, p)
	p.e.mu.Unlock()
	if p.prog != nil {
		_ = p.prog.Close(context.Background())
	}
}

// invoke runs one invocation on an instance of this pool.
func (p *pool) invoke(ctx context.Context, requestID string, payload []byte) (*Result, error) {
	fn := p.fn()
	arrived := time.Now()
	// Waiting for an instance is bounded by the function's timeout too.
	actx, cancel := context.WithTimeout(ctx, fn.Timeout())
	g, err := p.acquire(actx)
	cancel()
	var initErr *sandbox.FunctionError
	if err != nil && errors.As(err, &initErr) {
		// The instance failed to initialise: on Lambda that is the
		// invocation's error, reported like any function error.
		rec := &Record{
			Function: fn.Name, Version: fn.Qualifier(), RequestID: requestID, Start: arrived,
			Duration: time.Since(arrived), BilledMs: billedMs(time.Since(arrived)), MemoryMB: fn.MemoryMB,
			Cold: true, Outcome: FunctionError, Err: initErr, QueueWait: time.Since(arrived),
		}
		var il interface{ InitLog() []byte }
		if errors.As(err, &il) {
			rec.Log = il.InitLog()
		}
		if p.e.cfg.OnRecord != nil {
			p.e.cfg.OnRecord(rec)
		}
		return &Result{Err: initErr, Record: rec, Version: fn.Qualifier()}, nil
	}
	if err != nil {
		var te *ThrottleError
		if errors.As(err, &te) || errors.Is(err, context.Canceled) || errors.Is(err, errDraining) {
			return nil, err
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, &ThrottleError{Reason: ReasonNodeFull, RetryAfter: time.Second,
				Message: fmt.Sprintf("Rate Exceeded: no instance of %s became free within its timeout", fn.Name)}
		}
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(fn.Timeout())
	ictx, icancel := context.WithDeadline(ctx, deadline)
	resp, err := g.in.inst.Invoke(ictx, sandbox.Request{
		RequestID: requestID,
		Deadline:  deadline,
		Payload:   payload,
		LogLimit:  p.e.cfg.LogLimit,
	})
	icancel()
	dur := time.Since(start)
	p.release(g.in, err == nil)

	rec := &Record{
		Function:     fn.Name,
		Version:      fn.Qualifier(),
		RequestID:    requestID,
		Start:        start,
		Duration:     dur,
		BilledMs:     billedMs(dur),
		MemoryMB:     fn.MemoryMB,
		MaxMemoryMB:  int((resp.MaxMemoryBytes + (1<<20 - 1)) >> 20),
		InitDuration: g.initDur,
		QueueWait:    start.Sub(arrived),
		Cold:         g.cold,
		Outcome:      Success,
		Log:          resp.Log,
	}
	res := &Result{Payload: resp.Payload, Err: resp.Err, Version: fn.Qualifier(), Record: rec}
	if err != nil {
		var lost *sandbox.LostError
		switch {
		case errors.As(err, &lost) && lost.Kind == sandbox.TimedOut, errors.Is(err, context.DeadlineExceeded):
			rec.Outcome = Timeout
			res.Err = &sandbox.FunctionError{
				Type:    "Sandbox.Timedout",
				Message: fmt.Sprintf("Task timed out after %.2f seconds", fn.Timeout().Seconds()),
			}
		case errors.As(err, &lost) && lost.Kind == sandbox.OutOfMemory:
			rec.Outcome = FunctionError
			if res.Err == nil {
				res.Err = &sandbox.FunctionError{
					Type:    "Runtime.OutOfMemory",
					Message: fmt.Sprintf("Runtime exited with error: memory limit of %d MB exceeded", fn.MemoryMB),
				}
			}
		default:
			rec.Outcome = FunctionError
			if res.Err == nil {
				res.Err = &sandbox.FunctionError{Type: "Runtime.ExitError", Message: "Runtime exited with error: " + err.Error()}
			}
		}
		res.Payload = nil
	} else if res.Err != nil {
		rec.Outcome = FunctionError
	} else if len(res.Payload) > api.MaxPayload {
		rec.Outcome = FunctionError
		res.Err = &sandbox.FunctionError{
			Type:    "Function.ResponseSizeTooLarge",
			Message: fmt.Sprintf("Response payload size (%d bytes) exceeded maximum allowed payload size (%d bytes).", len(res.Payload), api.MaxPayload),
		}
		res.Payload = nil
	}
	rec.Err = res.Err
	if p.e.cfg.OnRecord != nil {
		p.e.cfg.OnRecord(rec)
	}
	return res, nil
}

// billedMs rounds a duration up to whole milliseconds, at least 1.
func billedMs(d time.Duration) int64 {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	if ms < 1 {
		ms = 1
	}
	return ms
}

// reaper closes instances idle past their keep-alive and keeps provisioned
// minimums topped up.
func (e *Engine) reaper() {
	defer close(e.reaped)
	// Functions may keep instances for less than the node's default, so
	// look at least every second; a pass over the idle list is cheap.
	every := min(max(e.cfg.IdleTimeout/4, 50*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.Reap(now)
		}
	}
}

// Reap closes every instance idle since before its pool's keep-alive
// (relative to now), never going below a pool's provisioned minimum, and
// tops provisioned pools back up. It runs periodically; tests call it.
func (e *Engine) Reap(now time.Time) {
	e.mu.Lock()
	var victims []*instance
	kept := map[*pool]int{}
	for el := e.lru.Back(); el != nil; {
		prev := el.Prev()
		in := el.Value.(*instance)
		p := in.pool
		idle := p.idleTimeout()
		if now.Sub(in.lastUsed) >= idle && p.total()-kept[p] > p.target() {
			kept[p]++
			victims = append(victims, in)
		}
		el = prev
	}
	for _, in := range victims {
		in.pool.removeIdleLocked(in)
		e.usedMB -= in.pool.fn().MemoryMB
	}
	for key, p := range e.pools {
		select {
		case <-p.ready:
		default:
			continue
		}
		p.provisionLocked()
		// A published version nobody has invoked for its keep-alive, with
		// nothing left to keep warm, gives its program back too; it loads
		// again (from the compile cache) when next invoked.
		if !p.fn().IsLatest() && p.total() == 0 && p.waiters.Len() == 0 && p.target() == 0 &&
			now.Sub(p.lastUsed) >= p.idleTimeout() {
			delete(e.pools, key)
			e.drainLocked(p)
		}
	}
	e.mu.Unlock()
	closeAll(victims)
}

// idleTimeout is the pool's keep-alive. The caller holds e.mu or knows the
// configuration does not change.
func (p *pool) idleTimeout() time.Duration {
	if s := p.e.settingsOf(p.fn()).IdleTimeoutSec; s > 0 {
		return time.Duration(s) * time.Second
	}
	return p.e.cfg.IdleTimeout
}
