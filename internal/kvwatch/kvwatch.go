// Package kvwatch keeps a view of a JetStream KV bucket current: Follow
// hands every entry the bucket holds to a function, returns once they
// are all applied, and then goes on applying each change as it comes,
// until Stop. The registry, the keyring, the scheduler and the trigger
// manager each keep their in-memory view of a bucket this way.
package kvwatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Watch follows a bucket. Stop it when done.
type Watch struct {
	w    jetstream.KeyWatcher
	done chan struct{}
}

// Follow applies every entry of kv (deletes included, as the bucket keeps
// them), in order, and returns once the bucket's current state has been
// applied; what is the bucket's name for errors. From then on, changes
// are applied from a goroutine of the Watch, one at a time. An error
// apply returns while loading aborts Follow with it; after loading, apply
// handles its own errors (the view cannot refuse a change already
// stored). ctx bounds the loading only.
func Follow(ctx context.Context, kv jetstream.KeyValue, what string, apply func(jetstream.KeyValueEntry) error) (*Watch, error) {
	w, err := kv.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", what, err)
	}
	// The watcher sends every current value, then nil.
	for {
		if err := ctx.Err(); err != nil {
			_ = w.Stop()
			return nil, fmt.Errorf("load %s: %w", what, err)
		}
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("load %s: %w", what, errors.New("the watch closed while loading"))
			}
			if e == nil {
				ws := &Watch{w: w, done: make(chan struct{})}
				go ws.follow(apply)
				return ws, nil
			}
			if err := apply(e); err != nil {
				_ = w.Stop()
				return nil, err
			}
		case <-ctx.Done():
			_ = w.Stop()
			return nil, fmt.Errorf("load %s: %w", what, ctx.Err())
		}
	}
}

func (ws *Watch) follow(apply func(jetstream.KeyValueEntry) error) {
	defer close(ws.done)
	for e := range ws.w.Updates() {
		if e != nil {
			_ = apply(e)
		}
	}
}

// Stop ends the watch and waits until no change is being applied. It is
// safe to call more than once.
func (ws *Watch) Stop() error {
	err := ws.w.Stop()
	<-ws.done
	return err
}
