// Package storage owns the state functions keep outside themselves: named
// key-value buckets and object buckets, built on the node's JetStream (KV
// buckets and object stores), and the change feed triggers read.
//
// Buckets are created explicitly (CreateBucket), listed, described and
// deleted; using a bucket that does not exist fails with ErrNoBucket.
// Their names are 1 to 64 letters, digits, '-' and '_', and they live in
// JetStream under prefixed names so they cannot collide with Gust's own
// buckets (all named gust_*):
//
//   - KV bucket NAME is the JetStream KV bucket ukv_NAME (stream
//     KV_ukv_NAME, subjects $KV.ukv_NAME.KEY).
//   - Object bucket NAME is the JetStream object store uobj_NAME (stream
//     OBJ_uobj_NAME, chunks on $O.uobj_NAME.C.NUID, metadata on
//     $O.uobj_NAME.M.BASE64(NAME)). Its largest object is kept in the
//     stream's metadata (gust_max_object_size).
//
// Both are file-backed with the configured number of replicas.
//
// KV keys are 1 to 1024 bytes of letters, digits and - / _ = . (the
// characters NATS KV accepts), neither starting nor ending with '.' and
// without "..", and values are at most 1 MiB. Object names are 1 to 1024
// bytes of UTF-8 without control characters (and not "." or ".."); an
// object is streamed in and out in 128 KiB chunks, never held whole in
// memory, and a put that fails (too large, cut short) leaves the previous
// object under that name as it was: JetStream's object store publishes an
// object's metadata, which makes it visible, only after all its chunks,
// and purges the partial chunks of a failed put.
//
// Listings are sorted by key (name), paginated with a marker, and read
// the bucket through an ordered consumer keeping only the page in memory.
//
// # Change feed
//
// Consume delivers a bucket's changes in order through a durable
// JetStream consumer, for triggers. It reads the bucket's own stream, so
// a consumer that falls behind sees, of a key changed several times
// meanwhile, the revisions the bucket keeps (its history; the latest
// state of an object). Two event shapes are built from its
// Events: S3Event, an S3 event notification (as events.S3Event of
// aws-lambda-go decodes it), for object buckets; and KVEvent for KV
// buckets:
//
//	{"source":"gust:kv","bucket":"b","key":"k","op":"put"|"delete",
//	 "revision":12,"time":"2026-01-02T03:04:05.123Z","size":5,"value":"aGVsbG8="}
//
// where value (base64) is present for puts of at most 256 KiB
// (api.MaxKVEventValue) and size is the value's length.
//
// A Store is safe for concurrent use.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
)

// Bucket kinds.
const (
	KindKV      = api.BucketKV      // "kv"
	KindObjects = api.BucketObjects // "objects"
)

// Name prefixes in JetStream.
const (
	kvPrefix     = "ukv_"
	objPrefix    = "uobj_"
	kvStreamPre  = "KV_" + kvPrefix
	objStreamPre = "OBJ_" + objPrefix
	// metaMaxObjectSize is the stream metadata key of an object bucket's
	// largest object.
	metaMaxObjectSize = "gust_max_object_size"
	// kvHeaderSlack is room for the headers of a conditional write on top
	// of the largest value, in the stream's message size limit.
	kvHeaderSlack = 4 << 10
)

// MaxNameLen bounds a bucket's name.
const MaxNameLen = 64

// Errors, wrapped with a message naming the bucket, key or limit.
var (
	// ErrNoBucket: the bucket does not exist.
	ErrNoBucket = errors.New("bucket does not exist")
	// ErrExists: a bucket of that name (and kind) exists already.
	ErrExists = errors.New("bucket already exists")
	// ErrNotFound: no such key or object.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a conditional write found another revision (or the
	// key present when it had to be absent).
	ErrConflict = errors.New("conflict")
	// ErrTooLarge: a value or object over its limit, or a full bucket.
	ErrTooLarge = errors.New("too large")
	// ErrInvalid: a bad bucket name, key, object name or option.
	ErrInvalid = errors.New("invalid")
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Substrate is what the store needs from the substrate.
type Substrate interface {
	JetStream() jetstream.JetStream
}

// Config tunes a Store; the zero value is usable.
type Config struct {
	// MaxObjectSize is the largest object of a bucket created without
	// its own limit (default api.DefaultMaxObjectSize).
	MaxObjectSize int64
	// Replicas is the number of copies of each bucket (default 1).
	Replicas int
	// AckWait is how long Consume's handler may hold an event without
	// telling the server it is still working on it; after it (a node
	// died) the event goes to another consumer (default 30s).
	AckWait time.Duration
	// RetryMin and RetryMax bound the backoff before an event whose
	// handler failed is delivered again (default 1s and 1m).
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
}

// Store is the storage of one node (or of every node sharing the
// JetStream).
type Store struct {
	js  jetstream.JetStream
	cfg Config
	log *slog.Logger

	mu  sync.Mutex
	kvs map[string]jetstream.KeyValue // by user-facing name
}

// Open returns a Store on sub's JetStream.
func Open(ctx context.Context, sub Substrate, cfg Config) (*Store, error) {
	if cfg.MaxObjectSize <= 0 {
		cfg.MaxObjectSize = api.DefaultMaxObjectSize
	}
	if cfg.MaxObjectSize > api.MaxMaxObjectSize {
		return nil, fmt.Errorf("storage: the node's largest object, %d bytes, is over the limit of %d", cfg.MaxObjectSize, int64(api.MaxMaxObjectSize))
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = time.Minute
	}
	cfg.RetryMax = max(cfg.RetryMax, cfg.RetryMin)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	js := sub.JetStream()
	if _, err := js.AccountInfo(ctx); err != nil {
		return nil, fmt.Errorf("storage: jetstream: %w", err)
	}
	return &Store{js: js, cfg: cfg, log: cfg.Logger, kvs: map[string]jetstream.KeyValue{}}, nil
}

// MaxObjectSize is the largest object of a bucket created without its own
// limit.
func (s *Store) MaxObjectSize() int64 { return s.cfg.MaxObjectSize }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ValidateBucketName checks a bucket's user-facing name.
func ValidateBucketName(name string) error {
	if name == "" || len(name) > MaxNameLen || !nameRE.MatchString(name) {
		return invalidf("bucket name %q: use 1 to %d letters, digits, '-' or '_'", name, MaxNameLen)
	}
	return nil
}

// kindOf checks a bucket kind ("object" is taken for "objects").
func kindOf(kind string) (string, error) {
	switch kind {
	case KindKV:
		return KindKV, nil
	case KindObjects, "object":
		return KindObjects, nil
	}
	return "", invalidf("bucket kind %q: want %q or %q", kind, KindKV, KindObjects)
}

// noun names a kind in messages.
func noun(kind string) string {
	if kind == KindKV {
		return "kv bucket"
	}
	return "object bucket"
}

func streamName(kind, name string) string {
	if kind == KindKV {
		return kvStreamPre + name
	}
	return objStreamPre + name
}

func noBucket(kind, name string) error {
	return fmt.Errorf("%s %q: %w", noun(kind), name, ErrNoBucket)
}

// gone reports whether err says a bucket's stream is missing.
func gone(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// full reports whether err is a write refused because the bucket is at
// its size limit.
func full(err error) bool {
	// JetStream reports it as a store failure (10077) described so.
	return err != nil && strings.Contains(err.Error(), "maximum bytes exceeded")
}

// BucketOptions are a new bucket's settings; the zero value is usable.
type BucketOptions struct {
	Description string
	// History is how many revisions of each key a KV bucket keeps (1 to
	// api.MaxKVHistory; 0 means 1). KV only.
	History int
	// TTL expires entries and objects that long after they were written
	// (0: never; else at least a second).
	TTL time.Duration
	// MaxBytes bounds the bucket's size (0: unbounded).
	MaxBytes int64
	// MaxObjectSize bounds one object (0: the store's default). Objects
	// only.
	MaxObjectSize int64
}

// BucketInfo describes a bucket.
type BucketInfo struct {
	Kind, Name, Description string
	Created                 time.Time
	// Bytes is the storage used, history and deletion markers included.
	Bytes uint64
	// Count is the number of keys or objects present, or -1 when it was
	// not counted (Buckets does not count).
	Count         int64
	History       int
	TTL           time.Duration
	MaxBytes      int64 // 0: unbounded
	MaxValueSize  int64 // KV
	MaxObjectSize int64 // objects
	Replicas      int
}

func (s *Store) checkOptions(kind string, o BucketOptions) error {
	switch {
	case len(o.Description) > 1024:
		return invalidf("description: %d bytes is over the limit of 1024", len(o.Description))
	case o.History < 0 || o.History > api.MaxKVHistory:
		return invalidf("history %d: a kv bucket keeps 1 to %d revisions of a key", o.History, api.MaxKVHistory)
	case o.History != 0 && kind != KindKV:
		return invalidf("history applies to kv buckets only")
	case o.TTL < 0 || o.TTL > 0 && o.TTL < time.Second:
		return invalidf("ttl %s: want 0 (never expire) or at least 1s", o.TTL)
	case o.MaxBytes < 0:
		return invalidf("max bytes %d: want 0 (unbounded) or a positive size", o.MaxBytes)
	case o.MaxObjectSize != 0 && kind != KindObjects:
		return invalidf("max object size applies to object buckets only")
	case o.MaxObjectSize < 0 || o.MaxObjectSize > api.MaxMaxObjectSize:
		return invalidf("max object size %d: want 1 to %d bytes, or 0 for the node's default (%d)", o.MaxObjectSize, int64(api.MaxMaxObjectSize), s.cfg.MaxObjectSize)
	case kind == KindKV && o.MaxBytes > 0 && o.MaxBytes < api.MaxKVValue+kvHeaderSlack:
		return invalidf("max bytes %d: a kv bucket takes at least %d bytes (one value of the largest size)", o.MaxBytes, api.MaxKVValue+kvHeaderSlack)
	}
	return nil
}

// CreateBucket creates a bucket of kind (KindKV or KindObjects). A bucket
// of that kind and name existing already is ErrExists.
func (s *Store) CreateBucket(ctx context.Context, kind, name string, o BucketOptions) (BucketInfo, error) {
	kind, err := kindOf(kind)
	if err != nil {
		return BucketInfo{}, err
	}
	if err := ValidateBucketName(name); err != nil {
		return BucketInfo{}, err
	}
	if err := s.checkOptions(kind, o); err != nil {
		return BucketInfo{}, err
	}
	exists := fmt.Errorf("%s %q: %w", noun(kind), name, ErrExists)
	if _, err := s.js.Stream(ctx, streamName(kind, name)); err == nil {
		return BucketInfo{}, exists
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return BucketInfo{}, fmt.Errorf("create %s %q: %w", noun(kind), name, err)
	}
	switch kind {
	case KindKV:
		history := o.History
		if history == 0 {
			history = 1
		}
		_, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: kvPrefix + name, Description: o.Description, MaxValueSize: api.MaxKVValue + kvHeaderSlack,
			History: uint8(history), TTL: o.TTL, MaxBytes: o.MaxBytes, Storage: jetstream.FileStorage, Replicas: s.cfg.Replicas,
		})
	default:
		maxObj := o.MaxObjectSize
		if maxObj == 0 {
			maxObj = s.cfg.MaxObjectSize
		}
		_, err = s.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: objPrefix + name, Description: o.Description, TTL: o.TTL, MaxBytes: o.MaxBytes,
			Storage: jetstream.FileStorage, Replicas: s.cfg.Replicas,
			Metadata: map[string]string{metaMaxObjectSize: strconv.FormatInt(maxObj, 10)},
		})
	}
	if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return BucketInfo{}, exists
	}
	if err != nil {
		return BucketInfo{}, fmt.Errorf("create %s %q: %w", noun(kind), name, err)
	}
	st, err := s.js.Stream(ctx, streamName(kind, name))
	if err != nil {
		return BucketInfo{}, fmt.Errorf("create %s %q: %w", noun(kind), name, err)
	}
	info := s.bucketInfo(kind, name, st.CachedInfo())
	info.Count = 0
	return info, nil
}

// bucketInfo describes a bucket from its stream (Count -1).
func (s *Store) bucketInfo(kind, name string, si *jetstream.StreamInfo) BucketInfo {
	b := BucketInfo{
		Kind: kind, Name: name, Description: si.Config.Description, Created: si.Created,
		Bytes: si.State.Bytes, Count: -1, TTL: si.Config.MaxAge, MaxBytes: max(si.Config.MaxBytes, 0),
		Replicas: max(si.Config.Replicas, 1),
	}
	if kind == KindKV {
		b.History = int(si.Config.MaxMsgsPerSubject)
		b.MaxValueSize = api.MaxKVValue
	} else {
		b.MaxObjectSize = s.maxObjectSize(si)
	}
	return b
}

// maxObjectSize reads an object bucket's limit from its stream.
func (s *Store) maxObjectSize(si *jetstream.StreamInfo) int64 {
	if n, err := strconv.ParseInt(si.Config.Metadata[metaMaxObjectSize], 10, 64); err == nil && n > 0 {
		return n
	}
	return s.cfg.MaxObjectSize
}

// Bucket describes a bucket, counting its keys or objects (which reads
// the latest entry of each).
func (s *Store) Bucket(ctx context.Context, kind, name string) (BucketInfo, error) {
	kind, err := kindOf(kind)
	if err != nil {
		return BucketInfo{}, err
	}
	if err := ValidateBucketName(name); err != nil {
		return BucketInfo{}, err
	}
	st, err := s.js.Stream(ctx, streamName(kind, name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return BucketInfo{}, noBucket(kind, name)
	}
	if err != nil {
		return BucketInfo{}, fmt.Errorf("describe %s %q: %w", noun(kind), name, err)
	}
	info := s.bucketInfo(kind, name, st.CachedInfo())
	var n int64
	count := func(string, entryMeta) error { n++; return nil }
	if kind == KindKV {
		err = s.scanKV(ctx, name, "", count)
	} else {
		err = s.scanObjects(ctx, name, func(string, objectMeta) error { n++; return nil })
	}
	if err != nil {
		return BucketInfo{}, err
	}
	info.Count = n
	return info, nil
}

// Buckets lists the buckets of kind ("" for both), sorted by kind and
// name, without counting their contents (Count is -1).
func (s *Store) Buckets(ctx context.Context, kind string) ([]BucketInfo, error) {
	if kind != "" {
		var err error
		if kind, err = kindOf(kind); err != nil {
			return nil, err
		}
	}
	out := []BucketInfo{}
	lister := s.js.ListStreams(ctx)
	for si := range lister.Info() {
		var k, name string
		switch {
		case strings.HasPrefix(si.Config.Name, kvStreamPre):
			k, name = KindKV, strings.TrimPrefix(si.Config.Name, kvStreamPre)
		case strings.HasPrefix(si.Config.Name, objStreamPre):
			k, name = KindObjects, strings.TrimPrefix(si.Config.Name, objStreamPre)
		default:
			continue
		}
		if kind != "" && k != kind || ValidateBucketName(name) != nil {
			continue
		}
		out = append(out, s.bucketInfo(k, name, si))
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	slices.SortFunc(out, func(a, b BucketInfo) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// DeleteBucket deletes a bucket and everything in it (and the consumers
// reading its changes).
func (s *Store) DeleteBucket(ctx context.Context, kind, name string) error {
	kind, err := kindOf(kind)
	if err != nil {
		return err
	}
	if err := ValidateBucketName(name); err != nil {
		return err
	}
	if kind == KindKV {
		s.forget(name)
	}
	err = s.js.DeleteStream(ctx, streamName(kind, name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return noBucket(kind, name)
	}
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", noun(kind), name, err)
	}
	return nil
}

// kv returns the KV bucket name, from the cache when it was opened before.
func (s *Store) kv(ctx context.Context, name string) (jetstream.KeyValue, error) {
	if err := ValidateBucketName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	kv, ok := s.kvs[name]
	s.mu.Unlock()
	if ok {
		return kv, nil
	}
	kv, err := s.js.KeyValue(ctx, kvPrefix+name)
	if gone(err) {
		return nil, noBucket(KindKV, name)
	}
	if err != nil {
		return nil, fmt.Errorf("kv bucket %q: %w", name, err)
	}
	s.mu.Lock()
	s.kvs[name] = kv
	s.mu.Unlock()
	return kv, nil
}

// forget drops a cached KV bucket (deleted, here or elsewhere).
func (s *Store) forget(name string) {
	s.mu.Lock()
	delete(s.kvs, name)
	s.mu.Unlock()
}

// objects opens the object bucket name and returns its object size limit.
func (s *Store) objects(ctx context.Context, name string) (jetstream.ObjectStore, int64, error) {
	if err := ValidateBucketName(name); err != nil {
		return nil, 0, err
	}
	st, err := s.js.Stream(ctx, objStreamPre+name)
	if gone(err) {
		return nil, 0, noBucket(KindObjects, name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("object bucket %q: %w", name, err)
	}
	obs, err := s.js.ObjectStore(ctx, objPrefix+name)
	if gone(err) {
		return nil, 0, noBucket(KindObjects, name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("object bucket %q: %w", name, err)
	}
	return obs, s.maxObjectSize(st.CachedInfo()), nil
}
