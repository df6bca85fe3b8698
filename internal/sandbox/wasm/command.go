package wasm

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/sandbox"
)

// commandInstance is the handle Start returns for a WASI command: it holds
// nothing, as every Invoke runs a fresh module instance.
type commandInstance struct {
	p *Program
}

// Invoke runs the command once: the payload on stdin, the result from
// stdout, the log from stderr. A non-zero exit status or a trap is a
// function error and leaves the handle usable; running out of time or
// memory returns a *sandbox.LostError as well, so that the caller accounts
// for it, although the handle itself could be reused.
func (c *commandInstance) Invoke(ctx context.Context, req sandbox.Request) (sandbox.Response, error) {
	p := c.p
	ctx, cancel := invocationContext(ctx, req.Deadline)
	if cancel != nil {
		defer cancel()
	}
	log := &logBuffer{}
	log.reset(req.LogLimit)
	out := &payloadBuffer{limit: api.MaxPayload}
	cfg := p.config.
		WithStdin(bytes.NewReader(req.Payload)).
		WithStdout(out).
		WithStderr(log)

	start := time.Now()
	mod, err := p.instantiate(ctx, cfg, p.image)
	if err != nil {
		if f := p.diagnose(err, start, 0, log); f.lost != nil && f.lost.Kind == sandbox.TimedOut {
			return sandbox.Response{Err: f.fnErr, Log: log.take()}, f.lost
		}
		return sandbox.Response{Log: log.take()}, fmt.Errorf("wasm: instantiating command: %w", err)
	}
	err = call(ctx, interruptOf(mod), mod.ExportedFunction(exportStart), nil)
	var memBytes uint64
	if mem := mod.ExportedMemory(exportMemory); mem != nil {
		memBytes = uint64(mem.Size())
	}
	_ = mod.Close(ctx)

	resp := sandbox.Response{MaxMemoryBytes: memBytes}
	if err != nil && !exitedZero(err) {
		f := p.diagnose(err, start, memBytes, log)
		resp.Err = f.fnErr
		resp.Log = log.take()
		switch f.lost.Kind {
		case sandbox.TimedOut, sandbox.OutOfMemory:
			return resp, f.lost
		}
		if out.over { // the guest failed because its output was refused
			resp.Err = tooLarge()
		}
		return resp, nil // a failed run; the next Invoke starts afresh
	}
	resp.Log = log.take()
	if out.over {
		resp.Err = tooLarge()
		return resp, nil
	}
	resp.Payload = out.buf
	return resp, nil
}

// Close implements sandbox.Instance; a command handle holds nothing.
func (c *commandInstance) Close(context.Context) error { return nil }

func tooLarge() *sandbox.FunctionError {
	return &sandbox.FunctionError{
		Type:    errTypeTooLarge,
		Message: fmt.Sprintf("response payload size exceeded maximum allowed payload size (%d bytes)", api.MaxPayload),
	}
}
