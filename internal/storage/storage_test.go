package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/storage"
	"github.com/gustfaas/gust/internal/substrate"
)

func openSubstrate(t testing.TB) *substrate.Substrate {
	t.Helper()
	sub, err := substrate.Open(context.Background(), substrate.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

func openStore(t testing.TB, sub *substrate.Substrate, cfg storage.Config) *storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), sub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newStore opens a store on its own substrate, with fast retries.
func newStore(t testing.TB) (*storage.Store, *substrate.Substrate) {
	sub := openSubstrate(t)
	return openStore(t, sub, storage.Config{RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}), sub
}

func jetstreamKV(name string) jetstream.KeyValueConfig { return jetstream.KeyValueConfig{Bucket: name} }

func mustCreate(t testing.TB, s *storage.Store, kind, name string, o storage.BucketOptions) {
	t.Helper()
	if _, err := s.CreateBucket(context.Background(), kind, name, o); err != nil {
		t.Fatalf("CreateBucket(%s, %s) = %v", kind, name, err)
	}
}

// wantErr checks that err wraps want and that its message holds each of
// the phrases.
func wantErr(t testing.TB, what string, err, want error, phrases ...string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", what, err, want)
		return
	}
	for _, p := range phrases {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s = %q, want it to mention %q", what, err, p)
		}
	}
}

func TestBuckets(t *testing.T) {
	s, sub := newStore(t)
	ctx := context.Background()

	info, err := s.CreateBucket(ctx, storage.KindKV, "sessions", storage.BucketOptions{Description: "web sessions", History: 3, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != storage.KindKV || info.Name != "sessions" || info.History != 3 || info.TTL != time.Hour ||
		info.Description != "web sessions" || info.MaxValueSize != api.MaxKVValue || info.Count != 0 || info.Created.IsZero() {
		t.Errorf("CreateBucket(kv) = %+v", info)
	}
	info, err = s.CreateBucket(ctx, storage.KindObjects, "images", storage.BucketOptions{MaxObjectSize: 1 << 20, MaxBytes: 100 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != storage.KindObjects || info.MaxObjectSize != 1<<20 || info.MaxBytes != 100<<20 || info.Replicas != 1 {
		t.Errorf("CreateBucket(objects) = %+v", info)
	}
	// A kv bucket and an object bucket may share a name.
	mustCreate(t, s, storage.KindObjects, "sessions", storage.BucketOptions{})
	// "object" is taken for "objects".
	mustCreate(t, s, "object", "docs", storage.BucketOptions{})

	_, err = s.CreateBucket(ctx, storage.KindKV, "sessions", storage.BucketOptions{})
	wantErr(t, "CreateBucket(existing)", err, storage.ErrExists, `kv bucket "sessions"`)

	// Gust's own buckets are not user buckets.
	if _, err := sub.KeyValue(ctx, jetstreamKV("gust_internal")); err != nil {
		t.Fatal(err)
	}
	list, err := s.Buckets(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range list {
		names = append(names, b.Kind+"/"+b.Name)
		if b.Count != -1 {
			t.Errorf("Buckets: %s/%s has Count %d, want -1 (not counted)", b.Kind, b.Name, b.Count)
		}
	}
	if got, want := strings.Join(names, " "), "kv/sessions objects/docs objects/images objects/sessions"; got != want {
		t.Errorf("Buckets() = %s, want %s", got, want)
	}
	list, err = s.Buckets(ctx, storage.KindKV)
	if err != nil || len(list) != 1 || list[0].Name != "sessions" {
		t.Errorf("Buckets(kv) = %+v, %v", list, err)
	}

	if _, err := s.KVPut(ctx, "sessions", "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KVPut(ctx, "sessions", "b", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := s.KVDelete(ctx, "sessions", "b", 0); err != nil {
		t.Fatal(err)
	}
	info, err = s.Bucket(ctx, storage.KindKV, "sessions")
	if err != nil || info.Count != 1 || info.Bytes == 0 {
		t.Errorf("Bucket(kv sessions) = %+v, %v; want 1 key", info, err)
	}
	if _, err := s.ObjectPut(ctx, "images", "x.png", strings.NewReader("png"), storage.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err = s.Bucket(ctx, storage.KindObjects, "images")
	if err != nil || info.Count != 1 || info.MaxObjectSize != 1<<20 {
		t.Errorf("Bucket(objects images) = %+v, %v; want 1 object", info, err)
	}

	if err := s.DeleteBucket(ctx, storage.KindKV, "sessions"); err != nil {
		t.Fatal(err)
	}
	_, err = s.KVGet(ctx, "sessions", "a")
	wantErr(t, "KVGet(deleted bucket)", err, storage.ErrNoBucket, `kv bucket "sessions"`)
	wantErr(t, "DeleteBucket(again)", s.DeleteBucket(ctx, storage.KindKV, "sessions"), storage.ErrNoBucket, "sessions")
	_, err = s.Bucket(ctx, storage.KindKV, "sessions")
	wantErr(t, "Bucket(deleted)", err, storage.ErrNoBucket)
	// The object bucket of the same name is still there.
	if _, err := s.Bucket(ctx, storage.KindObjects, "sessions"); err != nil {
		t.Errorf("Bucket(objects sessions) after deleting kv sessions = %v", err)
	}
}

func TestBucketValidation(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	cases := []struct {
		name, kind, bucket string
		o                  storage.BucketOptions
		phrase             string
	}{
		{"empty name", storage.KindKV, "", storage.BucketOptions{}, `bucket name ""`},
		{"dot in name", storage.KindKV, "a.b", storage.BucketOptions{}, `bucket name "a.b"`},
		{"space in name", storage.KindObjects, "a b", storage.BucketOptions{}, "letters, digits"},
		{"long name", storage.KindKV, strings.Repeat("a", 65), storage.BucketOptions{}, "1 to 64"},
		{"bad kind", "tables", "x", storage.BucketOptions{}, `bucket kind "tables"`},
		{"history too big", storage.KindKV, "x", storage.BucketOptions{History: 65}, "history 65"},
		{"history on objects", storage.KindObjects, "x", storage.BucketOptions{History: 2}, "kv buckets only"},
		{"short ttl", storage.KindKV, "x", storage.BucketOptions{TTL: time.Millisecond}, "at least 1s"},
		{"negative max bytes", storage.KindKV, "x", storage.BucketOptions{MaxBytes: -5}, "max bytes -5"},
		{"tiny kv max bytes", storage.KindKV, "x", storage.BucketOptions{MaxBytes: 1000}, "at least"},
		{"max object size on kv", storage.KindKV, "x", storage.BucketOptions{MaxObjectSize: 10}, "object buckets only"},
		{"max object size too big", storage.KindObjects, "x", storage.BucketOptions{MaxObjectSize: 6 << 30}, "max object size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.CreateBucket(ctx, c.kind, c.bucket, c.o)
			wantErr(t, "CreateBucket", err, storage.ErrInvalid, c.phrase)
		})
	}
	list, err := s.Buckets(ctx, "")
	if err != nil || len(list) != 0 {
		t.Errorf("Buckets after refused creates = %+v, %v; want none", list, err)
	}
}

func TestKV(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustCreate(t, s, storage.KindKV, "cfg", storage.BucketOptions{History: 5})

	before := time.Now().Add(-time.Second)
	r1, err := s.KVPut(ctx, "cfg", "app/color", []byte("red"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.KVGet(ctx, "cfg", "app/color")
	if err != nil || string(e.Value) != "red" || e.Revision != r1 || e.Modified.Before(before) || e.Key != "app/color" || e.Bucket != "cfg" {
		t.Fatalf("KVGet = %+v, %v; want red at revision %d", e, err, r1)
	}

	// Compare and set.
	r2, err := s.KVUpdate(ctx, "cfg", "app/color", []byte("green"), r1)
	if err != nil || r2 <= r1 {
		t.Fatalf("KVUpdate(at %d) = %d, %v", r1, r2, err)
	}
	_, err = s.KVUpdate(ctx, "cfg", "app/color", []byte("blue"), r1)
	wantErr(t, "KVUpdate(stale revision)", err, storage.ErrConflict, "app/color", fmt.Sprint(r1))
	if e, _ := s.KVGet(ctx, "cfg", "app/color"); string(e.Value) != "green" {
		t.Errorf("after a failed compare-and-set the value is %q, want green", e.Value)
	}
	_, err = s.KVUpdate(ctx, "cfg", "nope", []byte("x"), 1)
	wantErr(t, "KVUpdate(missing key)", err, storage.ErrConflict)

	// Create only if absent; revision 0 in KVUpdate is the same.
	_, err = s.KVCreate(ctx, "cfg", "app/color", []byte("x"))
	wantErr(t, "KVCreate(existing)", err, storage.ErrConflict, "exists")
	_, err = s.KVUpdate(ctx, "cfg", "app/color", []byte("x"), 0)
	wantErr(t, "KVUpdate(existing, 0)", err, storage.ErrConflict)
	rc, err := s.KVCreate(ctx, "cfg", "app.size", []byte("10"))
	if err != nil {
		t.Fatal(err)
	}

	// Delete, conditional and not.
	wantErr(t, "KVDelete(stale)", s.KVDelete(ctx, "cfg", "app.size", rc+100), storage.ErrConflict)
	if err := s.KVDelete(ctx, "cfg", "app.size", rc); err != nil {
		t.Fatalf("KVDelete(at %d) = %v", rc, err)
	}
	_, err = s.KVGet(ctx, "cfg", "app.size")
	wantErr(t, "KVGet(deleted)", err, storage.ErrNotFound, `key "app.size"`, `"cfg"`)
	wantErr(t, "KVDelete(deleted)", s.KVDelete(ctx, "cfg", "app.size", 0), storage.ErrNotFound)
	// A deleted key can be created again.
	if _, err := s.KVCreate(ctx, "cfg", "app.size", []byte("11")); err != nil {
		t.Errorf("KVCreate(after delete) = %v", err)
	}
	if err := s.KVDelete(ctx, "cfg", "app/color", 0); err != nil {
		t.Fatal(err)
	}
	_, err = s.KVGet(ctx, "cfg", "app/color")
	wantErr(t, "KVGet(deleted)", err, storage.ErrNotFound)

	// Values up to 1 MiB.
	big := bytes.Repeat([]byte("v"), api.MaxKVValue)
	if _, err := s.KVPut(ctx, "cfg", "big", big); err != nil {
		t.Fatalf("KVPut(1 MiB) = %v", err)
	}
	if rev, err := s.KVGet(ctx, "cfg", "big"); err != nil || len(rev.Value) != api.MaxKVValue {
		t.Fatalf("KVGet(big) = %d bytes, %v", len(rev.Value), err)
	} else if _, err := s.KVUpdate(ctx, "cfg", "big", big, rev.Revision); err != nil {
		t.Errorf("KVUpdate(1 MiB) = %v", err)
	}
	_, err = s.KVPut(ctx, "cfg", "big", append(big, 'x'))
	wantErr(t, "KVPut(1 MiB + 1)", err, storage.ErrTooLarge, "1048577 bytes", "1048576")
	_, err = s.KVCreate(ctx, "cfg", "big2", append(big, 'x'))
	wantErr(t, "KVCreate(1 MiB + 1)", err, storage.ErrTooLarge)

	// A bucket that does not exist.
	_, err = s.KVGet(ctx, "nope", "k")
	wantErr(t, "KVGet(no bucket)", err, storage.ErrNoBucket, `kv bucket "nope"`)
	_, err = s.KVPut(ctx, "nope", "k", nil)
	wantErr(t, "KVPut(no bucket)", err, storage.ErrNoBucket)
	_, err = s.KVList(ctx, "nope", storage.ListOptions{})
	wantErr(t, "KVList(no bucket)", err, storage.ErrNoBucket)
}

func TestKVKeyValidation(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustCreate(t, s, storage.KindKV, "k", storage.BucketOptions{})
	for _, good := range []string{"a", "A-z_0/9=x", "a.b.c", "path/to/file", strings.Repeat("k", api.MaxKVKeyLen)} {
		if _, err := s.KVPut(ctx, "k", good, []byte("v")); err != nil {
			t.Errorf("KVPut(%.30q) = %v", good, err)
		}
	}
	cases := []struct{ key, phrase string }{
		{"", "key is empty"},
		{".a", `key ".a"`},
		{"a.", "end with '.'"},
		{"a..b", `".."`},
		{"a b", `character ' '`},
		{"a*", `character '*'`},
		{"a>", `character '>'`},
		{"é", `character 'é'`},
		{strings.Repeat("k", api.MaxKVKeyLen+1), "1025 bytes"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%.12q", c.key), func(t *testing.T) {
			_, err := s.KVPut(ctx, "k", c.key, []byte("v"))
			wantErr(t, "KVPut", err, storage.ErrInvalid, c.phrase)
			_, err = s.KVGet(ctx, "k", c.key)
			wantErr(t, "KVGet", err, storage.ErrInvalid)
		})
	}
	_, err := s.KVGet(ctx, "bad name", "k")
	wantErr(t, "KVGet(bad bucket name)", err, storage.ErrInvalid, `bucket name "bad name"`)
}

func TestKVList(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustCreate(t, s, storage.KindKV, "l", storage.BucketOptions{History: 3})
	keys := []string{"a", "a.b", "a.b.c", "a.bc", "ab", "b/1", "b/2", "b/3", "c"}
	for _, k := range keys {
		if _, err := s.KVPut(ctx, "l", k, []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	// Revisions and deletions: a rewritten key is listed once, a deleted
	// one not at all.
	if _, err := s.KVPut(ctx, "l", "a", []byte("again")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KVPut(ctx, "l", "gone", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.KVDelete(ctx, "l", "gone", 0); err != nil {
		t.Fatal(err)
	}

	list := func(o storage.ListOptions) []string {
		t.Helper()
		var out []string
		for {
			p, err := s.KVList(ctx, "l", o)
			if err != nil {
				t.Fatalf("KVList(%+v) = %v", o, err)
			}
			for _, k := range p.Keys {
				out = append(out, k.Key)
			}
			if p.NextMarker == "" {
				return out
			}
			if o.Limit > 0 && len(p.Keys) != o.Limit {
				t.Fatalf("KVList(%+v): a page of %d keys with a next marker", o, len(p.Keys))
			}
			o.Marker = p.NextMarker
		}
	}
	cases := []struct {
		prefix string
		limit  int
		want   string
	}{
		{"", 0, strings.Join(keys, " ")},
		{"", 1, strings.Join(keys, " ")},
		{"", 2, strings.Join(keys, " ")},
		{"", 1000, strings.Join(keys, " ")},
		{"a", 0, "a a.b a.b.c a.bc ab"},
		{"a.", 0, "a.b a.b.c a.bc"},
		{"a.b", 2, "a.b a.b.c a.bc"},
		{"a.b.", 0, "a.b.c"},
		{"b/", 2, "b/1 b/2 b/3"},
		{"z", 0, ""},
		{"gone", 0, ""},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%d", c.prefix, c.limit), func(t *testing.T) {
			if got := strings.Join(list(storage.ListOptions{Prefix: c.prefix, Limit: c.limit}), " "); got != c.want {
				t.Errorf("keys with prefix %q by %d = %q, want %q", c.prefix, c.limit, got, c.want)
			}
		})
	}

	p, err := s.KVList(ctx, "l", storage.ListOptions{Prefix: "a", Limit: 1})
	if err != nil || len(p.Keys) != 1 || p.NextMarker != "a" {
		t.Fatalf("KVList(a, 1) = %+v, %v", p, err)
	}
	if k := p.Keys[0]; k.Size != int64(len("again")) || k.Revision == 0 || k.Modified.IsZero() {
		t.Errorf("KVList: key a = %+v, want size 5, a revision and a time", k)
	}
	if p, err := s.KVList(ctx, "l", storage.ListOptions{Marker: "b/3"}); err != nil || len(p.Keys) != 1 || p.Keys[0].Key != "c" {
		t.Errorf("KVList(after b/3) = %+v, %v; want c", p, err)
	}

	for _, o := range []storage.ListOptions{{Limit: -1}, {Limit: 1001}, {Prefix: "a b"}, {Prefix: ".a"}} {
		_, err := s.KVList(ctx, "l", o)
		wantErr(t, fmt.Sprintf("KVList(%+v)", o), err, storage.ErrInvalid)
	}

	// An empty bucket lists nothing.
	mustCreate(t, s, storage.KindKV, "empty", storage.BucketOptions{})
	if p, err := s.KVList(ctx, "empty", storage.ListOptions{}); err != nil || len(p.Keys) != 0 || p.NextMarker != "" {
		t.Errorf("KVList(empty) = %+v, %v", p, err)
	}
}

// TestKVBucketDeletedElsewhere: a bucket deleted by another node (behind
// the store's back) is reported missing, not as a transport error.
func TestKVBucketDeletedElsewhere(t *testing.T) {
	sub := openSubstrate(t)
	a, b := openStore(t, sub, storage.Config{}), openStore(t, sub, storage.Config{})
	ctx := context.Background()
	mustCreate(t, a, storage.KindKV, "shared", storage.BucketOptions{})
	if _, err := a.KVPut(ctx, "shared", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteBucket(ctx, storage.KindKV, "shared"); err != nil {
		t.Fatal(err)
	}
	_, err := a.KVGet(ctx, "shared", "k")
	wantErr(t, "KVGet", err, storage.ErrNoBucket)
	_, err = a.KVPut(ctx, "shared", "k", []byte("v"))
	wantErr(t, "KVPut", err, storage.ErrNoBucket)
	// Created again elsewhere: usable again.
	mustCreate(t, b, storage.KindKV, "shared", storage.BucketOptions{})
	if _, err := a.KVPut(ctx, "shared", "k", []byte("v2")); err != nil {
		t.Errorf("KVPut after the bucket came back = %v", err)
	}
}

func TestBucketFull(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustCreate(t, s, storage.KindKV, "small", storage.BucketOptions{MaxBytes: 2 << 20})
	v := bytes.Repeat([]byte("x"), 700<<10)
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		_, err = s.KVPut(ctx, "small", fmt.Sprint("k", i), v)
	}
	wantErr(t, "KVPut into a full bucket", err, storage.ErrTooLarge, `"small" is full`)

	mustCreate(t, s, storage.KindObjects, "smallobj", storage.BucketOptions{MaxBytes: 1 << 20})
	_, err = s.ObjectPut(ctx, "smallobj", "big", bytes.NewReader(make([]byte, 2<<20)), storage.PutObjectOptions{})
	wantErr(t, "ObjectPut into a full bucket", err, storage.ErrTooLarge)
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestObjects(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustCreate(t, s, storage.KindObjects, "files", storage.BucketOptions{})

	body := []byte("hello, objects")
	before := time.Now().Add(-time.Second)
	info, err := s.ObjectPut(ctx, "files", "docs/a b.txt", bytes.NewReader(body), storage.PutObjectOptions{ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "docs/a b.txt" || info.Size != int64(len(body)) || info.Digest != sha(body) || info.ContentType != "text/plain" || info.Modified.Before(before) {
		t.Errorf("ObjectPut = %+v", info)
	}
	head, err := s.ObjectHead(ctx, "files", "docs/a b.txt")
	if err != nil || head != info {
		t.Errorf("ObjectHead = %+v, %v; want %+v", head, err, info)
	}
	rc, got, err := s.ObjectGet(ctx, "files", "docs/a b.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(b, body) || got != info {
		t.Errorf("ObjectGet = %q %+v, %v", b, got, err)
	}

	// An empty object, and the default content type.
	if info, err := s.ObjectPut(ctx, "files", "empty", strings.NewReader(""), storage.PutObjectOptions{}); err != nil || info.Size != 0 ||
		info.ContentType != "application/octet-stream" || info.Digest != sha(nil) {
		t.Errorf("ObjectPut(empty) = %+v, %v", info, err)
	}
	if rc, _, err := s.ObjectGet(ctx, "files", "empty"); err != nil {
		t.Errorf("ObjectGet(empty) = %v", err)
	} else if b, err := io.ReadAll(rc); err != nil || len(b) != 0 {
		t.Errorf("ObjectGet(empty) read %q, %v", b, err)
	} else {
		rc.Close()
	}

	// Replace, then list.
	if _, err := s.ObjectPut(ctx, "files", "docs/a b.txt", strings.NewReader("v2"), storage.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"docs/z", "img/1.png", "img/2.png"} {
		if _, err := s.ObjectPut(ctx, "files", n, strings.NewReader(n), storage.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ObjectDelete(ctx, "files", "docs/z"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "ObjectDelete(again)", s.ObjectDelete(ctx, "files", "docs/z"), storage.ErrNotFound, `"docs/z"`)
	names := func(o storage.ListOptions) string {
		t.Helper()
		var out []string
		for {
			p, err := s.ObjectList(ctx, "files", o)
			if err != nil {
				t.Fatalf("ObjectList(%+v) = %v", o, err)
			}
			for _, in := range p.Objects {
				out = append(out, in.Name)
			}
			if p.NextMarker == "" {
				return strings.Join(out, ",")
			}
			o.Marker = p.NextMarker
		}
	}
	for _, c := range []struct {
		o    storage.ListOptions
		want string
	}{
		{storage.ListOptions{}, "docs/a b.txt,empty,img/1.png,img/2.png"},
		{storage.ListOptions{Limit: 1}, "docs/a b.txt,empty,img/1.png,img/2.png"},
		{storage.ListOptions{Prefix: "img/", Limit: 1}, "img/1.png,img/2.png"},
		{storage.ListOptions{Prefix: "docs"}, "docs/a b.txt"},
		{storage.ListOptions{Prefix: "nothing"}, ""},
	} {
		if got := names(c.o); got != c.want {
			t.Errorf("objects %+v = %s, want %s", c.o, got, c.want)
		}
	}
	p, err := s.ObjectList(ctx, "files", storage.ListOptions{Prefix: "docs"})
	if err != nil || len(p.Objects) != 1 || p.Objects[0].Size != 2 || p.Objects[0].Digest != sha([]byte("v2")) || p.Objects[0].Modified.IsZero() {
		t.Errorf("ObjectList(docs) = %+v, %v", p, err)
	}

	// Missing objects and buckets; bad names.
	_, err = s.ObjectHead(ctx, "files", "nope")
	wantErr(t, "ObjectHead(missing)", err, storage.ErrNotFound, `object "nope"`, `"files"`)
	_, _, err = s.ObjectGet(ctx, "files", "docs/z")
	wantErr(t, "ObjectGet(deleted)", err, storage.ErrNotFound)
	_, _, err = s.ObjectGet(ctx, "nobucket", "x")
	wantErr(t, "ObjectGet(no bucket)", err, storage.ErrNoBucket, `object bucket "nobucket"`)
	_, err = s.ObjectPut(ctx, "nobucket", "x", strings.NewReader("x"), storage.PutObjectOptions{})
	wantErr(t, "ObjectPut(no bucket)", err, storage.ErrNoBucket)
	_, err = s.ObjectList(ctx, "nobucket", storage.ListOptions{})
	wantErr(t, "ObjectList(no bucket)", err, storage.ErrNoBucket)
	for _, bad := range []string{"", ".", "..", "a\x00b", "a\nb", "\xff", strings.Repeat("n", api.MaxObjectNameLen+1)} {
		_, err := s.ObjectPut(ctx, "files", bad, strings.NewReader("x"), storage.PutObjectOptions{})
		wantErr(t, fmt.Sprintf("ObjectPut(%.20q)", bad), err, storage.ErrInvalid, "object name")
	}
	_, err = s.ObjectPut(ctx, "files", "ct", strings.NewReader("x"), storage.PutObjectOptions{ContentType: "text/plain\r\nX: y"})
	wantErr(t, "ObjectPut(bad content type)", err, storage.ErrInvalid, "content type")
}

// failingReader fails the test if it is read.
type failingReader struct{ t *testing.T }

func (r failingReader) Read([]byte) (int, error) {
	r.t.Error("an object announced over the limit was read")
	return 0, io.EOF
}

// patternReader yields n bytes of a pattern without holding them.
type patternReader struct{ off, n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := range p {
		p[i] = byte((r.off + int64(i)) * 7 % 251)
	}
	r.off += int64(len(p))
	return len(p), nil
}

func TestObjectLimits(t *testing.T) {
	sub := openSubstrate(t)
	s := openStore(t, sub, storage.Config{MaxObjectSize: 3 << 20})
	ctx := context.Background()
	mustCreate(t, s, storage.KindObjects, "default", storage.BucketOptions{})
	mustCreate(t, s, storage.KindObjects, "tiny", storage.BucketOptions{MaxObjectSize: 1000})
	if info, err := s.Bucket(ctx, storage.KindObjects, "default"); err != nil || info.MaxObjectSize != 3<<20 {
		t.Errorf("Bucket(default) = %+v, %v; want the node's limit", info, err)
	}

	// A large object streams in and out (and its digest checks out).
	const size = 3 << 20
	h := sha256.New()
	io.Copy(h, &patternReader{n: size})
	want := hex.EncodeToString(h.Sum(nil))
	info, err := s.ObjectPut(ctx, "default", "big", &patternReader{n: size}, storage.PutObjectOptions{Size: size})
	if err != nil || info.Size != size || info.Digest != want {
		t.Fatalf("ObjectPut(3 MiB) = %+v, %v", info, err)
	}
	rc, _, err := s.ObjectGet(ctx, "default", "big")
	if err != nil {
		t.Fatal(err)
	}
	h.Reset()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != want {
		t.Errorf("ObjectGet(big) read %d bytes, %v; digest mismatch or short", n, err)
	}

	// Over the limit: refused, and the previous object is intact.
	old := []byte("the old object")
	if _, err := s.ObjectPut(ctx, "tiny", "doc", bytes.NewReader(old), storage.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := sub.JetStream().Stream(ctx, "OBJ_uobj_tiny")
	if err != nil {
		t.Fatal(err)
	}
	msgsBefore := st.CachedInfo().State.Msgs
	_, err = s.ObjectPut(ctx, "tiny", "doc", &patternReader{n: 1001}, storage.PutObjectOptions{})
	wantErr(t, "ObjectPut(1001 bytes into 1000)", err, storage.ErrTooLarge, "1000 bytes", `"tiny"`)
	_, err = s.ObjectPut(ctx, "tiny", "doc", failingReader{t}, storage.PutObjectOptions{Size: 5000})
	wantErr(t, "ObjectPut(announced 5000)", err, storage.ErrTooLarge, "5000 bytes", "1000 bytes")
	_, err = s.ObjectPut(ctx, "default", "doc", &patternReader{n: size + 1}, storage.PutObjectOptions{})
	wantErr(t, "ObjectPut(over the node's limit)", err, storage.ErrTooLarge, fmt.Sprint(3<<20))

	rc, info, err = s.ObjectGet(ctx, "tiny", "doc")
	if err != nil {
		t.Fatalf("the previous object after a refused put: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, old) || info.Digest != sha(old) {
		t.Errorf("after a refused put the object is %q (%s), want %q", b, info.Digest, old)
	}
	if si, err := st.Info(ctx); err != nil || si.State.Msgs != msgsBefore {
		t.Errorf("the refused put left chunks behind: %d messages, were %d (%v)", si.State.Msgs, msgsBefore, err)
	}
	// Exactly the limit is fine.
	if _, err := s.ObjectPut(ctx, "tiny", "doc", &patternReader{n: 1000}, storage.PutObjectOptions{}); err != nil {
		t.Errorf("ObjectPut(1000 bytes into 1000) = %v", err)
	}
}
