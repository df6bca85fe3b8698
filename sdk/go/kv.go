package gust

import "context"

// KVBucket is a key-value bucket of the node, reached through host calls.
// A function reaches only the buckets its configuration grants (grants.kv
// in gust.yaml); any other answers ErrAccessDenied.
type KVBucket struct{ name string }

// KV returns the key-value bucket called name.
func KV(name string) KVBucket { return KVBucket{name: name} }

// Name returns the bucket's name.
func (b KVBucket) Name() string { return b.name }

// KVEntry is a key's current value.
type KVEntry struct {
	Key   string
	Value []byte
	// Revision increases with every write to the bucket; pass it to
	// CompareAndSet to update only what was read.
	Revision uint64
}

// Get returns key's value, or an error matching ErrNotFound.
func (b KVBucket) Get(ctx context.Context, key string) (KVEntry, error) {
	if err := ctx.Err(); err != nil {
		return KVEntry{}, err
	}
	f, err := hostCall("kv.get", []byte(b.name), []byte(key))
	if err == nil {
		err = want("kv.get", f, 2)
	}
	if err != nil {
		return KVEntry{}, err
	}
	rev, err := num(f[1])
	if err != nil {
		return KVEntry{}, err
	}
	return KVEntry{Key: key, Value: f[0], Revision: rev}, nil
}

// Put stores value under key, whatever was there, and returns the new
// revision.
func (b KVBucket) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return b.write(ctx, "kv.put", []byte(b.name), []byte(key), value)
}

// CompareAndSet stores value under key only if the key's revision is
// still revision (0: only if the key does not exist), and returns the
// new revision; otherwise it fails with an error matching ErrConflict.
func (b KVBucket) CompareAndSet(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	return b.write(ctx, "kv.cas", []byte(b.name), []byte(key), value, u64(revision))
}

func (b KVBucket) write(ctx context.Context, op string, args ...[]byte) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	f, err := hostCall(op, args...)
	if err == nil {
		err = want(op, f, 1)
	}
	if err != nil {
		return 0, err
	}
	return num(f[0])
}

// Delete removes key. Deleting a key that does not exist is not an
// error.
func (b KVBucket) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := hostCall("kv.delete", []byte(b.name), []byte(key), u64(0))
	return err
}

// List returns the bucket's keys that start with prefix, in byte order.
func (b KVBucket) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := listPages(ctx, "kv.list", b.name, prefix, 1, func(f [][]byte) error {
		for _, k := range f {
			keys = append(keys, string(k))
		}
		return nil
	})
	return keys, err
}

// listPages calls a listing operation page by page: each answer is the
// next page's marker ("" after the last page) and entries of per
// fields each, handed to page.
func listPages(ctx context.Context, op, bucket, prefix string, per int, page func([][]byte) error) error {
	marker := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := hostCall(op, []byte(bucket), []byte(prefix), []byte(marker))
		if err == nil {
			err = want(op, f, 1)
		}
		if err != nil {
			return err
		}
		if (len(f)-1)%per != 0 {
			return &HostError{Code: "BadResponse", Message: "gust: " + op + " answered an incomplete entry"}
		}
		if err := page(f[1:]); err != nil {
			return err
		}
		if marker = string(f[0]); marker == "" {
			return nil
		}
	}
}
