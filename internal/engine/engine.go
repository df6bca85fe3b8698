// Package engine sits between the gateway and the runtimes. It keeps one
// pool of instances per function version and decides how many exist:
//
//   - a request takes an idle warm instance, else starts one (a cold start),
//     up to the function's reserved concurrency; concurrent arrivals never
//     start more instances than there are waiting requests, and a waiter
//     takes whichever instance frees or starts first;
//   - instances reserve their function's memory from the node's budget;
//     when it is full, idle instances of other functions are evicted, least
//     recently used first, before a request is refused (429);
//   - idle instances are reaped after a keep-alive, down to zero, except a
//     function's provisioned (always warm) instances;
//   - a changed function's old pool drains: in-flight invocations finish,
//     new ones go to the new version.
//
// Every invocation, throttled ones included, is reported as a Record.
package engine

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/sandbox"
)

// ErrClosed is returned by Invoke once the engine is shutting down.
var ErrClosed = errors.New("engine is shutting down")

// Throttle reasons, as Lambda names them.
const (
	ReasonReservedConcurrency = "ReservedFunctionConcurrentInvocationLimitExceeded"
	ReasonNodeFull            = "ConcurrentInvocationLimitExceeded"
)

// ThrottleError is returned by Invoke when a request was refused without
// running: the function's reserved concurrency is reached, or the node's
// memory is full of busy instances.
type ThrottleError struct {
	Reason     string
	Message    string
	RetryAfter time.Duration
}

func (e *ThrottleError) Error() string { return e.Message }

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

// Record describes one finished (or refused) invocation: what metering,
// metrics and logs need.
type Record struct {
	Function     string
	Version      string
	RequestID    string
	Start        time.Time
	Duration     time.Duration // running time in the instance
	BilledMs     int64
	MemoryMB     int
	MaxMemoryMB  int
	InitDuration time.Duration // the cold start, zero when warm
	QueueWait    time.Duration // from arrival to holding an instance
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
	// KindOf, if set, names what kind of code a program holds.
	KindOf func(sandbox.Program) string
	// LogLimit caps the log bytes kept per invocation (default 256 KiB).
	LogLimit int
	// MemoryMB is the node's memory budget for instances (default 4096).
	MemoryMB int
	// IdleTimeout is how long an idle instance is kept (default 10m); a
	// function's own setting overrides it.
	IdleTimeout time.Duration
	// Logger receives operational messages.
	Logger *slog.Logger
	// Latest, if set, returns a function's $LATEST, whose function-level
	// settings (reserved concurrency, a cap shared by all versions, and
	// the keep-alive) apply to every version. Without it, each pool's own
	// configuration is used.
	Latest func(name string) (*registry.Function, bool)
}

// Defaults.
const (
	DefaultIdleTimeout = 10 * time.Minute
	DefaultMemoryMB    = 4096
	DefaultLogLimit    = 256 << 10
)

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

	mu          sync.Mutex
	pools       map[string]*pool // by poolKey: each version's current pool
	provisioned map[string]int   // by poolKey: instances to keep warm beyond the version's own setting
	draining    map[*pool]struct{}
	prepared    map[string]sandbox.Program
	usedMB      int
	lru         *list.List // of *instance, idle only; front = most recently used
	closed      bool

	inflight sync.WaitGroup
	active   atomic.Int64
	stop     chan struct{}
	reaped   chan struct{}
}

// New returns an engine and starts its reaper; Close stops it.
func New(cfg Config) *Engine {
	if cfg.LogLimit <= 0 {
		cfg.LogLimit = DefaultLogLimit
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = DefaultMemoryMB
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		cfg:         cfg,
		log:         cfg.Logger,
		pools:       map[string]*pool{},
		provisioned: map[string]int{},
		draining:    map[*pool]struct{}{},
		prepared:    map[string]sandbox.Program{},
		lru:         list.New(),
		stop:        make(chan struct{}),
		reaped:      make(chan struct{}),
	}
	go e.reaper()
	return e
}

// poolKey names a function version's pool.
func poolKey(name, version string) string {
	if version == "" {
		version = registry.Latest
	}
	return name + ":" + version
}

func keyOf(fn *registry.Function) string { return poolKey(fn.Name, fn.Qualifier()) }

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
		Version:  fn.Qualifier(),
		Digest:   fn.CodeDigest,
		Code:     code,
		Runtime:  fn.Runtime,
		Handler:  fn.Handler,
		MemoryMB: fn.MemoryMB,
		Timeout:  fn.Timeout(),
		Env:      fn.Env,
	}
}

// Prepare validates and compiles code for fn before it is stored, so that
// no invocation pays for compilation. It returns the program's kind when
// known; a *sandbox.InvalidCodeError means the code was refused.
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
	if e.cfg.KindOf != nil {
		return e.cfg.KindOf(p), nil
	}
	return "", nil
}

// Update reacts to a registry change: a changed or deleted version's pool
// drains (unless only scaling settings changed, which keeps its warm
// instances), and a new or changed version gets its pool (and provisioned
// instances) at once. Alias changes are not the engine's business: see
// SetProvisioned.
func (e *Engine) Update(ch registry.Change) {
	if ch.Old == nil && ch.New == nil {
		return
	}
	if ch.Old != nil {
		key := keyOf(ch.Old)
		e.mu.Lock()
		p := e.pools[key]
		switch {
		case p == nil:
		case ch.New != nil && specKey(specOf(p.fn(), nil)) == specKey(specOf(ch.New, nil)):
			// Only scaling settings changed: keep the warm instances.
			p.cur.Store(ch.New)
			select {
			case <-p.ready:
				p.provisionLocked()
			default:
			}
		default:
			delete(e.pools, key)
			e.drainLocked(p)
		}
		if ch.New == nil {
			delete(e.provisioned, key)
		}
		e.mu.Unlock()
	}
	if ch.New != nil {
		e.mu.Lock()
		closed := e.closed
		e.mu.Unlock()
		if !closed {
			_, _ = e.pool(ch.New)
		}
	}
}

// SetProvisioned sets how many instances of a version to keep warm on
// behalf of its aliases (the version's own setting adds to none of it: the
// larger of the two counts). Zero removes the requirement; the instances
// are then reaped as they idle.
func (e *Engine) SetProvisioned(name, version string, n int) {
	key := poolKey(name, version)
	e.mu.Lock()
	defer e.mu.Unlock()
	if n <= 0 {
		delete(e.provisioned, key)
		return
	}
	e.provisioned[key] = n
	if p := e.pools[key]; p != nil {
		select {
		case <-p.ready:
			p.provisionLocked()
		default:
		}
	}
}

// target is how many instances p keeps warm. The caller holds e.mu.
func (p *pool) target() int {
	if p.draining {
		return 0
	}
	return max(p.fn().ProvisionedConcurrency, p.e.provisioned[p.key])
}

// pool returns the pool for fn's version, creating it (and loading its
// program in the background) when needed.
func (e *Engine) pool(fn *registry.Function) (*pool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	key := keyOf(fn)
	p := e.pools[key]
	if p != nil {
		if p.fn().RevisionID == fn.RevisionID || specKey(specOf(p.fn(), nil)) == specKey(specOf(fn, nil)) {
			// The same program (scaling settings may differ: Update keeps
			// the pool's configuration current).
			return p, nil
		}
		if p.fn().LastModified.After(fn.LastModified) {
			// The caller holds an older view than the pool: serve it with
			// the newer version rather than going back.
			return p, nil
		}
		e.drainLocked(p)
	}
	p = newPool(e, fn)
	e.pools[key] = p
	go p.load()
	return p, nil
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

// Warm makes sure fn's pool exists and its program is loaded.
func (e *Engine) Warm(ctx context.Context, fn *registry.Function) error {
	p, err := e.pool(fn)
	if err != nil {
		return err
	}
	return p.wait(ctx)
}

// Invoke runs one invocation of fn. Function errors, timeouts and crashes
// are in the Result; an error means the function did not run: a
// *ThrottleError, ErrClosed, or a failure to load or start it.
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

	var res *Result
	var err error
	for attempt := 0; ; attempt++ {
		var p *pool
		if p, err = e.pool(fn); err != nil {
			return nil, err
		}
		if err = p.wait(ctx); err != nil {
			return nil, err
		}
		res, err = p.invoke(ctx, requestID, payload)
		if !errors.Is(err, errDraining) || attempt == 3 {
			break
		}
	}
	var te *ThrottleError
	if errors.As(err, &te) && e.cfg.OnRecord != nil {
		e.cfg.OnRecord(&Record{
			Function: fn.Name, Version: fn.Qualifier(), RequestID: requestID,
			Start: time.Now(), MemoryMB: fn.MemoryMB, Outcome: Throttled,
		})
	}
	return res, err
}

// Available is how many instances of a version exist and are not starting
// (idle or busy).
func (e *Engine) Available(name, version string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.pools[poolKey(name, version)]
	if p == nil {
		return 0
	}
	return len(p.idle) + p.busy
}

// IdleTimeout is the node's default keep-alive for idle instances.
func (e *Engine) IdleTimeout() time.Duration { return e.cfg.IdleTimeout }

// Active is the number of invocations in progress.
func (e *Engine) Active() int { return int(e.active.Load()) }

// PoolStats describes one function's instances.
type PoolStats struct {
	Function    string
	Idle        int
	Busy        int
	Starting    int
	Waiting     int
	Provisioned int
	MemoryMB    int // reserved by this function's instances
}

// Stats describes the node's instances.
type Stats struct {
	BudgetMB int
	UsedMB   int
	Pools    []PoolStats
}

// Stats returns a snapshot of every pool, draining ones included (they
// are merged into their function's line).
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	by := map[string]*PoolStats{}
	add := func(p *pool) {
		s := by[p.fn().Name]
		if s == nil {
			s = &PoolStats{Function: p.fn().Name}
			by[p.fn().Name] = s
		}
		s.Idle += len(p.idle)
		s.Busy += p.busy
		s.Starting += p.starting
		s.Waiting += p.waiters.Len()
		s.Provisioned += p.target()
		s.MemoryMB += (len(p.idle) + p.busy + p.starting) * p.fn().MemoryMB
	}
	for _, p := range e.pools {
		add(p)
	}
	for p := range e.draining {
		add(p)
	}
	st := Stats{BudgetMB: e.cfg.MemoryMB, UsedMB: e.usedMB}
	for _, s := range by {
		st.Pools = append(st.Pools, *s)
	}
	sort.Slice(st.Pools, func(i, j int) bool { return st.Pools[i].Function < st.Pools[j].Function })
	return st
}

// Close stops accepting invocations, waits for in-flight ones (bounded by
// ctx), then closes every instance and program.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	close(e.stop)
	<-e.reaped
	done := make(chan struct{})
	go func() { e.inflight.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("in-flight invocations did not finish: %w", ctx.Err())
	}
	e.mu.Lock()
	for name, p := range e.pools {
		delete(e.pools, name)
		e.drainLocked(p)
	}
	prepared := e.prepared
	e.prepared = map[string]sandbox.Program{}
	e.mu.Unlock()
	for _, p := range prepared {
		_ = p.Close(context.Background())
	}
	return err
}
