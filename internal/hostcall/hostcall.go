// Package hostcall serves the calls wasm functions make to the platform:
// their key-value and object buckets, and outbound HTTP. The wasm runtime
// opens one Host per instance (sandbox.Host) and passes it each call's
// operation and arguments; this package checks the call against the
// function version's grants, as they are at the time of the call, and
// performs it.
//
// Operations, their arguments and results (numbers are 8-byte
// little-endian; the SDK in sdk/go is the other side):
//
//	kv.get        bucket key                  -> value revision
//	kv.put        bucket key value            -> revision
//	kv.cas        bucket key value revision   -> revision (revision 0: create)
//	kv.delete     bucket key revision         -> (revision 0: unconditional; a missing key is no error)
//	kv.list       bucket prefix marker        -> next-marker key...
//	obj.put.open  bucket name content-type    -> handle
//	obj.put.write handle chunk                ->
//	obj.put.close handle                      -> size content-type digest
//	obj.put.abort handle                      ->
//	obj.get.open  bucket name                 -> handle size content-type digest
//	obj.get.read  handle max                  -> chunk ("" at the end)
//	obj.get.close handle                      ->
//	obj.delete    bucket name                 ->
//	obj.list      bucket prefix marker        -> next-marker (name size content-type digest)...
//	http.do       method url headers body     -> status headers body
package hostcall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/sandbox"
	"github.com/gustfaas/gust/internal/storage"
)

// Error codes a guest sees (the SDK's Err values match them).
const (
	CodeNotFound     = "NotFound"
	CodeConflict     = "Conflict"
	CodeAccessDenied = "AccessDenied"
	CodeNoSuchBucket = "NoSuchBucket"
	CodeTooLarge     = "TooLarge"
	CodeInvalid      = "Invalid"
	CodeTimeout      = "Timeout"
	CodeUnknownOp    = "UnknownOperation"
	CodeHTTP         = "HTTPError"
)

// Storage is what host calls need of the node's buckets
// (*storage.Store).
type Storage interface {
	KVGet(ctx context.Context, bucket, key string) (storage.Entry, error)
	KVPut(ctx context.Context, bucket, key string, value []byte) (uint64, error)
	KVUpdate(ctx context.Context, bucket, key string, value []byte, revision uint64) (uint64, error)
	KVDelete(ctx context.Context, bucket, key string, revision uint64) error
	KVList(ctx context.Context, bucket string, o storage.ListOptions) (storage.KeyPage, error)
	ObjectPut(ctx context.Context, bucket, name string, r io.Reader, o storage.PutObjectOptions) (storage.ObjectInfo, error)
	ObjectGet(ctx context.Context, bucket, name string) (io.ReadCloser, storage.ObjectInfo, error)
	ObjectDelete(ctx context.Context, bucket, name string) error
	ObjectList(ctx context.Context, bucket string, o storage.ListOptions) (storage.ObjectPage, error)
}

// Functions finds the function version a Host acts for, to read its
// grants at each call (*registry.Registry).
type Functions interface {
	Get(name string) (*registry.Function, bool)
	Version(name, version string) (*registry.Function, bool)
}

// Config configures a Service.
type Config struct {
	Storage   Storage
	Functions Functions
	// MaxResponseBytes caps an outbound response's body (default
	// DefaultMaxResponseBytes).
	MaxResponseBytes int64
	// Transport carries outbound requests (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// DefaultMaxResponseBytes is the outbound response cap: 6 MB, Lambda's
// synchronous payload limit.
const DefaultMaxResponseBytes = 6 << 20

// maxChunk bounds what one obj.get.read returns.
const maxChunk = 1 << 20

// Service opens Hosts. It is safe for concurrent use.
type Service struct {
	cfg    Config
	client *http.Client
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg}
	s.client = &http.Client{Transport: cfg.Transport, CheckRedirect: checkRedirect}
	return s
}

// Close releases idle outbound connections.
func (s *Service) Close() {
	s.client.CloseIdleConnections()
}

// Open returns the Host of one instance of a function version.
func (s *Service) Open(function, version string) sandbox.Host {
	if version == "" {
		version = registry.Latest
	}
	return &host{s: s, function: function, version: version, streams: make(map[uint64]stream)}
}

// host serves one instance. An instance runs one invocation at a time,
// so host is not safe for concurrent use, and needs not be.
type host struct {
	s                 *Service
	function, version string
	next              uint64
	streams           map[uint64]stream
}

// stream is an open object read or write.
type stream interface{ abort() }

// Call implements sandbox.Host.
func (h *host) Call(ctx context.Context, op string, args [][]byte) ([][]byte, error) {
	c, ok := ops[op]
	if !ok {
		return nil, &sandbox.HostError{Code: CodeUnknownOp, Message: fmt.Sprintf("operation %q is not one this node serves", op)}
	}
	if len(args) != c.args {
		return nil, &sandbox.HostError{Code: CodeInvalid, Message: fmt.Sprintf("%s takes %d arguments, got %d", op, c.args, len(args))}
	}
	res, err := c.fn(h, ctx, args)
	if err != nil {
		return nil, h.guestError(op, err)
	}
	return res, nil
}

// Release implements sandbox.Host: streams an invocation left open are
// aborted (an unfinished put stores nothing).
func (h *host) Release() {
	for id, st := range h.streams {
		st.abort()
		delete(h.streams, id)
	}
}

// Close implements sandbox.Host.
func (h *host) Close() { h.Release() }

// op is one operation: how many arguments it takes and what it does.
type op struct {
	args int
	fn   func(h *host, ctx context.Context, args [][]byte) ([][]byte, error)
}

var ops = map[string]op{
	"kv.get":        {2, (*host).kvGet},
	"kv.put":        {3, (*host).kvPut},
	"kv.cas":        {4, (*host).kvCAS},
	"kv.delete":     {3, (*host).kvDelete},
	"kv.list":       {3, (*host).kvList},
	"obj.put.open":  {3, (*host).objPutOpen},
	"obj.put.write": {2, (*host).objPutWrite},
	"obj.put.close": {1, (*host).objPutClose},
	"obj.put.abort": {1, (*host).objPutAbort},
	"obj.get.open":  {2, (*host).objGetOpen},
	"obj.get.read":  {2, (*host).objGetRead},
	"obj.get.close": {1, (*host).objGetClose},
	"obj.delete":    {2, (*host).objDelete},
	"obj.list":      {3, (*host).objList},
	"http.do":       {4, (*host).httpDo},
}

// fn returns the function version the host acts for, as it is now.
func (h *host) fn() (*registry.Function, error) {
	var f *registry.Function
	var ok bool
	if h.version == registry.Latest {
		f, ok = h.s.cfg.Functions.Get(h.function)
	} else {
		f, ok = h.s.cfg.Functions.Version(h.function, h.version)
	}
	if !ok {
		return nil, &sandbox.HostError{Code: CodeAccessDenied, Message: fmt.Sprintf("function %s:%s no longer exists", h.function, h.version)}
	}
	return f, nil
}

// denied is the error for a bucket or host the function was not granted.
func (h *host) denied(what, name, field string) error {
	return &sandbox.HostError{Code: CodeAccessDenied, Message: fmt.Sprintf(
		"function %s is not granted the %s %s: add it to the function's grants (%s)", h.function, what, name, field)}
}

// guestError turns an error into what the guest sees.
func (h *host) guestError(op string, err error) error {
	var he *sandbox.HostError
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(err, storage.ErrNotFound):
		return &sandbox.HostError{Code: CodeNotFound, Message: err.Error()}
	case errors.Is(err, storage.ErrConflict):
		return &sandbox.HostError{Code: CodeConflict, Message: err.Error()}
	case errors.Is(err, storage.ErrNoBucket):
		return &sandbox.HostError{Code: CodeNoSuchBucket, Message: err.Error()}
	case errors.Is(err, storage.ErrTooLarge):
		return &sandbox.HostError{Code: CodeTooLarge, Message: err.Error()}
	case errors.Is(err, storage.ErrInvalid):
		return &sandbox.HostError{Code: CodeInvalid, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &sandbox.HostError{Code: CodeTimeout, Message: op + ": the invocation's deadline passed: " + err.Error()}
	}
	h.s.cfg.Logger.Warn("host call failed", "function", h.function, "op", op, "err", err)
	return fmt.Errorf("%s: %w", op, err)
}

// number decodes an 8-byte little-endian argument.
func number(b []byte, what string) (uint64, error) {
	if len(b) != 8 {
		return 0, &sandbox.HostError{Code: CodeInvalid, Message: fmt.Sprintf("%s must be 8 bytes, got %d", what, len(b))}
	}
	return binary.LittleEndian.Uint64(b), nil
}

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// handle decodes a stream handle argument.
func (h *host) handle(b []byte) (uint64, stream, error) {
	id, err := number(b, "a handle")
	if err != nil {
		return 0, nil, err
	}
	st, ok := h.streams[id]
	if !ok {
		return 0, nil, &sandbox.HostError{Code: CodeInvalid, Message: "handle " + strconv.FormatUint(id, 10) + " is not open"}
	}
	return id, st, nil
}

// open registers a stream and returns its handle.
func (h *host) open(st stream) []byte {
	h.next++
	h.streams[h.next] = st
	return u64(h.next)
}
