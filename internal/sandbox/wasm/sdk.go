package wasm

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/tetratelabs/wazero/api"

	gapi "github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/sandbox"
)

// frameVersion is the version of the request frames the host writes.
const frameVersion = 1

// frameHeaderSize is the fixed part of a frame: version, three reserved
// bytes and the deadline.
const frameHeaderSize = 12

// minRequestBuffer is the smallest guest request buffer asked for, so that
// small requests never make the host call gust_alloc twice.
const minRequestBuffer = 64 << 10

// Guest call status codes.
const (
	statusOK            = 0
	statusFunctionError = 1
)

// sdkInstance is a live SDK module serving invocations one at a time.
type sdkInstance struct {
	p      *Program
	mod    api.Module
	mem    api.Memory
	alloc  api.Function
	invoke api.Function
	intr   api.MutableGlobal // the interrupt (interrupt.go), or nil
	stack  [1]uint64
	log    logBuffer

	// host serves the guest's host calls (nil: none); pending is the
	// last call's response until the guest takes it (host.go).
	host    sandbox.Host
	pending []byte

	// learn: report the pages the first invocation touched to the
	// snapshot's image (see memImage.learnHotPages).
	learn bool

	bufPtr uint32 // guest request buffer
	bufCap uint32

	// Set by gust.result during gust_invoke.
	result     []byte
	resultSize uint32 // size claimed by the guest
	badResult  bool   // the guest pointed outside its memory
}

// startSDK starts an instance: from the program's snapshot when it has
// one, else by instantiating and initialising the module.
func (p *Program) startSDK(ctx context.Context) (*sdkInstance, error) {
	if p.snap != nil {
		return p.startFromSnapshot(ctx)
	}
	in := &sdkInstance{p: p}
	in.log.reset(0)
	cfg := p.config.WithStdout(&in.log).WithStderr(&in.log)
	mod, err := p.instantiate(ctx, cfg, p.image)
	if err != nil {
		return nil, fmt.Errorf("wasm: instantiating module: %w", err)
	}
	in.setModule(mod)
	if init := mod.ExportedFunction(exportInit); init != nil {
		start := time.Now()
		if err := call(ctx, in.intr, init, in.stack[:]); err != nil {
			f := p.diagnose(err, start, uint64(in.mem.Size()), &in.log)
			_ = mod.Close(ctx)
			initErr := &sandbox.FunctionError{Type: "Runtime.InitError", Message: f.fnErr.Type + ": " + f.fnErr.Message}
			return nil, fmt.Errorf("wasm: initialising module: %w: %w (log: %q)", initErr, f.lost, in.log.take())
		}
	}
	p.register(in)
	return in, nil
}

// setModule makes mod the instance's module.
func (in *sdkInstance) setModule(mod api.Module) {
	in.mod = mod
	in.mem = mod.ExportedMemory(exportMemory)
	in.alloc = mod.ExportedFunction(exportAlloc)
	in.invoke = mod.ExportedFunction(exportInvoke)
	in.intr = interruptOf(mod)
}

// Invoke runs one invocation on the warm instance. A function error leaves
// the instance usable; a timeout, trap, exit or memory exhaustion returns a
// *sandbox.LostError and closes the module.
func (in *sdkInstance) Invoke(ctx context.Context, req sandbox.Request) (sandbox.Response, error) {
	if in.mod == nil {
		return sandbox.Response{}, fmt.Errorf("wasm: invoke: %w", ErrClosed)
	}
	ctx, cancel := invocationContext(ctx, req.Deadline)
	if cancel != nil {
		defer cancel()
	}
	in.log.reset(req.LogLimit)
	start := time.Now()

	var deadlineMS int64
	if d, ok := ctx.Deadline(); ok {
		deadlineMS = d.UnixMilli()
	}
	size := uint64(frameHeaderSize) + 12 + uint64(len(req.RequestID)) + uint64(len(in.p.function)) + uint64(len(req.Payload))
	if size > math.MaxInt32 {
		return sandbox.Response{Err: &sandbox.FunctionError{
			Type: "Function.RequestTooLarge", Message: fmt.Sprintf("request of %d bytes is too large", len(req.Payload)),
		}}, nil
	}
	if uint32(size) > in.bufCap {
		want := max(uint32(size), minRequestBuffer)
		in.stack[0] = api.EncodeU32(want)
		if err := call(ctx, in.intr, in.alloc, in.stack[:]); err != nil {
			return in.fail(ctx, err, start)
		}
		in.bufPtr, in.bufCap = api.DecodeU32(in.stack[0]), want
	}
	buf, ok := in.mem.Read(in.bufPtr, uint32(size))
	if !ok {
		in.bufCap = 0
		return in.fail(ctx, fmt.Errorf("gust_alloc returned a buffer outside memory (%#x+%d)", in.bufPtr, size), start)
	}
	putFrame(buf, deadlineMS, req.RequestID, in.p.function, req.Payload)

	in.result, in.resultSize, in.badResult = nil, 0, false
	in.stack[0] = api.EncodeU32(uint32(size))
	if err := call(ctx, in.intr, in.invoke, in.stack[:]); err != nil {
		return in.fail(ctx, err, start)
	}
	status := api.DecodeU32(in.stack[0])

	resp := sandbox.Response{MaxMemoryBytes: uint64(in.mem.Size()), Log: in.log.take()}
	switch {
	case in.resultSize > gapi.MaxPayload:
		resp.Err = tooLarge()
	case in.badResult:
		resp.Err = &sandbox.FunctionError{Type: errTypeBadResponse, Message: "the function's result lies outside its memory"}
	case status == statusOK:
		resp.Payload = in.result
	case status == statusFunctionError:
		resp.Err = decodeFunctionError(in.result)
	default:
		resp.Err = &sandbox.FunctionError{Type: errTypeBadResponse, Message: fmt.Sprintf("gust_invoke returned unknown status %d", status)}
	}
	in.result = nil
	in.releaseHost()
	if in.learn {
		in.learn = false
		if b, ok := in.mem.Read(0, in.mem.Size()); ok {
			in.p.snap.image.learnHotPages(b)
		}
	}
	return resp, nil
}

// releaseHost ends the streams an invocation left open.
func (in *sdkInstance) releaseHost() {
	in.pending = nil
	if in.host != nil {
		in.host.Release()
	}
}

// fail turns an error from a guest call into the response and the
// LostError of a lost instance, and closes the module.
func (in *sdkInstance) fail(ctx context.Context, err error, start time.Time) (sandbox.Response, error) {
	memBytes := uint64(in.mem.Size())
	f := in.p.diagnose(err, start, memBytes, &in.log)
	resp := sandbox.Response{Err: f.fnErr, Log: in.log.take(), MaxMemoryBytes: memBytes}
	_ = in.Close(context.WithoutCancel(ctx))
	return resp, f.lost
}

// takeResult copies the guest's result out of its memory; called by the
// gust.result host function during gust_invoke.
func (in *sdkInstance) takeResult(mod api.Module, ptr, size uint32) {
	in.resultSize = size
	if size > gapi.MaxPayload {
		return
	}
	b, ok := mod.Memory().Read(ptr, size)
	if !ok {
		in.badResult = true
		return
	}
	in.result = make([]byte, size)
	copy(in.result, b)
}

// Close closes the module. It is safe to call more than once.
func (in *sdkInstance) Close(ctx context.Context) error {
	if in.mod == nil {
		return nil
	}
	mod := in.mod
	in.mod = nil
	in.p.rt.instances.Delete(mod)
	if in.host != nil {
		in.host.Close()
		in.host = nil
	}
	if err := mod.Close(ctx); err != nil {
		return fmt.Errorf("wasm: closing instance: %w", err)
	}
	return nil
}

// putFrame writes a request frame into dst, which has exactly its size.
func putFrame(dst []byte, deadlineMS int64, requestID, function string, payload []byte) {
	dst[0], dst[1], dst[2], dst[3] = frameVersion, 0, 0, 0
	binary.LittleEndian.PutUint64(dst[4:], uint64(deadlineMS))
	n := frameHeaderSize
	binary.LittleEndian.PutUint32(dst[n:], uint32(len(requestID)))
	n += 4 + copy(dst[n+4:], requestID)
	binary.LittleEndian.PutUint32(dst[n:], uint32(len(function)))
	n += 4 + copy(dst[n+4:], function)
	binary.LittleEndian.PutUint32(dst[n:], uint32(len(payload)))
	copy(dst[n+4:], payload)
}

// decodeFunctionError reads the guest's {"errorType","errorMessage"}.
func decodeFunctionError(b []byte) *sandbox.FunctionError {
	var fe sandbox.FunctionError
	if err := json.Unmarshal(b, &fe); err != nil || fe.Type == "" && fe.Message == "" {
		return &sandbox.FunctionError{Type: errTypeBadResponse, Message: fmt.Sprintf("function error is not {\"errorType\",\"errorMessage\"}: %.200q", b)}
	}
	return &fe
}
