package wasm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Pre-initialised snapshots of SDK modules.
//
// Initialising a Go reactor (_initialize: the Go runtime's start-up and
// every package's init functions) takes milliseconds. Load does it once:
// it instantiates the prepared module, runs _initialize and asks the guest
// for its request buffer (gust_alloc, as the first invocation would), then
// keeps the linear memory (in a memfd, see memImage) and the values of all
// mutable globals (which preparation exported). Start then instantiates
// the module with its memory mapped copy-on-write from the snapshot, sets
// the globals, and the instance is where a freshly initialised one would
// be, without running any guest code. Instances share every page neither
// of them writes.
//
// What instances started from one snapshot have in common, unlike
// instances initialised one by one:
//   - Whatever init functions computed, including from the environment
//     and arguments (the same for every instance of a Program) and from
//     the clock (time.Now() read during init is the deploy's time). The
//     clocks themselves are read live: the monotonic clock is the node
//     process's, so it keeps increasing from the snapshot's readings.
//   - The Go runtime's internal random state (seeded at start-up): the
//     top-level functions of math/rand and math/rand/v2, map iteration
//     order and hash seeds of maps follow the same sequence in every
//     instance of one deploy. crypto/rand asks the host each time and is
//     unaffected. Functions that need distinct pseudo-random sequences per
//     instance must seed their own generator from crypto/rand.
//   - Output written during initialisation is captured once and appears
//     in the log of every instance's first invocation, as before.
//
// A module whose initialisation fails is not snapshotted: Start then
// initialises every instance itself and reports the failure as before.

// initTimeout bounds _initialize when snapshotting, like Lambda's init
// phase limit.
const initTimeout = 10 * time.Second

// snapshot is the state of an initialised SDK instance.
type snapshot struct {
	image    *memImage
	memBytes uint64   // size of linear memory
	globals  []uint64 // values of prep.globals, in order
	bufPtr   uint32   // the guest's request buffer
	bufCap   uint32
	log      []byte // output of initialisation
	logCut   bool   // it was truncated
}

// errNoSnapshot reports a module that cannot be snapshotted.
var errNoSnapshot = errors.New("module cannot be snapshotted")

// takeSnapshot initialises an instance and captures its state.
func (p *Program) takeSnapshot(ctx context.Context) (*snapshot, error) {
	if p.prep == nil || !p.prep.snapshotable || p.prep.keepsData {
		return nil, errNoSnapshot
	}
	ctx, cancel := context.WithTimeout(ctx, initTimeout)
	defer cancel()
	log := &logBuffer{}
	log.reset(0)
	cfg := p.config.WithStdout(log).WithStderr(log)
	mod, err := p.instantiate(ctx, cfg, p.image)
	if err != nil {
		return nil, fmt.Errorf("instantiating: %w", err)
	}
	defer mod.Close(context.WithoutCancel(ctx))
	intr := interruptOf(mod)
	var stack [1]uint64
	if init := mod.ExportedFunction(exportInit); init != nil {
		if err := call(ctx, intr, init, stack[:]); err != nil {
			return nil, fmt.Errorf("running %s: %w", exportInit, err)
		}
	}
	// Allocate the request buffer now, as the first invocation would.
	s := &snapshot{}
	stack[0] = api.EncodeU32(minRequestBuffer)
	if err := call(ctx, intr, mod.ExportedFunction(exportAlloc), stack[:]); err != nil {
		return nil, fmt.Errorf("running %s: %w", exportAlloc, err)
	}
	mem := mod.ExportedMemory(exportMemory)
	s.bufPtr, s.bufCap = api.DecodeU32(stack[0]), minRequestBuffer
	if _, ok := mem.Read(s.bufPtr, s.bufCap); !ok {
		s.bufPtr, s.bufCap = 0, 0 // let the first invocation find out
	}
	for _, name := range p.prep.globals {
		g := mod.ExportedGlobal(name)
		if g == nil {
			return nil, fmt.Errorf("global %s is not exported", name)
		}
		s.globals = append(s.globals, g.Get())
	}
	s.memBytes = uint64(mem.Size())
	b, _ := mem.Read(0, mem.Size())
	if s.image, err = newMemImage(b); err != nil {
		return nil, err
	}
	s.log = append([]byte(nil), log.buf...)
	s.logCut = log.truncated
	return s, nil
}

// instantiate instantiates the program's module with cfg, its memory
// coming from image when that is not nil.
func (p *Program) instantiate(ctx context.Context, cfg wazero.ModuleConfig, image *memImage) (api.Module, error) {
	if image != nil {
		ctx = experimental.WithMemoryAllocator(ctx, image)
	}
	return p.eng.r.InstantiateModule(ctx, p.compiled, cfg)
}

// startFromSnapshot starts an SDK instance from the program's snapshot.
func (p *Program) startFromSnapshot(ctx context.Context) (*sdkInstance, error) {
	s := p.snap
	in := &sdkInstance{p: p}
	in.log.reset(0)
	in.log.buf = append(in.log.buf, s.log...)
	in.log.truncated = s.logCut
	cfg := p.config.WithStdout(&in.log).WithStderr(&in.log)
	mod, err := p.instantiate(ctx, cfg, s.image)
	if err != nil {
		return nil, fmt.Errorf("wasm: instantiating module: %w", err)
	}
	mem := mod.ExportedMemory(exportMemory)
	if size := uint64(mem.Size()); size < s.memBytes {
		if _, ok := mem.Grow(uint32((s.memBytes - size) / 65536)); !ok {
			_ = mod.Close(ctx)
			return nil, fmt.Errorf("wasm: restoring snapshot: cannot grow memory to %d bytes", s.memBytes)
		}
	}
	for i, name := range p.prep.globals {
		mod.ExportedGlobal(name).(api.MutableGlobal).Set(s.globals[i])
	}
	in.setModule(mod)
	in.bufPtr, in.bufCap = s.bufPtr, s.bufCap
	in.learn = !s.image.learned()
	p.register(in)
	return in, nil
}
