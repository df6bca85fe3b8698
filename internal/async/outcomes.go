package async

import (
	"sync"
	"time"
)

// outcomes remembers, for a while, the invocations whose outcome hook
// this node is calling or has called. A message whose acknowledgement
// was late (its heartbeats lapsed under load) comes back to the same
// node with its outcome already recorded; without this memory its hook
// would run a second time. Another node taking it still calls the hook
// again: hooks are at least once across nodes.
type outcomes struct {
	ttl   time.Duration
	mu    sync.Mutex
	state map[string]hookState
	order []remembered // oldest first, for expiry
}

type hookState int

const (
	hookRunning hookState = iota + 1 // the hook is being called
	hookDone                         // it returned nil; the ack was sent
)

type remembered struct {
	id string
	at time.Time
}

func newOutcomes(ttl time.Duration) *outcomes {
	return &outcomes{ttl: ttl, state: map[string]hookState{}}
}

// begin reports the hook's state for id, and marks it running when it
// was neither running nor done (the caller then calls the hook).
func (o *outcomes) begin(id string) (hookState, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if st, ok := o.state[id]; ok {
		return st, false
	}
	o.expire(time.Now())
	o.state[id] = hookRunning
	return hookRunning, true
}

// end records that id's hook returned: done (forgotten after the ttl),
// or failed, in which case the next delivery calls it again.
func (o *outcomes) end(id string, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !ok {
		delete(o.state, id)
		return
	}
	o.state[id] = hookDone
	o.order = append(o.order, remembered{id, time.Now()})
}

// expire forgets the done hooks older than the ttl.
func (o *outcomes) expire(now time.Time) {
	n := 0
	for n < len(o.order) && now.Sub(o.order[n].at) > o.ttl {
		if o.state[o.order[n].id] == hookDone {
			delete(o.state, o.order[n].id)
		}
		n++
	}
	if n > 0 {
		o.order = append(o.order[:0], o.order[n:]...)
	}
}
