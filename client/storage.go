package client

// Storage: key-value and object buckets.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gustfaas/gust/api"
)

// unsignedPayload leaves an upload's body out of its signature, so that
// it can stream (the node reads it as it arrives).
const unsignedPayload = "UNSIGNED-PAYLOAD"

func pathOf(base string, rest ...string) []string {
	return append(strings.Split(strings.TrimPrefix(base, "/"), "/"), rest...)
}

func checkBucket(name string) error {
	if name == "" {
		return errors.New("client: bucket name is empty")
	}
	return nil
}

func checkKind(kind string) error {
	if kind == "" {
		return fmt.Errorf("client: bucket kind is empty: want %q or %q", api.BucketKV, api.BucketObjects)
	}
	return nil
}

// checkEntry refuses names the URL path cannot carry.
func checkEntry(bucket, what, name string) error {
	if err := checkBucket(bucket); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("client: %s is empty", what)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("client: %s %q is not allowed", what, name)
	}
	return nil
}

// CreateBucket creates a bucket of kind api.BucketKV or api.BucketObjects.
// One that exists already is an *api.Error with Code
// ResourceConflictException; bad settings, InvalidParameterValueException.
func (c *Client) CreateBucket(ctx context.Context, kind, name string, in api.CreateBucketRequest) (api.Bucket, error) {
	var out api.Bucket
	if err := checkKind(kind); err != nil {
		return out, err
	}
	if err := checkBucket(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPut, pathOf(api.BucketsPath, kind, name), nil, in, &out)
	return out, err
}

// GetBucket describes a bucket, with the number of keys or objects in it.
func (c *Client) GetBucket(ctx context.Context, kind, name string) (api.Bucket, error) {
	var out api.Bucket
	if err := checkKind(kind); err != nil {
		return out, err
	}
	if err := checkBucket(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, pathOf(api.BucketsPath, kind, name), nil, nil, &out)
	return out, err
}

// ListBuckets lists the buckets of kind ("" for both), sorted by kind and
// name.
func (c *Client) ListBuckets(ctx context.Context, kind string) ([]api.Bucket, error) {
	var q url.Values
	if kind != "" {
		q = url.Values{"kind": {kind}}
	}
	var out api.BucketList
	if err := c.doJSON(ctx, http.MethodGet, pathOf(api.BucketsPath), q, nil, &out); err != nil {
		return nil, err
	}
	if out.Buckets == nil {
		out.Buckets = []api.Bucket{}
	}
	return out.Buckets, nil
}

// DeleteBucket deletes a bucket and everything in it.
func (c *Client) DeleteBucket(ctx context.Context, kind, name string) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if err := checkBucket(name); err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, pathOf(api.BucketsPath, kind, name), nil, nil, nil)
}

// modifiedOf reads the time of a write from an answer's headers.
func modifiedOf(h http.Header) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, h.Get(api.HeaderModified)); err == nil {
		return t
	}
	t, _ := http.ParseTime(h.Get("Last-Modified"))
	return t
}

// KVGet returns a key's value and revision; a missing key (or bucket) is
// an *api.Error with Code ResourceNotFoundException.
func (c *Client) KVGet(ctx context.Context, bucket, key string) (api.KVEntry, error) {
	out := api.KVEntry{Bucket: bucket, Key: key}
	if err := checkEntry(bucket, "key", key); err != nil {
		return out, err
	}
	resp, err := c.do(ctx, http.MethodGet, pathOf(api.KVPath, bucket, key), nil, nil, nil)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if out.Value, err = io.ReadAll(io.LimitReader(resp.Body, api.MaxKVValue+1)); err != nil {
		return out, fmt.Errorf("kv get %s/%s: %w", bucket, key, err)
	}
	out.Revision, _ = strconv.ParseUint(resp.Header.Get(api.HeaderRevision), 10, 64)
	out.Modified = modifiedOf(resp.Header)
	return out, nil
}

// kvPut sends a value with the conditional headers h.
func (c *Client) kvPut(ctx context.Context, bucket, key string, value []byte, h http.Header) (uint64, error) {
	if err := checkEntry(bucket, "key", key); err != nil {
		return 0, err
	}
	h.Set("Content-Type", "application/octet-stream")
	resp, err := c.do(ctx, http.MethodPut, pathOf(api.KVPath, bucket, key), nil, h, value)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out api.KVPutResult
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, fmt.Errorf("kv put %s/%s: decode response: %w", bucket, key, err)
	}
	return out.Revision, nil
}

// KVPut sets a key and returns its new revision. A value over
// api.MaxKVValue is an *api.Error with Code RequestTooLargeException.
func (c *Client) KVPut(ctx context.Context, bucket, key string, value []byte) (uint64, error) {
	return c.kvPut(ctx, bucket, key, value, http.Header{})
}

// KVCreate sets a key only if it does not exist; when it does, the error
// is an *api.Error with Code PreconditionFailedException.
func (c *Client) KVCreate(ctx context.Context, bucket, key string, value []byte) (uint64, error) {
	return c.kvPut(ctx, bucket, key, value, http.Header{"If-None-Match": {"*"}})
}

// KVUpdate sets a key only if it is at revision (compare and set; 0 means
// only if it does not exist, as KVCreate); otherwise the error is an
// *api.Error with Code PreconditionFailedException.
func (c *Client) KVUpdate(ctx context.Context, bucket, key string, value []byte, revision uint64) (uint64, error) {
	if revision == 0 {
		return c.KVCreate(ctx, bucket, key, value)
	}
	return c.kvPut(ctx, bucket, key, value, http.Header{"If-Match": {strconv.FormatUint(revision, 10)}})
}

// KVDelete deletes a key; with a revision other than 0, only if the key is
// at that revision. A missing key is ResourceNotFoundException.
func (c *Client) KVDelete(ctx context.Context, bucket, key string, revision uint64) error {
	if err := checkEntry(bucket, "key", key); err != nil {
		return err
	}
	h := http.Header{}
	if revision != 0 {
		h.Set("If-Match", strconv.FormatUint(revision, 10))
	}
	resp, err := c.do(ctx, http.MethodDelete, pathOf(api.KVPath, bucket, key), nil, h, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// ListOptions select one page of keys or objects.
type ListOptions struct {
	// Prefix keeps the keys (names) starting with it.
	Prefix string
	// Marker starts after this key (name): the previous page's
	// NextMarker.
	Marker string
	// Limit is the most entries of the page (0: the node's maximum,
	// api.MaxListLimit).
	Limit int
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.Prefix != "" {
		q.Set("prefix", o.Prefix)
	}
	if o.Marker != "" {
		q.Set("marker", o.Marker)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// KVList returns one page of a bucket's keys, in byte order.
func (c *Client) KVList(ctx context.Context, bucket string, o ListOptions) (api.KVKeyList, error) {
	var out api.KVKeyList
	if err := checkBucket(bucket); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, pathOf(api.KVPath, bucket), o.query(), nil, &out)
	if out.Keys == nil {
		out.Keys = []api.KVKey{}
	}
	return out, err
}

// KVKeys returns every key of a bucket starting with prefix, following
// the pages.
func (c *Client) KVKeys(ctx context.Context, bucket, prefix string) ([]api.KVKey, error) {
	all := []api.KVKey{}
	o := ListOptions{Prefix: prefix}
	for {
		page, err := c.KVList(ctx, bucket, o)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Keys...)
		if page.NextMarker == "" {
			return all, nil
		}
		if page.NextMarker <= o.Marker {
			return nil, fmt.Errorf("kv list %s: server repeated marker %q", bucket, page.NextMarker)
		}
		o.Marker = page.NextMarker
	}
}

// PutObject stores an object of size bytes (-1 if unknown) read from r,
// streaming it (the payload is sent unsigned, as S3 allows, so that
// neither side holds it whole). An object over the bucket's limit is an
// *api.Error with Code RequestTooLargeException, and the previous object
// of that name, if any, stays.
func (c *Client) PutObject(ctx context.Context, bucket, name string, r io.Reader, size int64, contentType string) (api.ObjectInfo, error) {
	var out api.ObjectInfo
	if err := checkEntry(bucket, "object name", name); err != nil {
		return out, err
	}
	h := http.Header{"X-Amz-Content-Sha256": {unsignedPayload}}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	resp, err := c.send(ctx, http.MethodPut, pathOf(api.ObjectsPath, bucket, name), nil, h, r, size, unsignedPayload)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("put object %s/%s: decode response: %w", bucket, name, err)
	}
	return out, nil
}

// PutObjectBytes stores b as an object.
func (c *Client) PutObjectBytes(ctx context.Context, bucket, name string, b []byte, contentType string) (api.ObjectInfo, error) {
	return c.PutObject(ctx, bucket, name, bytes.NewReader(b), int64(len(b)), contentType)
}

// objectOf reads an object's description from a GET or HEAD answer.
func objectOf(bucket, name string, h http.Header, size int64) api.ObjectInfo {
	return api.ObjectInfo{
		Bucket: bucket, Name: name, Size: size, Digest: strings.Trim(h.Get("ETag"), `"`),
		ContentType: h.Get("Content-Type"), Modified: modifiedOf(h),
	}
}

// GetObject opens an object; the caller reads and closes the body, which
// streams from the node. A missing object (or bucket) is an *api.Error
// with Code ResourceNotFoundException.
func (c *Client) GetObject(ctx context.Context, bucket, name string) (io.ReadCloser, api.ObjectInfo, error) {
	if err := checkEntry(bucket, "object name", name); err != nil {
		return nil, api.ObjectInfo{}, err
	}
	resp, err := c.do(ctx, http.MethodGet, pathOf(api.ObjectsPath, bucket, name), nil, nil, nil)
	if err != nil {
		return nil, api.ObjectInfo{}, err
	}
	return resp.Body, objectOf(bucket, name, resp.Header, resp.ContentLength), nil
}

// HeadObject describes an object.
func (c *Client) HeadObject(ctx context.Context, bucket, name string) (api.ObjectInfo, error) {
	if err := checkEntry(bucket, "object name", name); err != nil {
		return api.ObjectInfo{}, err
	}
	resp, err := c.do(ctx, http.MethodHead, pathOf(api.ObjectsPath, bucket, name), nil, nil, nil)
	if err != nil {
		return api.ObjectInfo{}, err
	}
	resp.Body.Close()
	size, _ := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if resp.ContentLength >= 0 {
		size = resp.ContentLength
	}
	return objectOf(bucket, name, resp.Header, size), nil
}

// DeleteObject deletes an object; a missing one is
// ResourceNotFoundException.
func (c *Client) DeleteObject(ctx context.Context, bucket, name string) error {
	if err := checkEntry(bucket, "object name", name); err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, pathOf(api.ObjectsPath, bucket, name), nil, nil, nil)
}

// ListObjects returns one page of a bucket's objects, in byte order of
// their names.
func (c *Client) ListObjects(ctx context.Context, bucket string, o ListOptions) (api.ObjectList, error) {
	var out api.ObjectList
	if err := checkBucket(bucket); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, pathOf(api.ObjectsPath, bucket), o.query(), nil, &out)
	if out.Objects == nil {
		out.Objects = []api.ObjectInfo{}
	}
	return out, err
}

// Objects returns every object of a bucket whose name starts with prefix,
// following the pages.
func (c *Client) Objects(ctx context.Context, bucket, prefix string) ([]api.ObjectInfo, error) {
	all := []api.ObjectInfo{}
	o := ListOptions{Prefix: prefix}
	for {
		page, err := c.ListObjects(ctx, bucket, o)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Objects...)
		if page.NextMarker == "" {
			return all, nil
		}
		if page.NextMarker <= o.Marker {
			return nil, fmt.Errorf("list objects %s: server repeated marker %q", bucket, page.NextMarker)
		}
		o.Marker = page.NextMarker
	}
}
