package storage

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
)

// KV headers JetStream sets.
const (
	hdrKVOp    = "KV-Operation"
	kvOpDelete = "DEL"
	kvOpPurge  = "PURGE"
	hdrMsgSize = "Nats-Msg-Size"
)

// Entry is a KV key's current value.
type Entry struct {
	Bucket, Key string
	Value       []byte
	// Revision is the write's stream sequence: unique within the bucket
	// and increasing with every write.
	Revision uint64
	Modified time.Time
}

// ValidateKey checks a KV key.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return invalidf("key is empty")
	case len(key) > api.MaxKVKeyLen:
		return invalidf("key %.40q...: %d bytes is over the limit of %d", key, len(key), api.MaxKVKeyLen)
	case key[0] == '.' || key[len(key)-1] == '.' || strings.Contains(key, ".."):
		return invalidf("key %q: it may neither start nor end with '.' nor hold \"..\"", key)
	}
	if i := strings.IndexFunc(key, func(r rune) bool { return !keyChar(r) }); i >= 0 {
		return invalidf("key %q: character %q is not allowed (use letters, digits and - / _ = .)", key, []rune(key[i:])[0])
	}
	return nil
}

func keyChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		r == '-' || r == '/' || r == '_' || r == '=' || r == '.'
}

// validatePrefix checks a key prefix (which, unlike a key, may end with
// '.').
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := ValidateKey(strings.TrimSuffix(prefix, ".")); err != nil || strings.HasSuffix(prefix, "..") {
		return invalidf("prefix %q: want the start of a valid key", prefix)
	}
	return nil
}

func (s *Store) checkValue(bucket, key string, value []byte) error {
	if len(value) > api.MaxKVValue {
		return fmt.Errorf("%w: the value of key %q in kv bucket %q is %d bytes, over the limit of %d (1 MiB)",
			ErrTooLarge, key, bucket, len(value), api.MaxKVValue)
	}
	return nil
}

// kvError turns a JetStream error on key into the package's.
func (s *Store) kvError(err error, op, bucket, key string) error {
	switch {
	case err == nil:
		return nil
	case gone(err):
		s.forget(bucket)
		return noBucket(KindKV, bucket)
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("key %q in kv bucket %q: %w", key, bucket, ErrNotFound)
	case full(err):
		return fmt.Errorf("%w: kv bucket %q is full (it is at its max bytes)", ErrTooLarge, bucket)
	}
	return fmt.Errorf("%s key %q in kv bucket %q: %w", op, key, bucket, err)
}

// KVGet returns a key's value; a missing or deleted key is ErrNotFound.
func (s *Store) KVGet(ctx context.Context, bucket, key string) (Entry, error) {
	if err := ValidateKey(key); err != nil {
		return Entry{}, err
	}
	kv, err := s.kv(ctx, bucket)
	if err != nil {
		return Entry{}, err
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		return Entry{}, s.kvError(err, "get", bucket, key)
	}
	return Entry{Bucket: bucket, Key: key, Value: e.Value(), Revision: e.Revision(), Modified: e.Created()}, nil
}

// writable checks a write of value under key and opens its bucket.
func (s *Store) writable(ctx context.Context, bucket, key string, value []byte) (jetstream.KeyValue, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := s.checkValue(bucket, key, value); err != nil {
		return nil, err
	}
	return s.kv(ctx, bucket)
}

// KVPut sets a key and returns the new revision.
func (s *Store) KVPut(ctx context.Context, bucket, key string, value []byte) (uint64, error) {
	kv, err := s.writable(ctx, bucket, key, value)
	if err != nil {
		return 0, err
	}
	rev, err := kv.Put(ctx, key, value)
	return rev, s.kvError(err, "put", bucket, key)
}

// KVCreate sets a key only if it does not exist (or was deleted); when it
// does, the error is ErrConflict.
func (s *Store) KVCreate(ctx context.Context, bucket, key string, value []byte) (uint64, error) {
	kv, err := s.writable(ctx, bucket, key, value)
	if err != nil {
		return 0, err
	}
	rev, err := kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("key %q in kv bucket %q exists already: %w", key, bucket, ErrConflict)
	}
	return rev, s.kvError(err, "create", bucket, key)
}

// KVUpdate sets a key only if its current revision is revision (compare
// and set); revision 0 means only if the key does not exist, as KVCreate.
// Another revision is ErrConflict.
func (s *Store) KVUpdate(ctx context.Context, bucket, key string, value []byte, revision uint64) (uint64, error) {
	if revision == 0 {
		return s.KVCreate(ctx, bucket, key, value)
	}
	kv, err := s.writable(ctx, bucket, key, value)
	if err != nil {
		return 0, err
	}
	rev, err := kv.Update(ctx, key, value, revision)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("key %q in kv bucket %q is not at revision %d: %w", key, bucket, revision, ErrConflict)
	}
	return rev, s.kvError(err, "update", bucket, key)
}

// KVDelete deletes a key. With a revision other than 0 it deletes only
// if the key is at that revision (else ErrConflict). A key that does not
// exist is ErrNotFound.
func (s *Store) KVDelete(ctx context.Context, bucket, key string, revision uint64) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	kv, err := s.kv(ctx, bucket)
	if err != nil {
		return err
	}
	if revision == 0 {
		if _, err := kv.Get(ctx, key); err != nil {
			return s.kvError(err, "delete", bucket, key)
		}
		return s.kvError(kv.Delete(ctx, key), "delete", bucket, key)
	}
	err = kv.Delete(ctx, key, jetstream.LastRevision(revision))
	var ae *jetstream.APIError
	if errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return fmt.Errorf("key %q in kv bucket %q is not at revision %d: %w", key, bucket, revision, ErrConflict)
	}
	return s.kvError(err, "delete", bucket, key)
}

// ListOptions select one page of a listing.
type ListOptions struct {
	// Prefix keeps the keys (names) that start with it.
	Prefix string
	// Marker starts the page after this key (name): the previous page's
	// NextMarker.
	Marker string
	// Limit is the most entries (default and most api.MaxListLimit).
	Limit int
}

func (o *ListOptions) check() error {
	switch {
	case o.Limit < 0 || o.Limit > api.MaxListLimit:
		return invalidf("limit %d: want 1 to %d (0: %d)", o.Limit, api.MaxListLimit, api.MaxListLimit)
	case len(o.Marker) > 4096:
		return invalidf("marker: %d bytes is too long", len(o.Marker))
	}
	if o.Limit == 0 {
		o.Limit = api.MaxListLimit
	}
	return nil
}

// KeyInfo is one key of a listing.
type KeyInfo struct {
	Key      string
	Revision uint64
	Size     int64
	Modified time.Time
}

// KeyPage is one page of keys, in byte order; NextMarker, when not empty,
// fetches the next page.
type KeyPage struct {
	Keys       []KeyInfo
	NextMarker string
}

// entryMeta is what a listing knows of a key's latest entry.
type entryMeta struct {
	Revision uint64
	Size     int64
	Modified time.Time
}

// KVList lists a bucket's keys (deleted ones left out) in byte order, a
// page at a time. Only the page is held in memory.
func (s *Store) KVList(ctx context.Context, bucket string, o ListOptions) (KeyPage, error) {
	if err := validatePrefix(o.Prefix); err != nil {
		return KeyPage{}, err
	}
	if err := o.check(); err != nil {
		return KeyPage{}, err
	}
	if err := ValidateBucketName(bucket); err != nil {
		return KeyPage{}, err
	}
	page := &topN[KeyInfo]{n: o.Limit + 1, key: func(k KeyInfo) string { return k.Key }}
	err := s.scanKV(ctx, bucket, o.Prefix, func(key string, m entryMeta) error {
		if key > o.Marker {
			page.add(KeyInfo{Key: key, Revision: m.Revision, Size: m.Size, Modified: m.Modified})
		}
		return nil
	})
	if err != nil {
		return KeyPage{}, err
	}
	keys := page.sorted()
	out := KeyPage{Keys: keys}
	if len(keys) > o.Limit {
		out.Keys = keys[:o.Limit]
		out.NextMarker = out.Keys[o.Limit-1].Key
	}
	return out, nil
}

// kvFilter is the narrowest subject filter of a bucket's stream holding
// every key with prefix: whole tokens of the prefix, then '>'.
func kvFilter(bucket, prefix string) string {
	f := "$KV." + kvPrefix + bucket + "."
	if i := strings.LastIndexByte(prefix, '.'); i >= 0 {
		f += prefix[:i+1]
	}
	return f + ">"
}

// scanKV calls fn with every present key of bucket starting with prefix
// and its latest entry, in no particular order.
func (s *Store) scanKV(ctx context.Context, bucket, prefix string, fn func(string, entryMeta) error) error {
	pre := "$KV." + kvPrefix + bucket + "."
	err := s.scan(ctx, KindKV, bucket, kvFilter(bucket, prefix), true, func(m jetstream.Msg) error {
		if op := m.Headers().Get(hdrKVOp); op == kvOpDelete || op == kvOpPurge {
			return nil
		}
		key := strings.TrimPrefix(m.Subject(), pre)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		size, _ := strconv.ParseInt(m.Headers().Get(hdrMsgSize), 10, 64)
		return fn(key, entryMeta{Revision: md.Sequence.Stream, Size: size, Modified: md.Timestamp})
	})
	return err
}

// scan reads the latest message of every subject of a bucket's stream
// matching filter through an ordered consumer.
func (s *Store) scan(ctx context.Context, kind, bucket, filter string, headersOnly bool, fn func(jetstream.Msg) error) error {
	st, err := s.js.Stream(ctx, streamName(kind, bucket))
	if gone(err) {
		if kind == KindKV {
			s.forget(bucket)
		}
		return noBucket(kind, bucket)
	}
	if err != nil {
		return fmt.Errorf("list %s %q: %w", noun(kind), bucket, err)
	}
	if _, err := st.GetLastMsgForSubject(ctx, filter); errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("list %s %q: %w", noun(kind), bucket, err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, HeadersOnly: headersOnly,
	})
	if err != nil {
		return fmt.Errorf("list %s %q: %w", noun(kind), bucket, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("list %s %q: %w", noun(kind), bucket, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("list %s %q: %w", noun(kind), bucket, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("list %s %q: %w", noun(kind), bucket, err)
		}
		if md.NumPending == 0 {
			return nil
		}
	}
}

// topN keeps the n entries with the smallest keys (a max-heap on key).
type topN[T any] struct {
	n     int
	key   func(T) string
	items []T
}

func (h *topN[T]) Len() int           { return len(h.items) }
func (h *topN[T]) Less(i, j int) bool { return h.key(h.items[i]) > h.key(h.items[j]) }
func (h *topN[T]) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *topN[T]) Push(x any)         { h.items = append(h.items, x.(T)) }
func (h *topN[T]) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

// add keeps v if it is among the n smallest so far.
func (h *topN[T]) add(v T) {
	if len(h.items) < h.n {
		heap.Push(h, v)
		return
	}
	if h.key(v) < h.key(h.items[0]) {
		h.items[0] = v
		heap.Fix(h, 0)
	}
}

// sorted returns the kept entries in ascending key order.
func (h *topN[T]) sorted() []T {
	out := slices.Clone(h.items)
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(h.key(a), h.key(b)) })
	return out
}
