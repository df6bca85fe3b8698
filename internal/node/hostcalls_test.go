package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/gobuild"
)

// TestWasmHostCalls runs a Go SDK function on a node: its KV and object
// calls reach the buckets it is granted and no other, its http.Get
// reaches the hosts it is allowed and no other, and a grant added later
// takes effect.
func TestWasmHostCalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	code, err := gobuild.Build(bctx, filepath.Join(repoRoot(t), "internal", "node", "testdata", "hosted"))
	if err != nil {
		t.Fatalf("build the hosted guest: %v", err)
	}
	n := startNode(t, t.TempDir())
	c := adminClient(n)

	var hits, otherHits atomic.Int32
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "hello from "+r.URL.Path)
	}))
	defer allowed.Close()
	// The same server under another name (localhost, not in the list) and
	// a second server on another port.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) }))
	defer other.Close()
	au, _ := url.Parse(allowed.URL)

	for _, b := range []struct{ kind, name string }{
		{api.BucketKV, "notes"}, {api.BucketKV, "secrets"}, {api.BucketObjects, "files"}, {api.BucketObjects, "private"},
	} {
		if _, err := c.CreateBucket(ctx, b.kind, b.name, api.CreateBucketRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.KVPut(ctx, "secrets", "password", []byte("hunter2")); err != nil {
		t.Fatal(err)
	}
	timeout := int32(10)
	if _, err := c.CreateFunction(ctx, api.CreateFunctionRequest{FunctionName: "hosted", Runtime: "wasm", Timeout: &timeout,
		Code:       &api.FunctionCode{ZipFile: code},
		GustGrants: &api.Grants{KV: []string{"notes"}, Objects: []string{"files"}, Hosts: []string{au.Host}}}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		Value  string   `json:"value"`
		Keys   []string `json:"keys"`
		Status int      `json:"status"`
		Size   int64    `json:"size"`
	}
	type functionError struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	invoke := func(ev string) (result, *functionError) {
		t.Helper()
		res, err := c.Invoke(ctx, "hosted", []byte(ev), client.InvokeOptions{})
		if err != nil {
			t.Fatalf("invoke %s: %v", ev, err)
		}
		if res.FunctionError != "" {
			var fe functionError
			if err := json.Unmarshal(res.Payload, &fe); err != nil {
				t.Fatalf("invoke %s: error payload %s", ev, res.Payload)
			}
			return result{}, &fe
		}
		var r result
		if err := json.Unmarshal(res.Payload, &r); err != nil {
			t.Fatalf("invoke %s: %s", ev, res.Payload)
		}
		return r, nil
	}
	ok := func(ev string) result {
		t.Helper()
		r, fe := invoke(ev)
		if fe != nil {
			t.Fatalf("invoke %s: %s: %s", ev, fe.ErrorType, fe.ErrorMessage)
		}
		return r
	}

	// Granted: KV and objects work, and the node's API sees the writes.
	ok(`{"op":"kv.put","bucket":"notes","key":"a","value":"first"}`)
	if r := ok(`{"op":"kv.get","bucket":"notes","key":"a"}`); r.Value != "first" {
		t.Errorf("kv.get = %+v, want first", r)
	}
	if e, err := c.KVGet(ctx, "notes", "a"); err != nil || string(e.Value) != "first" {
		t.Errorf("the API reads %+v, %v; want first", e, err)
	}
	ok(`{"op":"obj.put","bucket":"files","key":"doc.txt","value":"some text"}`)
	if r := ok(`{"op":"obj.get","bucket":"files","key":"doc.txt"}`); r.Value != "some text" || r.Size != 9 {
		t.Errorf("obj.get = %+v", r)
	}
	if r, fe := invoke(`{"op":"kv.get","bucket":"notes","key":"nope"}`); fe == nil || fe.ErrorType != "Host.NotFound" {
		t.Errorf("kv.get of a missing key = %+v, %+v; want Host.NotFound", r, fe)
	}

	// Not granted: refused with the bucket named; nothing read or changed.
	denied := []struct{ ev, phrase string }{
		{`{"op":"kv.get","bucket":"secrets","key":"password"}`, "not granted the kv bucket secrets"},
		{`{"op":"kv.put","bucket":"secrets","key":"password","value":"x"}`, "not granted the kv bucket secrets"},
		{`{"op":"kv.list","bucket":"secrets"}`, "not granted the kv bucket secrets"},
		{`{"op":"obj.put","bucket":"private","key":"x","value":"x"}`, "not granted the object bucket private"},
		{`{"op":"obj.get","bucket":"files","key":"x","value":"x"}`, ""}, // granted: NotFound, below
		{`{"op":"http.get","url":"` + other.URL + `/"}`, "not granted the outbound host " + strings.TrimPrefix(other.URL, "http://")},
		{`{"op":"http.get","url":"http://localhost:` + au.Port() + `/"}`, "not granted the outbound host localhost:" + au.Port()},
	}
	for _, d := range denied {
		_, fe := invoke(d.ev)
		if d.phrase == "" {
			if fe == nil || fe.ErrorType != "Host.NotFound" {
				t.Errorf("%s = %+v, want Host.NotFound", d.ev, fe)
			}
			continue
		}
		if fe == nil || fe.ErrorType != "Host.AccessDenied" || !strings.Contains(fe.ErrorMessage, d.phrase) {
			t.Errorf("%s = %+v; want Host.AccessDenied naming %q", d.ev, fe, d.phrase)
		}
	}
	if e, err := c.KVGet(ctx, "secrets", "password"); err != nil || string(e.Value) != "hunter2" {
		t.Errorf("the denied bucket now holds %+v, %v; want it untouched", e, err)
	}
	if otherHits.Load() != 0 || hits.Load() != 0 {
		t.Errorf("servers reached by denied requests: allowed %d, other %d", hits.Load(), otherHits.Load())
	}

	// Allowed: http.Get inside the function reaches the server.
	if r := ok(`{"op":"http.get","url":"` + allowed.URL + `/page"}`); r.Status != 200 || r.Value != "hello from /page" {
		t.Errorf("http.get of an allowed host = %+v", r)
	}

	// A grant added later: the function reaches the bucket.
	if _, err := c.UpdateFunctionConfiguration(ctx, "hosted", api.UpdateFunctionConfigurationRequest{
		GustGrants: &api.Grants{KV: []string{"notes", "secrets"}, Objects: []string{"files"}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, fe := invoke(`{"op":"kv.get","bucket":"secrets","key":"password"}`)
		if fe == nil && r.Value == "hunter2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after granting secrets: %+v, %+v", r, fe)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// ...and the hosts it no longer lists are refused.
	if _, fe := invoke(`{"op":"http.get","url":"` + allowed.URL + `/page"}`); fe == nil || fe.ErrorType != "Host.AccessDenied" {
		t.Errorf("http.get after the host was removed = %+v, want Host.AccessDenied", fe)
	}
}
