package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/sigv4"
	"github.com/gustfaas/gust/internal/storage"
)

// Storage actions, for authorization: the path names the bucket with
// {bucket} (function tokens are granted buckets by that name).
const (
	// ActionReadBucket reads keys and objects, lists them, and describes
	// a bucket.
	ActionReadBucket = "gust:ReadBucket"
	// ActionWriteBucket puts and deletes keys and objects.
	ActionWriteBucket = "gust:WriteBucket"
	// ActionManageBuckets creates, lists and deletes buckets.
	ActionManageBuckets = "gust:ManageBuckets"
)

// StorageService is the storage the gateway serves (implemented by
// *storage.Store). Its errors wrap the storage package's sentinels.
type StorageService interface {
	// MaxObjectSize is the node's default largest object, the most an
	// upload whose payload is signed (and so read whole first) may carry.
	MaxObjectSize() int64
	CreateBucket(ctx context.Context, kind, name string, o storage.BucketOptions) (storage.BucketInfo, error)
	Bucket(ctx context.Context, kind, name string) (storage.BucketInfo, error)
	Buckets(ctx context.Context, kind string) ([]storage.BucketInfo, error)
	DeleteBucket(ctx context.Context, kind, name string) error

	KVGet(ctx context.Context, bucket, key string) (storage.Entry, error)
	KVPut(ctx context.Context, bucket, key string, value []byte) (uint64, error)
	KVCreate(ctx context.Context, bucket, key string, value []byte) (uint64, error)
	KVUpdate(ctx context.Context, bucket, key string, value []byte, revision uint64) (uint64, error)
	KVDelete(ctx context.Context, bucket, key string, revision uint64) error
	KVList(ctx context.Context, bucket string, o storage.ListOptions) (storage.KeyPage, error)

	ObjectPut(ctx context.Context, bucket, name string, r io.Reader, o storage.PutObjectOptions) (storage.ObjectInfo, error)
	ObjectGet(ctx context.Context, bucket, name string) (io.ReadCloser, storage.ObjectInfo, error)
	ObjectHead(ctx context.Context, bucket, name string) (storage.ObjectInfo, error)
	ObjectDelete(ctx context.Context, bucket, name string) error
	ObjectList(ctx context.Context, bucket string, o storage.ListOptions) (storage.ObjectPage, error)
}

var _ StorageService = (*storage.Store)(nil)

// storageRoutes registers the bucket, KV and object endpoints (see
// api.BucketsPath).
func (g *Gateway) storageRoutes(route func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte))) {
	bp, kp, op := api.BucketsPath, api.KVPath, api.ObjectsPath
	route("GET "+bp, ActionManageBuckets, 0, g.listBuckets)
	route("GET "+bp+"/{$}", ActionManageBuckets, 0, g.listBuckets)
	route("GET "+bp+"/{kind}", ActionManageBuckets, 0, g.listBuckets)
	route("PUT "+bp+"/{kind}/{bucket}", ActionManageBuckets, 0, g.createBucket)
	route("GET "+bp+"/{kind}/{bucket}", ActionReadBucket, 0, g.describeBucket)
	route("DELETE "+bp+"/{kind}/{bucket}", ActionManageBuckets, 0, g.deleteBucket)

	route("GET "+kp+"/{bucket}", ActionReadBucket, 0, g.listKVKeys)
	route("GET "+kp+"/{bucket}/{key...}", ActionReadBucket, 0, g.getKVKey)
	route("PUT "+kp+"/{bucket}/{key...}", ActionWriteBucket, api.MaxKVValue, g.putKVKey)
	route("DELETE "+kp+"/{bucket}/{key...}", ActionWriteBucket, 0, g.deleteKVKey)

	route("GET "+op+"/{bucket}", ActionReadBucket, 0, g.listObjects)
	route("GET "+op+"/{bucket}/{object...}", ActionReadBucket, 0, g.getObject)
	route("HEAD "+op+"/{bucket}/{object...}", ActionReadBucket, 0, g.headObject)
	route("DELETE "+op+"/{bucket}/{object...}", ActionWriteBucket, 0, g.deleteObject)
	g.mux.HandleFunc("PUT "+op+"/{bucket}/{object...}", g.objectUpload())
}

// storageError maps the storage package's errors to API errors.
func (g *Gateway) storageError(err error) *api.Error {
	e := func(code string, status int) *api.Error {
		return &api.Error{Code: code, Status: status, Message: err.Error()}
	}
	switch {
	case errors.Is(err, storage.ErrInvalid):
		return e(api.ErrInvalidParameterValue, http.StatusBadRequest)
	case errors.Is(err, storage.ErrNoBucket), errors.Is(err, storage.ErrNotFound):
		return e(api.ErrResourceNotFound, http.StatusNotFound)
	case errors.Is(err, storage.ErrExists):
		return e(api.ErrResourceConflict, http.StatusConflict)
	case errors.Is(err, storage.ErrConflict):
		return e(api.ErrPreconditionFailed, http.StatusPreconditionFailed)
	case errors.Is(err, storage.ErrTooLarge):
		return e(api.ErrRequestTooLarge, http.StatusRequestEntityTooLarge)
	}
	return g.apiError(err, "")
}

func badRequest(format string, args ...any) *api.Error {
	return &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func bucketJSON(b storage.BucketInfo) api.Bucket {
	out := api.Bucket{
		Kind: b.Kind, Name: b.Name, Description: b.Description, Created: b.Created.UTC(), Bytes: b.Bytes,
		History: b.History, TTLSeconds: int64(b.TTL / time.Second), MaxBytes: b.MaxBytes,
		MaxValueSize: b.MaxValueSize, MaxObjectSize: b.MaxObjectSize, Replicas: b.Replicas,
	}
	if b.Count >= 0 {
		n := b.Count
		out.Count = &n
	}
	return out
}

func (g *Gateway) listBuckets(w http.ResponseWriter, r *http.Request, _ []byte) {
	kind := r.PathValue("kind")
	if kind == "" {
		kind = r.URL.Query().Get("kind")
	}
	list, err := g.cfg.Storage.Buckets(r.Context(), kind)
	if err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	out := api.BucketList{Buckets: make([]api.Bucket, 0, len(list))}
	for _, b := range list {
		out.Buckets = append(out.Buckets, bucketJSON(b))
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) createBucket(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.CreateBucketRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	if req.TTLSeconds < 0 || req.TTLSeconds > int64(100*365*24*time.Hour/time.Second) {
		g.writeError(w, r, badRequest("ttlSeconds %d: want 0 (never expire) or a number of seconds", req.TTLSeconds))
		return
	}
	b, err := g.cfg.Storage.CreateBucket(r.Context(), r.PathValue("kind"), r.PathValue("bucket"), storage.BucketOptions{
		Description: req.Description, History: req.History, TTL: time.Duration(req.TTLSeconds) * time.Second,
		MaxBytes: req.MaxBytes, MaxObjectSize: req.MaxObjectSize,
	})
	if err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	writeJSON(w, http.StatusCreated, bucketJSON(b))
}

func (g *Gateway) describeBucket(w http.ResponseWriter, r *http.Request, _ []byte) {
	b, err := g.cfg.Storage.Bucket(r.Context(), r.PathValue("kind"), r.PathValue("bucket"))
	if err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	writeJSON(w, http.StatusOK, bucketJSON(b))
}

func (g *Gateway) deleteBucket(w http.ResponseWriter, r *http.Request, _ []byte) {
	if err := g.cfg.Storage.DeleteBucket(r.Context(), r.PathValue("kind"), r.PathValue("bucket")); err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listOptions reads ?prefix=&marker=&limit=.
func listOptions(r *http.Request) (storage.ListOptions, *api.Error) {
	q := r.URL.Query()
	o := storage.ListOptions{Prefix: q.Get("prefix"), Marker: q.Get("marker")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > api.MaxListLimit {
			return o, badRequest("limit %q: want a number from 1 to %d", s, api.MaxListLimit)
		}
		o.Limit = n
	}
	return o, nil
}

// setModified sets Last-Modified and the precise api.HeaderModified.
func setModified(h http.Header, t time.Time) {
	if t.IsZero() {
		return
	}
	h.Set("Last-Modified", t.UTC().Format(http.TimeFormat))
	h.Set(api.HeaderModified, t.UTC().Format(time.RFC3339Nano))
}

// revisionHeader parses If-Match (a revision, bare or quoted as an ETag).
func revisionHeader(r *http.Request) (uint64, *api.Error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(strings.Trim(v, `"`), 10, 64)
	if err != nil || n == 0 {
		return 0, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("If-Match %q: want the revision the key must be at (%s of a read)", v, api.HeaderRevision)}
	}
	return n, nil
}

func (g *Gateway) listKVKeys(w http.ResponseWriter, r *http.Request, _ []byte) {
	o, aerr := listOptions(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	page, err := g.cfg.Storage.KVList(r.Context(), r.PathValue("bucket"), o)
	if err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	out := api.KVKeyList{Keys: make([]api.KVKey, 0, len(page.Keys)), NextMarker: page.NextMarker}
	for _, k := range page.Keys {
		out.Keys = append(out.Keys, api.KVKey{Key: k.Key, Revision: k.Revision, Size: k.Size, Modified: k.Modified.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) getKVKey(w http.ResponseWriter, r *http.Request, b []byte) {
	key := r.PathValue("key")
	if key == "" {
		g.listKVKeys(w, r, b)
		return
	}
	e, err := g.cfg.Storage.KVGet(r.Context(), r.PathValue("bucket"), key)
	if err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	h := w.Header()
	rev := strconv.FormatUint(e.Revision, 10)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(e.Value)))
	h.Set(api.HeaderRevision, rev)
	h.Set("ETag", `"`+rev+`"`)
	setModified(h, e.Modified)
	w.WriteHeader(http.StatusOK)
	w.Write(e.Value)
}

func (g *Gateway) putKVKey(w http.ResponseWriter, r *http.Request, body []byte) {
	bucket, key := r.PathValue("bucket"), r.PathValue("key")
	rev, aerr := revisionHeader(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	inm := strings.TrimSpace(r.Header.Get("If-None-Match"))
	if inm != "" && inm != "*" {
		g.writeError(w, r, badRequest("If-None-Match %q: only * (create the key only if it does not exist) is supported", inm))
		return
	}
	if inm == "*" && rev != 0 {
		g.writeError(w, r, badRequest("If-Match and If-None-Match exclude each other"))
		return
	}
	var n uint64
	var err error
	switch {
	case inm == "*":
		n, err = g.cfg.Storage.KVCreate(r.Context(), bucket, key, body)
	case rev != 0:
		n, err = g.cfg.Storage.KVUpdate(r.Context(), bucket, key, body, rev)
	default:
		n, err = g.cfg.Storage.KVPut(r.Context(), bucket, key, body)
	}
	if err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	w.Header().Set(api.HeaderRevision, strconv.FormatUint(n, 10))
	w.Header().Set("ETag", `"`+strconv.FormatUint(n, 10)+`"`)
	writeJSON(w, http.StatusOK, api.KVPutResult{Bucket: bucket, Key: key, Revision: n})
}

func (g *Gateway) deleteKVKey(w http.ResponseWriter, r *http.Request, _ []byte) {
	rev, aerr := revisionHeader(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	if err := g.cfg.Storage.KVDelete(r.Context(), r.PathValue("bucket"), r.PathValue("key"), rev); err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func objectJSON(o storage.ObjectInfo) api.ObjectInfo {
	return api.ObjectInfo{Bucket: o.Bucket, Name: o.Name, Size: o.Size, Digest: o.Digest, ContentType: o.ContentType, Modified: o.Modified.UTC()}
}

func (g *Gateway) listObjects(w http.ResponseWriter, r *http.Request, _ []byte) {
	o, aerr := listOptions(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	page, err := g.cfg.Storage.ObjectList(r.Context(), r.PathValue("bucket"), o)
	if err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	out := api.ObjectList{Objects: make([]api.ObjectInfo, 0, len(page.Objects)), NextMarker: page.NextMarker}
	for _, in := range page.Objects {
		out.Objects = append(out.Objects, objectJSON(in))
	}
	writeJSON(w, http.StatusOK, out)
}

// objectHeaders describes an object in a GET or HEAD answer.
func objectHeaders(h http.Header, in storage.ObjectInfo) {
	ct := in.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.FormatInt(in.Size, 10))
	h.Set("ETag", `"`+in.Digest+`"`)
	setModified(h, in.Modified)
}

func (g *Gateway) deleteObject(w http.ResponseWriter, r *http.Request, _ []byte) {
	if err := g.cfg.Storage.ObjectDelete(r.Context(), r.PathValue("bucket"), r.PathValue("object")); err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) headObject(w http.ResponseWriter, r *http.Request, _ []byte) {
	in, err := g.cfg.Storage.ObjectHead(r.Context(), r.PathValue("bucket"), r.PathValue("object"))
	if err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	objectHeaders(w.Header(), in)
	w.WriteHeader(http.StatusOK)
}

func (g *Gateway) getObject(w http.ResponseWriter, r *http.Request, b []byte) {
	name := r.PathValue("object")
	if name == "" {
		g.listObjects(w, r, b)
		return
	}
	rc, in, err := g.cfg.Storage.ObjectGet(r.Context(), r.PathValue("bucket"), name)
	if err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	defer rc.Close()
	objectHeaders(w.Header(), in)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, rc); err != nil && r.Context().Err() == nil {
		// The status is sent: cut the connection so that the client
		// sees a short body, not a complete one.
		g.log.Error("object read failed mid-stream", "bucket", in.Bucket, "object", name, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// uploadBody carries an upload's unread body past signed().
type uploadBody struct{}

// objectUpload serves object PUTs. A payload signed with its SHA-256 is
// read whole (up to the node's default object size) to check the
// signature; one sent as UNSIGNED-PAYLOAD, or with a function's bearer
// token, is streamed into the bucket as it arrives (up to the bucket's own
// limit): signed() then sees an empty body and checks the headers alone.
func (g *Gateway) objectUpload() http.HandlerFunc {
	buffered := g.signed(ActionWriteBucket, g.cfg.Storage.MaxObjectSize(), g.putObject)
	streamed := g.signed(ActionWriteBucket, api.MaxMaxObjectSize, g.putObject)
	return func(w http.ResponseWriter, r *http.Request) {
		_, bearer := bearerToken(r)
		if !bearer && r.Header.Get(sigv4.HeaderContentSHA256) != sigv4.UnsignedPayload {
			buffered(w, r)
			return
		}
		rs := r.WithContext(context.WithValue(r.Context(), uploadBody{}, r.Body))
		rs.Body = http.NoBody
		streamed(w, rs)
	}
}

func (g *Gateway) putObject(w http.ResponseWriter, r *http.Request, body []byte) {
	var src io.Reader = bytes.NewReader(body)
	size := int64(len(body))
	if rb, ok := r.Context().Value(uploadBody{}).(io.Reader); ok {
		src, size = rb, r.ContentLength
	}
	in, err := g.cfg.Storage.ObjectPut(r.Context(), r.PathValue("bucket"), r.PathValue("object"), src,
		storage.PutObjectOptions{ContentType: r.Header.Get("Content-Type"), Size: size})
	if err != nil {
		g.writeError(w, r, g.storageError(err))
		return
	}
	w.Header().Set("ETag", `"`+in.Digest+`"`)
	writeJSON(w, http.StatusOK, objectJSON(in))
}
