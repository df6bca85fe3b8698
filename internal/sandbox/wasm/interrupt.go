package wasm

import (
	"context"
	"errors"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// Stopping a guest at its deadline.
//
// wazero's WithCloseOnContextDone compiles, into every loop header, a call
// out of machine code into Go that checks whether the module was closed,
// and starts a goroutine per call to close it when the context is done.
// The exit to Go is the expensive part: ~60ns per loop iteration, 25 of
// the 32µs of a hello-world invocation, and far more for a guest that
// computes in tight loops.
//
// Instead, preparation (prepare.go) adds a mutable global to the module
// and makes every loop header read it and trap when it is set: two loads
// and a branch, no exit. call arms the interrupt for one guest call with
// context.AfterFunc, which starts no goroutine until the context is done
// (a context.WithDeadline's timer runs the function). When it fires, the
// guest traps at its next loop iteration and call reports the context's
// error as wazero would (a sys.ExitError with ExitCodeDeadlineExceeded or
// ExitCodeContextCanceled), so failures are classified as before. A guest
// blocked in a host function is no worry: Gust's host functions return
// promptly (sleeps wake every maxSleep) to wasm code, which loops.
//
// Trade-off: a guest that recurses without end and without a loop
// (tail calls) would not be stopped; modules using tail calls are not
// instrumented and keep WithCloseOnContextDone. Plain deep recursion ends
// in a stack overflow trap.

// call calls fn, stopping it when ctx is done. intr is the module's
// interrupt global, or nil when the module runs with wazero's
// close-on-context-done (or needs no stopping).
func call(ctx context.Context, intr api.MutableGlobal, fn api.Function, stack []uint64) error {
	if intr == nil || ctx.Done() == nil {
		return fn.CallWithStack(ctx, stack)
	}
	if err := ctx.Err(); err != nil {
		return ctxExit(err)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		intr.Set(1)
		close(fired)
	})
	err := fn.CallWithStack(ctx, stack)
	if stop() {
		return err
	}
	// The interrupt fired: wait until it is set, so that clearing it
	// cannot be overtaken. A call that trapped was stopped by it; one that
	// returned beat it and the instance is fine.
	<-fired
	intr.Set(0)
	if err != nil {
		return ctxExit(ctx.Err())
	}
	return nil
}

// ctxExit is the error wazero's close-on-context-done reports for a
// context error.
func ctxExit(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return sys.NewExitError(sys.ExitCodeDeadlineExceeded)
	}
	return sys.NewExitError(sys.ExitCodeContextCanceled)
}

// interruptOf returns a module's interrupt global, or nil.
func interruptOf(mod api.Module) api.MutableGlobal {
	g, _ := mod.ExportedGlobal(exportInterrupt).(api.MutableGlobal)
	return g
}

// instrumentLoops turns the loop-header interrupt check on. It is off:
// a guest spinning in a loop that never leaves machine code cannot be
// preempted by the Go scheduler, so a garbage collection that starts while
// it spins waits for it to stop, every other goroutine (the deadline timer
// included) waits with it, and the node hangs until the guest ends on its
// own. wazero's WithCloseOnContextDone check leaves machine code at every
// loop iteration, which is what lets the collector through; it costs about
// 25 µs on a hello-world invocation. Turning this back on needs a loop
// check that also yields to Go now and then (node test
// TestRunawayDoesNotStopOthers catches the hang).
const instrumentLoops = false
