package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/sigv4"
	"github.com/gustfaas/gust/internal/storage"
	"github.com/gustfaas/gust/internal/substrate"
)

const (
	testKeyID  = "AKIDSTORAGETEST"
	testSecret = "storage-test-secret"
)

// storageGateway serves a gateway with real storage (node default object
// size 1 MiB) and SigV4 checked against one key.
func storageGateway(t *testing.T) (*httptest.Server, *client.Client) {
	t.Helper()
	sub, err := substrate.Open(context.Background(), substrate.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	st, err := storage.Open(context.Background(), sub, storage.Config{MaxObjectSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	g := New(Config{
		Storage: st,
		Auth: sigv4.NewVerifier("lambda", func(id string) (string, bool) {
			return testSecret, id == testKeyID
		}),
		AuthError: sigv4.Describe,
	})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv, client.New(srv.URL, client.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret})
}

// apiCode returns the API error code of err, or "" when it is none.
func apiCode(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func TestStorageErrors(t *testing.T) {
	_, c := storageGateway(t)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, api.BucketKV, "kv1", api.CreateBucketRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(ctx, api.BucketObjects, "ob1", api.CreateBucketRequest{MaxObjectSize: 10}); err != nil {
		t.Fatal(err)
	}
	rev, err := c.KVPut(ctx, "kv1", "k", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		call   func() error
		code   string
		phrase string
	}{
		{"bucket exists", func() error {
			_, err := c.CreateBucket(ctx, api.BucketKV, "kv1", api.CreateBucketRequest{})
			return err
		}, api.ErrResourceConflict, `kv bucket "kv1"`},
		{"bad bucket name", func() error {
			_, err := c.CreateBucket(ctx, api.BucketKV, "a.b", api.CreateBucketRequest{})
			return err
		}, api.ErrInvalidParameterValue, `bucket name "a.b"`},
		{"bad kind", func() error {
			_, err := c.CreateBucket(ctx, "tables", "x", api.CreateBucketRequest{})
			return err
		}, api.ErrInvalidParameterValue, `bucket kind "tables"`},
		{"bad history", func() error {
			_, err := c.CreateBucket(ctx, api.BucketKV, "x", api.CreateBucketRequest{History: 100})
			return err
		}, api.ErrInvalidParameterValue, "history 100"},
		{"no bucket", func() error {
			_, err := c.KVGet(ctx, "nope", "k")
			return err
		}, api.ErrResourceNotFound, `kv bucket "nope"`},
		{"no key", func() error {
			_, err := c.KVGet(ctx, "kv1", "missing")
			return err
		}, api.ErrResourceNotFound, `key "missing"`},
		{"bad key", func() error {
			_, err := c.KVPut(ctx, "kv1", "a b", []byte("v"))
			return err
		}, api.ErrInvalidParameterValue, `key "a b"`},
		{"stale revision", func() error {
			_, err := c.KVUpdate(ctx, "kv1", "k", []byte("v2"), rev+10)
			return err
		}, api.ErrPreconditionFailed, "revision"},
		{"create existing", func() error {
			_, err := c.KVCreate(ctx, "kv1", "k", []byte("v2"))
			return err
		}, api.ErrPreconditionFailed, "exists"},
		{"stale delete", func() error { return c.KVDelete(ctx, "kv1", "k", rev+10) }, api.ErrPreconditionFailed, "revision"},
		{"value too large", func() error {
			_, err := c.KVPut(ctx, "kv1", "big", make([]byte, api.MaxKVValue+1))
			return err
		}, api.ErrRequestTooLarge, "1048576"},
		{"object too large", func() error {
			_, err := c.PutObjectBytes(ctx, "ob1", "o", []byte("more than ten bytes"), "")
			return err
		}, api.ErrRequestTooLarge, "limit of 10 bytes"},
		{"no object", func() error {
			_, err := c.HeadObject(ctx, "ob1", "nothing")
			return err
		}, api.ErrResourceNotFound, ""},
		{"object missing bucket", func() error {
			_, _, err := c.GetObject(ctx, "nope", "x")
			return err
		}, api.ErrResourceNotFound, `object bucket "nope"`},
		{"bad limit", func() error {
			_, err := c.KVList(ctx, "kv1", client.ListOptions{Limit: 5000})
			return err
		}, api.ErrInvalidParameterValue, "limit"},
		{"bad object name", func() error {
			_, err := c.PutObjectBytes(ctx, "ob1", "a\x01b", []byte("x"), "")
			return err
		}, api.ErrInvalidParameterValue, "control character"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if apiCode(err) != tc.code {
				t.Fatalf("error = %v, want %s", err, tc.code)
			}
			if !strings.Contains(err.Error(), tc.phrase) {
				t.Errorf("error = %q, want it to mention %q", err, tc.phrase)
			}
		})
	}
}

// TestStorageHTTP checks the wire: raw values, revision headers,
// If-Match and If-None-Match, HEAD, and keys with slashes.
func TestStorageHTTP(t *testing.T) {
	srv, c := storageGateway(t)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, api.BucketKV, "kv", api.CreateBucketRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(ctx, api.BucketObjects, "ob", api.CreateBucketRequest{}); err != nil {
		t.Fatal(err)
	}
	send := func(method, path string, h http.Header, body []byte) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	// A key given as the rest of the path, slashes and all.
	resp := send("PUT", "/gust/v1/kv/kv/a/b/c", nil, []byte("hello"))
	rev := resp.Header.Get(api.HeaderRevision)
	if resp.StatusCode != 200 || rev == "" {
		t.Fatalf("PUT key = %d (revision %q)", resp.StatusCode, rev)
	}
	resp = send("GET", "/gust/v1/kv/kv/a%2Fb%2Fc", nil, nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello" || resp.Header.Get(api.HeaderRevision) != rev ||
		resp.Header.Get("Last-Modified") == "" || resp.Header.Get(api.HeaderModified) == "" {
		t.Errorf("GET key = %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp := send("PUT", "/gust/v1/kv/kv/a/b/c", http.Header{"If-Match": {`"` + rev + `"`}}, []byte("v2")); resp.StatusCode != 200 {
		t.Errorf("PUT If-Match: current = %d", resp.StatusCode)
	}
	if resp := send("PUT", "/gust/v1/kv/kv/a/b/c", http.Header{"If-Match": {rev}}, []byte("v3")); resp.StatusCode != 412 {
		t.Errorf("PUT If-Match: stale = %d, want 412", resp.StatusCode)
	}
	for _, h := range []http.Header{{"If-Match": {"abc"}}, {"If-None-Match": {`"x"`}}, {"If-Match": {"3"}, "If-None-Match": {"*"}}} {
		if resp := send("PUT", "/gust/v1/kv/kv/x", h, []byte("v")); resp.StatusCode != 400 {
			t.Errorf("PUT with %v = %d, want 400", h, resp.StatusCode)
		}
	}
	if resp := send("PUT", "/gust/v1/kv/kv/x", http.Header{"If-None-Match": {"*"}}, []byte("v")); resp.StatusCode != 200 {
		t.Errorf("PUT If-None-Match: * (absent) = %d", resp.StatusCode)
	}
	if resp := send("PUT", "/gust/v1/kv/kv/x", http.Header{"If-None-Match": {"*"}}, []byte("v")); resp.StatusCode != 412 {
		t.Errorf("PUT If-None-Match: * (present) = %d, want 412", resp.StatusCode)
	}
	if resp := send("DELETE", "/gust/v1/kv/kv/x", nil, nil); resp.StatusCode != 204 {
		t.Errorf("DELETE key = %d", resp.StatusCode)
	}
	if resp := send("DELETE", "/gust/v1/kv/kv/x", nil, nil); resp.StatusCode != 404 || resp.Header.Get(api.HeaderErrorType) != api.ErrResourceNotFound {
		t.Errorf("DELETE deleted key = %d %s", resp.StatusCode, resp.Header.Get(api.HeaderErrorType))
	}

	// Objects: a signed payload is read whole, HEAD describes.
	resp = send("PUT", "/gust/v1/objects/ob/dir/file.txt", http.Header{"Content-Type": {"text/plain"}}, []byte("object body"))
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT object = %d %s", resp.StatusCode, b)
	}
	resp = send("HEAD", "/gust/v1/objects/ob/dir/file.txt", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain" || resp.ContentLength != 11 ||
		resp.Header.Get("ETag") != `"`+sha256hex([]byte("object body"))+`"` {
		t.Errorf("HEAD object = %d %v", resp.StatusCode, resp.Header)
	}
	if b, _ := io.ReadAll(resp.Body); len(b) != 0 {
		t.Errorf("HEAD object sent a body: %q", b)
	}
	resp = send("GET", "/gust/v1/objects/ob/dir%2Ffile.txt", nil, nil)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "object body" {
		t.Errorf("GET object = %d %q", resp.StatusCode, b)
	}
	// A signed payload over the node's default object size is refused
	// before it is stored.
	if resp := send("PUT", "/gust/v1/objects/ob/big", nil, make([]byte, 1<<20+1)); resp.StatusCode != 413 {
		t.Errorf("PUT 1 MiB + 1 signed = %d, want 413", resp.StatusCode)
	}
	// Listing through the bucket's path and the trailing slash.
	for _, p := range []string{"/gust/v1/kv/kv", "/gust/v1/kv/kv/", "/gust/v1/kv/kv?prefix=a%2F"} {
		resp := send("GET", p, nil, nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"key":"a/b/c"`) {
			t.Errorf("GET %s = %d %s", p, resp.StatusCode, b)
		}
	}
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestStorageStreamedUpload: an unsigned payload streams into a bucket
// whose limit is over the node's default (the signed path's limit), and a
// bad signature is refused without storing anything.
func TestStorageStreamedUpload(t *testing.T) {
	srv, c := storageGateway(t)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, api.BucketObjects, "big", api.CreateBucketRequest{MaxObjectSize: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16)
	info, err := c.PutObject(ctx, "big", "three", bytes.NewReader(data), int64(len(data)), "application/x-test")
	if err != nil {
		t.Fatalf("PutObject(3 MiB, streamed) = %v", err)
	}
	if info.Size != int64(len(data)) || info.Digest != sha256hex(data) || info.ContentType != "application/x-test" {
		t.Errorf("PutObject = %+v", info)
	}
	// Size unknown (chunked).
	if _, err := c.PutObject(ctx, "big", "chunked", io.MultiReader(bytes.NewReader(data[:1000])), -1, ""); err != nil {
		t.Errorf("PutObject(chunked) = %v", err)
	}
	// Over the bucket's limit.
	_, err = c.PutObject(ctx, "big", "five", io.LimitReader(zeros{}, 5<<20), -1, "")
	if apiCode(err) != api.ErrRequestTooLarge {
		t.Errorf("PutObject(5 MiB into 4) = %v, want RequestTooLargeException", err)
	}
	rc, got, err := c.GetObject(ctx, "big", "three")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(b, data) || got.Digest != info.Digest || got.Size != info.Size {
		t.Errorf("GetObject = %d bytes %+v, %v", len(b), got, err)
	}

	// A wrong secret: refused, nothing stored.
	bad := client.New(srv.URL, client.Credentials{AccessKeyID: testKeyID, SecretAccessKey: "wrong"})
	if _, err := bad.PutObject(ctx, "big", "forged", bytes.NewReader(data[:100]), 100, ""); apiCode(err) != api.ErrInvalidSignature {
		t.Errorf("PutObject with a wrong secret = %v, want InvalidSignatureException", err)
	}
	if _, err := c.HeadObject(ctx, "big", "forged"); apiCode(err) != api.ErrResourceNotFound {
		t.Errorf("HeadObject(forged) = %v, want ResourceNotFoundException", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
