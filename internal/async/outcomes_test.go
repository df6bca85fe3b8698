package async

import (
	"testing"
	"time"
)

func TestOutcomes(t *testing.T) {
	o := newOutcomes(50 * time.Millisecond)
	steps := []struct {
		name  string
		do    func() (hookState, bool)
		state hookState
		first bool
	}{
		{"first delivery calls the hook", func() (hookState, bool) { return o.begin("a") }, hookRunning, true},
		{"a second delivery meanwhile does not", func() (hookState, bool) { return o.begin("a") }, hookRunning, false},
		{"after the hook returned, a late copy is acknowledged", func() (hookState, bool) { o.end("a", true); return o.begin("a") }, hookDone, false},
		{"a failed hook is called again", func() (hookState, bool) { o.begin("b"); o.end("b", false); return o.begin("b") }, hookRunning, true},
		{"a done hook is forgotten after the ttl", func() (hookState, bool) {
			time.Sleep(60 * time.Millisecond)
			o.begin("c") // expires what is older than the ttl
			return o.begin("a")
		}, hookRunning, true},
	}
	for _, s := range steps {
		st, first := s.do()
		if st != s.state || first != s.first {
			t.Errorf("%s: got (%d, %v), want (%d, %v)", s.name, st, first, s.state, s.first)
		}
	}
}
