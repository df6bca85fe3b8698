package wasm

import (
	"bytes"
	"errors"

	"github.com/gustfaas/gust/internal/sandbox"
)

// DefaultLogLimit is the log kept per invocation when Request.LogLimit is
// zero: 64 KiB, enough for any reasonable debugging output while bounding
// what one invocation can make the node hold.
const DefaultLogLimit = 64 << 10

// tailSize is how much of the most recent guest output is kept regardless
// of the log limit, to tell why a guest died (for example Go's "fatal
// error: out of memory").
const tailSize = 512

// logBuffer collects a guest's log up to a limit and remembers the tail of
// everything written. Not safe for concurrent use: wazero writes to it from
// the goroutine running the guest.
type logBuffer struct {
	buf       []byte
	limit     int
	truncated bool
	tail      []byte
}

func (b *logBuffer) Write(p []byte) (int, error) {
	if room := b.limit - len(b.buf); room < len(p) {
		if room > 0 {
			b.buf = append(b.buf, p[:room]...)
		}
		b.truncated = true
	} else {
		b.buf = append(b.buf, p...)
	}
	b.keepTail(p)
	return len(p), nil
}

func (b *logBuffer) keepTail(p []byte) {
	if len(p) >= tailSize {
		b.tail = append(b.tail[:0], p[len(p)-tailSize:]...)
		return
	}
	if len(b.tail)+len(p) > 2*tailSize {
		b.tail = append(b.tail[:0], b.tail[len(b.tail)-tailSize:]...)
	}
	b.tail = append(b.tail, p...)
}

// reset starts a new invocation's log with the given limit (0: default).
// Output already collected (an SDK module's initialisation log) is kept
// within the new limit.
func (b *logBuffer) reset(limit int) {
	if limit <= 0 {
		limit = DefaultLogLimit
	}
	b.limit = limit
	if len(b.buf) > limit {
		b.buf = b.buf[:limit]
		b.truncated = true
	}
	b.tail = b.tail[:0]
}

// take returns a copy of the log (nil when empty), ending with
// sandbox.TruncatedMarker when output was dropped, and empties the buffer.
func (b *logBuffer) take() []byte {
	var out []byte
	if len(b.buf) > 0 || b.truncated {
		n := len(b.buf)
		if b.truncated {
			n += len(sandbox.TruncatedMarker)
		}
		out = make([]byte, 0, n)
		out = append(out, b.buf...)
		if b.truncated {
			out = append(out, sandbox.TruncatedMarker...)
		}
	}
	b.buf = b.buf[:0]
	b.truncated = false
	return out
}

// saysOutOfMemory reports whether the recent output reads like a guest
// that ran out of memory (Go: "fatal error: out of memory"; Rust:
// "memory allocation of N bytes failed").
func (b *logBuffer) saysOutOfMemory() bool {
	return bytes.Contains(b.tail, []byte("out of memory")) ||
		bytes.Contains(b.tail, []byte("memory allocation of"))
}

// errResponseTooLarge is returned to a command writing more than the
// largest response to its stdout; the guest sees EIO.
var errResponseTooLarge = errors.New("response exceeds the maximum payload size")

// payloadBuffer collects a command's stdout up to a limit.
type payloadBuffer struct {
	buf   []byte
	limit int
	over  bool
}

func (b *payloadBuffer) Write(p []byte) (int, error) {
	if len(b.buf)+len(p) > b.limit {
		b.over = true
		return 0, errResponseTooLarge
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}
