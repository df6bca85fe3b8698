package node_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/cli"
)

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestAppAPIBackend deploys examples/api-backend as shipped with one
// gust deploy and drives its REST API over the function URL: the Python
// function keeps its items in a KV bucket through the token Gust gives
// it, and that token reaches only the buckets the function is granted.
func TestAppAPIBackend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, dir)
	p := &projectCLI{t: t, n: n, dataDir: dir}
	p.deploy(filepath.Join(repoRoot(t), "examples", "api-backend", "gust.yaml"), cli.ExitOK)
	base := n.URL() + "/fn/items"
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	var ids []string
	for _, in := range []string{`{"name":"tea","price":2.5}`, `{"name":"cake","price":4}`} {
		code, body := call("POST", "/items", in)
		var it struct{ ID, Name string }
		if code != 201 || json.Unmarshal([]byte(body), &it) != nil || it.ID == "" {
			res, err := projClient(n).Invoke(context.Background(), "items", []byte(`{"rawPath":"/items","requestContext":{"http":{"method":"POST"}},"body":`+strconvQuote(in)+`}`), client.InvokeOptions{})
			t.Fatalf("POST /items %s = %d %s\ndirect: %v %s %s", in, code, body, err, res.FunctionError, res.Payload)
		}
		ids = append(ids, it.ID)
	}
	if code, body := call("POST", "/items", `{"price":1}`); code != 400 || !strings.Contains(body, "name") {
		t.Errorf("POST without a name = %d %s, want 400", code, body)
	}
	if code, body := call("GET", "/items/"+ids[0], ""); code != 200 || !strings.Contains(body, `"tea"`) {
		t.Errorf("GET /items/%s = %d %s", ids[0], code, body)
	}
	if code, body := call("GET", "/items", ""); code != 200 || !strings.Contains(body, `"tea"`) || !strings.Contains(body, `"cake"`) {
		t.Errorf("GET /items = %d %s", code, body)
	}
	if code, body := call("DELETE", "/items/"+ids[0], ""); code != 204 {
		t.Errorf("DELETE = %d %s", code, body)
	}
	if code, _ := call("GET", "/items/"+ids[0], ""); code != 404 {
		t.Errorf("GET after DELETE = %d, want 404", code)
	}
	// The state is in the bucket, where the node's API sees it.
	c := projClient(n)
	ctx := context.Background()
	keys, err := c.KVKeys(ctx, "items", "")
	if err != nil || len(keys) != 1 || keys[0].Key != ids[1] {
		t.Errorf("keys of the items bucket = %v, %v; want [%s]", keys, err, ids[1])
	}

	// The function's token: its granted bucket, nothing else.
	if _, err := c.CreateBucket(ctx, api.BucketKV, "secrets", api.CreateBucketRequest{}); err != nil {
		t.Fatal(err)
	}
	tok := n.FunctionToken("items:$LATEST")
	for path, want := range map[string]int{
		"/gust/v1/kv/items":   200,
		"/gust/v1/kv/secrets": 403,
		api.FunctionsPath:     403,
	} {
		req, _ := http.NewRequest("GET", n.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s with the function's token = %d %s, want %d", path, resp.StatusCode, b, want)
		}
	}
	req, _ := http.NewRequest("GET", n.URL()+"/gust/v1/kv/items", nil)
	req.Header.Set("Authorization", "Bearer gft1.items:$LATEST.forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("a forged token got %d, want 403", resp.StatusCode)
	}
	var ae *api.Error
	if _, err := c.KVGet(ctx, "nope", "x"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("KVGet on a missing bucket = %v, want 404", err)
	}
}

// TestAppWebhook deploys examples/webhook as shipped: a delivery signed
// with the shared secret is accepted with 202 and recorded once (a
// redelivery is a duplicate), a bad or missing signature gets 401 and
// records nothing.
func TestAppWebhook(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, dir)
	p := &projectCLI{t: t, n: n, dataDir: dir}
	p.deploy(filepath.Join(repoRoot(t), "examples", "webhook", "gust.yaml"), cli.ExitOK)
	body := `{"action":"opened","repository":{"full_name":"gustfaas/gust"}}`
	sign := func(secret, body string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(body))
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	post := func(sig, delivery, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", n.URL()+"/fn/receive", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "issues")
		req.Header.Set("X-GitHub-Delivery", delivery)
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("the webhook answered after %s, past GitHub's 10 s", el)
		}
		return resp.StatusCode, string(b)
	}
	if code, out := post(sign("change-me", body), "d-1", body); code != 202 || !strings.Contains(out, `"duplicate": false`) {
		t.Fatalf("signed delivery = %d %s, want 202", code, out)
	}
	if code, out := post(sign("change-me", body), "d-1", body); code != 202 || !strings.Contains(out, `"duplicate": true`) {
		t.Errorf("redelivery = %d %s, want 202 duplicate", code, out)
	}
	for name, sig := range map[string]string{
		"wrong secret": sign("other", body), "no signature": "", "tampered": sign("change-me", body+" "), "not hex": "sha256=zz",
	} {
		if code, out := post(sig, "d-"+strings.ReplaceAll(name, " ", "-"), body); code != 401 {
			t.Errorf("%s = %d %s, want 401", name, code, out)
		}
	}
	c := projClient(n)
	keys, err := c.KVKeys(context.Background(), "deliveries", "")
	if err != nil || len(keys) != 1 || keys[0].Key != "delivery-d-1" {
		t.Fatalf("recorded deliveries = %+v, %v; want only delivery-d-1", keys, err)
	}
	e, err := c.KVGet(context.Background(), "deliveries", "delivery-d-1")
	if err != nil || !strings.Contains(string(e.Value), `"repository": "gustfaas/gust"`) || !strings.Contains(string(e.Value), `"event": "issues"`) {
		t.Errorf("the recorded delivery = %s, %v", e.Value, err)
	}
}

// TestAppScheduled deploys examples/scheduled as shipped and waits for
// its every-minute schedule to fire: the run prunes the old record, keeps
// the recent ones and leaves its summary in the reports bucket.
func TestAppScheduled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, dir)
	p := &projectCLI{t: t, n: n, dataDir: dir}
	p.deploy(filepath.Join(repoRoot(t), "examples", "scheduled", "gust.yaml"), cli.ExitOK)
	c := projClient(n)
	ctx := context.Background()
	s, err := c.GetSchedule(ctx, "every-minute")
	if err != nil || s.Function != "janitor" || s.Expression != "* * * * *" {
		t.Fatalf("schedule = %+v, %v", s, err)
	}
	now := time.Now().Unix()
	for key, rec := range map[string]string{
		"r-old":    fmt.Sprintf(`{"at":%d,"kind":"login"}`, now-7200),
		"r-login":  fmt.Sprintf(`{"at":%d,"kind":"login"}`, now),
		"r-upload": fmt.Sprintf(`{"at":%d,"kind":"upload"}`, now),
		"r-bad":    `not json`,
	} {
		if _, err := c.KVPut(ctx, "records", key, []byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(75 * time.Second)
	for {
		e, err := c.KVGet(ctx, "reports", "latest")
		if err == nil {
			var sum struct {
				Scheduled             string
				Kept, Pruned, Invalid int
				ByKind                map[string]int
			}
			if err := json.Unmarshal(e.Value, &sum); err != nil {
				t.Fatalf("summary %s: %v", e.Value, err)
			}
			if sum.Kept != 2 || sum.Pruned != 1 || sum.Invalid != 1 || sum.ByKind["login"] != 1 || sum.ByKind["upload"] != 1 || sum.Scheduled == "" {
				t.Errorf("summary = %s, want 2 kept (1 login, 1 upload), 1 pruned, 1 invalid, from a scheduled event", e.Value)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no summary in the reports bucket after 75 s: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if _, err := c.KVGet(ctx, "records", "r-old"); err == nil {
		t.Error("the old record was not pruned")
	}
}

// TestAppImagePipeline deploys examples/image-pipeline as shipped: an
// image uploaded to the uploads bucket triggers the thumbnail function
// (an aws-lambda-go handler taking events.S3Event), whose thumbnail
// appears in the thumbnails bucket.
func TestAppImagePipeline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, dir)
	p := &projectCLI{t: t, n: n, dataDir: dir}
	p.deploy(filepath.Join(repoRoot(t), "examples", "image-pipeline", "gust.yaml"), cli.ExitOK)
	c := projClient(n)
	ctx := context.Background()

	img := image.NewRGBA(image.Rect(0, 0, 400, 300))
	for y := range 300 {
		for x := range 400 {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObjectBytes(ctx, "uploads", "in/cat photo.png", buf.Bytes(), "image/png"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, _, err := c.GetObject(ctx, "thumbnails", "in/cat photo.png.png")
		if err == nil {
			thumb, err := png.Decode(r)
			r.Close()
			if err != nil {
				t.Fatalf("the thumbnail is not a PNG: %v", err)
			}
			if b := thumb.Bounds(); b.Dx() != 128 || b.Dy() != 96 {
				t.Errorf("thumbnail is %dx%d, want 128x96", b.Dx(), b.Dy())
			}
			break
		}
		if time.Now().After(deadline) {
			r := p.run("logs", "thumbnail")
			t.Fatalf("no thumbnail after 60 s: %v\nlogs:\n%s", err, r.stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAppDBReaction deploys examples/db-reaction as shipped against a
// database of its own on the machine's PostgreSQL: rows inserted in
// public.orders become audit entries in a KV bucket, a poison row goes to
// the dead letters while later rows flow, and deleting the trigger drops
// its replication slot. The latency from commit to audit entry is logged.
func TestAppDBReaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres")
	if err != nil {
		t.Fatalf("PostgreSQL on 127.0.0.1:5432 (CI starts it with .ci/postgres.sh): %v", err)
	}
	defer admin.Close(ctx)
	db := fmt.Sprintf("gust_example_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres")
		if err == nil {
			admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			admin.Close(ctx)
		}
	})
	dsn := "postgres://postgres@127.0.0.1:5432/" + db
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, qty int)"); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	n := startNode(t, dir)
	p := &projectCLI{t: t, n: n, dataDir: dir, env: map[string]string{"ORDERS_DSN": dsn}}
	p.deploy(filepath.Join(repoRoot(t), "examples", "db-reaction", "gust.yaml"), cli.ExitOK)
	c := projClient(n)
	// The example's function has no id check to fail on; point the
	// trigger at the test guest for the poison part below.
	s, err := c.GetTrigger(ctx, "orders")
	if err != nil || s.Postgres == nil || strings.Contains(s.Postgres.DSNRedacted, "password") {
		t.Fatalf("trigger = %+v, %v", s, err)
	}

	audited := func(id int) bool {
		_, err := c.KVGet(ctx, "audit", fmt.Sprintf("public.orders.%d", id))
		return err == nil
	}
	var lat []time.Duration
	for i := 1; i <= 20; i++ {
		t0 := time.Now()
		if _, err := conn.Exec(ctx, "INSERT INTO orders (item, qty) VALUES ($1, $2)", fmt.Sprintf("item-%d", i), i); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !audited(i) {
			if time.Now().After(deadline) {
				st, _ := c.GetTrigger(ctx, "orders")
				t.Fatalf("order %d not audited after 30 s; trigger %+v", i, st)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	t.Logf("commit to audit entry (function done, entry readable): p50 %s, max %s over %d rows", lat[len(lat)/2], lat[len(lat)-1], len(lat))
	e, err := c.KVGet(ctx, "audit", "public.orders.3")
	if err != nil || !strings.Contains(string(e.Value), `"item": "item-3"`) || !strings.Contains(string(e.Value), `"lsn"`) {
		t.Errorf("audit entry 3 = %s, %v", e.Value, err)
	}

	// A poison row: the trigger now invokes the test guest, which fails on
	// item "poison"; the row is dead-lettered and the next ones flow.
	deployGuest(t, c, "strict", 10)
	tr := s.Trigger
	tr.Function, tr.Qualifier = "strict", ""
	tr.Postgres.DSN, tr.Postgres.DSNRedacted, tr.Postgres.MaxAttempts = dsn, "", 2
	if _, err := c.PutTrigger(ctx, tr); err != nil {
		t.Fatal(err)
	}
	before := waitTrigger(t, c, "orders", 10*time.Second, "running for strict", func(s api.TriggerStatus) bool { return s.Function == "strict" && s.State == "running" })
	for _, item := range []string{"ok-1", "poison", "ok-2"} {
		if _, err := conn.Exec(ctx, "INSERT INTO orders (item) VALUES ($1)", item); err != nil {
			t.Fatal(err)
		}
	}
	waitTrigger(t, c, "orders", 60*time.Second, "the poison dead-lettered and the rest delivered", func(s api.TriggerStatus) bool {
		return s.DeadLettered == before.DeadLettered+1 && s.Delivered >= before.Delivered+2
	})
	dls, err := c.ListDeadLetters(ctx, "strict", true)
	if err != nil || len(dls) != 1 || !strings.Contains(string(dls[0].Payload), `"poison"`) {
		t.Errorf("dead letters = %+v, %v; want the poison row", dls, err)
	}

	// Deleting the trigger drops its slot, so the database keeps no WAL for it.
	if err := c.DeleteTrigger(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	var slots int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE database = $1", db).Scan(&slots); err != nil || slots != 0 {
		t.Errorf("replication slots left on %s: %d, %v", db, slots, err)
	}
}

// TestAppLinkPreview deploys examples/link-preview, a Go wasm function
// using the SDK's KV and object calls and http.Get: a page on an allowed
// host is fetched once and then served from the buckets; a host not in
// the allow-list is refused without being reached.
func TestAppLinkPreview(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, dir)
	p := &projectCLI{t: t, n: n, dataDir: dir}
	p.deploy(filepath.Join(repoRoot(t), "examples", "link-preview", "gust.yaml"), cli.ExitOK)
	var hits atomic.Int32
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<html><head><title>\n  Gust &amp; friends\n</title></head><body>hi</body></html>")
	}))
	defer site.Close()
	page := site.URL + "/article"
	type preview struct {
		URL, Title, Page, Error string
		Status                  int
		Bytes                   int64
		Cached                  bool
	}
	get := func(method, target string) (int, preview) {
		t.Helper()
		req, _ := http.NewRequest(method, n.URL()+"/fn/preview?url="+url.QueryEscape(target), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var pv preview
		b, _ := io.ReadAll(resp.Body)
		if len(b) > 0 && json.Unmarshal(b, &pv) != nil {
			t.Fatalf("%s %s: %d %s", method, target, resp.StatusCode, b)
		}
		return resp.StatusCode, pv
	}

	code, pv := get("GET", page)
	if code != 200 || pv.Title != "Gust & friends" || pv.Status != 200 || pv.Cached || pv.Bytes == 0 {
		t.Fatalf("first GET = %d %+v", code, pv)
	}
	code, pv = get("GET", page)
	if code != 200 || pv.Title != "Gust & friends" || !pv.Cached || hits.Load() != 1 {
		t.Errorf("second GET = %d %+v after %d fetches; want it from the bucket", code, pv, hits.Load())
	}
	// The page and the preview are in the buckets, where the API sees them.
	c := projClient(n)
	ctx := context.Background()
	r, info, err := c.GetObject(ctx, "pages", strings.TrimPrefix(pv.Page, "pages/"))
	if err != nil {
		t.Fatalf("the stored page %s: %v", pv.Page, err)
	}
	stored, _ := io.ReadAll(r)
	r.Close()
	if !strings.Contains(string(stored), "<title>") || info.ContentType != "text/html; charset=utf-8" {
		t.Errorf("stored page = %q (%s)", stored, info.ContentType)
	}
	if keys, err := c.KVKeys(ctx, "previews", ""); err != nil || len(keys) != 1 {
		t.Errorf("previews = %v, %v; want one", keys, err)
	}

	// localhost is the same server under a name the list does not hold.
	before := hits.Load()
	code, pv = get("GET", strings.Replace(page, "127.0.0.1", "localhost", 1))
	if code != 403 || !strings.Contains(pv.Error, "not granted the outbound host localhost") || hits.Load() != before {
		t.Errorf("GET of a host not allowed = %d %+v (server hit %d times more)", code, pv, hits.Load()-before)
	}
	if code, pv = get("GET", "not a url"); code != 400 {
		t.Errorf("GET of a bad URL = %d %+v", code, pv)
	}

	if code, _ = get("DELETE", page); code != 204 {
		t.Errorf("DELETE = %d", code)
	}
	if code, pv = get("GET", page); code != 200 || pv.Cached || hits.Load() != before+1 {
		t.Errorf("GET after DELETE = %d %+v, want fetched again", code, pv)
	}
}
