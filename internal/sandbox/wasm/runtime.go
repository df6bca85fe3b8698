package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/gustfaas/gust/internal/sandbox"
)

// Interface guards.
var (
	_ sandbox.Runtime  = (*Runtime)(nil)
	_ sandbox.Program  = (*Program)(nil)
	_ sandbox.Instance = (*sdkInstance)(nil)
	_ sandbox.Instance = (*commandInstance)(nil)
)

// Host module and export names of the ABI (see the package documentation).
const (
	hostModule   = "gust"
	hostResult   = "result"
	exportAlloc  = "gust_alloc"
	exportInvoke = "gust_invoke"
	exportInit   = "_initialize"
	exportStart  = "_start"
	exportMemory = "memory"
	wasiModule   = wasi_snapshot_preview1.ModuleName
)

// DefaultMemoryMB is the memory cap of a Spec that sets none.
const DefaultMemoryMB = 128

// maxMemoryMB is all a wasm32 module can address.
const maxMemoryMB = 4096

// maxSleep bounds one guest sleep so that a closed module notices soon.
const maxSleep = 5 * time.Millisecond

// ErrClosed is returned by a Runtime, Program or Instance used after Close.
var ErrClosed = errors.New("wasm: closed")

// Options configures a Runtime.
type Options struct {
	// CacheDir holds compiled machine code across restarts. Empty: compiled
	// code is cached in memory only.
	CacheDir string
	// Host opens the sandbox.Host that serves an SDK instance's host
	// calls (storage, outbound HTTP). Nil: every host call fails with
	// the code "Unavailable".
	Host HostFunc
}

// Runtime loads WebAssembly modules. It is safe for concurrent use.
type Runtime struct {
	cache wazero.CompilationCache
	host  HostFunc

	// instances maps a live SDK module (api.Module) to its *sdkInstance, so
	// that the shared gust.result host function finds where to put results.
	instances sync.Map
	// unserved holds the answer to a host call from a module that is no
	// SDK instance (yet), keyed by module, until the guest takes it (one
	// that never does leaves one answer behind).
	unserved sync.Map

	mu      sync.Mutex
	engines map[engineKey]*engine
	closed  bool
	// loads counts Loads in progress: Close waits for them, since wazero
	// must not compile on a runtime being closed.
	loads sync.WaitGroup
}

// engineKey tells wazero runtimes apart: by memory limit in pages, and by
// whether guests are stopped by wazero's close-on-context-done (modules
// whose loops could not be instrumented, see prepare.go) or by their own
// interrupt checks.
type engineKey struct {
	pages       uint32
	closeOnDone bool
}

// engine is one wazero runtime: every module in it shares a memory cap.
type engine struct {
	r     wazero.Runtime
	pages uint32
	// provided lists the host functions modules may import, by module and
	// function name.
	provided map[string]map[string]api.FunctionDefinition
}

// New returns a Runtime. Close it to release compiled code and instances.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	cache := wazero.NewCompilationCache()
	if opts.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(opts.CacheDir); err != nil {
			return nil, fmt.Errorf("wasm: compilation cache in %s: %w", opts.CacheDir, err)
		}
	}
	return &Runtime{cache: cache, host: opts.Host, engines: make(map[engineKey]*engine)}, nil
}

// Close closes every program and instance of the runtime and the
// compilation cache (files on disk are kept).
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	engines := rt.engines
	rt.engines = nil
	rt.mu.Unlock()
	rt.loads.Wait()

	var errs []error
	for _, e := range engines {
		if err := e.r.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := rt.cache.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wasm: closing runtime: %w", err)
	}
	return nil
}

// engine returns the wazero runtime for a key, creating it on first use.
func (rt *Runtime) engine(ctx context.Context, key engineKey) (*engine, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, ErrClosed
	}
	if e, ok := rt.engines[key]; ok {
		return e, nil
	}
	// WithCloseOnContextDone makes a running guest stoppable, which a
	// multi-tenant node cannot do without. It has a price: wazero then
	// compiles a call out to Go into every loop header and starts a
	// goroutine per guest call with a cancellable context. Measured on the
	// hello example: a warm invocation takes ~32µs with it, ~7µs without.
	// So it is used only for modules whose loops preparation could not
	// instrument with a cheap check of their own (see interrupt.go).
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(rt.cache).
		WithCloseOnContextDone(key.closeOnDone).
		WithMemoryLimitPages(key.pages)
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	wasi := r.NewHostModuleBuilder(wasiModule)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(wasi)
	i32 := api.ValueTypeI32
	host := r.NewHostModuleBuilder(hostModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(rt.result), []api.ValueType{i32, i32}, nil).
		WithParameterNames("ptr", "len").
		Export(hostResult).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(rt.call), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("ptr", "len").
		Export(hostCall).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(rt.take), []api.ValueType{i32}, nil).
		WithParameterNames("ptr").
		Export(hostTake)
	e := &engine{r: r, pages: key.pages, provided: make(map[string]map[string]api.FunctionDefinition)}
	for name, b := range map[string]wazero.HostModuleBuilder{wasiModule: wasi, hostModule: host} {
		compiled, err := b.Compile(ctx)
		if err == nil {
			_, err = r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig())
		}
		if err != nil {
			_ = r.Close(ctx)
			return nil, fmt.Errorf("wasm: instantiating host module %s: %w", name, err)
		}
		e.provided[name] = compiled.ExportedFunctions()
	}
	rt.engines[key] = e
	return e, nil
}

// result implements the host import gust.result(ptr, len).
func (rt *Runtime) result(_ context.Context, mod api.Module, stack []uint64) {
	v, ok := rt.instances.Load(mod)
	if !ok {
		return // not an SDK instance of ours: nobody is waiting for a result
	}
	v.(*sdkInstance).takeResult(mod, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
}

// Kind is the kind of guest a Program runs.
type Kind int

// The guest kinds.
const (
	// KindCommand is a WASI command module, instantiated per invocation.
	KindCommand Kind = iota + 1
	// KindSDK is a reactor module built with the Gust SDK, initialised
	// once and reused.
	KindSDK
)

func (k Kind) String() string {
	switch k {
	case KindCommand:
		return "wasi-command"
	case KindSDK:
		return "gust-sdk"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Program is a compiled module. It is safe for concurrent use.
type Program struct {
	rt       *Runtime
	eng      *engine
	compiled wazero.CompiledModule
	kind     Kind
	memoryMB int
	config   wazero.ModuleConfig // base configuration of every instance
	function string
	version  string

	// prep is the deploy-time preparation of the module; nil when the
	// module is compiled as given.
	prep *prepared
	// image is the initial memory of instances when prep stripped the
	// data segments (nil otherwise).
	image *memImage
	// snap, for SDK modules, is the pre-initialised state instances start
	// from; nil when there is none (then Start runs _initialize).
	snap *snapshot
	// snapErr is why there is no snapshot, for diagnostics.
	snapErr error
}

// Kind reports whether the program is a WASI command or an SDK module.
func (p *Program) Kind() Kind { return p.kind }

// KindOf returns the guest kind of a Program loaded by this package, and
// false for any other sandbox.Program.
func KindOf(p sandbox.Program) (Kind, bool) {
	if wp, ok := p.(*Program); ok {
		return wp.kind, true
	}
	return 0, false
}

// Load validates and compiles spec.Code, a raw WebAssembly module. Code the
// runtime cannot run is refused with a *sandbox.InvalidCodeError.
//
// Load prepares the module before compiling it (see prepare.go) and, for
// an SDK module, initialises it once and keeps a snapshot that instances
// start from (see snapshot.go); a deploy pays both.
func (rt *Runtime) Load(ctx context.Context, spec sandbox.Spec) (sandbox.Program, error) {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil, ErrClosed
	}
	rt.loads.Add(1)
	rt.mu.Unlock()
	defer rt.loads.Done()
	p, err := rt.load(ctx, spec, loadOptions{})
	if err != nil {
		return nil, err // not a nil *Program in a non-nil interface
	}
	return p, nil
}

// loadOptions turn off deploy-time work, for tests comparing with the
// plain path.
type loadOptions struct {
	noPrepare  bool // compile the module as given (close-on-context-done)
	noSnapshot bool // initialise every SDK instance in Start
}

func (rt *Runtime) load(ctx context.Context, spec sandbox.Spec, opts loadOptions) (*Program, error) {
	memoryMB := spec.MemoryMB
	if memoryMB == 0 {
		memoryMB = DefaultMemoryMB
	}
	if memoryMB < 0 || memoryMB > maxMemoryMB {
		return nil, &sandbox.InvalidCodeError{Reason: fmt.Sprintf(
			"memory size %d MB is outside what a WebAssembly module can use (1 to %d MB)", spec.MemoryMB, maxMemoryMB)}
	}
	if !bytes.HasPrefix(spec.Code, []byte("\x00asm")) {
		return nil, &sandbox.InvalidCodeError{Reason: "code is not a valid WebAssembly module: missing the \\0asm header"}
	}
	if err := checkEnv(spec.Env); err != nil {
		return nil, err
	}
	pages := uint32(memoryMB) * 16
	var err error
	// Compile with every core: a deploy or a node's first invocation of a
	// function waits for this.
	compileCtx := experimental.WithCompilationWorkers(ctx, runtime.GOMAXPROCS(0))

	// Prepare the module (prepare.go) and compile the result; should that
	// fail, compile the module as given, which reports what is wrong.
	var eng *engine
	var compiled wazero.CompiledModule
	var prep *prepared
	if !opts.noPrepare {
		prep, _ = prepare(spec.Code, uint64(memoryMB)<<20)
	}
	if prep != nil {
		if eng, err = rt.engine(ctx, engineKey{pages: pages, closeOnDone: !prep.interruptible}); err != nil {
			return nil, err
		}
		if compiled, err = eng.r.CompileModule(compileCtx, prep.code); err != nil {
			prep = nil
		}
	}
	if prep == nil {
		if eng, err = rt.engine(ctx, engineKey{pages: pages, closeOnDone: true}); err != nil {
			return nil, err
		}
		if compiled, err = eng.r.CompileModule(compileCtx, spec.Code); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("wasm: compiling: %w", ctx.Err())
			}
			return nil, &sandbox.InvalidCodeError{Reason: "code is not a valid WebAssembly module: " + err.Error()}
		}
	}
	kind, err := eng.classify(compiled)
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	p := &Program{
		rt:       rt,
		eng:      eng,
		compiled: compiled,
		kind:     kind,
		memoryMB: memoryMB,
		config:   moduleConfig(spec, memoryMB),
		function: spec.Function,
		version:  spec.Version,
		prep:     prep,
	}
	if prep != nil && prep.stripped {
		if p.image, err = newMemImage(prep.image); err != nil {
			_ = compiled.Close(ctx)
			return nil, err
		}
	}
	if kind == KindSDK && !opts.noSnapshot {
		if p.snap, p.snapErr = p.takeSnapshot(ctx); p.snapErr != nil && ctx.Err() != nil {
			_ = p.Close(ctx)
			return nil, fmt.Errorf("wasm: initialising: %w", ctx.Err())
		}
	}
	return p, nil
}

// classify checks a compiled module's imports and tells its kind.
func (e *engine) classify(m wazero.CompiledModule) (Kind, error) {
	for _, imp := range m.ImportedFunctions() {
		mod, name, _ := imp.Import()
		provider, ok := e.provided[mod]
		if !ok {
			return 0, &sandbox.InvalidCodeError{Reason: fmt.Sprintf(
				"module imports %q from %q: Gust provides only %s and %s", name, mod, wasiModule, hostModule)}
		}
		def, ok := provider[name]
		if !ok {
			return 0, &sandbox.InvalidCodeError{Reason: fmt.Sprintf(
				"module imports %s.%s, which Gust does not provide", mod, name)}
		}
		if !slices.Equal(def.ParamTypes(), imp.ParamTypes()) || !slices.Equal(def.ResultTypes(), imp.ResultTypes()) {
			return 0, &sandbox.InvalidCodeError{Reason: fmt.Sprintf(
				"module imports %s.%s with the wrong signature", mod, name)}
		}
	}
	if mems := m.ImportedMemories(); len(mems) > 0 {
		mod, name, _ := mems[0].Import()
		return 0, &sandbox.InvalidCodeError{Reason: fmt.Sprintf(
			"module imports memory %s.%s: Gust provides none", mod, name)}
	}

	exports := m.ExportedFunctions()
	i32 := []api.ValueType{api.ValueTypeI32}
	if alloc, ok := exports[exportAlloc]; ok {
		invoke, ok := exports[exportInvoke]
		switch {
		case !ok:
			return 0, &sandbox.InvalidCodeError{Reason: "module exports " + exportAlloc + " but not " + exportInvoke}
		case !slices.Equal(alloc.ParamTypes(), i32) || !slices.Equal(alloc.ResultTypes(), i32):
			return 0, &sandbox.InvalidCodeError{Reason: exportAlloc + " must have the type (i32) -> i32"}
		case !slices.Equal(invoke.ParamTypes(), i32) || !slices.Equal(invoke.ResultTypes(), i32):
			return 0, &sandbox.InvalidCodeError{Reason: exportInvoke + " must have the type (i32) -> i32"}
		}
		if _, ok := m.ExportedMemories()[exportMemory]; !ok {
			return 0, &sandbox.InvalidCodeError{Reason: "a Gust SDK module must export its memory as \"memory\""}
		}
		if init, ok := exports[exportInit]; ok && (len(init.ParamTypes()) > 0 || len(init.ResultTypes()) > 0) {
			return 0, &sandbox.InvalidCodeError{Reason: exportInit + " must take and return nothing"}
		}
		return KindSDK, nil
	}
	if start, ok := exports[exportStart]; ok {
		if len(start.ParamTypes()) > 0 || len(start.ResultTypes()) > 0 {
			return 0, &sandbox.InvalidCodeError{Reason: exportStart + " must take and return nothing"}
		}
		return KindCommand, nil
	}
	return 0, &sandbox.InvalidCodeError{Reason: "module exports neither _start (WASI command) nor the Gust SDK entry points (gust_alloc, gust_invoke)"}
}

// checkEnv refuses environment variables WASI cannot carry.
func checkEnv(env map[string]string) error {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return &sandbox.InvalidCodeError{Reason: fmt.Sprintf("invalid environment variable name %q", k)}
		}
		if strings.ContainsRune(v, 0) {
			return &sandbox.InvalidCodeError{Reason: fmt.Sprintf("environment variable %s contains a NUL byte", k)}
		}
	}
	return nil
}

// moduleConfig is the configuration every instance of spec starts from.
func moduleConfig(spec sandbox.Spec, memoryMB int) wazero.ModuleConfig {
	name := spec.Function
	if name == "" {
		name = "function"
	}
	version := spec.Version
	if version == "" {
		version = "$LATEST"
	}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: any number of instances coexist
		WithStartFunctions().
		WithArgs(name).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(sleep).
		WithRandSource(rand.Reader)
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		cfg = cfg.WithEnv(k, spec.Env[k])
	}
	return cfg.
		WithEnv("AWS_LAMBDA_FUNCTION_NAME", name).
		WithEnv("AWS_LAMBDA_FUNCTION_VERSION", version).
		WithEnv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", strconv.Itoa(memoryMB))
}

// sleep is the guest's nanosleep: real, but never longer than maxSleep at
// a time, so a guest sleeping past its deadline returns to wasm code, where
// wazero stops it. Guest runtimes re-check their timers after waking.
func sleep(ns int64) {
	d := time.Duration(ns)
	if d > maxSleep {
		d = maxSleep
	}
	time.Sleep(d)
}

// Start creates an execution environment. For an SDK module this
// instantiates the module and runs _initialize (the cold start); for a
// command it returns a handle whose every Invoke instantiates afresh.
func (p *Program) Start(ctx context.Context) (sandbox.Instance, error) {
	if p.kind == KindCommand {
		return &commandInstance{p: p}, nil
	}
	return p.startSDK(ctx)
}

// Close releases the compiled code. Instances must be closed first.
func (p *Program) Close(ctx context.Context) error {
	if p.image != nil {
		p.image.close()
	}
	if p.snap != nil {
		p.snap.image.close()
	}
	if err := p.compiled.Close(ctx); err != nil {
		return fmt.Errorf("wasm: closing program: %w", err)
	}
	return nil
}
