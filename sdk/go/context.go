package gust

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// invocationContext is the context a handler receives. It carries the
// invocation (RequestID, FunctionName) and its deadline, but arms a timer
// for Done only when something asks for Done or Err: in wasm a Go timer
// costs microseconds per invocation, and most handlers never wait on
// their context. Once armed it behaves as context.WithDeadline; when the
// invocation ends it is canceled, as before.
type invocationContext struct {
	inv      *invocation
	deadline time.Time // zero: none

	once   sync.Once
	armed  atomic.Bool // ctx is set
	ctx    context.Context
	cancel context.CancelFunc
}

func newInvocationContext(inv *invocation, deadline time.Time) *invocationContext {
	return &invocationContext{inv: inv, deadline: deadline}
}

// arm returns the underlying context, creating it on first use.
func (c *invocationContext) arm() context.Context {
	c.once.Do(func() {
		base := context.WithValue(context.Background(), invocationKey{}, c.inv)
		if c.deadline.IsZero() {
			c.ctx, c.cancel = context.WithCancel(base)
		} else {
			c.ctx, c.cancel = context.WithDeadline(base, c.deadline)
		}
		c.armed.Store(true)
	})
	return c.ctx
}

// finish cancels the context at the end of the invocation; a context
// nobody armed becomes an already canceled one, with no work done.
func (c *invocationContext) finish() {
	c.once.Do(func() {
		c.ctx = canceledContext
		c.armed.Store(true)
	})
	if c.cancel != nil {
		c.cancel()
	}
}

// canceledContext is what an invocation's context is after it ended.
var canceledContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Deadline implements context.Context without arming anything.
func (c *invocationContext) Deadline() (time.Time, bool) {
	return c.deadline, !c.deadline.IsZero()
}

// Done implements context.Context.
func (c *invocationContext) Done() <-chan struct{} { return c.arm().Done() }

// Err implements context.Context.
func (c *invocationContext) Err() error { return c.arm().Err() }

// Value implements context.Context. Until the context is armed no key but
// the invocation's has a value (the context package's own lookups happen
// after it called Done, which arms it).
func (c *invocationContext) Value(key any) any {
	if _, ok := key.(invocationKey); ok {
		return c.inv
	}
	if c.armed.Load() {
		return c.ctx.Value(key)
	}
	return nil
}

func (c *invocationContext) String() string { return "gust.invocationContext" }
