// Package sandbox defines the contract every Gust runtime implements: a
// Runtime loads (compiles) a function's code once into a Program, a Program
// starts execution environments (Instances), and an Instance serves one
// invocation at a time.
//
// The contract knows nothing of HTTP, pools or storage: the gateway maps
// requests to events, the engine decides how many instances exist, and the
// registry owns where code comes from. A guest's calls to the platform
// reach a Host, which the runtime passes them to without knowing what
// they mean. Implementations live in sub-packages
// (wasm today, process later).
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Spec is everything a runtime needs to load one function version.
type Spec struct {
	// Function is the function's name; Version its version ("$LATEST").
	Function string
	Version  string
	// Digest is the lowercase hex sha256 of Code; runtimes key caches by it.
	Digest string
	// Code is the deployable artefact (for wasm: the module bytes).
	Code []byte
	// Runtime and Handler are as given by the user (for example "wasm").
	Runtime string
	Handler string
	// MemoryMB caps an instance's memory.
	MemoryMB int
	// Timeout bounds one invocation.
	Timeout time.Duration
	// Env is the function's environment, exactly as configured.
	Env map[string]string
}

// Request is one invocation handed to an Instance.
type Request struct {
	// RequestID identifies the invocation (a UUID).
	RequestID string
	// Deadline is when the invocation must have finished; the caller's
	// context carries the same deadline.
	Deadline time.Time
	// Payload is the event, normally JSON.
	Payload []byte
	// LogLimit caps the log bytes kept for this invocation; zero means a
	// runtime default. Output beyond it is dropped and the log ends with
	// TruncatedMarker.
	LogLimit int
}

// TruncatedMarker ends a log that was cut at its limit.
const TruncatedMarker = "\n[gust: log truncated: limit reached]\n"

// Response is what an invocation produced.
type Response struct {
	// Payload is the result (for a function error: nil).
	Payload []byte
	// Err is set when the function's code reported an error. The instance
	// remains usable unless Invoke also returned an error.
	Err *FunctionError
	// Log is the guest's output for this invocation, capped at the limit.
	Log []byte
	// MaxMemoryBytes is the instance's memory high-water mark.
	MaxMemoryBytes uint64
}

// FunctionError is an error reported by, or on behalf of, the function's
// code. Its JSON shape matches Lambda's error payload.
type FunctionError struct {
	Type       string   `json:"errorType"`
	Message    string   `json:"errorMessage"`
	StackTrace []string `json:"stackTrace,omitempty"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// Kind classifies why an instance was lost.
type Kind int

// The ways an instance can be lost.
const (
	// Crashed: the guest trapped, exited or otherwise died.
	Crashed Kind = iota + 1
	// TimedOut: the invocation ran past its deadline and was stopped.
	TimedOut
	// OutOfMemory: the guest hit its memory cap.
	OutOfMemory
)

func (k Kind) String() string {
	switch k {
	case Crashed:
		return "crashed"
	case TimedOut:
		return "timed out"
	case OutOfMemory:
		return "out of memory"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// LostError is returned by Instance.Invoke when the instance can no longer
// be used and must be closed. The Response returned alongside it still
// carries the log and a FunctionError describing the failure for the caller.
type LostError struct {
	Kind Kind
	Err  error
}

func (e *LostError) Error() string {
	if e.Err == nil {
		return "instance " + e.Kind.String()
	}
	return "instance " + e.Kind.String() + ": " + e.Err.Error()
}

func (e *LostError) Unwrap() error {
	if e.Kind == TimedOut {
		return errors.Join(context.DeadlineExceeded, e.Err)
	}
	return e.Err
}

// InvalidCodeError reports code a runtime refuses to load; its message is
// meant for the user who deployed it.
type InvalidCodeError struct{ Reason string }

func (e *InvalidCodeError) Error() string { return e.Reason }

// Runtime turns code into Programs. Implementations are safe for
// concurrent use.
type Runtime interface {
	// Load validates and compiles spec's code. It returns an
	// *InvalidCodeError for code the runtime cannot run.
	Load(ctx context.Context, spec Spec) (Program, error)
}

// Program is loaded code from which instances start. Safe for concurrent
// use.
type Program interface {
	// Start creates one execution environment: a cold start.
	Start(ctx context.Context) (Instance, error)
	// Close releases the compiled code. Instances must be closed first.
	Close(ctx context.Context) error
}

// Instance is one execution environment. It serves one invocation at a
// time: Invoke is not safe for concurrent use.
type Instance interface {
	// Invoke runs one invocation. ctx's deadline bounds it. A non-nil
	// error (normally a *LostError) means the instance must be closed.
	Invoke(ctx context.Context, req Request) (Response, error)
	// Close frees the instance.
	Close(ctx context.Context) error
}

// Host serves the calls a guest makes to the platform (storage, outbound
// HTTP) for one instance of one function version. The runtime opens one
// per instance and passes each call's operation and arguments through
// unchanged: what the operations mean is the Host's business, not the
// runtime's. An instance runs one invocation at a time, so a Host's
// methods are not called concurrently.
type Host interface {
	// Call performs one operation. An error the guest should see as a
	// code and a message is a *HostError; any other error is reported
	// to the guest as an internal one.
	Call(ctx context.Context, op string, args [][]byte) ([][]byte, error)
	// Release ends what the last invocation left open (streams); the
	// runtime calls it after every invocation.
	Release()
	// Close releases everything; the instance is gone.
	Close()
}

// HostError is a host call's failure as the guest sees it.
type HostError struct {
	// Code is a short machine-readable name, such as "NotFound",
	// "Conflict" or "AccessDenied".
	Code    string
	Message string
}

func (e *HostError) Error() string { return e.Code + ": " + e.Message }
