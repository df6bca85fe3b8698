package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gustfaas/gust/internal/sandbox"
)

func TestHello(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Function: "hello", Code: guest(t, "hello")})
	if got := p.Kind(); got != KindSDK {
		t.Fatalf("Kind() = %v, want %v", got, KindSDK)
	}
	in := start(t, p)
	tests := []struct {
		name, payload, want string
	}{
		{"name", `{"name":"Ada"}`, `{"message":"Hello, Ada!"}`},
		{"empty name", `{"name":""}`, `{"message":"Hello, world!"}`},
		{"no name", `{}`, `{"message":"Hello, world!"}`},
		{"empty payload", ``, `{"message":"Hello, world!"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := invoke(t, in, tt.payload)
			if resp.Err != nil {
				t.Fatalf("Invoke(%s).Err = %v", tt.payload, resp.Err)
			}
			if got := string(resp.Payload); got != tt.want {
				t.Errorf("Invoke(%s) = %s, want %s", tt.payload, got, tt.want)
			}
			if resp.MaxMemoryBytes == 0 {
				t.Errorf("Invoke(%s).MaxMemoryBytes = 0, want the instance's memory size", tt.payload)
			}
		})
	}
}

// urlEvent is a function URL event (payload format 2.0) as the gateway
// makes it.
func urlEvent(method, path, body string) string {
	ev := map[string]any{
		"version":        "2.0",
		"routeKey":       "$default",
		"rawPath":        path,
		"rawQueryString": "",
		"headers":        map[string]string{"content-type": "application/json", "host": "localhost"},
		"requestContext": map[string]any{
			"http":      map[string]string{"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
			"requestId": "req-1",
			"timeEpoch": 1700000000000,
		},
		"body":            body,
		"isBase64Encoded": false,
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

type urlResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

func TestHTTPAPI(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Function: "httpapi", Code: guest(t, "httpapi")})
	in := start(t, p)
	call := func(method, path, body string) urlResponse {
		t.Helper()
		resp := invoke(t, in, urlEvent(method, path, body))
		if resp.Err != nil {
			t.Fatalf("%s %s: function error %v", method, path, resp.Err)
		}
		var r urlResponse
		if err := json.Unmarshal(resp.Payload, &r); err != nil {
			t.Fatalf("%s %s: response %s: %v", method, path, resp.Payload, err)
		}
		return r
	}
	type todo struct {
		ID    int    `json:"id"`
		Title string `json:"title"`
	}

	created := call("POST", "/todos", `{"title":"write tests"}`)
	if created.StatusCode != 201 {
		t.Fatalf("POST /todos = %d %s, want 201", created.StatusCode, created.Body)
	}
	if got := created.Headers["content-type"]; got != "application/json" {
		t.Errorf("POST /todos content-type = %q, want application/json", got)
	}
	var c todo
	if err := json.Unmarshal([]byte(created.Body), &c); err != nil || c.ID == 0 || c.Title != "write tests" {
		t.Fatalf("POST /todos body = %s (%v), want the new todo", created.Body, err)
	}

	got := call("GET", "/todos/"+strconv.Itoa(c.ID), "")
	var g todo
	if err := json.Unmarshal([]byte(got.Body), &g); got.StatusCode != 200 || err != nil || g != c {
		t.Fatalf("GET /todos/%d = %d %s, want 200 and %+v", c.ID, got.StatusCode, got.Body, c)
	}
	list := call("GET", "/todos", "")
	var all []todo
	if err := json.Unmarshal([]byte(list.Body), &all); err != nil || len(all) != 1 || all[0] != c {
		t.Errorf("GET /todos = %s, want [%+v]", list.Body, c)
	}
	if idx := call("GET", "/", ""); idx.StatusCode != 200 || !strings.Contains(idx.Body, "/todos") {
		t.Errorf("GET / = %d %s, want 200 and an index", idx.StatusCode, idx.Body)
	}
	if del := call("DELETE", "/todos/"+strconv.Itoa(c.ID), ""); del.StatusCode != 204 {
		t.Errorf("DELETE /todos/%d = %d, want 204", c.ID, del.StatusCode)
	}
	if gone := call("GET", "/todos/"+strconv.Itoa(c.ID), ""); gone.StatusCode != 404 {
		t.Errorf("GET deleted todo = %d, want 404", gone.StatusCode)
	}
	if bad := call("POST", "/todos", `{}`); bad.StatusCode != 400 {
		t.Errorf("POST /todos without title = %d, want 400", bad.StatusCode)
	}
}

func TestWarmInstanceKeepsState(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest")})
	in := start(t, p)
	for i := 1; i <= 1000; i++ {
		resp := invoke(t, in, `{"op":"count"}`)
		want := fmt.Sprintf(`{"count":%d}`, i)
		if string(resp.Payload) != want {
			t.Fatalf("invocation %d = %s (err %v), want %s", i, resp.Payload, resp.Err, want)
		}
	}
}

func TestSDKContext(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Function: "ctx-fn", Code: guest(t, "sdkguest")})
	in := start(t, p)
	deadline := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	resp, err := in.Invoke(context.Background(), sandbox.Request{
		RequestID: "0d8f6f38-6c1c-4b1e-9d3a-5f7f0e6a1b2c", Deadline: deadline, Payload: []byte(`{"op":"ctx"}`),
	})
	if err != nil || resp.Err != nil {
		t.Fatalf("Invoke() = %v, %v", err, resp.Err)
	}
	var got struct {
		RequestID string `json:"requestId"`
		Function  string `json:"function"`
		Deadline  int64  `json:"deadline"`
	}
	if err := json.Unmarshal(resp.Payload, &got); err != nil {
		t.Fatal(err)
	}
	if got.RequestID != "0d8f6f38-6c1c-4b1e-9d3a-5f7f0e6a1b2c" || got.Function != "ctx-fn" || got.Deadline != deadline.UnixMilli() {
		t.Errorf("context = %+v, want request id, function ctx-fn and deadline %d", got, deadline.UnixMilli())
	}
}

func TestSDKFunctionErrors(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest")})
	in := start(t, p)
	tests := []struct {
		name, payload, wantType, wantMessage string
	}{
		{"typed", `{"op":"typed"}`, "Custom.Error", "it went wrong"},
		{"plain", `{"op":"plain"}`, "*errors.errorString", "plain failure"},
		{"panic", `{"op":"panic","n":5}`, "runtime.boundsError", "index out of range [5] with length 0"},
		{"bad json", `{"op":`, "Runtime.UnmarshalError", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := invoke(t, in, tt.payload)
			if resp.Err == nil {
				t.Fatalf("Invoke(%s) = %s, want a function error", tt.payload, resp.Payload)
			}
			if resp.Err.Type != tt.wantType || !strings.Contains(resp.Err.Message, tt.wantMessage) {
				t.Errorf("Invoke(%s).Err = %v, want %s: %s", tt.payload, resp.Err, tt.wantType, tt.wantMessage)
			}
			if resp.Payload != nil {
				t.Errorf("Invoke(%s).Payload = %s, want nil", tt.payload, resp.Payload)
			}
			// The instance stays usable.
			if ok := invoke(t, in, `{"op":"count"}`); ok.Err != nil {
				t.Errorf("Invoke after %s: %v", tt.name, ok.Err)
			}
		})
	}
	t.Run("panic is logged", func(t *testing.T) {
		resp := invoke(t, in, `{"op":"panic","n":1}`)
		if !strings.Contains(string(resp.Log), "panic: runtime error: index out of range") || len(resp.Err.StackTrace) == 0 {
			t.Errorf("panic log = %q, stack %q; want the panic and a stack trace", resp.Log, resp.Err.StackTrace)
		}
	})
}

// TestSDKLost covers invocations that end the instance: the runtime returns
// a LostError, and a new instance of the same program serves again.
func TestSDKLost(t *testing.T) {
	tests := []struct {
		name     string
		memoryMB int
		payload  string
		timeout  time.Duration
		wantKind sandbox.Kind
		wantType string
	}{
		{"exit", 0, `{"op":"exit"}`, time.Minute, sandbox.Crashed, errTypeExit},
		{"loop", 0, `{"op":"loop"}`, 200 * time.Millisecond, sandbox.TimedOut, errTypeTimeout},
		{"sleep", 0, `{"op":"sleep"}`, 200 * time.Millisecond, sandbox.TimedOut, errTypeTimeout},
		{"memory bomb", 32, `{"op":"bomb"}`, time.Minute, sandbox.OutOfMemory, errTypeOOM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest"), MemoryMB: tt.memoryMB})
			in, err := p.Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			began := time.Now()
			resp, err := in.Invoke(ctx, sandbox.Request{RequestID: "r", Payload: []byte(tt.payload)})
			var lost *sandbox.LostError
			if !errors.As(err, &lost) || lost.Kind != tt.wantKind {
				t.Fatalf("Invoke(%s) error = %v, want a LostError %v", tt.payload, err, tt.wantKind)
			}
			if resp.Err == nil || resp.Err.Type != tt.wantType {
				t.Errorf("Invoke(%s).Err = %v, want type %s", tt.payload, resp.Err, tt.wantType)
			}
			if tt.wantKind == sandbox.TimedOut {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Invoke(%s) error %v is not context.DeadlineExceeded", tt.payload, err)
				}
				if took := time.Since(began); took > 10*time.Second {
					t.Errorf("Invoke(%s) took %v to stop at a 200ms deadline", tt.payload, took)
				}
			}
			if _, err := in.Invoke(context.Background(), sandbox.Request{Payload: []byte(`{"op":"count"}`)}); !errors.Is(err, ErrClosed) {
				t.Errorf("Invoke on a lost instance = %v, want ErrClosed", err)
			}
			// The program still starts healthy instances.
			again := start(t, p)
			if resp := invoke(t, again, `{"op":"count"}`); string(resp.Payload) != `{"count":1}` {
				t.Errorf("fresh instance after %s = %s (%v), want count 1", tt.name, resp.Payload, resp.Err)
			}
		})
	}
	// The runtime keeps serving other programs.
	p := load(t, nil, sandbox.Spec{Code: guest(t, "hello")})
	if resp := invoke(t, start(t, p), `{"name":"after"}`); string(resp.Payload) != `{"message":"Hello, after!"}` {
		t.Errorf("hello after lost instances = %s (%v)", resp.Payload, resp.Err)
	}
}

func TestRequestDeadline(t *testing.T) {
	// Request.Deadline alone (no context deadline) stops the guest too.
	p := load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest")})
	in, err := p.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(context.Background())
	_, err = in.Invoke(context.Background(), sandbox.Request{
		Deadline: time.Now().Add(200 * time.Millisecond), Payload: []byte(`{"op":"loop"}`),
	})
	var lost *sandbox.LostError
	if !errors.As(err, &lost) || lost.Kind != sandbox.TimedOut {
		t.Fatalf("Invoke(loop) = %v, want LostError timed out", err)
	}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name     string
		code     func(testing.TB) []byte
		mode     string
		memoryMB int
		payload  string
		timeout  time.Duration
		want     string
		wantType string       // FunctionError type, if any
		wantMsg  string       // in the FunctionError message
		wantLost sandbox.Kind // 0: no LostError
	}{
		{name: "echo", mode: "echo", payload: `{"hello":"world"}`, want: `{"hello":"world"}`},
		{name: "echo empty", mode: "echo", payload: ``, want: ``},
		{name: "exit 3", mode: "exit3", wantType: errTypeExit, wantMsg: "exit status 3"},
		{name: "panic", mode: "panic", wantType: errTypeExit, wantMsg: "exit status 2"},
		{name: "trap", code: func(testing.TB) []byte { return trapModule() }, wantType: errTypeTrap, wantMsg: "unreachable"},
		{name: "no memory", code: func(testing.TB) []byte { return quietModule() }, want: ``},
		{name: "loop", mode: "loop", timeout: 200 * time.Millisecond, wantType: errTypeTimeout, wantLost: sandbox.TimedOut},
		{name: "sleep", mode: "sleep", timeout: 200 * time.Millisecond, wantType: errTypeTimeout, wantLost: sandbox.TimedOut},
		{name: "memory bomb", mode: "bomb", memoryMB: 32, wantType: errTypeOOM, wantMsg: "memory limit of 32 MB", wantLost: sandbox.OutOfMemory},
		{name: "response too large", mode: "bigout", wantType: errTypeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := guest
			if tt.code != nil {
				code = func(tb testing.TB, _ string) []byte { return tt.code(tb) }
			}
			p := load(t, nil, sandbox.Spec{Code: code(t, "command"), MemoryMB: tt.memoryMB, Env: map[string]string{"MODE": tt.mode}})
			if got := p.Kind(); got != KindCommand {
				t.Fatalf("Kind() = %v, want %v", got, KindCommand)
			}
			in := start(t, p)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = time.Minute
			}
			for round := range 2 { // the handle serves again after any outcome
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				resp, err := in.Invoke(ctx, sandbox.Request{Payload: []byte(tt.payload)})
				cancel()
				var lost *sandbox.LostError
				switch {
				case tt.wantLost == 0 && err != nil:
					t.Fatalf("round %d: Invoke() error = %v, want nil", round, err)
				case tt.wantLost != 0 && (!errors.As(err, &lost) || lost.Kind != tt.wantLost):
					t.Fatalf("round %d: Invoke() error = %v, want LostError %v", round, err, tt.wantLost)
				}
				if tt.wantType == "" {
					if resp.Err != nil || string(resp.Payload) != tt.want {
						t.Errorf("round %d: Invoke() = %q, %v; want %q", round, resp.Payload, resp.Err, tt.want)
					}
					continue
				}
				if resp.Err == nil || resp.Err.Type != tt.wantType || !strings.Contains(resp.Err.Message, tt.wantMsg) {
					t.Errorf("round %d: Invoke().Err = %v, want %s containing %q (log %q)", round, resp.Err, tt.wantType, tt.wantMsg, resp.Log)
				}
			}
		})
	}
}

func TestCommandLog(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Code: guest(t, "command"), Env: map[string]string{"MODE": "exit3"}})
	resp := invoke(t, start(t, p), "")
	if got, want := string(resp.Log), "exiting with status 3\n"; got != want {
		t.Errorf("log = %q, want %q (stderr only)", got, want)
	}
}

func TestEnvironment(t *testing.T) {
	env := map[string]string{"GREETING": "hi there", "EMPTY": ""}
	want := []string{
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=64",
		"AWS_LAMBDA_FUNCTION_NAME=env-fn",
		"AWS_LAMBDA_FUNCTION_VERSION=7",
		"EMPTY=",
		"GREETING=hi there",
	}
	spec := sandbox.Spec{Function: "env-fn", Version: "7", MemoryMB: 64, Env: env}

	t.Run("sdk", func(t *testing.T) {
		spec := spec
		spec.Code = guest(t, "sdkguest")
		resp := invoke(t, start(t, load(t, nil, spec)), `{"op":"env"}`)
		var got struct{ Lines []string }
		if err := json.Unmarshal(resp.Payload, &got); err != nil {
			t.Fatalf("env = %s: %v", resp.Payload, err)
		}
		if diff := cmp.Diff(want, got.Lines); diff != "" {
			t.Errorf("environment mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("command", func(t *testing.T) {
		spec := spec
		spec.Code = guest(t, "command")
		spec.Env = map[string]string{"MODE": "env", "GREETING": "hi there", "EMPTY": ""}
		resp := invoke(t, start(t, load(t, nil, spec)), "")
		want := append(append([]string(nil), want[:4]...), "GREETING=hi there", "MODE=env")
		if diff := cmp.Diff(want, strings.Split(string(resp.Payload), "\n")); diff != "" {
			t.Errorf("environment mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestNoFilesystem(t *testing.T) {
	t.Run("sdk", func(t *testing.T) {
		resp := invoke(t, start(t, load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest")})), `{"op":"fs"}`)
		want := `{"lines":["/etc/passwd: error","/: error",".: error"]}`
		if string(resp.Payload) != want {
			t.Errorf("fs probe = %s, want %s", resp.Payload, want)
		}
	})
	t.Run("command", func(t *testing.T) {
		p := load(t, nil, sandbox.Spec{Code: guest(t, "command"), Env: map[string]string{"MODE": "fs"}})
		resp := invoke(t, start(t, p), "")
		want := "open /etc/passwd: error\ncreate /tmp/x: error\nreaddir /: error\nopen .: error"
		if string(resp.Payload) != want {
			t.Errorf("fs probe = %q, want %q", resp.Payload, want)
		}
	})
}

func TestLogLimit(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest")})
	in := start(t, p)

	first := invoke(t, in, `{"op":"count"}`)
	if !strings.Contains(string(first.Log), "sdkguest initialising") {
		t.Errorf("first log = %q, want the initialisation output", first.Log)
	}
	if second := invoke(t, in, `{"op":"count"}`); second.Log != nil {
		t.Errorf("second log = %q, want none", second.Log)
	}

	tests := []struct {
		name    string
		n       int
		limit   int
		wantLen int
		cut     bool
	}{
		{"under the limit", 100, 1000, 100, false},
		{"at the limit", 1000, 1000, 1000, false},
		{"over the limit", 5000, 1000, 1000, true},
		{"default limit", DefaultLogLimit + 10, 0, DefaultLogLimit, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := in.Invoke(context.Background(), sandbox.Request{
				Payload: []byte(fmt.Sprintf(`{"op":"log","n":%d}`, tt.n)), LogLimit: tt.limit,
			})
			if err != nil || resp.Err != nil {
				t.Fatalf("Invoke() = %v, %v", err, resp.Err)
			}
			log := string(resp.Log)
			if got := strings.HasSuffix(log, sandbox.TruncatedMarker); got != tt.cut {
				t.Errorf("log ends with the marker = %v, want %v", got, tt.cut)
			}
			log = strings.TrimSuffix(log, sandbox.TruncatedMarker)
			if len(log) != tt.wantLen || strings.Trim(log, "x") != "" {
				t.Errorf("log has %d bytes, want %d bytes of x", len(log), tt.wantLen)
			}
		})
	}

	t.Run("command", func(t *testing.T) {
		p := load(t, nil, sandbox.Spec{Code: guest(t, "command"), Env: map[string]string{"MODE": "log"}})
		resp, err := start(t, p).Invoke(context.Background(), sandbox.Request{Payload: []byte("300"), LogLimit: 100})
		if err != nil || resp.Err != nil {
			t.Fatalf("Invoke() = %v, %v", err, resp.Err)
		}
		if want := strings.Repeat("x", 100) + sandbox.TruncatedMarker; string(resp.Log) != want {
			t.Errorf("log = %q, want %q", resp.Log, want)
		}
	})
}

func TestSDKResponseTooLarge(t *testing.T) {
	in := start(t, load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest"), MemoryMB: 256}))
	resp := invoke(t, in, `{"op":"big","n":7000000}`)
	if resp.Err == nil || resp.Err.Type != errTypeTooLarge {
		t.Fatalf("Invoke(big) = %v, want %s", resp.Err, errTypeTooLarge)
	}
	if resp := invoke(t, in, `{"op":"big","n":10}`); resp.Err != nil {
		t.Errorf("Invoke(small) after a large response = %v", resp.Err)
	}
}

func TestInvalidCode(t *testing.T) {
	tests := []struct {
		name string
		code []byte
		want string
	}{
		{"empty", nil, "not a valid WebAssembly module"},
		{"text", []byte("#!/bin/sh\necho hi\n"), "not a valid WebAssembly module"},
		{"truncated", trapModule()[:20], "not a valid WebAssembly module"},
		{"unknown import module", importModule("env", "abort"), `imports "abort" from "env"`},
		{"unknown wasi function", importModule("wasi_snapshot_preview1", "sock_bind"), "wasi_snapshot_preview1.sock_bind"},
		{"unknown gust function", importModule("gust", "network"), "gust.network"},
		{"no entry points", noExportModule(), "module exports neither _start (WASI command) nor the Gust SDK entry points"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := testRT.Load(context.Background(), sandbox.Spec{Code: tt.code})
			var invalid *sandbox.InvalidCodeError
			if !errors.As(err, &invalid) {
				if p != nil {
					p.Close(context.Background())
				}
				t.Fatalf("Load() = %v, want an InvalidCodeError", err)
			}
			if !strings.Contains(invalid.Reason, tt.want) {
				t.Errorf("Load() = %q, want it to mention %q", invalid.Reason, tt.want)
			}
		})
	}
	t.Run("memory", func(t *testing.T) {
		_, err := testRT.Load(context.Background(), sandbox.Spec{Code: trapModule(), MemoryMB: 5000})
		var invalid *sandbox.InvalidCodeError
		if !errors.As(err, &invalid) {
			t.Errorf("Load(MemoryMB: 5000) = %v, want an InvalidCodeError", err)
		}
	})
}

func TestKindOf(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Code: trapModule()})
	if k, ok := KindOf(p); !ok || k != KindCommand {
		t.Errorf("KindOf() = %v, %v; want %v, true", k, ok, KindCommand)
	}
}

// TestCompilationCache: a Runtime on a cache directory that already holds
// a module's compiled code (as a restarted node's does) uses it and writes
// nothing new.
func TestCompilationCache(t *testing.T) {
	code := guest(t, "hello")
	ctx := context.Background()
	// The shared runtime has compiled hello into its cache directory (or
	// does so now); copy that directory as a node restarting would find it.
	load(t, nil, sandbox.Spec{Code: code})
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(testCacheDir)); err != nil {
		t.Fatal(err)
	}

	files := func() map[string]time.Time {
		got := map[string]time.Time{}
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			got[path] = info.ModTime()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	before := files()
	if len(before) == 0 {
		t.Fatal("the shared runtime wrote no cache files")
	}

	rt, err := New(ctx, Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	p := load(t, rt, sandbox.Spec{Code: code})
	in := start(t, p)
	if resp := invoke(t, in, `{"name":"cache"}`); string(resp.Payload) != `{"message":"Hello, cache!"}` {
		t.Errorf("Invoke() = %s (%v)", resp.Payload, resp.Err)
	}
	if diff := cmp.Diff(before, files()); diff != "" {
		t.Errorf("cache files changed when loading cached code (-before +after):\n%s", diff)
	}

	// An empty directory, by contrast, gets the compiled code.
	empty := t.TempDir()
	rt2, err := New(ctx, Options{CacheDir: empty})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close(ctx)
	load(t, rt2, sandbox.Spec{Code: quietModule()})
	if entries, err := os.ReadDir(empty); err != nil || len(entries) == 0 {
		t.Errorf("cache directory after compiling: %v entries, %v; want files", len(entries), err)
	}
}

func TestRuntimeClose(t *testing.T) {
	ctx := context.Background()
	rt, err := New(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if _, err := rt.Load(ctx, sandbox.Spec{Code: trapModule()}); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close = %v, want ErrClosed", err)
	}
	if err := rt.Close(ctx); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}

func TestConcurrentInstances(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest")})
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			in, err := p.Start(context.Background())
			if err != nil {
				errs <- err
				return
			}
			defer in.Close(context.Background())
			for i := 1; i <= 50; i++ {
				resp, err := in.Invoke(context.Background(), sandbox.Request{Payload: []byte(`{"op":"count"}`)})
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf(`{"count":%d}`, i); string(resp.Payload) != want {
					errs <- fmt.Errorf("invocation %d = %s, want %s", i, resp.Payload, want)
					return
				}
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
