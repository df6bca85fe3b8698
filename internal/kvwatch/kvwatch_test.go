package kvwatch_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/internal/kvwatch"
	"github.com/gustfaas/gust/internal/substrate"
)

func openKV(t *testing.T) jetstream.KeyValue {
	t.Helper()
	ctx := context.Background()
	sub, err := substrate.Open(ctx, substrate.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	kv, err := sub.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// view is what a follower keeps: the current value per key.
type view struct {
	mu sync.Mutex
	m  map[string]string
}

func (v *view) apply(e jetstream.KeyValueEntry) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Operation() == jetstream.KeyValuePut {
		v.m[e.Key()] = string(e.Value())
	} else {
		delete(v.m, e.Key())
	}
	return nil
}

func (v *view) get(k string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.m[k]
	return s, ok
}

func TestFollow(t *testing.T) {
	ctx := context.Background()
	kv := openKV(t)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := kv.Put(ctx, k, []byte(k+"1")); err != nil {
			t.Fatal(err)
		}
	}
	kv.Put(ctx, "a", []byte("a2"))
	kv.Delete(ctx, "b")

	v := &view{m: map[string]string{}}
	w, err := kvwatch.Follow(ctx, kv, "test entries", v.apply)
	if err != nil {
		t.Fatal(err)
	}
	// Loaded before Follow returns: the latest value of each key, deletes
	// applied.
	if len(v.m) != 2 || v.m["a"] != "a2" || v.m["c"] != "c1" {
		t.Errorf("view after loading = %v, want a=a2 c=c1", v.m)
	}
	// Later changes arrive through the watch.
	kv.Put(ctx, "d", []byte("d1"))
	kv.Delete(ctx, "a")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, hasA := v.get("a")
		d, _ := v.get("d")
		if !hasA && d == "d1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("changes not applied: %v", v.m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	// Nothing is applied after Stop.
	kv.Put(ctx, "e", []byte("e1"))
	time.Sleep(100 * time.Millisecond)
	if _, ok := v.get("e"); ok {
		t.Error("a change was applied after Stop")
	}
}

func TestFollowLoadErrors(t *testing.T) {
	ctx := context.Background()
	kv := openKV(t)
	kv.Put(ctx, "bad", []byte("x"))
	refuse := errors.New("cannot read this entry")
	tests := []struct {
		name  string
		ctx   func() context.Context
		apply func(jetstream.KeyValueEntry) error
		want  error
	}{
		{"apply refuses an entry", context.Background, func(jetstream.KeyValueEntry) error { return refuse }, refuse},
		{"context done", func() context.Context {
			c, cancel := context.WithCancel(context.Background())
			cancel()
			return c
		}, func(jetstream.KeyValueEntry) error { time.Sleep(10 * time.Millisecond); return nil }, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := kvwatch.Follow(tt.ctx(), kv, "test entries", tt.apply)
			if !errors.Is(err, tt.want) || w != nil {
				t.Errorf("Follow = %v, %v; want %v", w, err, tt.want)
			}
		})
	}
}
