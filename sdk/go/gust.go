package gust

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// Status codes gust_invoke returns.
const (
	statusOK            = 0
	statusFunctionError = 1
)

// rawHandler is what every registered handler is reduced to.
type rawHandler func(ctx context.Context, payload []byte) ([]byte, error)

// registered is the function's handler. Guest state by nature: a wasm
// instance runs one function, and its exports can only reach package state.
var registered rawHandler

// Handle registers h as the function's handler. The event is JSON-decoded
// into In (an empty event leaves In its zero value) and h's result is
// JSON-encoded as the response. Call Handle from an init function; the last
// registration wins.
func Handle[In, Out any](h func(context.Context, In) (Out, error)) {
	registered = func(ctx context.Context, payload []byte) ([]byte, error) {
		var in In
		if len(bytes.TrimSpace(payload)) > 0 {
			if err := json.Unmarshal(payload, &in); err != nil {
				return nil, &FunctionError{Type: "Runtime.UnmarshalError", Message: err.Error()}
			}
		}
		out, err := h(ctx, in)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, &FunctionError{Type: "Runtime.MarshalError", Message: err.Error()}
		}
		return b, nil
	}
}

// FunctionError is an error with an explicit Lambda-style error type. Return
// one (see [Error]) from a handler to choose the errorType the caller sees.
type FunctionError struct {
	Type    string
	Message string
}

// Error creates a function error with the given errorType and message.
func Error(errorType, message string) error {
	return &FunctionError{Type: errorType, Message: message}
}

func (e *FunctionError) Error() string { return e.Message }

// ErrorType returns the errorType reported to the caller.
func (e *FunctionError) ErrorType() string { return e.Type }

// errorPayload is the JSON shape of a function error, Lambda's.
type errorPayload struct {
	Type       string   `json:"errorType"`
	Message    string   `json:"errorMessage"`
	StackTrace []string `json:"stackTrace,omitempty"`
}

type invocationKey struct{}

type invocation struct {
	requestID string
	function  string
}

// RequestID returns the id of the invocation ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if inv, ok := ctx.Value(invocationKey{}).(*invocation); ok {
		return inv.requestID
	}
	return ""
}

// FunctionName returns the name of the function being invoked, or "".
func FunctionName(ctx context.Context) string {
	if inv, ok := ctx.Value(invocationKey{}).(*invocation); ok {
		return inv.function
	}
	return ""
}

// dispatch runs the registered handler on one request frame and returns the
// result bytes and the status for gust_invoke.
func dispatch(b []byte) (result []byte, status uint32) {
	f, err := decodeFrame(b)
	if err != nil {
		return errorResult(&FunctionError{Type: "Runtime.InvalidRequest", Message: err.Error()}, nil)
	}
	if registered == nil {
		return errorResult(&FunctionError{
			Type:    "Runtime.NoHandler",
			Message: "no handler registered: call gust.Handle or gust.HandleHTTP from an init function (main is not run)",
		}, nil)
	}
	var deadline time.Time
	if f.deadlineMS != 0 {
		deadline = time.UnixMilli(f.deadlineMS)
	}
	ctx := newInvocationContext(&invocation{requestID: string(f.requestID), function: string(f.function)}, deadline)
	defer ctx.finish()
	out, stack, err := call(ctx, registered, f.payload)
	if err != nil {
		return errorResult(err, stack)
	}
	return out, statusOK
}

// call runs h, turning a panic into an error.
func call(ctx context.Context, h rawHandler, payload []byte) (out []byte, stack []string, err error) {
	defer func() {
		if v := recover(); v != nil {
			trace := debug.Stack()
			fmt.Fprintf(os.Stderr, "panic: %v\n\n%s", v, trace)
			out = nil
			err = &FunctionError{Type: fmt.Sprintf("%T", v), Message: fmt.Sprint(v)}
			stack = stackLines(trace)
		}
	}()
	out, err = h(ctx, payload)
	return out, nil, err
}

// stackLines turns debug.Stack output into one entry per frame.
func stackLines(trace []byte) []string {
	lines := strings.Split(strings.TrimSpace(string(trace)), "\n")
	var frames []string
	for i := 1; i+1 < len(lines); i += 2 { // skip the "goroutine N" line
		frames = append(frames, strings.TrimSpace(lines[i])+" "+strings.TrimSpace(lines[i+1]))
	}
	return frames
}

// errorResult encodes err as a function error payload.
func errorResult(err error, stack []string) ([]byte, uint32) {
	p := errorPayload{Type: fmt.Sprintf("%T", err), Message: err.Error(), StackTrace: stack}
	var typed interface{ ErrorType() string }
	if errors.As(err, &typed) {
		p.Type = typed.ErrorType()
	}
	b, mErr := json.Marshal(p)
	if mErr != nil { // not reachable with string fields; keep a valid payload anyway
		b = []byte(`{"errorType":"Runtime.MarshalError","errorMessage":"cannot encode error"}`)
	}
	return b, statusFunctionError
}
