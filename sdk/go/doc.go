// Package gust is the guest SDK for Gust functions written in Go and
// compiled to WebAssembly (GOOS=wasip1 GOARCH=wasm).
//
// A function registers exactly one handler, from an init function:
//
//	package main
//
//	import (
//		"context"
//
//		gust "github.com/gustfaas/gust/sdk/go"
//	)
//
//	type In struct{ Name string `json:"name"` }
//	type Out struct{ Message string `json:"message"` }
//
//	func init() { gust.Handle(hello) }
//
//	func hello(ctx context.Context, in In) (Out, error) {
//		return Out{Message: "Hello, " + in.Name + "!"}, nil
//	}
//
//	func main() {}
//
// and is built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o fn.wasm .
//
// (gust deploy does this for you). A reactor exports _initialize, which
// runs the Go runtime's initialisation and every package's init functions,
// and the //go:wasmexport functions below; main.main is never run. That is
// why the handler must be registered from init, and why func main may be
// empty. Gust initialises an instance once (the cold start) and then calls
// it for many invocations, one at a time, so package-level state survives
// between invocations of the same instance, as on AWS Lambda.
//
// # Handlers
//
// [Handle] registers a typed handler: the event is JSON-decoded into In and
// the result JSON-encoded. [HandleHTTP] registers an ordinary
// [net/http.Handler] that serves function URL requests (Lambda's payload
// format 2.0, see [URLRequest] and [URLResponse]). Handlers must not start
// goroutines that outlive the invocation nor block waiting for other
// goroutines: the instance only runs while an invocation is in progress.
//
// An error returned by a handler becomes a function error
// ({"errorType","errorMessage"}); errorType is the error's dynamic type
// (for example "*errors.errorString") unless the error, or an error it
// wraps, has an ErrorType() string method, as errors made with [Error] do.
// A panic inside a handler is recovered: it becomes a function error whose
// errorType is the panic value's type (for example "runtime.boundsError" or
// "string"), with the stack trace in stackTrace and in the log, and the
// instance stays usable. A fatal Go runtime error (out of memory, stack
// exhaustion) ends the instance.
//
// [RequestID] and [FunctionName] read the invocation from the handler's
// context; the invocation deadline is ctx.Deadline(). Standard output and
// standard error are the function's log.
//
// # Storage and outbound HTTP
//
// [KV] and [Objects] reach the node's key-value and object buckets: get,
// put, compare-and-set, delete and list keys; put, get (both streamed),
// delete and list objects. Inside a function http.DefaultTransport is a
// [Transport], so http.Get and http.DefaultClient send requests through
// the host. A function reaches only the buckets and hosts its
// configuration grants (grants in gust.yaml, GustGrants in the Lambda
// API); anything else fails with an error matching [ErrAccessDenied].
// Failed calls are *[HostError] values; returned from a handler, their
// errorType is "Host." and the code, for example Host.NotFound.
//
// # ABI
//
// The SDK speaks a small binary ABI with the Gust host (version 1):
//
//   - The guest exports gust_alloc(size i32) -> ptr i32: it returns the
//     address of a guest buffer of at least size bytes that the host may
//     write a request frame into. The guest keeps the buffer alive and
//     returns the same one while it is large enough, so the host calls
//     gust_alloc only when a request is larger than any before.
//   - The guest exports gust_invoke(len i32) -> status i32: the request
//     frame is the first len bytes of the buffer. Before returning, the
//     guest calls the host import gust.result(ptr i32, len i32) once with
//     its result, which the host copies out during the call. Status 0 means
//     the result is the function's response payload; status 1 means the
//     result is a function error, JSON {"errorType","errorMessage",
//     "stackTrace"}.
//   - The guest also exports its linear memory as "memory" and, being a
//     reactor, _initialize.
//   - Host calls: the guest calls the host import gust.call(ptr i32, len
//     i32) -> len i32 with an operation's name and arguments, each a u32
//     length and its bytes; the result is the length of the answer, which
//     gust.take(ptr i32) copies into a buffer of that size. The answer is
//     a status byte (0: ok, 1: failed) and fields encoded the same way: the
//     results, or an error code and message.
//
// A request frame is little-endian:
//
//	offset 0   u8   frame version (1)
//	offset 1   3 bytes reserved, zero
//	offset 4   i64  deadline, Unix milliseconds (0: none)
//	offset 12  u32  length of the request id, then its bytes
//	           u32  length of the function name, then its bytes
//	           u32  length of the payload, then its bytes
//
// and nothing follows the payload. No JSON is involved in the framing, so a
// warm invocation costs the host a copy in and a copy out.
//
// # Instances start from a snapshot
//
// Gust runs init once per deploy and starts every instance from a copy of
// the memory it left (like Lambda SnapStart). Whatever init computed is
// shared by all instances of a deploy, and so is the Go runtime's internal
// random state: math/rand's top-level functions produce the same sequence
// in each instance. Use crypto/rand for values that must differ between
// instances (it asks the host every time).
//
// Outside wasip1 (for example `go test` on the developer's machine) the
// exports are absent, so a package using the SDK still builds and its
// handler functions can be unit-tested directly.
package gust
