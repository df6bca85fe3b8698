package hostcall_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/hostcall"
	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/sandbox"
	"github.com/gustfaas/gust/internal/storage"
	"github.com/gustfaas/gust/internal/substrate"
)

// functions is a fixed set of function versions, standing in for the
// registry, whose grants the tests change between calls.
type functions map[string]*registry.Function

func (f functions) Get(name string) (*registry.Function, bool) {
	fn, ok := f[name+":"+registry.Latest]
	return fn, ok
}

func (f functions) Version(name, v string) (*registry.Function, bool) {
	fn, ok := f[name+":"+v]
	return fn, ok
}

type fixture struct {
	store *storage.Store
	fns   functions
	svc   *hostcall.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	sub, err := substrate.Open(ctx, substrate.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	st, err := storage.Open(ctx, sub, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		kind, name string
		o          storage.BucketOptions
	}{
		{storage.KindKV, "items", storage.BucketOptions{}},
		{storage.KindKV, "secrets", storage.BucketOptions{}},
		{storage.KindObjects, "files", storage.BucketOptions{MaxObjectSize: 1 << 20}},
	} {
		if _, err := st.CreateBucket(ctx, b.kind, b.name, b.o); err != nil {
			t.Fatal(err)
		}
	}
	fns := functions{"fn:$LATEST": {Name: "fn", Grants: &registry.Grants{KV: []string{"items"}, Objects: []string{"files"}}}}
	svc := hostcall.New(hostcall.Config{Storage: st, Functions: fns, MaxResponseBytes: 64 << 10})
	t.Cleanup(svc.Close)
	return &fixture{store: st, fns: fns, svc: svc}
}

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func num(t *testing.T, b []byte) uint64 {
	t.Helper()
	if len(b) != 8 {
		t.Fatalf("number of %d bytes", len(b))
	}
	return binary.LittleEndian.Uint64(b)
}

func args(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, a := range s {
		out[i] = []byte(a)
	}
	return out
}

// code returns the guest-visible code of err ("" for nil).
func code(err error) string {
	var he *sandbox.HostError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &he):
		return he.Code
	}
	return "internal: " + err.Error()
}

func TestKV(t *testing.T) {
	f := newFixture(t)
	h := f.svc.Open("fn", "")
	defer h.Close()
	ctx := context.Background()
	call := func(op string, a ...[]byte) ([][]byte, error) { return h.Call(ctx, op, a) }

	res, err := call("kv.put", []byte("items"), []byte("a"), []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	rev := num(t, res[0])
	res, err = call("kv.get", args("items", "a")...)
	if err != nil || string(res[0]) != "1" || num(t, res[1]) != rev {
		t.Fatalf("kv.get = %q, %v; want 1 at %d", res, err, rev)
	}
	// Compare-and-set: the right revision wins, a stale one conflicts,
	// revision 0 creates only.
	res, err = call("kv.cas", []byte("items"), []byte("a"), []byte("2"), u64(rev))
	if err != nil {
		t.Fatalf("kv.cas at the current revision: %v", err)
	}
	if _, err := call("kv.cas", []byte("items"), []byte("a"), []byte("3"), u64(rev)); code(err) != hostcall.CodeConflict {
		t.Errorf("kv.cas at a stale revision = %v, want Conflict", err)
	}
	if _, err := call("kv.cas", []byte("items"), []byte("a"), []byte("3"), u64(0)); code(err) != hostcall.CodeConflict {
		t.Errorf("kv.cas create of an existing key = %v, want Conflict", err)
	}
	if _, err := call("kv.cas", []byte("items"), []byte("b"), []byte("new"), u64(0)); err != nil {
		t.Errorf("kv.cas create of a new key: %v", err)
	}
	for i := range 3 {
		if _, err := call("kv.put", []byte("items"), []byte(fmt.Sprintf("list.%d", i)), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	res, err = call("kv.list", args("items", "list.", "")...)
	if err != nil || string(res[0]) != "" || len(res) != 4 || string(res[1]) != "list.0" || string(res[3]) != "list.2" {
		t.Errorf("kv.list = %q, %v; want no marker and list.0..2", res, err)
	}
	if _, err := call("kv.delete", []byte("items"), []byte("a"), u64(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := call("kv.get", args("items", "a")...); code(err) != hostcall.CodeNotFound {
		t.Errorf("kv.get of a deleted key = %v, want NotFound", err)
	}
	if _, err := call("kv.delete", []byte("items"), []byte("never-was"), u64(0)); err != nil {
		t.Errorf("deleting a missing key = %v, want success", err)
	}
	if _, err := call("kv.delete", []byte("items"), []byte("never-was"), u64(5)); code(err) != hostcall.CodeConflict {
		t.Errorf("a conditional delete of a missing key = %v, want Conflict (not at that revision)", err)
	}

	// Bad input: each refused with a code and a message naming it.
	tests := []struct {
		name, op string
		args     [][]byte
		code     string
		phrase   string
	}{
		{"ungranted bucket", "kv.get", args("secrets", "a"), hostcall.CodeAccessDenied, "not granted the kv bucket secrets"},
		{"object bucket as kv", "kv.get", args("files", "a"), hostcall.CodeAccessDenied, "grants.kv"},
		{"bad key", "kv.put", args("items", "a b", "v"), hostcall.CodeInvalid, `key "a b"`},
		{"value over the limit", "kv.put", [][]byte{[]byte("items"), []byte("big"), make([]byte, 1<<20+1)}, hostcall.CodeTooLarge, "over the limit"},
		{"short revision", "kv.cas", args("items", "a", "v", "1"), hostcall.CodeInvalid, "revision must be 8 bytes"},
		{"missing arguments", "kv.get", args("items"), hostcall.CodeInvalid, "takes 2 arguments"},
		{"unknown operation", "kv.explode", nil, hostcall.CodeUnknownOp, `"kv.explode"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(tt.op, tt.args...)
			if code(err) != tt.code || !strings.Contains(err.Error(), tt.phrase) {
				t.Errorf("%s = %v; want %s naming %q", tt.op, err, tt.code, tt.phrase)
			}
		})
	}
	// The bucket the function was denied is untouched, and a grant added
	// later takes effect at the next call: grants are read per call.
	f.fns["fn:$LATEST"] = &registry.Function{Name: "fn", Grants: &registry.Grants{KV: []string{"items", "secrets"}}}
	if _, err := call("kv.put", args("secrets", "k", "v")...); err != nil {
		t.Errorf("kv.put after the grant: %v", err)
	}
	delete(f.fns, "fn:$LATEST")
	if _, err := call("kv.get", args("items", "b")...); code(err) != hostcall.CodeAccessDenied || !strings.Contains(err.Error(), "no longer exists") {
		t.Errorf("kv.get by a deleted function = %v, want AccessDenied", err)
	}
}

func TestObjectsStreamed(t *testing.T) {
	f := newFixture(t)
	h := f.svc.Open("fn", "$LATEST")
	defer h.Close()
	ctx := context.Background()
	call := func(op string, a ...[]byte) ([][]byte, error) { return h.Call(ctx, op, a) }

	// A put in chunks.
	content := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 000 bytes
	res, err := call("obj.put.open", args("files", "big.bin", "application/x-test")...)
	if err != nil {
		t.Fatal(err)
	}
	handle := res[0]
	for off := 0; off < len(content); off += 100000 {
		if _, err := call("obj.put.write", handle, content[off:min(off+100000, len(content))]); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
	res, err = call("obj.put.close", handle)
	if err != nil || num(t, res[0]) != uint64(len(content)) || string(res[1]) != "application/x-test" {
		t.Fatalf("obj.put.close = %q, %v", res, err)
	}
	if _, err := call("obj.put.write", handle, []byte("late")); code(err) != hostcall.CodeInvalid {
		t.Errorf("write after close = %v, want Invalid (handle not open)", err)
	}

	// A read in chunks gives the same bytes.
	res, err = call("obj.get.open", args("files", "big.bin")...)
	if err != nil || num(t, res[1]) != uint64(len(content)) {
		t.Fatalf("obj.get.open = %v", err)
	}
	handle = res[0]
	var got []byte
	for {
		res, err := call("obj.get.read", handle, u64(300000))
		if err != nil {
			t.Fatal(err)
		}
		if len(res[0]) == 0 {
			break
		}
		got = append(got, res[0]...)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("read %d bytes back, want the %d written", len(got), len(content))
	}
	if _, err := call("obj.get.close", handle); err != nil {
		t.Error(err)
	}

	// Over the bucket's 1 MiB limit: refused, and the old object stays.
	res, err = call("obj.put.open", args("files", "big.bin", "")...)
	if err != nil {
		t.Fatal(err)
	}
	handle = res[0]
	chunk := make([]byte, 256<<10)
	for range 5 {
		if _, err = call("obj.put.write", handle, chunk); err != nil {
			break
		}
	}
	if err == nil {
		_, err = call("obj.put.close", handle)
	}
	if code(err) != hostcall.CodeTooLarge || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("an over-size put = %v, want TooLarge", err)
	}
	if info, err := f.store.ObjectHead(ctx, "files", "big.bin"); err != nil || info.Size != int64(len(content)) {
		t.Errorf("after the refused put: %+v, %v; want the old object of %d bytes", info, err, len(content))
	}

	// A put the invocation abandons stores nothing.
	res, err = call("obj.put.open", args("files", "abandoned", "")...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call("obj.put.write", res[0], []byte("half")); err != nil {
		t.Fatal(err)
	}
	h.Release()
	if _, err := f.store.ObjectHead(ctx, "files", "abandoned"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("abandoned put: head = %v, want not found", err)
	}

	res, err = call("obj.list", args("files", "", "")...)
	if err != nil || len(res) != 5 || string(res[1]) != "big.bin" {
		t.Errorf("obj.list = %q, %v; want big.bin alone", res, err)
	}
	if _, err := call("obj.delete", args("files", "big.bin")...); err != nil {
		t.Error(err)
	}
	if _, err := call("obj.delete", args("files", "big.bin")...); err != nil {
		t.Errorf("deleting a missing object = %v, want success as S3", err)
	}
	if _, err := call("obj.get.open", args("files", "big.bin")...); code(err) != hostcall.CodeNotFound {
		t.Errorf("get of a deleted object = %v, want NotFound", err)
	}
	if _, err := call("obj.put.open", args("uploads", "x", "")...); code(err) != hostcall.CodeAccessDenied {
		t.Errorf("put to an ungranted bucket = %v, want AccessDenied", err)
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		hosts []string
		url   string
		want  bool
	}{
		{nil, "https://example.com/", false},
		{[]string{"example.com"}, "https://example.com/x", true},
		{[]string{"example.com"}, "http://EXAMPLE.com:8080/", true},
		{[]string{"example.com"}, "https://api.example.com/", false},
		{[]string{"example.com:8443"}, "https://example.com:8443/", true},
		{[]string{"example.com:8443"}, "https://example.com/", false},
		{[]string{"example.com:443"}, "https://example.com/", true},
		{[]string{"*.example.com"}, "https://api.example.com/", true},
		{[]string{"*.example.com"}, "https://a.b.example.com/", true},
		{[]string{"*.example.com"}, "https://example.com/", false},
		{[]string{"*.example.com"}, "https://evilexample.com/", false},
		{[]string{"*.example.com:81"}, "http://api.example.com:81/", true},
		{[]string{"*.example.com:81"}, "http://api.example.com/", false},
		{[]string{"127.0.0.1"}, "http://127.0.0.1:9999/", true},
		{[]string{"127.0.0.1:9999"}, "http://127.0.0.1:9998/", false},
		{[]string{"[::1]"}, "http://[::1]:80/", true},
		{[]string{"[::1]:8080"}, "http://[::1]:8080/", true},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostcall.Allowed(tt.hosts, u); got != tt.want {
			t.Errorf("Allowed(%q, %s) = %v, want %v", tt.hosts, tt.url, got, tt.want)
		}
	}
}

func TestHTTP(t *testing.T) {
	f := newFixture(t)
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Method", r.Method)
			w.Header().Set("X-Got", r.Header.Get("X-Test"))
			w.WriteHeader(http.StatusCreated)
			w.Write(body)
		case "/big":
			w.Write(make([]byte, 65<<10))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		case "/away":
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		}
	}))
	defer allowed.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a host outside the allow-list was reached: %s", r.URL)
	}))
	defer other.Close()
	au, _ := url.Parse(allowed.URL)
	ou, _ := url.Parse(other.URL)
	f.fns["fn:$LATEST"] = &registry.Function{Name: "fn", Grants: &registry.Grants{Hosts: []string{au.Host}}}
	h := f.svc.Open("fn", "")
	defer h.Close()
	ctx := context.Background()
	do := func(ctx context.Context, method, u, headers, body string) ([][]byte, error) {
		return h.Call(ctx, "http.do", args(method, u, headers, body))
	}

	res, err := do(ctx, "PUT", allowed.URL+"/echo", "X-Test: yes\r\n", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if num(t, res[0]) != 201 || string(res[2]) != "hello" || !strings.Contains(string(res[1]), "X-Got: yes") || !strings.Contains(string(res[1]), "X-Method: PUT") {
		t.Errorf("http.do = %d %q %q", num(t, res[0]), res[1], res[2])
	}

	deadline, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = do(deadline, "GET", allowed.URL+"/slow", "", "")
	if code(err) != hostcall.CodeTimeout {
		t.Errorf("a request past the invocation's deadline = %v, want Timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the request outlived its deadline by %v", d)
	}

	tests := []struct {
		name, url, code, phrase string
	}{
		{"host not allowed", other.URL + "/", hostcall.CodeAccessDenied, "not granted the outbound host " + ou.Host},
		{"other port", "http://" + au.Hostname() + ":1/", hostcall.CodeAccessDenied, "grants.hosts"},
		{"redirect away", allowed.URL + "/away?to=" + url.QueryEscape(other.URL+"/"), hostcall.CodeAccessDenied, "redirect leads to " + ou.Host},
		{"response over the cap", allowed.URL + "/big", hostcall.CodeTooLarge, "over the limit of 65536 bytes"},
		{"not http", "file:///etc/passwd", hostcall.CodeInvalid, "absolute http or https URL"},
		{"relative", "/echo", hostcall.CodeInvalid, "absolute http or https URL"},
	}
	if _, err := do(ctx, "POST", allowed.URL+"/echo", "", strings.Repeat("x", hostcall.MaxRequestBytes+1)); code(err) != hostcall.CodeTooLarge {
		t.Errorf("a request body over the limit = %v, want TooLarge", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := do(ctx, "GET", tt.url, "", "")
			if code(err) != tt.code || !strings.Contains(err.Error(), tt.phrase) {
				t.Errorf("http.do(%s) = %v; want %s naming %q", tt.url, err, tt.code, tt.phrase)
			}
		})
	}
}
