package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/sandbox"
)

// loadWith loads code into testRT with load options.
func loadWith(t *testing.T, spec sandbox.Spec, opts loadOptions) *Program {
	t.Helper()
	if spec.Function == "" {
		spec.Function = "test-fn"
	}
	p, err := testRT.load(context.Background(), spec, opts)
	if err != nil {
		t.Fatalf("load() = %v", err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func TestSnapshotTaken(t *testing.T) {
	for _, name := range []string{"hello", "httpapi", "sdkguest"} {
		p := load(t, nil, sandbox.Spec{Code: guest(t, name)})
		if p.snap == nil || p.prep == nil || p.prep.interruptible != instrumentLoops {
			t.Errorf("%s: snapshot %v (%v), prepared %v; want a snapshot of a prepared module", name, p.snap != nil, p.snapErr, p.prep != nil)
		}
	}
}

// TestSnapshotInstancesIndependent: instances started from one snapshot
// share no state.
func TestSnapshotInstancesIndependent(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest")})
	a, b := start(t, p), start(t, p)
	for i := 1; i <= 3; i++ {
		if got, want := string(invoke(t, a, `{"op":"count"}`).Payload), fmt.Sprintf(`{"count":%d}`, i); got != want {
			t.Fatalf("a: count = %s, want %s", got, want)
		}
	}
	if got := string(invoke(t, b, `{"op":"count"}`).Payload); got != `{"count":1}` {
		t.Errorf("b after a counted to 3: count = %s, want 1", got)
	}
	// A third instance, started after both mutated their memory, starts
	// from the snapshot too.
	c := start(t, p)
	if got := string(invoke(t, c, `{"op":"count"}`).Payload); got != `{"count":1}` {
		t.Errorf("c: count = %s, want 1", got)
	}
	// Large allocations in one instance do not show in another.
	invoke(t, a, `{"op":"big","n":3000000}`)
	if got := string(invoke(t, b, `{"op":"count"}`).Payload); got != `{"count":2}` {
		t.Errorf("b after a allocated: count = %s, want 2", got)
	}
}

// TestSnapshotPerInvocation: request ids, deadlines and the function's
// environment reach instances started from a snapshot.
func TestSnapshotPerInvocation(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Function: "snap-fn", Code: guest(t, "sdkguest"), Env: map[string]string{"GREETING": "hi"}})
	if p.snap == nil {
		t.Fatalf("no snapshot: %v", p.snapErr)
	}
	for i := range 2 {
		in := start(t, p)
		for j := range 2 {
			id := fmt.Sprintf("req-%d-%d", i, j)
			deadline := time.Now().Add(time.Minute).Truncate(time.Millisecond)
			resp, err := in.Invoke(context.Background(), sandbox.Request{RequestID: id, Deadline: deadline, Payload: []byte(`{"op":"ctx"}`)})
			if err != nil || resp.Err != nil {
				t.Fatalf("Invoke() = %v, %v", err, resp.Err)
			}
			var got struct {
				RequestID, Function string
				Deadline            int64
			}
			if err := json.Unmarshal(resp.Payload, &got); err != nil {
				t.Fatal(err)
			}
			if got.RequestID != id || got.Function != "snap-fn" || got.Deadline != deadline.UnixMilli() {
				t.Errorf("instance %d invocation %d: context %+v, want %s, snap-fn, %d", i, j, got, id, deadline.UnixMilli())
			}
		}
		env := invoke(t, in, `{"op":"env"}`)
		if !strings.Contains(string(env.Payload), `"GREETING=hi"`) || !strings.Contains(string(env.Payload), `"AWS_LAMBDA_FUNCTION_NAME=snap-fn"`) {
			t.Errorf("instance %d: env = %s", i, env.Payload)
		}
	}
}

// TestSnapshotInitLog: every instance's first log carries the output of
// initialisation, as when each instance initialised itself.
func TestSnapshotInitLog(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest")})
	for i := range 2 {
		in := start(t, p)
		if log := string(invoke(t, in, `{"op":"count"}`).Log); log != "sdkguest initialising\n" {
			t.Errorf("instance %d: first log = %q, want the initialisation output", i, log)
		}
		if log := invoke(t, in, `{"op":"count"}`).Log; log != nil {
			t.Errorf("instance %d: second log = %q, want none", i, log)
		}
	}
}

// TestLoadPaths runs the same scenarios on every way a program can be
// loaded: prepared with a snapshot (the default), prepared without, and
// as given (wazero's close-on-context-done stops guests).
func TestLoadPaths(t *testing.T) {
	paths := []struct {
		name string
		opts loadOptions
	}{
		{"snapshot", loadOptions{}},
		{"no snapshot", loadOptions{noSnapshot: true}},
		{"unprepared", loadOptions{noPrepare: true}},
	}
	for _, path := range paths {
		t.Run(path.name, func(t *testing.T) {
			p := loadWith(t, sandbox.Spec{Code: guest(t, "sdkguest"), MemoryMB: 32}, path.opts)
			if got := p.snap != nil; got != (path.opts == loadOptions{}) {
				t.Fatalf("snapshot = %v (%v)", got, p.snapErr)
			}
			in := start(t, p)
			if resp := invoke(t, in, `{"op":"count"}`); string(resp.Payload) != `{"count":1}` || !strings.Contains(string(resp.Log), "initialising") {
				t.Errorf("count = %s, log %q", resp.Payload, resp.Log)
			}
			for _, tt := range []struct {
				payload string
				kind    sandbox.Kind
			}{
				{`{"op":"loop"}`, sandbox.TimedOut},
				{`{"op":"sleep"}`, sandbox.TimedOut},
				{`{"op":"bomb"}`, sandbox.OutOfMemory},
			} {
				in := start(t, p)
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				if tt.kind == sandbox.OutOfMemory {
					ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
				}
				_, err := in.Invoke(ctx, sandbox.Request{Payload: []byte(tt.payload)})
				cancel()
				var lost *sandbox.LostError
				if !errors.As(err, &lost) || lost.Kind != tt.kind {
					t.Errorf("Invoke(%s) = %v, want LostError %v", tt.payload, err, tt.kind)
				}
			}
			// Canceling the caller's context stops the guest too.
			in = start(t, p)
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			_, err := in.Invoke(ctx, sandbox.Request{Payload: []byte(`{"op":"loop"}`)})
			var lost *sandbox.LostError
			if !errors.As(err, &lost) || !errors.Is(err, context.Canceled) {
				t.Errorf("Invoke(loop) canceled = %v, want a LostError for context.Canceled", err)
			}
		})
	}
}

// TestInterruptSpin stops a guest with no runtime of its own spinning in a
// loop, and the handle serves again.
func TestInterruptSpin(t *testing.T) {
	for _, opts := range []loadOptions{{}, {noPrepare: true}} {
		p := loadWith(t, sandbox.Spec{Code: spinModule()}, opts)
		if !opts.noPrepare && (p.prep == nil || p.prep.interruptible != instrumentLoops) {
			t.Fatal("spin module not prepared")
		}
		in := start(t, p)
		for range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			began := time.Now()
			resp, err := in.Invoke(ctx, sandbox.Request{})
			cancel()
			var lost *sandbox.LostError
			if !errors.As(err, &lost) || lost.Kind != sandbox.TimedOut || resp.Err == nil || resp.Err.Type != errTypeTimeout {
				t.Fatalf("Invoke(spin) = %v, %v; want a timeout", err, resp.Err)
			}
			if took := time.Since(began); took > 10*time.Second {
				t.Errorf("Invoke(spin) took %v to stop at a 100ms deadline", took)
			}
		}
	}
}

// TestInterruptRace: invocations finishing around their deadline either
// succeed or time out, and an instance that succeeded stays usable (an
// interrupt that fired after the call returned is cleared).
func TestInterruptRace(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest")})
	in := start(t, p)
	for i := range 300 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%40)*time.Microsecond)
		resp, err := in.Invoke(ctx, sandbox.Request{Payload: []byte(`{"op":"count"}`)})
		cancel()
		if err != nil {
			var lost *sandbox.LostError
			if !errors.As(err, &lost) || lost.Kind != sandbox.TimedOut {
				t.Fatalf("Invoke() = %v, want success or a timeout", err)
			}
			in = start(t, p)
			continue
		}
		if resp.Err != nil {
			t.Fatalf("Invoke() function error %v", resp.Err)
		}
	}
	if resp := invoke(t, in, `{"op":"count"}`); resp.Err != nil {
		t.Errorf("Invoke() after the race = %v", resp.Err)
	}
}
