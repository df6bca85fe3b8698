package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/tetratelabs/wazero/api"

	"github.com/gustfaas/gust/internal/sandbox"
)

// Host calls: how an SDK guest reaches the platform (storage, outbound
// HTTP) through a sandbox.Host.
//
//   - host import gust.call(ptr i32, len i32) -> i32: perform the call
//     encoded in guest memory [ptr, ptr+len) and keep its response; the
//     result is the response's length, which the guest then fetches.
//   - host import gust.take(ptr i32): copy the kept response to ptr,
//     where the guest made room for it.
//
// A call is a sequence of fields, each a little-endian u32 length and its
// bytes; the first field is the operation's name, the rest its
// arguments. A response is a status byte, 0 (ok: the fields are the
// results) or 1 (failed: two fields, an error code and a message),
// followed by fields encoded the same way.
const (
	hostCall = "call"
	hostTake = "take"
)

// Response status bytes.
const (
	callOK     = 0
	callFailed = 1
)

// maxCallSize bounds one host call's encoded request; values and chunks
// are limited well below it by the operations themselves.
const maxCallSize = 16 << 20

// Error codes the runtime itself answers with.
const (
	codeBadCall     = "BadCall"
	codeUnavailable = "Unavailable"
	codeInternal    = "Internal"
)

// HostFunc opens the sandbox.Host serving one instance of a function
// version (see Options.Host).
type HostFunc func(function, version string) sandbox.Host

// register makes in known to the host functions and opens its Host.
func (p *Program) register(in *sdkInstance) {
	if p.rt.host != nil {
		in.host = p.rt.host(p.function, p.version)
	}
	p.rt.instances.Store(in.mod, in)
}

// call implements the host import gust.call(ptr, len) -> len.
func (rt *Runtime) call(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, size := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	var in *sdkInstance
	if v, ok := rt.instances.Load(mod); ok {
		in = v.(*sdkInstance)
	}
	var resp []byte
	switch req, ok := mod.Memory().Read(ptr, size); {
	case in == nil:
		// A command, or an SDK module still initialising: no invocation
		// is running on whose behalf to act.
		resp = callFailure(codeUnavailable, "host calls are available only while an SDK function serves an invocation")
	case !ok:
		resp = callFailure(codeBadCall, fmt.Sprintf("the call lies outside the guest's memory (%#x+%d)", ptr, size))
	case size > maxCallSize:
		resp = callFailure(codeBadCall, fmt.Sprintf("a call of %d bytes is over the limit of %d", size, maxCallSize))
	default:
		resp = in.hostCall(ctx, req)
	}
	if in != nil {
		in.pending = resp
	} else {
		rt.unserved.Store(mod, resp)
	}
	stack[0] = api.EncodeU32(uint32(len(resp)))
}

// take implements the host import gust.take(ptr).
func (rt *Runtime) take(_ context.Context, mod api.Module, stack []uint64) {
	// A guest pointing outside its memory gets nothing written; its
	// decoder then reports a malformed response.
	v, ok := rt.instances.Load(mod)
	if !ok {
		if resp, ok := rt.unserved.LoadAndDelete(mod); ok {
			mod.Memory().Write(api.DecodeU32(stack[0]), resp.([]byte))
		}
		return
	}
	in := v.(*sdkInstance)
	mod.Memory().Write(api.DecodeU32(stack[0]), in.pending)
	in.pending = nil
}

// hostCall decodes one call, passes it to the instance's Host and
// encodes the answer.
func (in *sdkInstance) hostCall(ctx context.Context, req []byte) []byte {
	if in.host == nil {
		return callFailure(codeUnavailable, "this node serves no host calls")
	}
	fields, err := decodeFields(req)
	if err != nil || len(fields) == 0 {
		return callFailure(codeBadCall, "the call is not a sequence of length-prefixed fields")
	}
	// The arguments alias guest memory, which a Host must not keep:
	// copy them once here rather than trusting every operation.
	op := string(fields[0])
	args := make([][]byte, len(fields)-1)
	for i, f := range fields[1:] {
		args[i] = append([]byte(nil), f...)
	}
	results, err := in.host.Call(ctx, op, args)
	if err != nil {
		var he *sandbox.HostError
		if errors.As(err, &he) {
			return callFailure(he.Code, he.Message)
		}
		return callFailure(codeInternal, err.Error())
	}
	return encodeResponse(callOK, results)
}

// callFailure encodes a failed call's response.
func callFailure(code, message string) []byte {
	return encodeResponse(callFailed, [][]byte{[]byte(code), []byte(message)})
}

func encodeResponse(status byte, fields [][]byte) []byte {
	n := 1
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 1, n)
	b[0] = status
	for _, f := range fields {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// decodeFields splits b into its length-prefixed fields, which alias b.
func decodeFields(b []byte) ([][]byte, error) {
	var fields [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("truncated field length")
		}
		n := binary.LittleEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) || n > math.MaxInt32 {
			return nil, errors.New("field longer than the call")
		}
		fields = append(fields, b[4:4+n:4+n])
		b = b[4+n:]
	}
	return fields, nil
}
