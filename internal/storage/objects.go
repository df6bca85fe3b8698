package storage

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
)

// maxContentType bounds a stored content type.
const maxContentType = 256

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Bucket, Name string
	Size         int64
	// Digest is the hex SHA-256 of the content.
	Digest      string
	ContentType string
	Modified    time.Time
}

// PutObjectOptions are the optional parts of an object put.
type PutObjectOptions struct {
	// ContentType is stored with the object (default
	// application/octet-stream).
	ContentType string
	// Size, when positive, is the object's size as announced (a
	// Content-Length): an object announced over the bucket's limit is
	// refused before anything is read. 0 or less: unknown.
	Size int64
}

// objectMeta is what a listing knows of an object.
type objectMeta = ObjectInfo

// ValidateObjectName checks an object's name.
func ValidateObjectName(name string) error {
	switch {
	case name == "":
		return invalidf("object name is empty")
	case len(name) > api.MaxObjectNameLen:
		return invalidf("object name %.40q...: %d bytes is over the limit of %d", name, len(name), api.MaxObjectNameLen)
	case !utf8.ValidString(name):
		return invalidf("object name %q is not valid UTF-8", name)
	case name == "." || name == "..":
		return invalidf("object name %q is not allowed", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return invalidf("object name %q holds a control character", name)
	}
	return nil
}

func validateContentType(ct string) error {
	if len(ct) > maxContentType || strings.ContainsFunc(ct, unicode.IsControl) {
		return invalidf("content type %.64q: want at most %d printable bytes", ct, maxContentType)
	}
	return nil
}

// objectError turns a JetStream error on an object into the package's.
func objectError(err error, op, bucket, name string) error {
	switch {
	case err == nil:
		return nil
	case gone(err):
		return noBucket(KindObjects, bucket)
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return fmt.Errorf("object %q in object bucket %q: %w", name, bucket, ErrNotFound)
	case full(err):
		return fmt.Errorf("%w: object bucket %q is full (it is at its max bytes)", ErrTooLarge, bucket)
	}
	return fmt.Errorf("%s object %q in object bucket %q: %w", op, name, bucket, err)
}

// hexDigest turns JetStream's "SHA-256=<base64url>" into hex.
func hexDigest(d string) string {
	_, b64, ok := strings.Cut(d, "=")
	if !ok {
		return ""
	}
	sum, err := base64.URLEncoding.DecodeString(b64)
	if err != nil {
		return ""
	}
	return hex.EncodeToString(sum)
}

func objectInfo(bucket string, in *jetstream.ObjectInfo) ObjectInfo {
	return ObjectInfo{
		Bucket: bucket, Name: in.Name, Size: int64(in.Size), Digest: hexDigest(in.Digest),
		ContentType: in.Headers.Get("Content-Type"), Modified: in.ModTime,
	}
}

// errOverLimit ends the read of an object over its bucket's limit.
var errOverLimit = errors.New("object over its limit")

// limitReader reads r, failing once more than left bytes came.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, errOverLimit
	}
	return n, err
}

// ObjectPut stores what r yields under name, streaming it in chunks, and
// replaces the previous object of that name only once the whole object is
// stored. An object over the bucket's limit is ErrTooLarge and leaves the
// previous one as it was.
func (s *Store) ObjectPut(ctx context.Context, bucket, name string, r io.Reader, o PutObjectOptions) (ObjectInfo, error) {
	if err := ValidateObjectName(name); err != nil {
		return ObjectInfo{}, err
	}
	if o.ContentType == "" {
		o.ContentType = "application/octet-stream"
	}
	if err := validateContentType(o.ContentType); err != nil {
		return ObjectInfo{}, err
	}
	obs, limit, err := s.objects(ctx, bucket)
	if err != nil {
		return ObjectInfo{}, err
	}
	tooLarge := func(size string) error {
		return fmt.Errorf("%w: object %q is %sover the limit of %d bytes of object bucket %q", ErrTooLarge, name, size, limit, bucket)
	}
	if o.Size > limit {
		return ObjectInfo{}, tooLarge(fmt.Sprintf("%d bytes, ", o.Size))
	}
	meta := jetstream.ObjectMeta{Name: name, Headers: nats.Header{"Content-Type": {o.ContentType}}}
	in, err := obs.Put(ctx, meta, &limitReader{r: r, left: limit})
	if errors.Is(err, errOverLimit) {
		return ObjectInfo{}, tooLarge("")
	}
	if err != nil {
		return ObjectInfo{}, objectError(err, "put", bucket, name)
	}
	// The server's time of the write, if no other put came since.
	if cur, err := obs.GetInfo(ctx, name); err == nil && cur.NUID == in.NUID {
		in = cur
	}
	return objectInfo(bucket, in), nil
}

// ObjectHead describes an object; a missing one is ErrNotFound.
func (s *Store) ObjectHead(ctx context.Context, bucket, name string) (ObjectInfo, error) {
	if err := ValidateObjectName(name); err != nil {
		return ObjectInfo{}, err
	}
	obs, _, err := s.objects(ctx, bucket)
	if err != nil {
		return ObjectInfo{}, err
	}
	in, err := obs.GetInfo(ctx, name)
	if err != nil {
		return ObjectInfo{}, objectError(err, "read", bucket, name)
	}
	return objectInfo(bucket, in), nil
}

// ObjectGet opens an object for reading; the caller closes the reader.
// The content streams from the bucket as it is read, and a read that
// reaches the end checks the digest.
func (s *Store) ObjectGet(ctx context.Context, bucket, name string) (io.ReadCloser, ObjectInfo, error) {
	if err := ValidateObjectName(name); err != nil {
		return nil, ObjectInfo{}, err
	}
	obs, _, err := s.objects(ctx, bucket)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	res, err := obs.Get(ctx, name)
	if err != nil {
		return nil, ObjectInfo{}, objectError(err, "read", bucket, name)
	}
	in, err := res.Info()
	if err != nil {
		res.Close()
		return nil, ObjectInfo{}, objectError(err, "read", bucket, name)
	}
	return res, objectInfo(bucket, in), nil
}

// ObjectDelete deletes an object; a missing one is ErrNotFound.
func (s *Store) ObjectDelete(ctx context.Context, bucket, name string) error {
	if err := ValidateObjectName(name); err != nil {
		return err
	}
	obs, _, err := s.objects(ctx, bucket)
	if err != nil {
		return err
	}
	// JetStream's Delete marks a deleted object deleted again: look first.
	if _, err := obs.GetInfo(ctx, name); err != nil {
		return objectError(err, "delete", bucket, name)
	}
	return objectError(obs.Delete(ctx, name), "delete", bucket, name)
}

// ObjectPage is one page of objects, in byte order of their names;
// NextMarker, when not empty, fetches the next page.
type ObjectPage struct {
	Objects    []ObjectInfo
	NextMarker string
}

// ObjectList lists a bucket's objects in byte order of their names, a
// page at a time. Only the page is held in memory.
func (s *Store) ObjectList(ctx context.Context, bucket string, o ListOptions) (ObjectPage, error) {
	if len(o.Prefix) > api.MaxObjectNameLen {
		return ObjectPage{}, invalidf("prefix: %d bytes is over the limit of %d", len(o.Prefix), api.MaxObjectNameLen)
	}
	if err := o.check(); err != nil {
		return ObjectPage{}, err
	}
	if err := ValidateBucketName(bucket); err != nil {
		return ObjectPage{}, err
	}
	page := &topN[ObjectInfo]{n: o.Limit + 1, key: func(i ObjectInfo) string { return i.Name }}
	err := s.scanObjects(ctx, bucket, func(name string, m objectMeta) error {
		if strings.HasPrefix(name, o.Prefix) && name > o.Marker {
			page.add(m)
		}
		return nil
	})
	if err != nil {
		return ObjectPage{}, err
	}
	objs := page.sorted()
	out := ObjectPage{Objects: objs}
	if len(objs) > o.Limit {
		out.Objects = objs[:o.Limit]
		out.NextMarker = out.Objects[o.Limit-1].Name
	}
	return out, nil
}

// scanObjects calls fn with every present object of bucket, in no
// particular order.
func (s *Store) scanObjects(ctx context.Context, bucket string, fn func(string, objectMeta) error) error {
	return s.scan(ctx, KindObjects, bucket, "$O."+objPrefix+bucket+".M.>", false, func(m jetstream.Msg) error {
		var in jetstream.ObjectInfo
		if err := json.Unmarshal(m.Data(), &in); err != nil {
			s.log.Warn("storage: unreadable object metadata", "bucket", bucket, "subject", m.Subject(), "err", err)
			return nil
		}
		if in.Deleted {
			return nil
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		in.ModTime = md.Timestamp
		info := objectInfo(bucket, &in)
		return fn(info.Name, info)
	})
}
