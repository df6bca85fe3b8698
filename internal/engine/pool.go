package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/sandbox"
)

// pool holds the instances of one function version.
type pool struct {
	e  *Engine
	fn *registry.Function

	ready   chan struct{} // closed once prog or loadErr is set
	prog    sandbox.Program
	loadErr error

	mu       sync.Mutex
	idle     []sandbox.Instance // LIFO: the most recently used is warmest
	busy     int
	draining bool
}

func newPool(e *Engine, fn *registry.Function) *pool {
	return &pool{e: e, fn: fn, ready: make(chan struct{})}
}

func (p *pool) load() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p.prog, p.loadErr = p.e.program(ctx, p.fn)
	if p.loadErr != nil {
		p.e.log.Error("load function", "function", p.fn.Name, "err", p.loadErr)
	}
	close(p.ready)
}

func (p *pool) wait(ctx context.Context) error {
	select {
	case <-p.ready:
		if p.loadErr != nil {
			return fmt.Errorf("load %s: %w", p.fn.Name, p.loadErr)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquire takes an idle instance or starts one. cold reports a start.
func (p *pool) acquire(ctx context.Context) (inst sandbox.Instance, cold bool, initDur time.Duration, err error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		inst = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.busy++
		p.mu.Unlock()
		return inst, false, 0, nil
	}
	p.busy++
	p.mu.Unlock()
	t0 := time.Now()
	inst, err = p.prog.Start(ctx)
	if err != nil {
		p.release(nil, false)
		return nil, true, 0, err
	}
	return inst, true, time.Since(t0), nil
}

// release returns inst to the pool (keep) or closes it.
func (p *pool) release(inst sandbox.Instance, keep bool) {
	p.mu.Lock()
	p.busy--
	if inst != nil && keep && !p.draining {
		p.idle = append(p.idle, inst)
		p.mu.Unlock()
		return
	}
	last := p.draining && p.busy == 0
	p.mu.Unlock()
	if inst != nil {
		_ = inst.Close(context.Background())
	}
	if last {
		p.closeProgram()
	}
}

// drain stops the pool: idle instances close now, busy ones when they
// finish, and the program after the last.
func (p *pool) drain() {
	p.mu.Lock()
	if p.draining {
		p.mu.Unlock()
		return
	}
	p.draining = true
	idle := p.idle
	p.idle = nil
	last := p.busy == 0
	p.mu.Unlock()
	for _, inst := range idle {
		_ = inst.Close(context.Background())
	}
	if last {
		go func() {
			<-p.ready
			p.closeProgram()
		}()
	}
}

func (p *pool) closeProgram() {
	if p.prog != nil {
		_ = p.prog.Close(context.Background())
	}
}

func (p *pool) invoke(ctx context.Context, requestID string, payload []byte) (*Result, error) {
	fn := p.fn
	start := time.Now()
	deadline := start.Add(fn.Timeout())
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	inst, cold, initDur, err := p.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("start instance of %s: %w", fn.Name, err)
	}
	t0 := time.Now()
	resp, err := inst.Invoke(ctx, sandbox.Request{
		RequestID: requestID,
		Deadline:  deadline,
		Payload:   payload,
		LogLimit:  p.e.cfg.LogLimit,
	})
	dur := time.Since(t0)
	p.release(inst, err == nil)

	rec := &Record{
		Function:     fn.Name,
		Version:      registry.Version,
		RequestID:    requestID,
		Start:        start,
		Duration:     dur,
		BilledMs:     billedMs(dur),
		MemoryMB:     fn.MemoryMB,
		MaxMemoryMB:  int((resp.MaxMemoryBytes + (1<<20 - 1)) >> 20),
		InitDuration: initDur,
		Cold:         cold,
		Outcome:      Success,
		Log:          resp.Log,
	}
	res := &Result{Payload: resp.Payload, Err: resp.Err, Version: registry.Version, Record: rec}
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
