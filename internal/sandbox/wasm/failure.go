package wasm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/gustfaas/gust/internal/sandbox"
)

// Error types reported in sandbox.FunctionError.Type.
const (
	errTypeExit        = "Runtime.ExitError"
	errTypeTrap        = "Runtime.Trap"
	errTypeOOM         = "Runtime.OutOfMemory"
	errTypeTimeout     = "Sandbox.Timedout"
	errTypeCanceled    = "Sandbox.Canceled"
	errTypeTooLarge    = "Function.ResponseSizeTooLarge"
	errTypeBadResponse = "Runtime.InvalidResponse"
)

// failure is what became of a guest call that returned an error.
type failure struct {
	fnErr *sandbox.FunctionError
	// lost is set when the instance cannot be used again (for commands:
	// when the invocation should be accounted as lost, see Invoke).
	lost *sandbox.LostError
}

// diagnose classifies err, returned by a call into the guest that started
// at start. memBytes is the guest's memory size after the call and log its
// output.
func (p *Program) diagnose(err error, start time.Time, memBytes uint64, log *logBuffer) failure {
	capBytes := uint64(p.memoryMB) << 20
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch code := exit.ExitCode(); code {
		case sys.ExitCodeDeadlineExceeded:
			msg := fmt.Sprintf("Task timed out after %.2f seconds", time.Since(start).Seconds())
			return failure{
				fnErr: &sandbox.FunctionError{Type: errTypeTimeout, Message: msg},
				lost:  &sandbox.LostError{Kind: sandbox.TimedOut, Err: errors.New(strings.ToLower(msg[:1]) + msg[1:])},
			}
		case sys.ExitCodeContextCanceled:
			return failure{
				fnErr: &sandbox.FunctionError{Type: errTypeCanceled, Message: "invocation canceled"},
				lost:  &sandbox.LostError{Kind: sandbox.Crashed, Err: context.Canceled},
			}
		default:
			if outOfMemory(memBytes, capBytes, log) {
				return p.oom(err)
			}
			msg := fmt.Sprintf("exit status %d", code)
			return failure{
				fnErr: &sandbox.FunctionError{Type: errTypeExit, Message: msg},
				lost:  &sandbox.LostError{Kind: sandbox.Crashed, Err: fmt.Errorf("guest exited: %w", err)},
			}
		}
	}
	if outOfMemory(memBytes, capBytes, log) {
		return p.oom(err)
	}
	// A trap: wazero's message is the cause, then the wasm stack trace.
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	fe := &sandbox.FunctionError{Type: errTypeTrap, Message: lines[0]}
	for _, l := range lines[1:] {
		if l = strings.TrimSpace(l); l != "" && l != "wasm stack trace:" {
			fe.StackTrace = append(fe.StackTrace, l)
		}
	}
	return failure{fnErr: fe, lost: &sandbox.LostError{Kind: sandbox.Crashed, Err: fmt.Errorf("guest trapped: %w", err)}}
}

func (p *Program) oom(err error) failure {
	msg := fmt.Sprintf("memory limit of %d MB exceeded", p.memoryMB)
	return failure{
		fnErr: &sandbox.FunctionError{Type: errTypeOOM, Message: msg},
		lost:  &sandbox.LostError{Kind: sandbox.OutOfMemory, Err: fmt.Errorf("%s: %w", msg, err)},
	}
}

// outOfMemory guesses whether a guest died for want of memory: wasm's
// memory.grow fails quietly, so the evidence is the guest saying so, or a
// memory grown to within an allocation of its cap.
func outOfMemory(memBytes, capBytes uint64, log *logBuffer) bool {
	if log.saysOutOfMemory() {
		return true
	}
	margin := min(capBytes/16, 4<<20)
	return memBytes+margin >= capBytes
}

// exitedZero reports whether err is the guest exiting with status 0.
func exitedZero(err error) bool {
	var exit *sys.ExitError
	return errors.As(err, &exit) && exit.ExitCode() == 0
}

// invocationContext bounds ctx by the request's deadline when that is the
// earlier one. cancel is nil when ctx is returned unchanged.
func invocationContext(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if deadline.IsZero() {
		return ctx, nil
	}
	if d, ok := ctx.Deadline(); ok && !d.After(deadline) {
		return ctx, nil
	}
	return context.WithDeadline(ctx, deadline)
}
