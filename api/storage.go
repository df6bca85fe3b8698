package api

import "time"

// Storage paths. Buckets are of two kinds, BucketKV and BucketObjects, and
// are named by 1 to 64 letters, digits, '-' and '_'.
//
//	PUT    BucketsPath/{kind}/{bucket}   create (body: CreateBucketRequest; 409 if it exists)
//	GET    BucketsPath[?kind=kv|objects] list (BucketList); BucketsPath/{kind} lists one kind
//	GET    BucketsPath/{kind}/{bucket}   describe (Bucket, with Count)
//	DELETE BucketsPath/{kind}/{bucket}   delete, with everything in it
//
//	GET    KVPath/{bucket}?prefix=&marker=&limit=  list keys (KVKeyList)
//	GET    KVPath/{bucket}/{key}         the value as the body; HeaderRevision, Last-Modified, HeaderModified
//	PUT    KVPath/{bucket}/{key}         set (body: the value; answer KVPutResult). If-Match: REVISION
//	                                     writes only over that revision, If-None-Match: * only when the
//	                                     key does not exist (else 412 PreconditionFailedException)
//	DELETE KVPath/{bucket}/{key}         delete (If-Match: REVISION as for PUT)
//
//	GET    ObjectsPath/{bucket}?prefix=&marker=&limit=  list objects (ObjectList)
//	GET    ObjectsPath/{bucket}/{name}   the object, streamed; Content-Type, Content-Length,
//	                                     ETag (quoted hex SHA-256), Last-Modified, HeaderModified
//	HEAD   ObjectsPath/{bucket}/{name}   the same headers, no body
//	PUT    ObjectsPath/{bucket}/{name}   store the body under name (Content-Type kept); answer ObjectInfo
//	DELETE ObjectsPath/{bucket}/{name}   delete
//
// Keys and object names are one path segment each, percent-encoded ('/'
// as %2F), or the rest of the path. An object upload may be signed with
// X-Amz-Content-Sha256: UNSIGNED-PAYLOAD, in which case the node streams
// it instead of reading it into memory first.
const (
	BucketsPath = "/gust/v1/buckets"
	KVPath      = "/gust/v1/kv"
	ObjectsPath = "/gust/v1/objects"
)

// Bucket kinds, as in BucketsPath/{kind}.
const (
	BucketKV      = "kv"
	BucketObjects = "objects"
)

// Storage headers.
const (
	// HeaderRevision carries a KV entry's revision.
	HeaderRevision = "X-Gust-Revision"
	// HeaderModified carries the time a KV entry or object was last
	// written, in RFC 3339 with nanoseconds (Last-Modified has seconds).
	HeaderModified = "X-Gust-Modified"
)

// Storage limits.
const (
	// MaxKVKeyLen bounds a KV key, in bytes.
	MaxKVKeyLen = 1024
	// MaxKVValue bounds a KV value, in bytes.
	MaxKVValue = 1 << 20
	// MaxObjectNameLen bounds an object's name, in bytes.
	MaxObjectNameLen = 1024
	// DefaultMaxObjectSize is the largest object a bucket takes unless
	// its MaxObjectSize (or the node's setting) says otherwise.
	DefaultMaxObjectSize = 64 << 20
	// MaxMaxObjectSize bounds a bucket's MaxObjectSize.
	MaxMaxObjectSize = 5 << 30
	// MaxKVHistory bounds how many revisions of a key a bucket keeps.
	MaxKVHistory = 64
	// MaxListLimit bounds one page of keys or objects (also the default).
	MaxListLimit = 1000
)

// CreateBucketRequest is the body of a bucket create; every field is
// optional.
type CreateBucketRequest struct {
	Description string `json:"description,omitempty"`
	// History is how many revisions of each key a KV bucket keeps (1 to
	// MaxKVHistory, default 1). KV buckets only.
	History int `json:"history,omitempty"`
	// TTLSeconds expires entries (objects) that many seconds after they
	// were written (0: never).
	TTLSeconds int64 `json:"ttlSeconds,omitempty"`
	// MaxBytes bounds the bucket's size; a write that would pass it fails
	// (0: unbounded).
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// MaxObjectSize bounds one object, in bytes (0: the node's default,
	// DefaultMaxObjectSize unless configured). Object buckets only.
	MaxObjectSize int64 `json:"maxObjectSize,omitempty"`
}

// Bucket describes a bucket.
type Bucket struct {
	Kind        string    `json:"kind"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
	// Bytes is the storage the bucket uses, history and deletion markers
	// included.
	Bytes uint64 `json:"bytes"`
	// Count is the number of keys (objects) present; only a describe
	// counts them (it reads every key's latest entry), a list leaves it
	// out.
	Count *int64 `json:"count,omitempty"`
	// History is how many revisions of a key a KV bucket keeps.
	History    int   `json:"history,omitempty"`
	TTLSeconds int64 `json:"ttlSeconds,omitempty"`
	// MaxBytes is the bucket's size limit (0: none).
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// MaxValueSize (KV) and MaxObjectSize (objects) bound one entry.
	MaxValueSize  int64 `json:"maxValueSize,omitempty"`
	MaxObjectSize int64 `json:"maxObjectSize,omitempty"`
	Replicas      int   `json:"replicas"`
}

// BucketList is the answer of GET BucketsPath.
type BucketList struct {
	Buckets []Bucket `json:"buckets"`
}

// KVPutResult is the answer of a KV PUT.
type KVPutResult struct {
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	Revision uint64 `json:"revision"`
}

// KVKey is one key of a KV listing.
type KVKey struct {
	Key      string    `json:"key"`
	Revision uint64    `json:"revision"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
}

// KVKeyList is one page of a bucket's keys, in byte order. NextMarker,
// when set, is the marker that fetches the next page.
type KVKeyList struct {
	Keys       []KVKey `json:"keys"`
	NextMarker string  `json:"nextMarker,omitempty"`
}

// KVEntry is a KV key with its value (the CLI's JSON output; the HTTP API
// sends values as raw bodies).
type KVEntry struct {
	Bucket   string    `json:"bucket"`
	Key      string    `json:"key"`
	Value    []byte    `json:"value"`
	Revision uint64    `json:"revision"`
	Modified time.Time `json:"modified"`
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Bucket string `json:"bucket"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	// Digest is the hex SHA-256 of the content (also the ETag).
	Digest      string    `json:"digest"`
	ContentType string    `json:"contentType,omitempty"`
	Modified    time.Time `json:"modified"`
}

// ObjectList is one page of a bucket's objects, in byte order of their
// names.
type ObjectList struct {
	Objects    []ObjectInfo `json:"objects"`
	NextMarker string       `json:"nextMarker,omitempty"`
}

// KVEvent is the event a KV trigger invokes its function with, one per
// change of a key.
type KVEvent struct {
	// Source is always "gust:kv".
	Source string `json:"source"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// Op is "put" or "delete".
	Op string `json:"op"`
	// Revision is the change's revision (unique and increasing within
	// the bucket).
	Revision uint64    `json:"revision"`
	Time     time.Time `json:"time"`
	// Size is the value's length (puts).
	Size int64 `json:"size"`
	// Value is the value (base64 in JSON) when it is at most
	// MaxKVEventValue bytes; a larger one is left out (read it through
	// the API).
	Value []byte `json:"value,omitempty"`
}

// MaxKVEventValue is the largest value a KVEvent carries.
const MaxKVEventValue = 256 << 10
