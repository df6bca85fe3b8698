//go:build linux

package process

import (
	"errors"
	"fmt"
	"sync"
)

// Defaults of Options.UIDBase and Options.UIDCount.
const (
	DefaultUIDBase  = 200000
	DefaultUIDCount = 65536
)

// maxID is the largest uid or gid Linux accepts ((uid_t)-1 means "none").
const maxID = 1<<32 - 2

// ErrNoUID is returned (wrapped) by Start when every uid of the range
// Options.UIDBase to UIDBase+UIDCount-1 belongs to a live instance.
var ErrNoUID = errors.New("process: every instance uid is in use")

// idRange hands out the uids instances run as, each with the gid of the
// same number: base, base+1, ..., base+count-1 and round again, so a
// freed uid is the last to be reused; a uid held by a live instance is
// never handed out. Safe for concurrent use.
type idRange struct {
	base, count int

	mu   sync.Mutex
	next int          // offset tried first by the next take
	used map[int]bool // offsets held by live instances
}

func newIDRange(base, count int) (*idRange, error) {
	if base < 1 || count < 1 || base+count-1 > maxID {
		return nil, fmt.Errorf("process: uid range %d to %d is not within 1 to %d", base, base+count-1, maxID)
	}
	return &idRange{base: base, count: count, used: map[int]bool{}}, nil
}

// take returns a uid no live instance holds, or an error wrapping
// ErrNoUID.
func (r *idRange) take() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.count {
		off := (r.next + i) % r.count
		if !r.used[off] {
			r.used[off] = true
			r.next = (off + 1) % r.count
			return r.base + off, nil
		}
	}
	return 0, fmt.Errorf("%w: all %d of uids %d to %d", ErrNoUID, r.count, r.base, r.base+r.count-1)
}

// put returns a uid; the instance that held it must be gone (every
// process of it reaped).
func (r *idRange) put(id int) {
	r.mu.Lock()
	delete(r.used, id-r.base)
	r.mu.Unlock()
}
