package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
)

// isStorageCode reports whether err is an API error with code.
func isStorageCode(err error, code string) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == code
}

// TestStorageClient drives buckets, keys and objects through a real
// node's HTTP API with the Go client.
func TestStorageClient(t *testing.T) {
	n := startNode(t, t.TempDir())
	c := scheduleClient(n)
	ctx := context.Background()

	if _, err := c.CreateBucket(ctx, api.BucketKV, "app", api.CreateBucketRequest{History: 2, Description: "settings"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(ctx, api.BucketKV, "app", api.CreateBucketRequest{}); !isStorageCode(err, api.ErrResourceConflict) {
		t.Errorf("CreateBucket(existing) = %v, want ResourceConflictException", err)
	}
	b, err := c.CreateBucket(ctx, api.BucketObjects, "files", api.CreateBucketRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if b.MaxObjectSize != api.DefaultMaxObjectSize {
		t.Errorf("a new object bucket takes objects up to %d bytes, want the default %d", b.MaxObjectSize, api.DefaultMaxObjectSize)
	}
	list, err := c.ListBuckets(ctx, "")
	if err != nil || len(list) != 2 || list[0].Name != "app" || list[1].Name != "files" {
		t.Errorf("ListBuckets = %+v, %v", list, err)
	}

	// Keys.
	rev, err := c.KVPut(ctx, "app", "feature/dark-mode", []byte("on"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.KVGet(ctx, "app", "feature/dark-mode")
	if err != nil || string(e.Value) != "on" || e.Revision != rev || e.Modified.IsZero() {
		t.Errorf("KVGet = %+v, %v", e, err)
	}
	if _, err := c.KVUpdate(ctx, "app", "feature/dark-mode", []byte("off"), rev+5); !isStorageCode(err, api.ErrPreconditionFailed) {
		t.Errorf("KVUpdate(stale) = %v, want PreconditionFailedException", err)
	}
	if _, err := c.KVUpdate(ctx, "app", "feature/dark-mode", []byte("off"), rev); err != nil {
		t.Errorf("KVUpdate(current) = %v", err)
	}
	for _, k := range []string{"feature/beta", "limits.rps", "limits.burst"} {
		if _, err := c.KVPut(ctx, "app", k, []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := c.KVKeys(ctx, "app", "feature/")
	if err != nil || len(keys) != 2 || keys[0].Key != "feature/beta" || keys[1].Key != "feature/dark-mode" {
		t.Errorf("KVKeys(feature/) = %+v, %v", keys, err)
	}
	page, err := c.KVList(ctx, "app", client.ListOptions{Limit: 3})
	if err != nil || len(page.Keys) != 3 || page.NextMarker != "limits.burst" {
		t.Errorf("KVList(limit 3) = %+v, %v", page, err)
	}
	if err := c.KVDelete(ctx, "app", "limits.rps", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVGet(ctx, "app", "limits.rps"); !isStorageCode(err, api.ErrResourceNotFound) || !strings.Contains(err.Error(), "limits.rps") {
		t.Errorf("KVGet(deleted) = %v, want ResourceNotFoundException naming the key", err)
	}
	if _, err := c.KVGet(ctx, "nobucket", "k"); !isStorageCode(err, api.ErrResourceNotFound) || !strings.Contains(err.Error(), "nobucket") {
		t.Errorf("KVGet(no bucket) = %v, want ResourceNotFoundException naming the bucket", err)
	}
	if _, err := c.KVPut(ctx, "app", "bad key", nil); !isStorageCode(err, api.ErrInvalidParameterValue) {
		t.Errorf("KVPut(bad key) = %v, want InvalidParameterValueException", err)
	}
	if _, err := c.KVPut(ctx, "app", "huge", make([]byte, api.MaxKVValue+1)); !isStorageCode(err, api.ErrRequestTooLarge) {
		t.Errorf("KVPut(huge) = %v, want RequestTooLargeException", err)
	}

	// Objects, streamed both ways.
	data := bytes.Repeat([]byte("gust "), 400_000) // 2 MB
	info, err := c.PutObject(ctx, "files", "reports/2026 q1.txt", bytes.NewReader(data), int64(len(data)), "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	rc, got, err := c.GetObject(ctx, "files", "reports/2026 q1.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(body, data) || got.Digest != info.Digest || got.ContentType != "text/plain" {
		t.Errorf("GetObject = %d bytes, %+v, %v", len(body), got, err)
	}
	objs, err := c.Objects(ctx, "files", "reports/")
	if err != nil || len(objs) != 1 || objs[0].Size != int64(len(data)) {
		t.Errorf("Objects(reports/) = %+v, %v", objs, err)
	}
	d, err := c.GetBucket(ctx, api.BucketObjects, "files")
	if err != nil || d.Count == nil || *d.Count != 1 || d.Bytes < uint64(len(data)) {
		t.Errorf("GetBucket(files) = %+v, %v", d, err)
	}
	if err := c.DeleteObject(ctx, "files", "reports/2026 q1.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HeadObject(ctx, "files", "reports/2026 q1.txt"); !isStorageCode(err, api.ErrResourceNotFound) {
		t.Errorf("HeadObject(deleted) = %v, want ResourceNotFoundException", err)
	}

	// Keys of the invoke scope may not touch buckets.
	k, err := c.CreateKey(ctx, api.CreateKeyRequest{Scope: api.ScopeInvoke})
	if err != nil {
		t.Fatal(err)
	}
	ic := client.New(n.URL(), client.Credentials{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey})
	if _, err := ic.KVGet(ctx, "app", "feature/beta"); !isStorageCode(err, api.ErrAccessDenied) || !strings.Contains(err.Error(), "gust:ReadBucket") {
		t.Errorf("KVGet with an invoke key = %v, want AccessDeniedException for gust:ReadBucket", err)
	}
	if _, err := ic.ListBuckets(ctx, ""); !isStorageCode(err, api.ErrAccessDenied) {
		t.Errorf("ListBuckets with an invoke key = %v, want AccessDeniedException", err)
	}

	if err := c.DeleteBucket(ctx, api.BucketKV, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBucket(ctx, api.BucketKV, "app"); !isStorageCode(err, api.ErrResourceNotFound) {
		t.Errorf("GetBucket(deleted) = %v, want ResourceNotFoundException", err)
	}
}

// TestStorageCLI drives gust kv and gust objects against a real node.
func TestStorageCLI(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	run := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		return gust(t, n, dir, stdin, args...)
	}
	ok := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errs := run(stdin, args...)
		if code != 0 {
			t.Fatalf("gust %s = %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	fails := func(wantCode int, wantErr string, args ...string) {
		t.Helper()
		code, out, errs := run("", args...)
		if code != wantCode || !strings.Contains(errs, wantErr) {
			t.Errorf("gust %s = %d %q %q, want exit %d and %q", strings.Join(args, " "), code, out, errs, wantCode, wantErr)
		}
	}

	// KV.
	if out := ok("", "kv", "create", "cfg", "--history", "3", "--description", "config"); !strings.Contains(out, "created kv bucket cfg") {
		t.Errorf("kv create = %q", out)
	}
	fails(1, "ResourceConflictException", "kv", "create", "cfg")
	fails(1, "InvalidParameterValueException", "kv", "create", "bad.name")
	ok("", "kv", "put", "cfg", "greeting", "hello")
	if out := ok("", "kv", "get", "cfg", "greeting"); out != "hello" {
		t.Errorf("kv get = %q, want hello", out)
	}
	ok("from stdin", "kv", "put", "cfg", "piped", "-")
	vf := filepath.Join(t.TempDir(), "v.txt")
	os.WriteFile(vf, []byte("from a file"), 0o644)
	ok("", "kv", "put", "cfg", "filed", "--file", vf)
	if out := ok("", "kv", "get", "cfg", "filed"); out != "from a file" {
		t.Errorf("kv get filed = %q", out)
	}
	var entry api.KVEntry
	if err := json.Unmarshal([]byte(ok("", "kv", "get", "cfg", "piped", "-o", "json")), &entry); err != nil || string(entry.Value) != "from stdin" || entry.Revision == 0 {
		t.Errorf("kv get -o json = %+v, %v", entry, err)
	}
	fails(1, "PreconditionFailedException", "kv", "put", "cfg", "piped", "x", "--create")
	fails(1, "PreconditionFailedException", "kv", "put", "cfg", "piped", "x", "--if-revision", "999")
	ok("", "kv", "put", "cfg", "piped", "y", "--if-revision", jsonNumber(entry.Revision))
	out := ok("", "kv", "ls", "cfg")
	for _, want := range []string{"KEY", "filed", "greeting", "piped"} {
		if !strings.Contains(out, want) {
			t.Errorf("kv ls lacks %q:\n%s", want, out)
		}
	}
	var keys api.KVKeyList
	if err := json.Unmarshal([]byte(ok("", "kv", "ls", "cfg", "--prefix", "p", "-o", "json")), &keys); err != nil || len(keys.Keys) != 1 || keys.Keys[0].Key != "piped" {
		t.Errorf("kv ls --prefix p -o json = %+v, %v", keys, err)
	}
	if err := json.Unmarshal([]byte(ok("", "kv", "ls", "cfg", "--limit", "1", "-o", "json")), &keys); err != nil || len(keys.Keys) != 1 || keys.NextMarker != "filed" {
		t.Errorf("kv ls --limit 1 -o json = %+v, %v", keys, err)
	}
	ok("", "kv", "rm", "cfg", "greeting")
	fails(1, "ResourceNotFoundException", "kv", "get", "cfg", "greeting")
	fails(1, "ResourceNotFoundException", "kv", "get", "nobucket", "k")
	fails(1, "InvalidParameterValueException", "kv", "put", "cfg", "bad key", "v")
	fails(2, "takes BUCKET KEY VALUE", "kv", "put", "cfg", "k")
	fails(2, "exclude each other", "kv", "put", "cfg", "k", "v", "--create", "--if-revision", "3")
	fails(2, "needs a command", "kv")
	if out := ok("", "kv", "info", "cfg"); !strings.Contains(out, "keys:") || !strings.Contains(out, "2") || !strings.Contains(out, "history 3") {
		t.Errorf("kv info =\n%s", out)
	}
	if out := ok("", "kv", "buckets"); !strings.Contains(out, "cfg") || !strings.Contains(out, "config") {
		t.Errorf("kv buckets =\n%s", out)
	}

	// Objects.
	ok("", "objects", "create", "media", "--max-size", "1KiB")
	src := filepath.Join(t.TempDir(), "note.txt")
	os.WriteFile(src, []byte("a small note"), 0o644)
	if out := ok("", "objects", "put", "media", "notes/1.txt", src); !strings.Contains(out, "stored media/notes/1.txt") || !strings.Contains(out, "text/plain") {
		t.Errorf("objects put = %q", out)
	}
	ok("from stdin", "objects", "put", "media", "piped", "-")
	if out := ok("", "objects", "get", "media", "notes/1.txt"); out != "a small note" {
		t.Errorf("objects get to stdout = %q", out)
	}
	dst := filepath.Join(t.TempDir(), "out.txt")
	ok("", "objects", "get", "media", "piped", dst)
	if b, err := os.ReadFile(dst); err != nil || string(b) != "from stdin" {
		t.Errorf("objects get to a file: %q, %v", b, err)
	}
	var info api.ObjectInfo
	if err := json.Unmarshal([]byte(ok("", "objects", "stat", "media", "notes/1.txt", "-o", "json")), &info); err != nil || info.Size != 12 || len(info.Digest) != 64 {
		t.Errorf("objects stat -o json = %+v, %v", info, err)
	}
	big := filepath.Join(t.TempDir(), "big.bin")
	os.WriteFile(big, make([]byte, 2048), 0o644)
	fails(1, "RequestTooLargeException", "objects", "put", "media", "notes/1.txt", big)
	if out := ok("", "objects", "get", "media", "notes/1.txt"); out != "a small note" {
		t.Errorf("after a refused put the object is %q, want the old one", out)
	}
	out = ok("", "objects", "ls", "media", "--prefix", "notes/")
	if !strings.Contains(out, "notes/1.txt") || strings.Contains(out, "piped") {
		t.Errorf("objects ls --prefix notes/ =\n%s", out)
	}
	ok("", "objects", "rm", "media", "piped")
	fails(1, "ResourceNotFoundException", "objects", "get", "media", "piped")
	fails(1, "ResourceNotFoundException", "objects", "rm", "media", "piped")
	fails(2, "-o json describes the object", "objects", "get", "media", "notes/1.txt", "-o", "json")
	fails(2, "--max-size", "objects", "create", "m2", "--max-size", "lots")
	if out := ok("", "objects", "info", "media"); !strings.Contains(out, "objects:") || !strings.Contains(out, "objects up to 1.0 KiB") {
		t.Errorf("objects info =\n%s", out)
	}

	ok("", "objects", "delete-bucket", "media")
	ok("", "kv", "delete-bucket", "cfg")
	fails(1, "ResourceNotFoundException", "kv", "delete-bucket", "cfg")
	var buckets []api.Bucket
	if err := json.Unmarshal([]byte(ok("", "kv", "buckets", "-o", "json")), &buckets); err != nil || len(buckets) != 0 {
		t.Errorf("kv buckets -o json after deleting = %+v, %v", buckets, err)
	}
}

func jsonNumber(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
