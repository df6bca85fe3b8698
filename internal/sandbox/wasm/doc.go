// Package wasm is Gust's WebAssembly runtime: it implements the sandbox
// contract (sandbox.Runtime, Program, Instance) on wazero, in-process. It is
// the only package in Gust that imports wazero.
//
// # Guest kinds
//
// Load compiles a module once and classifies it by its exports:
//
//   - A Gust SDK module ([KindSDK]) exports gust_alloc and gust_invoke (and,
//     being a reactor, normally _initialize and its memory). It is built
//     from Go with sdk/go as a wasip1 reactor (-buildmode=c-shared). Load
//     instantiates it once, runs _initialize and keeps a snapshot of its
//     memory and globals; Start (the cold start) instantiates the module
//     with its memory mapped copy-on-write from that snapshot, running no
//     guest code (see snapshot.go for what instances of one snapshot
//     share). The instance then serves many invocations, one at a time.
//   - A WASI command ([KindCommand]) exports _start and may be written in
//     any language. Start returns a cheap handle; every Invoke instantiates
//     a fresh module (CGI style): the payload on stdin, the result is what
//     the program writes to stdout, stderr is the log, and a non-zero exit
//     status is a function error (Runtime.ExitError).
//
// A module exporting neither is refused with a *sandbox.InvalidCodeError, as
// is one importing anything but wasi_snapshot_preview1 and the gust host
// module.
//
// # ABI of SDK modules (version 1)
//
//   - guest export gust_alloc(size i32) -> ptr i32: a guest buffer of at
//     least size bytes for request frames; the guest keeps it alive and
//     hands back the same one while it is large enough, so the host calls
//     gust_alloc only when a request outgrows it.
//   - guest export gust_invoke(len i32) -> status i32: serve the frame in the
//     first len bytes of that buffer. Status 0: the result is the response
//     payload; 1: the result is a function error, JSON
//     {"errorType","errorMessage","stackTrace"}.
//   - host import gust.result(ptr i32, len i32): the guest hands its result
//     over during gust_invoke; the host copies it out at once.
//   - host imports gust.call(ptr i32, len i32) -> i32 and gust.take(ptr
//     i32): a call to the platform (storage, outbound HTTP) and the fetch
//     of its answer; see host.go. The runtime passes calls to the
//     sandbox.Host of Options.Host, one per instance, which decides what
//     they mean and what the function may do.
//
// A request frame is little-endian: u8 version (1), three zero bytes, i64
// deadline in Unix milliseconds (0: none), then three length-prefixed (u32)
// fields: request id, function name, payload. The framing involves no
// JSON: a warm invocation is a copy in, one guest call and a copy out.
//
// # Sandbox
//
// Every instance gets: linear memory capped at the function's MemoryMB; no
// filesystem (no directory is mounted, so opening any path fails); no
// sockets (outbound HTTP is a host call, allowed host by host); the
// function's environment plus AWS_LAMBDA_FUNCTION_NAME,
// AWS_LAMBDA_FUNCTION_VERSION and AWS_LAMBDA_FUNCTION_MEMORY_SIZE; the real
// wall and monotonic clocks; crypto/rand as its random source; and sleeps
// that wake at least every few milliseconds so that a deadline can stop a
// sleeping guest. An invocation is stopped when its context is done or
// Request.Deadline passes, whichever is first: wazero's close-on-context-done
// check at every loop iteration stops the guest, and the instance is lost
// with sandbox.TimedOut. (interrupt.go holds a cheaper check compiled into
// the loops themselves; it is switched off because a guest spinning without
// leaving machine code cannot be preempted, which stalls the Go garbage
// collector and with it the whole node.)
//
// The log of an invocation is everything the guest wrote to stdout and
// stderr (stderr only, for commands, whose stdout is the result), capped
// at Request.LogLimit bytes or [DefaultLogLimit]; a cut log ends with
// sandbox.TruncatedMarker. For SDK modules the log of the first invocation
// also carries what the module wrote while initialising.
//
// # Deploy-time preparation and compiled code
//
// Load rewrites a module before compiling it (prepare.go): the data
// segments move into a memory image that instances map copy-on-write
// (memory_linux.go), and mutable globals are
// exported for snapshots. Exports preparation adds are named "gust:...".
// Compiled machine code is cached on disk (Options.CacheDir) keyed by the
// digest of the rewritten module, so a restarted node does not recompile. wazero caps
// memory per wazero runtime, so Runtime keeps one wazero runtime per
// distinct memory size, all sharing the cache; a Program is compiled in, and
// its instances run in, the wazero runtime of its memory size.
package wasm
