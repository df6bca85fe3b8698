//go:build linux

package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gustfaas/gust/internal/sandbox"
)

func TestRuntimes(t *testing.T) {
	got := testRT.Runtimes()
	for _, want := range []string{"provided", "provided.al2", "provided.al2023"} {
		if !slices.Contains(got, want) {
			t.Errorf("Runtimes() = %v, want it to contain %s", got, want)
		}
	}
	un := testRT.Unsupported()
	for _, r := range interpreted {
		_, bad := un[r.name]
		if ok := slices.Contains(got, r.name); ok == bad {
			t.Errorf("%s: in Runtimes() %v and in Unsupported() %v", r.name, ok, bad)
		}
	}
	t.Logf("runtimes %v; unsupported %v", got, un)
	if len(testRT.Isolation()) == 0 {
		t.Error("Isolation() is empty")
	}
}

func decode[T any](t *testing.T, resp sandbox.Response) T {
	t.Helper()
	var v T
	if resp.Err != nil {
		t.Fatalf("function error %v; log %s", resp.Err, resp.Log)
	}
	if err := json.Unmarshal(resp.Payload, &v); err != nil {
		t.Fatalf("payload %q: %v", resp.Payload, err)
	}
	return v
}

type goResult struct {
	Op          string            `json:"op"`
	RequestID   string            `json:"requestId"`
	ARN         string            `json:"arn"`
	Function    string            `json:"function"`
	Memory      int               `json:"memory"`
	RemainingMs int64             `json:"remainingMs"`
	Env         map[string]string `json:"env"`
	UID         int               `json:"uid"`
	Hostname    string            `json:"hostname"`
	Cwd         string            `json:"cwd"`
	Pids        []string          `json:"pids"`
	Err         string            `json:"err"`
	Count       int               `json:"count"`
	Text        string            `json:"text"`
}

func TestGoTypedHandler(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Function: "gofn", Version: "$LATEST", Code: goFunction(t, "gofn"), MemoryMB: 256,
		Timeout: 30 * time.Second, Env: map[string]string{"GREETING": "hello"}})
	in := start(t, p)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, _ := ctx.Deadline()
	resp, err := in.Invoke(ctx, sandbox.Request{RequestID: "11111111-2222", Deadline: d, Payload: []byte(`{"op":"echo","text":"hi"}`)})
	if err != nil {
		t.Fatalf("Invoke = %v", err)
	}
	r := decode[goResult](t, resp)
	checks := []struct{ name, got, want string }{
		{"requestId", r.RequestID, "11111111-2222"},
		{"arn", r.ARN, "arn:aws:lambda:us-east-1:000000000000:function:gofn"},
		{"function", r.Function, "gofn"},
		{"text", r.Text, "hi"},
		{"GREETING", r.Env["GREETING"], "hello"},
		{"AWS_LAMBDA_FUNCTION_VERSION", r.Env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST"},
		{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE", r.Env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256"},
		{"AWS_LAMBDA_LOG_GROUP_NAME", r.Env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/gofn"},
		{"_HANDLER", r.Env["_HANDLER"], ""},
		{"AWS_REGION", r.Env["AWS_REGION"], "us-east-1"},
		{"AWS_DEFAULT_REGION", r.Env["AWS_DEFAULT_REGION"], "us-east-1"},
		{"TZ", r.Env["TZ"], ":UTC"},
		{"LANG", r.Env["LANG"], "en_US.UTF-8"},
	}
	if testRT.confined {
		checks = append(checks, []struct{ name, got, want string }{
			{"LAMBDA_TASK_ROOT", r.Env["LAMBDA_TASK_ROOT"], "/var/task"},
			{"LAMBDA_RUNTIME_DIR", r.Env["LAMBDA_RUNTIME_DIR"], "/var/runtime"},
			{"cwd", r.Cwd, "/var/task"},
			{"hostname", r.Hostname, "gust-sandbox"},
		}...)
		if r.UID != in.uid || r.UID < DefaultUIDBase || r.UID >= DefaultUIDBase+DefaultUIDCount {
			t.Errorf("uid = %d, want the instance's %d, from %d to %d", r.UID, in.uid, DefaultUIDBase, DefaultUIDBase+DefaultUIDCount-1)
		}
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	for _, k := range []string{"AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_LOG_STREAM_NAME", "PATH", "LD_LIBRARY_PATH"} {
		if r.Env[k] == "" {
			t.Errorf("%s is not set", k)
		}
	}
	if r.Memory != 256 {
		t.Errorf("memory = %d, want 256", r.Memory)
	}
	if r.RemainingMs < 10000 || r.RemainingMs > 20000 {
		t.Errorf("remaining time = %d ms, want about 20000", r.RemainingMs)
	}
	if !bytes.Contains(resp.Log, []byte("echo log line")) {
		t.Errorf("log = %q, want the handler's output", resp.Log)
	}

	// A function error leaves the instance usable.
	resp = invoke(t, in, map[string]string{"op": "error", "text": "bad input"})
	if resp.Err == nil || resp.Err.Message != "boom: bad input" || resp.Err.Type != "errorString" {
		t.Errorf("error invocation: Err = %+v, want errorString: boom: bad input", resp.Err)
	}
	if resp.Payload != nil {
		t.Errorf("error invocation: payload = %q, want none", resp.Payload)
	}
	r = decode[goResult](t, invoke(t, in, map[string]string{"op": "echo"}))
	if r.Op != "echo" {
		t.Errorf("after an error: op = %q", r.Op)
	}
}

func TestFunctionURLHandler(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Function: "urlfn", Code: goFunction(t, "urlfn"), Timeout: 30 * time.Second})
	in := start(t, p)
	var req events.LambdaFunctionURLRequest
	req.RawPath = "/hello"
	req.RawQueryString = "a=1"
	req.Body = "payload"
	req.RequestContext.HTTP.Method = "POST"
	got := decode[events.LambdaFunctionURLResponse](t, invoke(t, in, req))
	if got.StatusCode != 201 || got.Body != "POST /hello?a=1 payload" || got.Headers["Content-Type"] != "text/plain" {
		t.Errorf("response = %+v, want 201 with body %q", got, "POST /hello?a=1 payload")
	}
}

func needRuntime(t *testing.T, name string) {
	t.Helper()
	if why, bad := testRT.Unsupported()[name]; bad {
		t.Skipf("%s: %s", name, why)
	}
}

func TestNodeHandlers(t *testing.T) {
	needRuntime(t, "nodejs20.x")
	files := map[string]zfile{
		"index.js": {data: `
exports.handler = async (event, context) => {
  console.log('got', event.name);
  return { hello: event.name, requestId: context.awsRequestId, fn: context.functionName,
    mem: context.memoryLimitInMB, remaining: context.getRemainingTimeInMillis(), arn: context.invokedFunctionArn,
    group: context.logGroupName, stream: context.logStreamName };
};
exports.fails = async () => { const e = new TypeError('bad thing'); throw e; };
exports.nothing = async () => {};
`},
		"cb.js": {data: `exports.handler = (event, context, callback) => { setTimeout(() => callback(null, {cb: event.name}), 5); };
exports.fails = (event, context, callback) => callback(new Error('cb failed'));`},
		"esm.mjs": {data: `export const handler = async (event) => ({ esm: event.name });`},
	}
	code := zipOf(t, files)
	for _, tc := range []struct {
		handler  string
		want     string
		wantType string
	}{
		{"index.handler", `"hello":"gust"`, ""},
		{"index.fails", "", "TypeError"},
		{"index.nothing", "null", ""},
		{"cb.handler", `{"cb":"gust"}`, ""},
		{"cb.fails", "", "Error"},
		{"esm.handler", `{"esm":"gust"}`, ""},
	} {
		t.Run(tc.handler, func(t *testing.T) {
			p := load(t, nil, sandbox.Spec{Function: "nodefn", Runtime: "nodejs20.x", Handler: tc.handler, Code: code, Timeout: 30 * time.Second})
			in := start(t, p)
			resp := invoke(t, in, map[string]string{"name": "gust"})
			if tc.wantType != "" {
				if resp.Err == nil || resp.Err.Type != tc.wantType || len(resp.Err.StackTrace) == 0 {
					t.Fatalf("Err = %+v, want type %s with a stack trace", resp.Err, tc.wantType)
				}
				return
			}
			if resp.Err != nil {
				t.Fatalf("Err = %v; log %s", resp.Err, resp.Log)
			}
			if !strings.Contains(string(resp.Payload), tc.want) {
				t.Errorf("payload = %s, want it to contain %s", resp.Payload, tc.want)
			}
			if tc.handler == "index.handler" {
				var r map[string]any
				json.Unmarshal(resp.Payload, &r)
				if r["fn"] != "nodefn" || r["mem"] != "128" || !strings.HasPrefix(r["requestId"].(string), "req-") ||
					r["remaining"].(float64) < 1000 || r["group"] != "/aws/lambda/nodefn" || r["stream"] == "" ||
					!strings.HasSuffix(r["arn"].(string), ":function:nodefn") {
					t.Errorf("context = %v", r)
				}
				if !bytes.Contains(resp.Log, []byte("\tINFO\tgot gust")) {
					t.Errorf("log = %q, want the console.log line", resp.Log)
				}
			}
		})
	}
}

func TestPythonHandler(t *testing.T) {
	var runtimeName string
	for _, r := range testRT.Runtimes() {
		if strings.HasPrefix(r, "python3") {
			runtimeName = r
		}
	}
	if runtimeName == "" {
		t.Skip("no python runtime on this host")
	}
	code := zipOf(t, map[string]zfile{
		"app.py": {data: `
import logging
def handler(event, context):
    print("hello from python", event["name"])
    logging.info("logged")
    return {"hello": event["name"], "requestId": context.aws_request_id, "fn": context.function_name,
            "mem": context.memory_limit_in_mb, "remaining": context.get_remaining_time_in_millis(),
            "arn": context.invoked_function_arn}

def fails(event, context):
    raise ValueError("no good")

class Thing: pass
def unserialisable(event, context):
    return Thing()
`},
	})
	for _, tc := range []struct {
		handler  string
		want     string
		wantType string
	}{
		{"app.handler", `"hello": "gust"`, ""},
		{"app.fails", "", "ValueError"},
		{"app.unserialisable", "", "Runtime.MarshalError"},
	} {
		t.Run(tc.handler, func(t *testing.T) {
			p := load(t, nil, sandbox.Spec{Function: "pyfn", Runtime: runtimeName, Handler: tc.handler, Code: code, Timeout: 30 * time.Second})
			in := start(t, p)
			resp := invoke(t, in, map[string]string{"name": "gust"})
			if tc.wantType != "" {
				if resp.Err == nil || resp.Err.Type != tc.wantType {
					t.Fatalf("Err = %+v, want type %s; log %s", resp.Err, tc.wantType, resp.Log)
				}
				if tc.wantType == "ValueError" && (resp.Err.Message != "no good" || len(resp.Err.StackTrace) == 0) {
					t.Errorf("Err = %+v, want message and stack trace", resp.Err)
				}
				return
			}
			if resp.Err != nil {
				t.Fatalf("Err = %v; log %s", resp.Err, resp.Log)
			}
			if !strings.Contains(string(resp.Payload), tc.want) {
				t.Errorf("payload = %s, want it to contain %s", resp.Payload, tc.want)
			}
			var r map[string]any
			json.Unmarshal(resp.Payload, &r)
			if r["fn"] != "pyfn" || r["mem"] != "128" || r["remaining"].(float64) < 1000 || !strings.HasPrefix(r["requestId"].(string), "req-") {
				t.Errorf("context = %v", r)
			}
			if !bytes.Contains(resp.Log, []byte("hello from python gust")) || !bytes.Contains(resp.Log, []byte("[INFO]")) {
				t.Errorf("log = %q", resp.Log)
			}
		})
	}
}

func TestLoadRefusesBadCode(t *testing.T) {
	armELF := "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00\x01\x00\x00\x00" + strings.Repeat("\x00", 40)
	bigEnv := map[string]string{"BIG": strings.Repeat("v", MaxEnvBytes)}
	for _, tc := range []struct {
		name    string
		spec    sandbox.Spec
		wantMsg string
	}{
		{"not a zip", sandbox.Spec{Code: []byte("hello")}, "not a valid zip"},
		{"no bootstrap", sandbox.Spec{Code: zipOf(t, map[string]zfile{"main": {mode: 0o755, data: "#!/bin/sh\n"}})}, "no bootstrap"},
		{"bootstrap not executable", sandbox.Spec{Code: zipOf(t, map[string]zfile{"bootstrap": {mode: 0o644, data: "#!/bin/sh\n"}})}, "not executable"},
		{"bootstrap for arm64", sandbox.Spec{Code: zipOf(t, map[string]zfile{"bootstrap": {mode: 0o755, data: armELF}})}, "another machine (linux/arm64)"},
		{"bootstrap not a program", sandbox.Spec{Code: zipOf(t, map[string]zfile{"bootstrap": {mode: 0o755, data: "just text"}})}, "neither"},
		{"bootstrap script without interpreter", sandbox.Spec{Code: zipOf(t, map[string]zfile{"bootstrap": {mode: 0o755, data: "#!/no/such/shell\n"}})}, "/no/such/shell does not exist"},
		{"path traversal", sandbox.Spec{Code: zipOf(t, map[string]zfile{"../evil": {data: "x"}, "bootstrap": {mode: 0o755, data: "#!/bin/sh\n"}})}, "outside the bundle"},
		{"absolute path", sandbox.Spec{Code: zipOf(t, map[string]zfile{"/etc/evil": {data: "x"}})}, "invalid path"},
		{"env too large", sandbox.Spec{Code: zipOf(t, map[string]zfile{"bootstrap": {mode: 0o755, data: "#!/bin/sh\n"}}), Env: bigEnv}, "4 KB"},
		{"reserved env", sandbox.Spec{Code: zipOf(t, map[string]zfile{"bootstrap": {mode: 0o755, data: "#!/bin/sh\n"}}), Env: map[string]string{"AWS_REGION": "x"}}, "reserved"},
		{"unknown runtime", sandbox.Spec{Runtime: "java21", Code: zipOf(t, map[string]zfile{"bootstrap": {mode: 0o755, data: "#!/bin/sh\n"}})}, "unknown runtime"},
		{"node module missing", sandbox.Spec{Runtime: "nodejs20.x", Handler: "index.handler", Code: zipOf(t, map[string]zfile{"main.js": {data: "x"}})}, "module index not found"},
		{"python module missing", sandbox.Spec{Runtime: "python3.11", Handler: "app.handler", Code: zipOf(t, map[string]zfile{"main.py": {data: "x"}})}, "module app not found"},
		{"handler without function", sandbox.Spec{Runtime: "nodejs20.x", Handler: "index", Code: zipOf(t, map[string]zfile{"index.js": {data: "x"}})}, "MODULE.FUNCTION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.spec.Runtime, "nodejs") || strings.HasPrefix(tc.spec.Runtime, "python") {
				needRuntime(t, tc.spec.Runtime)
			}
			if tc.spec.Runtime == "" {
				tc.spec.Runtime = "provided.al2023"
			}
			tc.spec.Function = "bad"
			p, err := testRT.Load(context.Background(), tc.spec)
			if err == nil {
				p.Close(context.Background())
				t.Fatalf("Load() = nil error, want one containing %q", tc.wantMsg)
			}
			var ice *sandbox.InvalidCodeError
			if !errors.As(err, &ice) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Load() = %v (%T), want an *InvalidCodeError containing %q", err, err, tc.wantMsg)
			}
		})
	}
	for _, r := range []string{"nodejs22.x", "python3.13"} {
		if why, bad := testRT.Unsupported()[r]; bad {
			_, err := testRT.Load(context.Background(), sandbox.Spec{Function: "x", Runtime: r, Handler: "index.handler", Code: zipOf(t, map[string]zfile{"index.js": {data: "x"}})})
			var ice *sandbox.InvalidCodeError
			if !errors.As(err, &ice) || !strings.Contains(err.Error(), why) {
				t.Errorf("Load(%s) = %v, want an *InvalidCodeError saying %q", r, err, why)
			}
		}
	}
}

func TestStartFailures(t *testing.T) {
	raw := goFunction(t, "rawfn")
	node := zipOf(t, map[string]zfile{
		"index.js":  {data: "exports.handler = async () => 1;"},
		"throws.js": {data: "throw new Error('init exploded');"},
		"syntax.js": {data: "exports.handler = async () => {;"},
		"dep.js":    {data: "require('no-such-package'); exports.handler = async () => 1;"},
	})
	py := zipOf(t, map[string]zfile{
		"app.py":    {data: "def handler(event, context):\n    return 1\n"},
		"broken.py": {data: "import no_such_module\n"},
		"syntax.py": {data: "def handler(:\n"},
	})
	for _, tc := range []struct {
		name     string
		spec     sandbox.Spec
		wantType string
		wantMsg  string
	}{
		{"bootstrap exits during init", sandbox.Spec{Code: raw, Env: map[string]string{"GUST_MODE": "exit-init"}}, "Runtime.ExitError", "exit status 3"},
		{"bootstrap never calls next", sandbox.Spec{Code: raw, Timeout: time.Second, Env: map[string]string{"GUST_MODE": "never-next"}}, "Sandbox.Timedout", "Init timed out after 1.00 seconds"},
		{"bootstrap posts init error", sandbox.Spec{Code: raw, Env: map[string]string{"GUST_MODE": "init-error"}}, "Custom.InitFailed", "cannot connect to the database"},
		{"shell bootstrap exits", sandbox.Spec{Code: zipOf(t, map[string]zfile{"bootstrap": {mode: 0o755, data: "#!/bin/sh\necho starting\nexit 7\n"}})}, "Runtime.ExitError", "exit status 7"},
		{"node handler missing", sandbox.Spec{Runtime: "nodejs20.x", Handler: "index.nothere", Code: node}, "Runtime.HandlerNotFound", "index.nothere is undefined or not exported"},
		{"node module throws", sandbox.Spec{Runtime: "nodejs20.x", Handler: "throws.handler", Code: node}, "Error", "init exploded"},
		{"node syntax error", sandbox.Spec{Runtime: "nodejs20.x", Handler: "syntax.handler", Code: node}, "Runtime.UserCodeSyntaxError", "SyntaxError"},
		{"node missing dependency", sandbox.Spec{Runtime: "nodejs20.x", Handler: "dep.handler", Code: node}, "Runtime.ImportModuleError", "no-such-package"},
		{"python handler missing", sandbox.Spec{Runtime: "python3.11", Handler: "app.nothere", Code: py}, "Runtime.HandlerNotFound", "Handler 'nothere' missing on module 'app'"},
		{"python import error", sandbox.Spec{Runtime: "python3.11", Handler: "broken.handler", Code: py}, "Runtime.ImportModuleError", "Unable to import module 'broken'"},
		{"python syntax error", sandbox.Spec{Runtime: "python3.11", Handler: "syntax.handler", Code: py}, "Runtime.UserCodeSyntaxError", "syntax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.spec.Runtime != "" {
				needRuntime(t, tc.spec.Runtime)
			}
			p := load(t, nil, tc.spec)
			t0 := time.Now()
			in, err := p.Start(context.Background())
			if err == nil {
				in.Close(context.Background())
				t.Fatal("Start() = nil error")
			}
			var ie *InitError
			var fe *sandbox.FunctionError
			if !errors.As(err, &ie) || !errors.As(err, &fe) {
				t.Fatalf("Start() = %v (%T), want an *InitError", err, err)
			}
			if fe.Type != tc.wantType || !strings.Contains(fe.Message, tc.wantMsg) {
				t.Errorf("Start() = %v, want %s containing %q; log %s", fe, tc.wantType, tc.wantMsg, ie.Log)
			}
			if d := time.Since(t0); d > 5*time.Second {
				t.Errorf("Start took %v", d)
			}
		})
	}
}

func TestRuntimeAPIMisuse(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Function: "raw", Code: goFunction(t, "rawfn"), Timeout: 30 * time.Second})
	in := start(t, p)

	if resp := invoke(t, in, "twice"); string(resp.Payload) != `"first"` || resp.Err != nil {
		t.Errorf("twice: response %q %v, want the first answer", resp.Payload, resp.Err)
	}
	got := decode[map[string]int](t, invoke(t, in, "report"))
	want := map[string]int{"first": 202, "second": 403, "errorAfter": 403, "unknown": 400, "initErrorLate": 403}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("status of %s = %d, want %d", k, got[k], v)
		}
	}

	resp := invoke(t, in, "big")
	if resp.Err == nil || resp.Err.Type != "Function.ResponseSizeTooLarge" {
		t.Errorf("big: Err = %v, want Function.ResponseSizeTooLarge", resp.Err)
	}
	if got := decode[map[string]int](t, invoke(t, in, "report")); got["big"] != 413 {
		t.Errorf("status of an oversized response = %d, want 413", got["big"])
	}

	resp = invoke(t, in, "garbage-response")
	if string(resp.Payload) != "\x00\xffnot json at all" || resp.Err != nil {
		t.Errorf("garbage response: payload %q, Err %v, want the bytes as posted", resp.Payload, resp.Err)
	}
	resp = invoke(t, in, "garbage-error")
	if resp.Err == nil || resp.Err.Type != "Runtime.Unknown" || resp.Err.Message != "<<<garbage>>>" {
		t.Errorf("garbage error: Err = %+v, want Runtime.Unknown: <<<garbage>>>", resp.Err)
	}
	resp = invoke(t, in, "typed-error")
	if resp.Err == nil || resp.Err.Type != "MyError" || resp.Err.Message != "it broke" || len(resp.Err.StackTrace) != 2 {
		t.Errorf("typed error: Err = %+v", resp.Err)
	}
	h := decode[map[string]string](t, invoke(t, in, "headers"))
	if h["deadline"] == "" || !strings.HasPrefix(h["trace"], "Root=1-") || !strings.HasSuffix(h["arn"], ":function:raw") {
		t.Errorf("next headers = %v", h)
	}
	// Still serving after all that.
	if resp := invoke(t, in, "ping"); string(resp.Payload) != `"ping"` {
		t.Errorf("echo after misuse = %q", resp.Payload)
	}
}

func TestTimeoutKillsEveryProcess(t *testing.T) {
	if !testRT.confined {
		t.Skip("needs a pid namespace")
	}
	p := load(t, nil, sandbox.Spec{Function: "sleepy", Code: goFunction(t, "gofn"), Timeout: time.Second})
	in := start(t, p)
	initPid := in.cmd.Process.Pid

	var pids []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200 && len(pids) < 2; i++ {
			time.Sleep(5 * time.Millisecond)
			pids = nsProcesses(t, initPid)
		}
	}()
	t0 := time.Now()
	resp, err := invokeErr(in, map[string]string{"op": "sleep-child"}, time.Second)
	<-done
	var lost *sandbox.LostError
	if !errors.As(err, &lost) || lost.Kind != sandbox.TimedOut || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Invoke = %v, want a LostError TimedOut", err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("timing out took %v", d)
	}
	if resp.Err == nil || !strings.Contains(resp.Err.Message, "Task timed out after 1.00 seconds") {
		t.Errorf("Err = %v", resp.Err)
	}
	if !bytes.Contains(resp.Log, []byte("child ")) {
		t.Errorf("log = %q, want the child's pid line", resp.Log)
	}
	if len(pids) < 2 {
		t.Fatalf("saw processes %v in the instance, want the bootstrap and its child", pids)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d survived the timeout", pid)
		}
	}
	if _, err := invokeErr(in, map[string]string{"op": "echo"}, 5*time.Second); !errors.As(err, &lost) {
		t.Errorf("Invoke after a timeout = %v, want a LostError", err)
	}
}

func TestCrashMidInvocation(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Function: "crashy", Code: goFunction(t, "gofn"), Timeout: 30 * time.Second})
	in := start(t, p)
	resp, err := invokeErr(in, map[string]string{"op": "crash"}, 10*time.Second)
	var lost *sandbox.LostError
	if !errors.As(err, &lost) || lost.Kind != sandbox.Crashed {
		t.Fatalf("Invoke = %v, want a LostError Crashed", err)
	}
	if resp.Err == nil || resp.Err.Type != "Runtime.ExitError" || !strings.Contains(resp.Err.Message, "exit status 3") {
		t.Errorf("Err = %+v, want Runtime.ExitError with exit status 3", resp.Err)
	}
	if !bytes.Contains(resp.Log, []byte("about to crash")) {
		t.Errorf("log = %q", resp.Log)
	}
	// The next invocation gets a fresh instance.
	in2 := start(t, p)
	if r := decode[goResult](t, invoke(t, in2, map[string]string{"op": "echo"})); r.Op != "echo" {
		t.Errorf("fresh instance answered %+v", r)
	}
}

func TestMemoryLimit(t *testing.T) {
	if testRT.cg == nil {
		t.Skip("no cgroup on this host")
	}
	p := load(t, nil, sandbox.Spec{Function: "hog", Code: goFunction(t, "gofn"), MemoryMB: 64, Timeout: 30 * time.Second})
	in := start(t, p)
	resp, err := invokeErr(in, map[string]string{"op": "hog"}, 20*time.Second)
	var lost *sandbox.LostError
	if !errors.As(err, &lost) || lost.Kind != sandbox.OutOfMemory {
		t.Fatalf("Invoke = %v, want a LostError OutOfMemory (log %q)", err, resp.Log)
	}
	if resp.Err == nil || resp.Err.Type != "Runtime.OutOfMemory" {
		t.Errorf("Err = %+v", resp.Err)
	}
	if resp.MaxMemoryBytes < 48<<20 {
		t.Errorf("MaxMemoryBytes = %d, want near the 64 MB limit", resp.MaxMemoryBytes)
	}
}

func TestForkBombIsContained(t *testing.T) {
	if !testRT.confined || testRT.cg == nil {
		t.Skip("needs a pid namespace and the pids cgroup")
	}
	const limit = 24
	rt, err := New(context.Background(), Options{WorkDir: t.TempDir(), PidsLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	p := load(t, rt, sandbox.Spec{Function: "bomb", Code: goFunction(t, "gofn"), Timeout: 30 * time.Second})
	in := start(t, p)
	initPid := in.cmd.Process.Pid
	resp, err := invokeErr(in, map[string]string{"op": "forkbomb"}, 20*time.Second)
	seen := len(nsProcesses(t, initPid))
	t.Logf("fork bomb: err %v, result %s, %d processes", err, resp.Payload, seen)
	if err == nil {
		r := decode[goResult](t, resp)
		if r.Count >= limit || r.Err == "" {
			t.Errorf("fork bomb spawned %d processes (error %q), want fewer than %d and an error", r.Count, r.Err, limit)
		}
	}
	if seen > limit {
		t.Errorf("%d processes in the instance, limit %d", seen, limit)
	}
	in.Close(context.Background())
	if left := nsProcesses(t, initPid); len(left) > 0 {
		t.Errorf("processes %v survived Close", left)
	}
}

func TestStdoutFloodIsCapped(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Function: "flood", Code: goFunction(t, "gofn"), Timeout: 60 * time.Second})
	in := start(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const limit = 32 << 10
	resp, err := in.Invoke(ctx, sandbox.Request{RequestID: "flood", Payload: []byte(`{"op":"flood","bytes":33554432}`), LogLimit: limit})
	if err != nil {
		t.Fatalf("Invoke = %v", err)
	}
	if len(resp.Log) > limit+len(sandbox.TruncatedMarker) || !bytes.HasSuffix(resp.Log, []byte(sandbox.TruncatedMarker)) {
		t.Errorf("log is %d bytes ending %q, want at most %d plus the marker", len(resp.Log), resp.Log[max(0, len(resp.Log)-60):], limit)
	}
	resp = invoke(t, in, map[string]string{"op": "echo"})
	if len(resp.Log) > 1024 || !bytes.Contains(resp.Log, []byte("echo log line")) {
		t.Errorf("next invocation's log = %q", resp.Log)
	}
}

func TestFunctionsAreIsolated(t *testing.T) {
	if !testRT.confined {
		t.Skip("needs the sandbox (root)")
	}
	a := load(t, nil, sandbox.Spec{Function: "a", Code: goFunction(t, "gofn"), Timeout: 30 * time.Second})
	b := load(t, nil, sandbox.Spec{Function: "b", Code: goFunction(t, "urlfn"), Timeout: 30 * time.Second})
	in := start(t, a)
	other := filepath.Join(b.dir, "bootstrap")
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("b's code: %v", err)
	}
	// A name no other process on the host uses, so that finding it there
	// can only mean the function wrote through to the host.
	hostProbe := fmt.Sprintf("/tmp/gust-isolation-probe-%d-%d", os.Getpid(), time.Now().UnixNano())
	for _, tc := range []struct {
		name    string
		event   map[string]any
		wantErr string // "" means success
	}{
		{"another function's code", map[string]any{"op": "read", "path": other}, "no such file"},
		{"the node's work directory", map[string]any{"op": "read", "path": filepath.Join(testRT.codeDir, b.digest, "bootstrap")}, "no such file"},
		{"own code", map[string]any{"op": "read", "path": "/var/task/bootstrap"}, ""},
		{"host secrets", map[string]any{"op": "read", "path": "/etc/shadow"}, "permission denied"},
		{"root's home", map[string]any{"op": "read", "path": "/root/.bashrc"}, "no such file"},
		{"write code", map[string]any{"op": "write", "path": "/var/task/x", "text": "x"}, "read-only file system"},
		{"write /etc", map[string]any{"op": "write", "path": "/etc/x", "text": "x"}, "read-only file system"},
		{"write /tmp", map[string]any{"op": "write", "path": hostProbe, "text": "x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := decode[goResult](t, invoke(t, in, tc.event))
			if tc.wantErr == "" && r.Err != "" || !strings.Contains(r.Err, tc.wantErr) {
				t.Errorf("%v: err %q, want %q", tc.event, r.Err, tc.wantErr)
			}
		})
	}
	r := decode[goResult](t, invoke(t, in, map[string]any{"op": "ps"}))
	if !slices.Equal(r.Pids, []string{"1"}) {
		t.Errorf("processes visible to the function: %v, want only its own (1)", r.Pids)
	}
	// The host's /tmp is not the function's.
	if _, err := os.Stat(hostProbe); err == nil {
		os.Remove(hostProbe)
		t.Errorf("the function's %s appeared on the host", hostProbe)
	}
}

// waitFor polls cond until it holds or five seconds have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestRuntimeAPIIsPrivate: a function that reaches for another live
// instance's Runtime API is refused, and the other instance's invocation
// gets its own answer.
func TestRuntimeAPIIsPrivate(t *testing.T) {
	if !testRT.confined || testRT.ids == nil || !testRT.peerCheck {
		t.Skip("needs the sandbox (root) with a uid per instance and the Runtime API peer check")
	}
	code := goFunction(t, "gofn")
	victims := load(t, nil, sandbox.Spec{Function: "victim", Code: code, Timeout: 30 * time.Second})
	thief := start(t, load(t, nil, sandbox.Spec{Function: "thief", Code: code, Timeout: 30 * time.Second}))
	for _, tc := range []struct {
		name   string
		method string
		path   string // below the API prefix; {id} is the victim's request id
		body   string
	}{
		// Accepted, this would hand the victim's next event to the thief
		// and fail its current one (the runtime asked for the next
		// invocation without answering).
		{"GET next", "GET", "/invocation/next", ""},
		{"POST response", "POST", "/invocation/{id}/response", `{"op":"stolen"}`},
		{"POST error", "POST", "/invocation/{id}/error", `{"errorType":"Stolen","errorMessage":"stolen"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victim := start(t, victims)
			id := "victim-" + randomHex(8)
			type answer struct {
				resp sandbox.Response
				err  error
			}
			answered := make(chan answer, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				d, _ := ctx.Deadline()
				resp, err := victim.Invoke(ctx, sandbox.Request{RequestID: id, Deadline: d, Payload: []byte(`{"op":"sleep","bytes":1000}`)})
				answered <- answer{resp, err}
			}()
			waitFor(t, "the victim's invocation", func() bool {
				victim.mu.Lock()
				defer victim.mu.Unlock()
				return victim.cur != nil
			})

			url := "http://" + victim.ln.Addr().String() + apiPrefix + strings.ReplaceAll(tc.path, "{id}", id)
			r := decode[goResult](t, invoke(t, thief, map[string]any{"op": "http", "method": tc.method, "url": url, "text": tc.body}))
			refused := r.Count == 403 || strings.Contains(r.Err, "connection reset by peer") || strings.HasSuffix(r.Err, "EOF")
			if !refused {
				t.Errorf("thief's %s %s = status %d %q, error %q, want the connection refused", tc.method, url, r.Count, r.Text, r.Err)
			}
			if n := victim.refused.Load(); n == 0 {
				t.Errorf("the victim's listener refused no connection")
			}

			a := <-answered
			if a.err != nil {
				t.Fatalf("victim's Invoke = %v", a.err)
			}
			if got := decode[goResult](t, a.resp); got.Op != "sleep" || got.UID != victim.uid {
				t.Errorf("victim's answer = %+v, want its own (op sleep, uid %d)", got, victim.uid)
			}
			// The victim still serves, and its own connection was never refused.
			if got := decode[goResult](t, invoke(t, victim, map[string]string{"op": "echo"})); got.Op != "echo" {
				t.Errorf("victim's next answer = %+v", got)
			}
			if n := victim.refused.Load(); n != 1 {
				t.Errorf("the victim's listener refused %d connections, want 1 (the thief's)", n)
			}
		})
	}
}

// TestInstancesHaveOwnUIDs: live instances never share a uid; a uid is
// reused only after its instance is closed.
func TestInstancesHaveOwnUIDs(t *testing.T) {
	if !testRT.confined {
		t.Skip("needs the sandbox (root)")
	}
	const base = 300000
	rt, err := New(context.Background(), Options{WorkDir: t.TempDir(), UIDBase: base, UIDCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	p := load(t, rt, sandbox.Spec{Function: "uids", Code: goFunction(t, "gofn"), Timeout: 30 * time.Second})
	uidOf := func(in *instance) int {
		t.Helper()
		return decode[goResult](t, invoke(t, in, map[string]string{"op": "echo"})).UID
	}
	a, b := start(t, p), start(t, p)
	for _, tc := range []struct {
		name string
		in   *instance
		want int
	}{
		{"first", a, base},
		{"second", b, base + 1},
	} {
		if got := uidOf(tc.in); got != tc.want || tc.in.uid != tc.want {
			t.Errorf("%s instance runs as uid %d (recorded %d), want %d", tc.name, got, tc.in.uid, tc.want)
		}
	}
	if in, err := p.Start(context.Background()); !errors.Is(err, ErrNoUID) {
		if err == nil {
			in.Close(context.Background())
		}
		t.Fatalf("Start with every uid held = %v, want ErrNoUID", err)
	}
	a.Close(context.Background())
	if c := start(t, p); uidOf(c) != base {
		t.Errorf("instance started after closing uid %d's runs as uid %d", base, c.uid)
	}
}

func TestCodeIsSharedAndRemoved(t *testing.T) {
	code := goFunction(t, "gofn")
	p1 := load(t, nil, sandbox.Spec{Function: "one", Code: code})
	p2 := load(t, nil, sandbox.Spec{Function: "two", Code: code})
	if p1.dir != p2.dir {
		t.Errorf("same code unpacked twice: %s and %s", p1.dir, p2.dir)
	}
	p1.Close(context.Background())
	if _, err := os.Stat(p2.dir); err != nil {
		t.Errorf("code removed while still loaded: %v", err)
	}
	p2.Close(context.Background())
	if _, err := os.Stat(p2.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("code kept after the last Close: %v", err)
	}
}

func TestStartCancelledAndRuntimeClose(t *testing.T) {
	rt, err := New(context.Background(), Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	raw := goFunction(t, "rawfn")
	p := load(t, rt, sandbox.Spec{Function: "slow", Code: raw, Timeout: time.Minute, Env: map[string]string{"GUST_MODE": "never-next"}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := p.Start(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Start with a short context = %v, want DeadlineExceeded", err)
	}
	good := load(t, rt, sandbox.Spec{Function: "ok", Code: raw, Timeout: time.Minute})
	in, err := good.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pid := in.(*instance).cmd.Process.Pid
	if err := rt.Close(context.Background()); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if alive(pid) {
		t.Errorf("instance %d survived the runtime's Close", pid)
	}
	if _, err := good.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}

func TestExamples(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("../../../examples", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	urlEvent := map[string]any{"rawPath": "/", "queryStringParameters": map[string]string{"name": "Ada"},
		"requestContext": map[string]any{"http": map[string]string{"method": "GET"}}}
	for _, tc := range []struct {
		name string
		spec func() sandbox.Spec
	}{
		{"lambda-go", func() sandbox.Spec {
			return sandbox.Spec{Runtime: "provided.al2023", Code: goFunction(t, "../../../examples/lambda-go")}
		}},
		{"lambda-node", func() sandbox.Spec {
			needRuntime(t, "nodejs20.x")
			return sandbox.Spec{Runtime: "nodejs20.x", Handler: "index.handler", Code: zipOf(t, map[string]zfile{"index.mjs": {data: read("lambda-node/index.mjs")}})}
		}},
		{"lambda-python", func() sandbox.Spec {
			needRuntime(t, "python3.11")
			return sandbox.Spec{Runtime: "python3.11", Handler: "app.handler", Code: zipOf(t, map[string]zfile{"app.py": {data: read("lambda-python/app.py")}})}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec()
			spec.Function, spec.Timeout = tc.name, 30*time.Second
			in := start(t, load(t, nil, spec))
			got := decode[map[string]any](t, invoke(t, in, map[string]string{"name": "Ada"}))
			if got["message"] != "Hello, Ada!" || got["requestId"] == "" {
				t.Errorf("direct invocation = %v", got)
			}
			url := decode[events.LambdaFunctionURLResponse](t, invoke(t, in, urlEvent))
			if url.StatusCode != 200 || !strings.Contains(url.Body, "Hello, Ada!") {
				t.Errorf("function-URL invocation = %+v", url)
			}
		})
	}
}
