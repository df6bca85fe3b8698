package gust

import (
	"context"
	"errors"
	"io"
)

// ObjectBucket is an object bucket of the node, reached through host
// calls. Objects are streamed both ways, so an object larger than the
// function's memory can pass through it. A function reaches only the
// buckets its configuration grants (grants.objects in gust.yaml).
type ObjectBucket struct{ name string }

// Objects returns the object bucket called name.
func Objects(name string) ObjectBucket { return ObjectBucket{name: name} }

// Name returns the bucket's name.
func (b ObjectBucket) Name() string { return b.name }

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Name        string
	Size        int64
	ContentType string
	// Digest is the hex SHA-256 of the content.
	Digest string
}

// chunkSize is how much one host call carries of an object.
const chunkSize = 256 << 10

// Put stores what r yields as the object name (replacing any), streamed
// in chunks. An empty contentType stores application/octet-stream. If r
// fails, or the object grows over the bucket's limit (ErrTooLarge),
// nothing is stored and the object as it was stays.
func (b ObjectBucket) Put(ctx context.Context, name string, r io.Reader, contentType string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	f, err := hostCall("obj.put.open", []byte(b.name), []byte(name), []byte(contentType))
	if err == nil {
		err = want("obj.put.open", f, 1)
	}
	if err != nil {
		return ObjectInfo{}, err
	}
	handle := f[0]
	buf := make([]byte, chunkSize)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if _, err := hostCall("obj.put.write", handle, buf[:n]); err != nil {
				hostCall("obj.put.abort", handle)
				return ObjectInfo{}, err
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			hostCall("obj.put.abort", handle)
			return ObjectInfo{}, rerr
		}
		if err := ctx.Err(); err != nil {
			hostCall("obj.put.abort", handle)
			return ObjectInfo{}, err
		}
	}
	f, err = hostCall("obj.put.close", handle)
	if err == nil {
		err = want("obj.put.close", f, 3)
	}
	if err != nil {
		return ObjectInfo{}, err
	}
	return objectInfo(name, f)
}

// objectInfo decodes size, content type and digest fields.
func objectInfo(name string, f [][]byte) (ObjectInfo, error) {
	size, err := num(f[0])
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Name: name, Size: int64(size), ContentType: string(f[1]), Digest: string(f[2])}, nil
}

// ObjectReader streams an object's content; close it when done.
type ObjectReader struct {
	Info   ObjectInfo
	handle []byte
	eof    bool
	buf    []byte
}

// Get opens the object name for reading, or fails with an error matching
// ErrNotFound.
func (b ObjectBucket) Get(ctx context.Context, name string) (*ObjectReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := hostCall("obj.get.open", []byte(b.name), []byte(name))
	if err == nil {
		err = want("obj.get.open", f, 4)
	}
	if err != nil {
		return nil, err
	}
	info, err := objectInfo(name, f[1:])
	if err != nil {
		return nil, err
	}
	return &ObjectReader{Info: info, handle: f[0]}, nil
}

// Read reads the next part of the object.
func (o *ObjectReader) Read(p []byte) (int, error) {
	for len(o.buf) == 0 {
		if o.eof || o.handle == nil {
			return 0, io.EOF
		}
		f, err := hostCall("obj.get.read", o.handle, u64(chunkSize))
		if err == nil {
			err = want("obj.get.read", f, 1)
		}
		if err != nil {
			return 0, err
		}
		o.buf = f[0]
		o.eof = len(o.buf) == 0
	}
	n := copy(p, o.buf)
	o.buf = o.buf[n:]
	return n, nil
}

// Close ends the read. Handles an invocation leaves open are closed when
// it returns.
func (o *ObjectReader) Close() error {
	if o.handle == nil {
		return nil
	}
	_, err := hostCall("obj.get.close", o.handle)
	o.handle = nil
	return err
}

// Delete removes the object name. Deleting one that does not exist is
// not an error.
func (b ObjectBucket) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := hostCall("obj.delete", []byte(b.name), []byte(name))
	return err
}

// List describes the bucket's objects whose names start with prefix, in
// byte order of their names.
func (b ObjectBucket) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	err := listPages(ctx, "obj.list", b.name, prefix, 4, func(f [][]byte) error {
		for i := 0; i < len(f); i += 4 {
			info, err := objectInfo(string(f[i]), f[i+1:i+4])
			if err != nil {
				return err
			}
			out = append(out, info)
		}
		return nil
	})
	return out, err
}
