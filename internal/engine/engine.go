// Package engine sits between the gateway and the runtimes: it keeps one
// pool of instances per function version, starts instances on demand (cold
// starts), reuses warm ones, enforces each invocation's deadline, discards
// instances that were lost, drains a version when its function changes, and
// reports every invocation as a Record.
package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/sandbox"
)

// ErrClosed is returned by Invoke once the engine is shutting down.
var ErrClosed = errors.New("engine is shutting down")

// CodeSource fetches code by digest.
type CodeSource interface {
	Code(ctx context.Context, digest string) ([]byte, error)
}

// Outcome classifies how an invocation ended.
type Outcome string

// Outcomes.
const (
	Success       Outcome = "success"
	FunctionError Outcome = "function_error"
	Timeout       Outcome = "timeout"
	Throttled     Outcome = "throttled"
)

// Record describes one finished invocation: what metering and logs need.
type Record struct {
	Function     string
	Version      string
	RequestID    string
	Start        time.Time
	Duration     time.Duration
	BilledMs     int64
	MemoryMB     int
	MaxMemoryMB  int
	InitDuration time.Duration // zero on a warm start
	Cold         bool
	Outcome      Outcome
	Log          []byte
	Err          *sandbox.FunctionError
}

// Config wires an Engine.
type Config struct {
	// Runtimes by Function.Runtime.
	Runtimes map[string]sandbox.Runtime
	// Code is where code is fetched from when a version is first needed.
	Code CodeSource
	// OnRecord, if set, receives every invocation's record, synchronously
	// on the invoking goroutine; it must be fast.
	OnRecord func(*Record)
	// LogLimit caps the log bytes kept per invocation (default 256 KiB).
	LogLimit int
	// Logger receives operational messages.
	Logger *slog.Logger
}

// Result is one invocation's outcome as the caller sees it.
type Result struct {
	// Payload is the function's result when Err is nil.
	Payload []byte
	// Err is the function's error (including timeouts and crashes,
	// reported as Lambda does).
	Err *sandbox.FunctionError
	// Record is what was reported for this invocation.
	Record  *Record
	Version string
}

// Engine runs invocations. Safe for concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	pools    map[string]*pool // by function name: the current version's pool
	prepared map[string]sandbox.Program
	closed   bool
	inflight sync.WaitGroup
	active   atomic.Int64
}

// New returns an engine.
func New(cfg Config) *Engine {
	if cfg.LogLimit <= 0 {
		cfg.LogLimit = 256 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		pools:    map[string]*pool{},
		prepared: map[string]sandbox.Program{},
	}
}

// specKey identifies everything a Program depends on.
func specKey(s sandbox.Spec) string {
	h := sha256.New()
	env, _ := json.Marshal(s.Env)
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%d\x00%d\x00%s", s.Function, s.Version, s.Digest, s.Runtime, s.Handler, s.MemoryMB, s.Timeout, env)
	return hex.EncodeToString(h.Sum(nil))
}

func specOf(fn *registry.Function, code []byte) sandbox.Spec {
	return sandbox.Spec{
		Function: fn.Name,
		Version:  registry.Version,
		Digest:   fn.CodeDigest,
		Code:     code,
		Runtime:  fn.Runtime,
		Handler:  fn.Handler,
		MemoryMB: fn.MemoryMB,
		Timeout:  fn.Timeout(),
		Env:      fn.Env,
	}
}

// Kinder is implemented by programs that can say what kind of code they
// hold (for wasm: "command" or "sdk").
type Kinder interface{ Kind() string }

// Prepare validates and compiles code for fn before it is stored, so that
// no invocation pays for compilation. It returns the program's kind when
// the runtime reports one; a *sandbox.InvalidCodeError means the code was
// refused.
func (e *Engine) Prepare(ctx context.Context, fn *registry.Function, code []byte) (string, error) {
	rt, ok := e.cfg.Runtimes[fn.Runtime]
	if !ok {
		return "", fmt.Errorf("no runtime %q on this node", fn.Runtime)
	}
	spec := specOf(fn, code)
	key := specKey(spec)
	e.mu.Lock()
	p, ok := e.prepared[key]
	e.mu.Unlock()
	if !ok {
		var err error
		p, err = rt.Load(ctx, spec)
		if err != nil {
			return "", err
		}
		e.mu.Lock()
		if old, dup := e.prepared[key]; dup {
			e.mu.Unlock()
			_ = p.Close(ctx)
			p = old
		} else {
			e.prepared[key] = p
			e.mu.Unlock()
		}
	}
	if k, ok := p.(Kinder); ok {
		return k.Kind(), nil
	}
	return "", nil
}

// Update reacts to a registry change: a changed or deleted function's pool
// is drained (in-flight invocations finish, idle instances close).
func (e *Engine) Update(ch registry.Change) {
	if ch.Old == nil {
		return
	}
	e.mu.Lock()
	p := e.pools[ch.Old.Name]
	if p != nil && (ch.New == nil || p.fn.RevisionID != ch.New.RevisionID) {
		delete(e.pools, ch.Old.Name)
	} else {
		p = nil
	}
	e.mu.Unlock()
	if p != nil {
		p.drain()
	}
}

// pool returns the pool for fn's current version, creating it (and
// loading its program) when needed.
func (e *Engine) pool(ctx context.Context, fn *registry.Function) (*pool, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	p := e.pools[fn.Name]
	if p != nil && p.fn.RevisionID == fn.RevisionID {
		e.mu.Unlock()
		return p, p.wait(ctx)
	}
	old := p
	p = newPool(e, fn)
	e.pools[fn.Name] = p
	e.mu.Unlock()
	if old != nil {
		old.drain()
	}
	go p.load()
	return p, p.wait(ctx)
}

// program finds a prepared program for fn or loads one.
func (e *Engine) program(ctx context.Context, fn *registry.Function) (sandbox.Program, error) {
	rt, ok := e.cfg.Runtimes[fn.Runtime]
	if !ok {
		return nil, fmt.Errorf("no runtime %q on this node", fn.Runtime)
	}
	key := specKey(specOf(fn, nil))
	e.mu.Lock()
	p, ok := e.prepared[key]
	if ok {
		delete(e.prepared, key)
	}
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	code, err := e.cfg.Code.Code(ctx, fn.CodeDigest)
	if err != nil {
		return nil, err
	}
	return rt.Load(ctx, specOf(fn, code))
}

// Warm loads fn's program ahead of its first invocation (used at start-up
// and after deploys on other nodes).
func (e *Engine) Warm(ctx context.Context, fn *registry.Function) error {
	p, err := e.pool(ctx, fn)
	if err != nil {
		return err
	}
	_ = p
	return nil
}

// Invoke runs one invocation of fn. It returns an error only when the
// function could not be run at all (the engine is closed, its code could
// not be loaded); function errors, timeouts and crashes are in the Result.
func (e *Engine) Invoke(ctx context.Context, fn *registry.Function, requestID string, payload []byte) (*Result, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	e.inflight.Add(1)
	e.mu.Unlock()
	defer e.inflight.Done()
	e.active.Add(1)
	defer e.active.Add(-1)

	p, err := e.pool(ctx, fn)
	if err != nil {
		return nil, err
	}
	return p.invoke(ctx, requestID, payload)
}

// Active is the number of invocations in progress.
func (e *Engine) Active() int { return int(e.active.Load()) }

// Close stops accepting invocations, waits for in-flight ones (bounded by
// ctx), then closes every instance and program.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.inflight.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("in-flight invocations did not finish: %w", ctx.Err())
	}
	e.mu.Lock()
	pools := e.pools
	e.pools = map[string]*pool{}
	prepared := e.prepared
	e.prepared = map[string]sandbox.Program{}
	e.mu.Unlock()
	for _, p := range pools {
		p.drain()
	}
	for _, p := range prepared {
		_ = p.Close(context.Background())
	}
	return err
}
