//go:build linux

package process

import (
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/gustfaas/gust/internal/sandbox"
)

// logSink drains an instance's stdout and stderr (one pipe) for as long as
// the instance lives, keeping at most a limit of it. It never stops
// reading, so a guest that floods its output is slowed to the node's read
// speed but never blocked for good, and the node holds a bounded amount.
type logSink struct {
	r  *os.File
	rc syscall.RawConn

	mu        sync.Mutex
	buf       []byte
	limit     int
	truncated bool
	scratch   []byte
	done      chan struct{} // closed when the pipe is at EOF
}

func newLogSink(r *os.File) (*logSink, error) {
	rc, err := r.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &logSink{r: r, rc: rc, limit: DefaultLogLimit, scratch: make([]byte, 32<<10), done: make(chan struct{})}, nil
}

// run reads until the write ends are all closed (the instance is gone).
func (s *logSink) run() {
	defer close(s.done)
	eof := false
	for !eof {
		err := s.rc.Read(func(fd uintptr) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			// A bounded number of reads per wake-up, so that a flood
			// cannot hold the lock against flush.
			for i := 0; i < 8; i++ {
				n, err := syscall.Read(int(fd), s.scratch)
				switch {
				case n > 0:
					s.appendLocked(s.scratch[:n])
				case err == syscall.EINTR:
				case err == syscall.EAGAIN:
					return false
				default:
					eof = true
					return true
				}
			}
			return true
		})
		if err != nil {
			return
		}
	}
}

func (s *logSink) appendLocked(p []byte) {
	if room := s.limit - len(s.buf); room < len(p) {
		if room > 0 {
			s.buf = append(s.buf, p[:room]...)
		}
		s.truncated = true
		return
	}
	s.buf = append(s.buf, p...)
}

// flush moves what is in the pipe now into the log: everything the guest
// wrote before it posted its response.
func (s *logSink) flush() {
	_ = s.rc.Control(func(fd uintptr) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var pending int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&pending))); errno != 0 {
			return
		}
		for pending > 0 {
			want := min(int(pending), len(s.scratch))
			n, err := syscall.Read(int(fd), s.scratch[:want])
			if n <= 0 {
				if err == syscall.EINTR {
					continue
				}
				return
			}
			s.appendLocked(s.scratch[:n])
			pending -= int32(n)
		}
	})
}

// begin starts an invocation's log with its limit. What was written since
// the last invocation (the init log, for the first) is kept within it.
func (s *logSink) begin(limit int) {
	if limit <= 0 {
		limit = DefaultLogLimit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = limit
	if len(s.buf) > limit {
		s.buf = s.buf[:limit]
		s.truncated = true
	}
}

// take returns the log collected so far and starts an empty one.
func (s *logSink) take() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.buf
	if s.truncated {
		out = append(out, sandbox.TruncatedMarker...)
	}
	s.buf, s.truncated, s.limit = nil, false, DefaultLogLimit
	return out
}
