package gust

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestInvocationContext(t *testing.T) {
	inv := &invocation{requestID: "r", function: "f"}
	t.Run("deadline without arming", func(t *testing.T) {
		d := time.Now().Add(time.Hour)
		c := newInvocationContext(inv, d)
		if got, ok := c.Deadline(); !ok || !got.Equal(d) {
			t.Errorf("Deadline() = %v, %v; want %v, true", got, ok, d)
		}
		if c.armed.Load() {
			t.Error("Deadline() armed the context")
		}
		if RequestID(c) != "r" || FunctionName(c) != "f" || c.armed.Load() {
			t.Errorf("RequestID, FunctionName = %q, %q (armed %v); want r, f without arming", RequestID(c), FunctionName(c), c.armed.Load())
		}
		if c.Err() != nil {
			t.Errorf("Err() = %v, want nil", c.Err())
		}
		c.finish()
		if !errors.Is(c.Err(), context.Canceled) {
			t.Errorf("Err() after finish = %v, want context.Canceled", c.Err())
		}
	})
	t.Run("past deadline", func(t *testing.T) {
		c := newInvocationContext(inv, time.Now().Add(-time.Second))
		select {
		case <-c.Done():
		case <-time.After(time.Minute):
			t.Fatal("Done() not closed for a past deadline")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Errorf("Err() = %v, want DeadlineExceeded", c.Err())
		}
	})
	t.Run("children", func(t *testing.T) {
		c := newInvocationContext(inv, time.Now().Add(50*time.Millisecond))
		child, cancel := context.WithCancel(c)
		defer cancel()
		if RequestID(child) != "r" {
			t.Errorf("RequestID(child) = %q, want r", RequestID(child))
		}
		select {
		case <-child.Done():
		case <-time.After(time.Minute):
			t.Fatal("child not canceled at the parent's deadline")
		}
		if !errors.Is(child.Err(), context.DeadlineExceeded) {
			t.Errorf("child.Err() = %v, want DeadlineExceeded", child.Err())
		}
	})
	t.Run("no deadline", func(t *testing.T) {
		c := newInvocationContext(inv, time.Time{})
		if _, ok := c.Deadline(); ok {
			t.Error("Deadline() ok for no deadline")
		}
		if c.Done() == nil {
			t.Error("Done() = nil, want a channel closed at the end of the invocation")
		}
		c.finish()
		<-c.Done()
	})
}
