package hostcall

import (
	"context"
	"errors"
	"io"
	"strconv"

	"github.com/gustfaas/gust/internal/sandbox"
	"github.com/gustfaas/gust/internal/storage"
)

// kvBucket checks that the function may use KV bucket b.
func (h *host) kvBucket(b []byte) (string, error) {
	f, err := h.fn()
	if err != nil {
		return "", err
	}
	if name := string(b); f.GrantsKV(name) {
		return name, nil
	}
	return "", h.denied("kv bucket", string(b), "grants.kv")
}

// objectBucket checks that the function may use object bucket b.
func (h *host) objectBucket(b []byte) (string, error) {
	f, err := h.fn()
	if err != nil {
		return "", err
	}
	if name := string(b); f.GrantsObjects(name) {
		return name, nil
	}
	return "", h.denied("object bucket", string(b), "grants.objects")
}

func (h *host) kvGet(ctx context.Context, a [][]byte) ([][]byte, error) {
	b, err := h.kvBucket(a[0])
	if err != nil {
		return nil, err
	}
	e, err := h.s.cfg.Storage.KVGet(ctx, b, string(a[1]))
	if err != nil {
		return nil, err
	}
	return [][]byte{e.Value, u64(e.Revision)}, nil
}

func (h *host) kvPut(ctx context.Context, a [][]byte) ([][]byte, error) {
	b, err := h.kvBucket(a[0])
	if err != nil {
		return nil, err
	}
	rev, err := h.s.cfg.Storage.KVPut(ctx, b, string(a[1]), a[2])
	if err != nil {
		return nil, err
	}
	return [][]byte{u64(rev)}, nil
}

func (h *host) kvCAS(ctx context.Context, a [][]byte) ([][]byte, error) {
	b, err := h.kvBucket(a[0])
	if err != nil {
		return nil, err
	}
	want, err := number(a[3], "revision")
	if err != nil {
		return nil, err
	}
	// Revision 0 creates only, as KVUpdate does.
	rev, err := h.s.cfg.Storage.KVUpdate(ctx, b, string(a[1]), a[2], want)
	if err != nil {
		return nil, err
	}
	return [][]byte{u64(rev)}, nil
}

func (h *host) kvDelete(ctx context.Context, a [][]byte) ([][]byte, error) {
	b, err := h.kvBucket(a[0])
	if err != nil {
		return nil, err
	}
	rev, err := number(a[2], "revision")
	if err != nil {
		return nil, err
	}
	// Unconditionally deleting what is not there succeeds, as for
	// objects (the SDK's Delete promises it); a conditional one is the
	// store's answer.
	err = h.s.cfg.Storage.KVDelete(ctx, b, string(a[1]), rev)
	if rev == 0 && errors.Is(err, storage.ErrNotFound) {
		err = nil
	}
	return nil, err
}

func (h *host) kvList(ctx context.Context, a [][]byte) ([][]byte, error) {
	b, err := h.kvBucket(a[0])
	if err != nil {
		return nil, err
	}
	page, err := h.s.cfg.Storage.KVList(ctx, b, storage.ListOptions{Prefix: string(a[1]), Marker: string(a[2])})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, 1+len(page.Keys))
	out = append(out, []byte(page.NextMarker))
	for _, k := range page.Keys {
		out = append(out, []byte(k.Key))
	}
	return out, nil
}

// info encodes an object's size, content type and digest.
func info(in storage.ObjectInfo) [][]byte {
	return [][]byte{u64(uint64(in.Size)), []byte(in.ContentType), []byte(in.Digest)}
}

// errAborted ends a put the guest abandoned: nothing is stored.
var errAborted = errors.New("object put abandoned before its end")

// putStream is an object write in progress: the guest's chunks go
// through a pipe to a put running beside the calls.
type putStream struct {
	pw   *io.PipeWriter
	done chan putResult
}

type putResult struct {
	info storage.ObjectInfo
	err  error
}

func (p *putStream) abort() {
	p.pw.CloseWithError(errAborted)
	<-p.done
}

func (h *host) objPutOpen(ctx context.Context, a [][]byte) ([][]byte, error) {
	b, err := h.objectBucket(a[0])
	if err != nil {
		return nil, err
	}
	name, ct := string(a[1]), string(a[2])
	if err := storage.ValidateObjectName(name); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	p := &putStream{pw: pw, done: make(chan putResult, 1)}
	// The put lives as long as the invocation: ctx is the invocation's,
	// and Release aborts a put still open when the invocation ends.
	go func() {
		in, err := h.s.cfg.Storage.ObjectPut(ctx, b, name, pr, storage.PutObjectOptions{ContentType: ct})
		pr.CloseWithError(errAborted) // a write after the put ended fails
		p.done <- putResult{in, err}
	}()
	return [][]byte{h.open(p)}, nil
}

// putOf finds the put a handle names.
func (h *host) putOf(b []byte) (uint64, *putStream, error) {
	id, st, err := h.handle(b)
	if err != nil {
		return 0, nil, err
	}
	p, ok := st.(*putStream)
	if !ok {
		return 0, nil, &sandbox.HostError{Code: CodeInvalid, Message: "handle " + strconv.FormatUint(id, 10) + " is not an object put"}
	}
	return id, p, nil
}

func (h *host) objPutWrite(ctx context.Context, a [][]byte) ([][]byte, error) {
	id, p, err := h.putOf(a[0])
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { p.pw.CloseWithError(ctx.Err()) })
	defer stop()
	if _, err := p.pw.Write(a[1]); err != nil {
		// The put ended early (over the limit, or a failure): its own
		// error says why.
		delete(h.streams, id)
		p.pw.CloseWithError(errAborted)
		r := <-p.done
		if r.err != nil {
			return nil, r.err
		}
		return nil, err
	}
	return nil, nil
}

func (h *host) objPutClose(_ context.Context, a [][]byte) ([][]byte, error) {
	id, p, err := h.putOf(a[0])
	if err != nil {
		return nil, err
	}
	delete(h.streams, id)
	p.pw.Close()
	r := <-p.done
	if r.err != nil {
		return nil, r.err
	}
	return info(r.info), nil
}

func (h *host) objPutAbort(_ context.Context, a [][]byte) ([][]byte, error) {
	id, p, err := h.putOf(a[0])
	if err != nil {
		return nil, err
	}
	delete(h.streams, id)
	p.abort()
	return nil, nil
}

// getStream is an object read in progress.
type getStream struct{ r io.ReadCloser }

func (g *getStream) abort() { g.r.Close() }

func (h *host) objGetOpen(ctx context.Context, a [][]byte) ([][]byte, error) {
	b, err := h.objectBucket(a[0])
	if err != nil {
		return nil, err
	}
	r, in, err := h.s.cfg.Storage.ObjectGet(ctx, b, string(a[1]))
	if err != nil {
		return nil, err
	}
	return append([][]byte{h.open(&getStream{r: r})}, info(in)...), nil
}

func (h *host) objGetRead(_ context.Context, a [][]byte) ([][]byte, error) {
	id, st, err := h.handle(a[0])
	if err != nil {
		return nil, err
	}
	g, ok := st.(*getStream)
	if !ok {
		return nil, &sandbox.HostError{Code: CodeInvalid, Message: "handle " + strconv.FormatUint(id, 10) + " is not an object read"}
	}
	n, err := number(a[1], "max")
	if err != nil {
		return nil, err
	}
	buf := make([]byte, min(max(n, 1), maxChunk))
	k, err := io.ReadFull(g.r, buf)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
	case err != nil:
		return nil, err
	}
	return [][]byte{buf[:k]}, nil
}

func (h *host) objGetClose(_ context.Context, a [][]byte) ([][]byte, error) {
	id, st, err := h.handle(a[0])
	if err != nil {
		return nil, err
	}
	delete(h.streams, id)
	st.abort()
	return nil, nil
}

func (h *host) objDelete(ctx context.Context, a [][]byte) ([][]byte, error) {
	b, err := h.objectBucket(a[0])
	if err != nil {
		return nil, err
	}
	// As S3's DeleteObject: deleting what is not there succeeds.
	if err := h.s.cfg.Storage.ObjectDelete(ctx, b, string(a[1])); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	return nil, nil
}

func (h *host) objList(ctx context.Context, a [][]byte) ([][]byte, error) {
	b, err := h.objectBucket(a[0])
	if err != nil {
		return nil, err
	}
	page, err := h.s.cfg.Storage.ObjectList(ctx, b, storage.ListOptions{Prefix: string(a[1]), Marker: string(a[2])})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, 1+4*len(page.Objects))
	out = append(out, []byte(page.NextMarker))
	for _, o := range page.Objects {
		out = append(out, []byte(o.Name))
		out = append(out, info(o)...)
	}
	return out, nil
}
