// Package registry owns functions: their validation, their durable storage
// (configuration in a JetStream KV bucket, code in a JetStream object store
// keyed by sha256) and the in-memory view every node keeps current with a
// KV watch. The invoke path reads only that view.
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket names.
const (
	FunctionsBucket = "gust_functions"
	CodeBucket      = "gust_code"
)

var (
	// ErrNotFound: no function of that name.
	ErrNotFound = errors.New("function not found")
	// ErrConflict: the function already exists, or changed concurrently.
	ErrConflict = errors.New("function already exists")
	// ErrRevisionMismatch: the caller's RevisionId is not the current one.
	ErrRevisionMismatch = errors.New("revision id does not match")
)

// Store is what the registry needs from the substrate.
type Store interface {
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
	ObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error)
}

// Change is one update to the view: Old is nil for a new function, New is
// nil for a deleted one.
type Change struct {
	Old, New *Function
}

// Registry is the function store and its in-memory view. Safe for
// concurrent use.
type Registry struct {
	kv   jetstream.KeyValue
	code jetstream.ObjectStore

	mu       sync.RWMutex
	view     map[string]*Function
	revs     map[string]uint64 // last applied KV revision per key, deletes included
	onChange []func(Change)

	watcher jetstream.KeyWatcher
	done    chan struct{}
}

// Open creates or opens the buckets and loads the view. It returns once the
// view holds every stored function; a watch keeps it current until Close.
func Open(ctx context.Context, st Store) (*Registry, error) {
	kv, err := st.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      FunctionsBucket,
		Description: "Gust function configuration",
		History:     1,
	})
	if err != nil {
		return nil, err
	}
	code, err := st.ObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      CodeBucket,
		Description: "Gust function code, named by sha256",
	})
	if err != nil {
		return nil, err
	}
	r := &Registry{
		kv:   kv,
		code: code,
		view: map[string]*Function{},
		revs: map[string]uint64{},
		done: make(chan struct{}),
	}
	w, err := kv.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("watch functions: %w", err)
	}
	r.watcher = w
	// The watcher sends every current value, then nil.
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("function watch closed while loading")
			}
			if e == nil {
				go r.watch()
				return r, nil
			}
			r.apply(e.Key(), e.Revision(), e.Operation(), e.Value())
		case <-ctx.Done():
			_ = w.Stop()
			return nil, fmt.Errorf("load functions: %w", ctx.Err())
		}
	}
}

func (r *Registry) watch() {
	defer close(r.done)
	for e := range r.watcher.Updates() {
		if e == nil {
			continue
		}
		r.apply(e.Key(), e.Revision(), e.Operation(), e.Value())
	}
}

// OnChange registers fn to be called after every change to the view, in
// order, from the goroutine that applied it. fn must not block for long.
func (r *Registry) OnChange(fn func(Change)) {
	r.mu.Lock()
	r.onChange = append(r.onChange, fn)
	r.mu.Unlock()
}

// apply folds one KV entry into the view unless a newer one was applied.
func (r *Registry) apply(key string, rev uint64, op jetstream.KeyValueOp, value []byte) {
	var nf *Function
	if op == jetstream.KeyValuePut {
		nf = new(Function)
		if err := json.Unmarshal(value, nf); err != nil {
			// A value this node cannot read is left out of the view rather
			// than taking the node down; it stays in the bucket untouched.
			return
		}
	}
	r.mu.Lock()
	if rev <= r.revs[key] {
		r.mu.Unlock()
		return
	}
	r.revs[key] = rev
	old := r.view[key]
	if nf != nil {
		r.view[key] = nf
	} else {
		delete(r.view, key)
	}
	hooks := r.onChange
	r.mu.Unlock()
	if old == nil && nf == nil {
		return
	}
	for _, h := range hooks {
		h(Change{Old: old, New: nf})
	}
}

// Get returns the function from the view. The result must not be modified.
func (r *Registry) Get(name string) (*Function, bool) {
	r.mu.RLock()
	f, ok := r.view[name]
	r.mu.RUnlock()
	return f, ok
}

// List returns every function in the view, sorted by name.
func (r *Registry) List() []*Function {
	r.mu.RLock()
	out := make([]*Function, 0, len(r.view))
	for _, f := range r.view {
		out = append(out, f)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Function) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Digest returns the lowercase hex sha256 of code.
func Digest(code []byte) string {
	sum := sha256.Sum256(code)
	return hex.EncodeToString(sum[:])
}

// PutCode stores code under its digest (once) and returns the digest.
func (r *Registry) PutCode(ctx context.Context, code []byte) (string, error) {
	d := Digest(code)
	if _, err := r.code.GetInfo(ctx, d); err == nil {
		return d, nil
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", fmt.Errorf("look up code %s: %w", d, err)
	}
	if _, err := r.code.PutBytes(ctx, d, code); err != nil {
		return "", fmt.Errorf("store code %s: %w", d, err)
	}
	return d, nil
}

// Code fetches code by digest and checks it.
func (r *Registry) Code(ctx context.Context, digest string) ([]byte, error) {
	b, err := r.code.GetBytes(ctx, digest)
	if err != nil {
		return nil, fmt.Errorf("fetch code %s: %w", digest, err)
	}
	if Digest(b) != digest {
		return nil, fmt.Errorf("code %s is corrupt: digest mismatch", digest)
	}
	return b, nil
}

// Create stores a new function whose code was stored with PutCode. f is
// normalised first; the stored copy is returned.
func (r *Registry) Create(ctx context.Context, f *Function) (*Function, error) {
	f = f.Clone()
	if err := Normalize(f); err != nil {
		return nil, err
	}
	f.RevisionID = uuid.NewString()
	f.LastModified = time.Now().UTC()
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	rev, err := r.kv.Create(ctx, f.Name, b)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("%w: %s", ErrConflict, f.Name)
		}
		return nil, fmt.Errorf("store function %s: %w", f.Name, err)
	}
	r.apply(f.Name, rev, jetstream.KeyValuePut, b)
	return f, nil
}

// Update applies change to the stored function with compare-and-set and
// returns the stored result. change sees a private copy; returning an error
// aborts. If revisionID is non-empty it must match the current RevisionID.
func (r *Registry) Update(ctx context.Context, name, revisionID string, change func(*Function) error) (*Function, error) {
	for attempt := 0; attempt < 10; attempt++ {
		e, err := r.kv.Get(ctx, name)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
			}
			return nil, fmt.Errorf("read function %s: %w", name, err)
		}
		cur := new(Function)
		if err := json.Unmarshal(e.Value(), cur); err != nil {
			return nil, fmt.Errorf("decode function %s: %w", name, err)
		}
		if revisionID != "" && revisionID != cur.RevisionID {
			return nil, fmt.Errorf("%w: the revision id for %s is %s", ErrRevisionMismatch, name, cur.RevisionID)
		}
		next := cur.Clone()
		if err := change(next); err != nil {
			return nil, err
		}
		next.Name = cur.Name
		if err := Normalize(next); err != nil {
			return nil, err
		}
		next.RevisionID = uuid.NewString()
		next.LastModified = time.Now().UTC()
		b, err := json.Marshal(next)
		if err != nil {
			return nil, err
		}
		rev, err := r.kv.Update(ctx, name, b, e.Revision())
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // changed underneath us: read again
			}
			return nil, fmt.Errorf("store function %s: %w", name, err)
		}
		r.apply(name, rev, jetstream.KeyValuePut, b)
		return next, nil
	}
	return nil, fmt.Errorf("%w: %s is being updated concurrently, try again", ErrConflict, name)
}

// Delete removes a function, and its code when no other function uses it.
func (r *Registry) Delete(ctx context.Context, name string) error {
	e, err := r.kv.Get(ctx, name)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		return fmt.Errorf("read function %s: %w", name, err)
	}
	var f Function
	_ = json.Unmarshal(e.Value(), &f)
	if err := r.kv.Delete(ctx, name, jetstream.LastRevision(e.Revision())); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("%w: %s changed while being deleted, try again", ErrConflict, name)
		}
		return fmt.Errorf("delete function %s: %w", name, err)
	}
	// The delete marker's revision is the stream's next; applying the
	// deletion now with a revision just above the last put keeps the view
	// consistent for this caller; the watch delivers the real one after.
	r.apply(name, e.Revision()+1, jetstream.KeyValueDelete, nil)
	if f.CodeDigest != "" && !r.codeInUse(f.CodeDigest) {
		if err := r.code.Delete(ctx, f.CodeDigest); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("delete code %s: %w", f.CodeDigest, err)
		}
	}
	return nil
}

func (r *Registry) codeInUse(digest string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, f := range r.view {
		if f.CodeDigest == digest {
			return true
		}
	}
	return false
}

// Close stops the watch.
func (r *Registry) Close() error {
	err := r.watcher.Stop()
	<-r.done
	return err
}
