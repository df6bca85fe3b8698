package cli

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
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/creds"
)

var wasmModule = []byte("\x00asm\x01\x00\x00\x00")

// runResult is what one Run produced.
type runResult struct {
	code           int
	stdout, stderr string
}

// run runs the CLI against node with env (merged over credentials in the
// environment) and stdin.
func run(t *testing.T, node *fakeNode, env map[string]string, stdin string, args ...string) runResult {
	t.Helper()
	vars := map[string]string{
		"AWS_ACCESS_KEY_ID":     testKey.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": testKey.SecretAccessKey,
		"HOME":                  t.TempDir(),
	}
	if node != nil {
		vars[EnvServer] = node.srv.URL
	}
	for k, v := range env {
		vars[k] = v
	}
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string { return vars[k] },
		Build: func(ctx context.Context, dir string) ([]byte, error) {
			if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
				return nil, errors.New("no Go files in " + dir)
			}
			return wasmModule, nil
		},
		BuildBootstrap: func(ctx context.Context, dir string) ([]byte, error) {
			if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
				return nil, errors.New("no Go files in " + dir)
			}
			return []byte("\x7fELF built"), nil
		},
	})
	return runResult{code, stdout.String(), stderr.String()}
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wasmPath := write("fn.wasm", wasmModule)
	zipPath := write("fn.zip", []byte("PK\x03\x04rest"))
	write("pkg/main.go", []byte("package main\n"))
	pkgDir := filepath.Join(dir, "pkg")
	notWasm := write("bad.wasm", []byte("hello"))
	textFile := write("notes.txt", []byte("hello"))
	payloadFile := write("event.json", []byte(`{"from":"file"}`))
	exePath := write("bin/handler", []byte("\x7fELF fake"))
	if err := os.Chmod(exePath, 0o755); err != nil {
		t.Fatal(err)
	}
	write("node/index.mjs", []byte("export const handler = async () => 1;\n"))
	nodeDir := filepath.Join(dir, "node")
	pyFile := write("py/main.py", []byte("def handler(event, context): return 1\n"))
	// codeFiles checks the zip a function was deployed with.
	codeFiles := func(name string, want map[string]zipEntry) func(t *testing.T, n *fakeNode) {
		return func(t *testing.T, n *fakeNode) {
			if diff := cmp.Diff(want, readZip(t, n.fns[name].code)); diff != "" {
				t.Errorf("%s code (-want +got):\n%s", name, diff)
			}
		}
	}
	// runtimeHandler checks a function's runtime and handler.
	runtimeHandler := func(name, rt, handler string) func(t *testing.T, n *fakeNode) {
		return func(t *testing.T, n *fakeNode) {
			cfg := n.fns[name].cfg
			if cfg.Runtime != rt || cfg.Handler != handler {
				t.Errorf("%s runtime, handler = %q, %q, want %q, %q", name, cfg.Runtime, cfg.Handler, rt, handler)
			}
		}
	}
	both := func(checks ...func(t *testing.T, n *fakeNode)) func(t *testing.T, n *fakeNode) {
		return func(t *testing.T, n *fakeNode) {
			for _, c := range checks {
				c(t, n)
			}
		}
	}
	dataDir := filepath.Join(dir, "data")
	if err := creds.WriteFile(filepath.Join(dataDir, creds.FileName), "default", testKey); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		existing []string // functions present before the run
		setup    func(n *fakeNode)
		env      map[string]string
		stdin    string
		args     []string
		wantCode int
		// wantStdout is compared exactly when set; the others are substrings.
		wantStdout   *string
		stdoutHas    []string
		stdoutLacks  []string
		stderrHas    []string
		wantCalls    []string // exact, when not nil
		checkJSON    func(t *testing.T, stdout string)
		checkNode    func(t *testing.T, n *fakeNode)
		noServer     bool
		checkStderrE bool
	}{
		{name: "deploy wasm creates", args: []string{"deploy", "hello", wasmPath, "--memory", "256", "--env", "A=1", "--env", "B=x=y"},
			stdoutHas: []string{"created hello", "8 B", "memory:   256 MB"},
			wantCalls: []string{"POST /2015-03-31/functions"}},
		{name: "deploy existing updates code only", existing: []string{"hello"}, args: []string{"deploy", "hello", zipPath},
			stdoutHas: []string{"updated hello"},
			wantCalls: []string{"POST /2015-03-31/functions", "GET /2015-03-31/functions/hello/configuration", "PUT /2015-03-31/functions/hello/code"}},
		{name: "deploy existing with flags updates configuration", existing: []string{"hello"},
			args:      []string{"deploy", "hello", wasmPath, "--timeout", "30"},
			stdoutHas: []string{"updated hello", "timeout:  30s"},
			wantCalls: []string{"POST /2015-03-31/functions", "GET /2015-03-31/functions/hello/configuration", "PUT /2015-03-31/functions/hello/code", "PUT /2015-03-31/functions/hello/configuration"}},
		{name: "deploy idle timeout creates", args: []string{"deploy", "hello", wasmPath, "--idle-timeout", "5m"},
			stdoutHas: []string{"created hello", "idle keep-alive:  5m0s"},
			wantCalls: []string{"POST /2015-03-31/functions"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if got := n.fns["hello"].cfg.GustIdleTimeout; got != 300 {
					t.Errorf("GustIdleTimeout = %d, want 300", got)
				}
			}},
		{name: "deploy existing idle timeout zero updates configuration", existing: []string{"hello"},
			setup:     func(n *fakeNode) { n.fns["hello"].cfg.GustIdleTimeout = 60 },
			args:      []string{"deploy", "hello", wasmPath, "--idle-timeout", "0"},
			stdoutHas: []string{"updated hello", "idle keep-alive:  node default"},
			wantCalls: []string{"POST /2015-03-31/functions", "GET /2015-03-31/functions/hello/configuration", "PUT /2015-03-31/functions/hello/code", "PUT /2015-03-31/functions/hello/configuration"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if got := n.fns["hello"].cfg.GustIdleTimeout; got != 0 {
					t.Errorf("GustIdleTimeout = %d, want 0", got)
				}
			}},
		{name: "deploy idle timeout fraction", args: []string{"deploy", "hello", wasmPath, "--idle-timeout", "1500ms"},
			wantCode: 2, stderrHas: []string{"--idle-timeout 1.5s: want whole seconds"}},
		{name: "deploy idle timeout negative", args: []string{"deploy", "hello", wasmPath, "--idle-timeout", "-1s"},
			wantCode: 2, stderrHas: []string{"--idle-timeout -1s"}},
		{name: "deploy reserved concurrency", args: []string{"deploy", "hello", wasmPath, "--reserved-concurrency", "5"},
			stdoutHas: []string{"created hello", "reserved concurrency:  5\n"},
			wantCalls: []string{"POST /2015-03-31/functions", "PUT /2017-10-31/functions/hello/concurrency"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if got := n.fns["hello"].reserved; got == nil || *got != 5 {
					t.Errorf("reserved concurrency = %v, want 5", got)
				}
			}},
		{name: "deploy reserved concurrency zero", existing: []string{"hello"},
			args:      []string{"deploy", "hello", wasmPath, "--reserved-concurrency", "0"},
			stdoutHas: []string{"updated hello", "reserved concurrency:  0\n"},
			wantCalls: []string{"POST /2015-03-31/functions", "GET /2015-03-31/functions/hello/configuration", "PUT /2015-03-31/functions/hello/code", "PUT /2017-10-31/functions/hello/concurrency"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if got := n.fns["hello"].reserved; got == nil || *got != 0 {
					t.Errorf("reserved concurrency = %v, want 0", got)
				}
			}},
		{name: "deploy remove reserved concurrency", existing: []string{"hello"},
			setup:     func(n *fakeNode) { n.fns["hello"].reserved = ptr[int32](3) },
			args:      []string{"deploy", "hello", wasmPath, "--reserved-concurrency=-1"},
			stdoutHas: []string{"updated hello", "reserved concurrency:  none\n"},
			wantCalls: []string{"POST /2015-03-31/functions", "GET /2015-03-31/functions/hello/configuration", "PUT /2015-03-31/functions/hello/code", "DELETE /2017-10-31/functions/hello/concurrency"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if got := n.fns["hello"].reserved; got != nil {
					t.Errorf("reserved concurrency = %d, want none", *got)
				}
			}},
		{name: "deploy reserved concurrency invalid", args: []string{"deploy", "hello", wasmPath, "--reserved-concurrency=-2"},
			wantCode: 2, stderrHas: []string{"--reserved-concurrency -2"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if len(n.calls) != 0 {
					t.Errorf("requests = %q, want none", n.calls)
				}
			}},
		{name: "deploy provisioned", args: []string{"deploy", "hello", wasmPath, "--provisioned", "2"},
			stdoutHas: []string{"created hello", "provisioned:  2 requested, 0 ready (IN_PROGRESS)\n"},
			wantCalls: []string{"POST /2015-03-31/functions", "PUT /2019-09-30/functions/hello/provisioned-concurrency"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if got := n.fns["hello"].provisioned; got != 2 {
					t.Errorf("provisioned = %d, want 2", got)
				}
			}},
		{name: "deploy provisioned zero", existing: []string{"hello"},
			setup:     func(n *fakeNode) { n.fns["hello"].provisioned = 3 },
			args:      []string{"deploy", "hello", wasmPath, "--provisioned", "0"},
			stdoutHas: []string{"updated hello", "provisioned:  none\n"},
			wantCalls: []string{"POST /2015-03-31/functions", "GET /2015-03-31/functions/hello/configuration", "PUT /2015-03-31/functions/hello/code", "DELETE /2019-09-30/functions/hello/provisioned-concurrency"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if got := n.fns["hello"].provisioned; got != 0 {
					t.Errorf("provisioned = %d, want 0", got)
				}
			}},
		{name: "deploy provisioned negative", args: []string{"deploy", "hello", wasmPath, "--provisioned=-1"},
			wantCode: 2, stderrHas: []string{"--provisioned -1"}},
		{name: "deploy concurrency json", args: []string{"deploy", "hello", wasmPath, "-o", "json",
			"--idle-timeout", "90s", "--reserved-concurrency", "4", "--provisioned", "1"},
			wantCalls: []string{"POST /2015-03-31/functions", "PUT /2017-10-31/functions/hello/concurrency",
				"PUT /2019-09-30/functions/hello/provisioned-concurrency"},
			checkJSON: func(t *testing.T, out string) {
				var res deployResult
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatalf("deploy -o json output %q: %v", out, err)
				}
				want := deployResult{
					Action:        "created",
					Configuration: res.Configuration,
					Concurrency:   &api.Concurrency{ReservedConcurrentExecutions: ptr[int32](4)},
					ProvisionedConcurrency: &api.ProvisionedConcurrencyConfig{RequestedProvisionedConcurrentExecutions: 1,
						Status: "IN_PROGRESS", LastModified: res.Configuration.LastModified},
				}
				res.ElapsedMs = 0
				if diff := cmp.Diff(want, res); diff != "" {
					t.Errorf("deploy -o json (-want +got):\n%s", diff)
				}
				if res.Configuration.GustIdleTimeout != 90 {
					t.Errorf("deploy -o json GustIdleTimeout = %d, want 90", res.Configuration.GustIdleTimeout)
				}
			}},
		{name: "deploy concurrency on a failed create", args: []string{"deploy", "hello", textFile, "--reserved-concurrency", "1"},
			wantCode: 2, stderrHas: []string{"PATH must be"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if len(n.calls) != 0 {
					t.Errorf("requests = %q, want none", n.calls)
				}
			}},
		{name: "deploy go package", args: []string{"deploy", "pkg", pkgDir}, stdoutHas: []string{"created pkg"}},
		{name: "deploy json", args: []string{"deploy", "hello", wasmPath, "-o", "json", "--description", "hi"},
			checkJSON: func(t *testing.T, out string) {
				var res deployResult
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatalf("deploy -o json output %q: %v", out, err)
				}
				if res.Action != "created" || res.Configuration.FunctionName != "hello" || res.Configuration.Description != "hi" || res.Configuration.CodeSize != 8 {
					t.Errorf("deploy -o json = %+v", res)
				}
			}},
		{name: "deploy build failure", args: []string{"deploy", "x", dir}, wantCode: 1, stderrHas: []string{"gust: build", "no Go files"}},
		{name: "deploy not wasm", args: []string{"deploy", "x", notWasm}, wantCode: 1, stderrHas: []string{"not a WebAssembly module"}},
		{name: "deploy unknown kind", args: []string{"deploy", "x", textFile}, wantCode: 2, stderrHas: []string{"PATH must be"}},
		{name: "deploy missing path", args: []string{"deploy", "x", filepath.Join(dir, "absent")}, wantCode: 1, stderrHas: []string{"no such file"}},
		{name: "deploy bad env", args: []string{"deploy", "x", wasmPath, "--env", "NOEQUALS"}, wantCode: 2, stderrHas: []string{"KEY=VALUE"}},
		{name: "deploy wasm sends runtime wasm", args: []string{"deploy", "hello", wasmPath},
			stdoutHas: []string{"  runtime:  wasm\n"}, checkNode: runtimeHandler("hello", "wasm", "")},
		{name: "deploy provided executable", args: []string{"deploy", "native", exePath, "--runtime", "provided.al2023"},
			stdoutHas: []string{"created native", "runtime:  provided.al2023\n"},
			wantCalls: []string{"POST /2015-03-31/functions"},
			checkNode: both(runtimeHandler("native", "provided.al2023", ""),
				codeFiles("native", map[string]zipEntry{"bootstrap": {0o755, "\x7fELF fake"}}))},
		{name: "deploy provided go package", args: []string{"deploy", "native", pkgDir, "--runtime", "provided.al2"},
			stdoutHas: []string{"created native"},
			checkNode: codeFiles("native", map[string]zipEntry{"bootstrap": {0o755, "\x7fELF built"}})},
		{name: "deploy provided build failure", args: []string{"deploy", "native", filepath.Join(dir, "bin"), "--runtime", "provided"},
			wantCode: 1, stderrHas: []string{"gust: build", "no Go files"}},
		{name: "deploy nodejs directory default handler", args: []string{"deploy", "web", nodeDir, "--runtime", "nodejs22.x"},
			stdoutHas: []string{"created web", "handler:  index.handler\n"},
			checkNode: both(runtimeHandler("web", "nodejs22.x", "index.handler"),
				codeFiles("web", map[string]zipEntry{"index.mjs": {0o644, "export const handler = async () => 1;\n"}}))},
		{name: "deploy python file with handler", args: []string{"deploy", "py", pyFile, "--runtime", "python3.12", "--handler", "main.handler"},
			stdoutHas: []string{"created py"},
			checkNode: both(runtimeHandler("py", "python3.12", "main.handler"),
				codeFiles("py", map[string]zipEntry{"main.py": {0o644, "def handler(event, context): return 1\n"}}))},
		{name: "deploy python default handler", args: []string{"deploy", "py", pyFile, "--runtime", "python3.13"},
			checkNode: runtimeHandler("py", "python3.13", "app.handler")},
		{name: "deploy existing with runtime and handler updates configuration", existing: []string{"hello"},
			args:      []string{"deploy", "hello", nodeDir, "--runtime", "nodejs20.x", "--handler", "index.main"},
			stdoutHas: []string{"updated hello", "runtime:  nodejs20.x\n", "handler:  index.main\n"},
			wantCalls: []string{"POST /2015-03-31/functions", "PUT /2015-03-31/functions/hello/code", "PUT /2015-03-31/functions/hello/configuration"},
			checkNode: runtimeHandler("hello", "nodejs20.x", "index.main")},
		{name: "deploy existing keeps the handler", existing: []string{"web"},
			setup:     func(n *fakeNode) { n.fns["web"].cfg.Runtime, n.fns["web"].cfg.Handler = "nodejs22.x", "lib/main.run" },
			args:      []string{"deploy", "web", nodeDir, "--runtime", "nodejs22.x"},
			wantCalls: []string{"POST /2015-03-31/functions", "PUT /2015-03-31/functions/web/code", "PUT /2015-03-31/functions/web/configuration"},
			checkNode: runtimeHandler("web", "nodejs22.x", "lib/main.run")},
		{name: "deploy unknown runtime", args: []string{"deploy", "x", wasmPath, "--runtime", "java21"},
			wantCode: 2, stderrHas: []string{`--runtime "java21"`, "gust deploy --help"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if len(n.calls) != 0 {
					t.Errorf("requests = %q, want none", n.calls)
				}
			}},
		{name: "deploy provided refuses a text file", args: []string{"deploy", "x", textFile, "--runtime", "provided.al2023"},
			wantCode: 2, stderrHas: []string{"PATH must be a .zip holding a bootstrap"}},
		{name: "deploy wrong args", args: []string{"deploy", "x"}, wantCode: 2, stderrHas: []string{"takes 2 argument", "gust deploy --help"}},

		{name: "invoke literal", existing: []string{"hello"}, args: []string{"invoke", "hello", "--payload", `{"a":1}`},
			wantStdout: ptr(`{"echo":{"a":1}}`)},
		{name: "invoke default payload", existing: []string{"hello"}, args: []string{"invoke", "hello"}, wantStdout: ptr(`{"echo":{}}`)},
		{name: "invoke file", existing: []string{"hello"}, args: []string{"invoke", "hello", "--payload", "@" + payloadFile},
			wantStdout: ptr(`{"echo":{"from":"file"}}`)},
		{name: "invoke stdin", existing: []string{"hello"}, stdin: `{"from":"stdin"}`, args: []string{"invoke", "hello", "--payload", "-"},
			wantStdout: ptr(`{"echo":{"from":"stdin"}}`)},
		{name: "invoke missing file", existing: []string{"hello"}, args: []string{"invoke", "hello", "--payload", "@" + filepath.Join(dir, "nope.json")},
			wantCode: 1, stderrHas: []string{"read payload"}},
		{name: "invoke log", existing: []string{"hello"}, args: []string{"invoke", "hello", "--log"},
			wantStdout: ptr(`{"echo":{}}`), stderrHas: []string{"START RequestId: r1\nlog line\nEND RequestId: r1\n"}},
		{name: "invoke function error", existing: []string{"hello"}, args: []string{"invoke", "hello", "--payload", `"fail"`},
			wantCode: 1, stdoutHas: []string{`"errorMessage":"it failed"`}, stderrHas: []string{"gust: hello: function error (Unhandled): Error: it failed"}},
		{name: "invoke json", existing: []string{"hello"}, args: []string{"invoke", "hello", "-o", "json", "--log"},
			checkJSON: func(t *testing.T, out string) {
				var res invokeOutput
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatalf("invoke -o json output %q: %v", out, err)
				}
				var compact bytes.Buffer
				if err := json.Compact(&compact, res.Payload); err != nil {
					t.Fatal(err)
				}
				if res.StatusCode != 200 || compact.String() != `{"echo":{}}` || res.RequestID != "r1" || !strings.Contains(res.LogResult, "log line") {
					t.Errorf("invoke -o json = %+v", res)
				}
			}},
		{name: "invoke async", existing: []string{"hello"}, args: []string{"invoke", "hello", "--async"}, wantStdout: ptr("r1\n")},
		{name: "invoke not found", args: []string{"invoke", "nope"}, wantCode: 1,
			stderrHas: []string{"gust: invoke nope: ResourceNotFoundException: Function not found"}},

		{name: "ls", existing: []string{"b", "a", "c"}, args: []string{"ls"},
			stdoutHas: []string{"NAME  RUNTIME  MEMORY  TIMEOUT  CODE SIZE  LAST MODIFIED", "a     wasm     128 MB  3s       8 B        2026-11-27 12:00:00 +0000"},
			wantCalls: []string{"GET /2015-03-31/functions/", "GET /2015-03-31/functions/"}},
		{name: "ls json", existing: []string{"b", "a", "c"}, args: []string{"ls", "-o", "json"},
			checkJSON: func(t *testing.T, out string) {
				var fns []api.FunctionConfiguration
				if err := json.Unmarshal([]byte(out), &fns); err != nil {
					t.Fatalf("ls -o json output %q: %v", out, err)
				}
				var names []string
				for _, f := range fns {
					names = append(names, f.FunctionName)
				}
				if diff := cmp.Diff([]string{"a", "b", "c"}, names); diff != "" {
					t.Errorf("ls -o json names (-want +got):\n%s", diff)
				}
			}},
		{name: "ls json empty", args: []string{"ls", "--output=json"}, wantStdout: ptr("[]\n")},

		{name: "get", existing: []string{"hello"}, args: []string{"get", "hello"},
			stdoutHas: []string{"name:                 hello\n", "memory:               128 MB\n", "code sha256:          93a44bbb96c7",
				"runtime:              wasm\n", "kind:                 wasi-command\n", "idle keep-alive:      node default\n",
				"reserved concurrency: none\n"},
			stdoutLacks: []string{"isolation:", "handler:"}},
		{name: "get concurrency and idle timeout", existing: []string{"hello"}, args: []string{"get", "hello"},
			setup:     func(n *fakeNode) { n.fns["hello"].reserved, n.fns["hello"].cfg.GustIdleTimeout = ptr[int32](5), 300 },
			stdoutHas: []string{"idle keep-alive:      5m0s\n", "reserved concurrency: 5\n"}},
		{name: "get reserved zero", existing: []string{"hello"}, args: []string{"get", "hello"},
			setup:     func(n *fakeNode) { n.fns["hello"].reserved = ptr[int32](0) },
			stdoutHas: []string{"reserved concurrency: 0\n"}},
		{name: "get native", args: []string{"get", "native"},
			setup: func(n *fakeNode) {
				n.add("native", wasmModule)
				f := n.fns["native"]
				f.cfg.Runtime, f.cfg.Handler, f.cfg.GustKind, f.cfg.GustIsolation = "nodejs22.x", "index.handler", "process", fakeIsolation("nodejs22.x")
			},
			stdoutHas: []string{"runtime:              nodejs22.x\n", "handler:              index.handler\n",
				"last modified:        2026-11-27 12:00:00 +0000\n" +
					"isolation:            on: pid namespace\n" +
					"                      off: network namespace: shared with the host\n"}},
		{name: "get native json", args: []string{"get", "native", "-o", "json"},
			setup: func(n *fakeNode) {
				n.add("native", wasmModule)
				n.fns["native"].cfg.GustIsolation = fakeIsolation("provided.al2023")
			},
			checkJSON: func(t *testing.T, out string) {
				var res api.GetFunctionResponse
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatalf("get -o json output %q: %v", out, err)
				}
				if diff := cmp.Diff(fakeIsolation("provided.al2023"), res.Configuration.GustIsolation); diff != "" {
					t.Errorf("get -o json GustIsolation (-want +got):\n%s", diff)
				}
			}},
		{name: "get json", existing: []string{"hello"}, args: []string{"get", "hello", "-o", "json"},
			checkJSON: func(t *testing.T, out string) {
				var res api.GetFunctionResponse
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatalf("get -o json output %q: %v", out, err)
				}
				if res.Configuration.FunctionName != "hello" {
					t.Errorf("get -o json = %+v", res)
				}
			}},
		{name: "get not found", args: []string{"get", "nope"}, wantCode: 1, stderrHas: []string{"ResourceNotFoundException"}},

		{name: "rm", existing: []string{"hello"}, args: []string{"rm", "hello"}, wantStdout: ptr("deleted hello\n"),
			wantCalls: []string{"DELETE /2015-03-31/functions/hello"}},
		{name: "rm json", existing: []string{"hello"}, args: []string{"rm", "hello", "-o", "json"},
			checkJSON: func(t *testing.T, out string) {
				var res map[string]any
				if err := json.Unmarshal([]byte(out), &res); err != nil || res["Deleted"] != true {
					t.Fatalf("rm -o json output %q: %v", out, err)
				}
			}},
		{name: "rm not found", args: []string{"rm", "nope"}, wantCode: 1, stderrHas: []string{"gust: rm nope: ResourceNotFoundException"}},

		{name: "logs", existing: []string{"hello"}, args: []string{"logs", "hello", "--since", "10m"},
			wantStdout: ptr("START RequestId: r1\nhello\nEND RequestId: r1\nSTART RequestId: r2\n")},
		{name: "logs json", existing: []string{"hello"}, args: []string{"logs", "hello", "-o", "json"},
			checkJSON: func(t *testing.T, out string) {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if len(lines) != 2 {
					t.Fatalf("logs -o json printed %d lines, want 2: %q", len(lines), out)
				}
				for _, l := range lines {
					var ev api.LogEvent
					if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Function != "hello" {
						t.Errorf("logs -o json line %q: %+v, %v", l, ev, err)
					}
				}
			}},
		{name: "logs bad since", existing: []string{"hello"}, args: []string{"logs", "hello", "--since", "yesterday"}, wantCode: 2,
			stderrHas: []string{"--since"}},

		{name: "usage", existing: []string{"b", "a"}, args: []string{"usage"},
			wantStdout: ptr("" +
				"FUNCTION  VERSION  REQUESTS  ERRORS  THROTTLES  COLD STARTS  GB-SECONDS  COST\n" +
				"a         $LATEST  10        1       0          2            0.125       $0.0000041\n" +
				"b         $LATEST  10        1       0          2            0.125       $0.0000041\n" +
				"TOTAL              20        2       0          4            0.25        $0.0000082\n" +
				"prices: $0.0000002 per request, $0.0000166667 per GB-second\n"),
			wantCalls: []string{"GET " + api.UsagePath},
			checkNode: func(t *testing.T, n *fakeNode) {
				since, err := time.Parse(time.RFC3339Nano, n.usageQuery.Get("since"))
				if err != nil {
					t.Fatalf("usage since = %q: %v", n.usageQuery.Get("since"), err)
				}
				if d := time.Since(since); d < 24*time.Hour || d > 25*time.Hour {
					t.Errorf("usage since = %v, want about 24h ago", since)
				}
				if n.usageQuery.Has("function") {
					t.Errorf("usage query = %q, want no function", n.usageQuery.Encode())
				}
			}},
		{name: "usage one function", existing: []string{"b", "a"}, args: []string{"usage", "--function", "b", "--since", "2026-11-27T11:00:00+01:00"},
			stdoutHas: []string{"\nb         $LATEST  10", "\nTOTAL              10        1"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if got, want := n.usageQuery.Encode(), "function=b&since=2026-11-27T10%3A00%3A00Z"; got != want {
					t.Errorf("usage query = %q, want %q", got, want)
				}
			}},
		{name: "usage none", args: []string{"usage", "--since", "1h"},
			stdoutHas: []string{"TOTAL              0         0       0          0            0           $0.00\n"},
			checkNode: func(t *testing.T, n *fakeNode) {
				since, err := time.Parse(time.RFC3339Nano, n.usageQuery.Get("since"))
				if d := time.Since(since); err != nil || d < time.Hour || d > 2*time.Hour {
					t.Errorf("usage since = %q, want about 1h ago", n.usageQuery.Get("since"))
				}
			}},
		{name: "usage json", existing: []string{"a", "b", "c"}, args: []string{"usage", "-o", "json"},
			checkJSON: func(t *testing.T, out string) {
				var rep api.UsageReport
				if err := json.Unmarshal([]byte(out), &rep); err != nil {
					t.Fatalf("usage -o json output %q: %v", out, err)
				}
				var names []string
				for _, l := range rep.Functions {
					names = append(names, l.Function)
				}
				if diff := cmp.Diff([]string{"a", "b", "c"}, names); diff != "" {
					t.Errorf("usage -o json functions (-want +got):\n%s", diff)
				}
				if rep.Total.Requests != 30 || rep.Total.ColdStarts != 6 || rep.Prices != fakePrices {
					t.Errorf("usage -o json total = %+v, prices = %+v", rep.Total, rep.Prices)
				}
			}},
		{name: "usage bad since", args: []string{"usage", "--since", "last week"}, wantCode: 2,
			stderrHas: []string{`--since "last week": want a duration like 10m or an RFC 3339 time`, "gust usage --help"},
			checkNode: func(t *testing.T, n *fakeNode) {
				if len(n.calls) != 0 {
					t.Errorf("requests = %q, want none", n.calls)
				}
			}},
		{name: "usage negative since", args: []string{"usage", "--since", "-1h"}, wantCode: 2, stderrHas: []string{"positive duration"}},
		{name: "usage extra argument", args: []string{"usage", "a"}, wantCode: 2, stderrHas: []string{"takes 0 argument"}},
		{name: "credentials from data dir", existing: []string{"a"}, args: []string{"ls", "--data", dataDir},
			env: map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, stdoutHas: []string{"a     wasm"}},
		{name: "credentials from shared file", existing: []string{"a"}, args: []string{"ls"},
			env: map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
				"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dataDir, creds.FileName)}, stdoutHas: []string{"a     wasm"}},
		{name: "no credentials", args: []string{"ls", "--data", filepath.Join(dir, "empty")},
			env: map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, wantCode: 1,
			stderrHas: []string{"gust: credentials: no credentials", "AWS_SHARED_CREDENTIALS_FILE"}},
		{name: "wrong secret", args: []string{"ls"}, env: map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong"}, wantCode: 1,
			stderrHas: []string{"InvalidSignatureException: The request signature we calculated does not match"}},
		{name: "unknown key", args: []string{"ls"}, env: map[string]string{"AWS_ACCESS_KEY_ID": "GKWHO"}, wantCode: 1,
			stderrHas: []string{"UnrecognizedClientException"}},

		{name: "version", args: []string{"version"}, stdoutHas: []string{"gust "}, noServer: true},
		{name: "version json", args: []string{"version", "-o", "json"}, noServer: true,
			checkJSON: func(t *testing.T, out string) {
				var v versionInfo
				if err := json.Unmarshal([]byte(out), &v); err != nil || v.GoVersion == "" {
					t.Fatalf("version -o json output %q: %v", out, err)
				}
			}},
		{name: "bad output", args: []string{"ls", "-o", "yaml"}, wantCode: 2, stderrHas: []string{"--output must be"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, stderrHas: []string{"gust: unknown command"}, noServer: true},
		{name: "unknown flag", args: []string{"ls", "--nope"}, wantCode: 2, stderrHas: []string{"unknown flag: --nope", "gust ls --help"}},
		{name: "help", args: []string{"--help"}, stdoutHas: []string{"deploy", "invoke", "logs", "usage"}, noServer: true},
		{name: "up without node", args: []string{"up"}, wantCode: 1, stderrHas: []string{"cannot run a node"}, noServer: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := newFakeNode(t)
			for _, name := range tt.existing {
				node.add(name, wasmModule)
			}
			if tt.setup != nil {
				tt.setup(node)
			}
			if tt.noServer {
				node = nil
			}
			got := run(t, node, tt.env, tt.stdin, tt.args...)
			if got.code != tt.wantCode {
				t.Errorf("Run(%q) = %d, want %d\nstdout: %s\nstderr: %s", tt.args, got.code, tt.wantCode, got.stdout, got.stderr)
			}
			if tt.wantStdout != nil && got.stdout != *tt.wantStdout {
				t.Errorf("Run(%q) stdout = %q, want %q", tt.args, got.stdout, *tt.wantStdout)
			}
			for _, s := range tt.stdoutHas {
				if !strings.Contains(got.stdout, s) {
					t.Errorf("Run(%q) stdout = %q, want it to contain %q", tt.args, got.stdout, s)
				}
			}
			for _, s := range tt.stdoutLacks {
				if strings.Contains(got.stdout, s) {
					t.Errorf("Run(%q) stdout = %q, want it not to contain %q", tt.args, got.stdout, s)
				}
			}
			for _, s := range tt.stderrHas {
				if !strings.Contains(got.stderr, s) {
					t.Errorf("Run(%q) stderr = %q, want it to contain %q", tt.args, got.stderr, s)
				}
			}
			if tt.wantCode == 0 && got.stderr != "" && len(tt.stderrHas) == 0 {
				t.Errorf("Run(%q) stderr = %q, want nothing", tt.args, got.stderr)
			}
			if tt.wantCalls != nil {
				node.mu.Lock()
				calls := node.calls
				node.mu.Unlock()
				if diff := cmp.Diff(tt.wantCalls, calls); diff != "" {
					t.Errorf("Run(%q) requests (-want +got):\n%s", tt.args, diff)
				}
			}
			if tt.checkJSON != nil {
				tt.checkJSON(t, got.stdout)
			}
			if tt.checkNode != nil {
				node.mu.Lock()
				defer node.mu.Unlock()
				tt.checkNode(t, node)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDeployThenGet(t *testing.T) {
	node := newFakeNode(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "f.wasm")
	if err := os.WriteFile(p, wasmModule, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, node, nil, "", "deploy", "fn", p, "--env", "K=V", "--memory", "512", "--description", "d"); r.code != 0 {
		t.Fatalf("deploy = %d: %s", r.code, r.stderr)
	}
	r := run(t, node, nil, "", "get", "fn")
	for _, s := range []string{"memory:               512 MB", "description:          d", "environment:          K=V"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("get stdout = %q, want it to contain %q", r.stdout, s)
		}
	}
}

func TestLogsFollowStopsOnCancel(t *testing.T) {
	node := newFakeNode(t)
	node.add("hello", wasmModule)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"logs", "hello", "--follow"}, Env{
			Stdout: pw,
			Stderr: io.Discard,
			Getenv: func(k string) string {
				return map[string]string{EnvServer: node.srv.URL, "AWS_ACCESS_KEY_ID": testKey.AccessKeyID,
					"AWS_SECRET_ACCESS_KEY": testKey.SecretAccessKey}[k]
			},
		})
		pw.Close()
	}()
	// Both events arrive while the server keeps the stream open.
	buf := make([]byte, 0, 256)
	for !strings.Contains(string(buf), "START RequestId: r2") {
		chunk := make([]byte, 64)
		n, err := pr.Read(chunk)
		if err != nil {
			t.Fatalf("read output: %v (so far %q)", err, buf)
		}
		buf = append(buf, chunk[:n]...)
	}
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("logs --follow after cancel = %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs --follow did not return after its context was cancelled")
	}
}

func TestUp(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want UpOptions
	}{
		{name: "defaults", args: []string{"up"}, env: map[string]string{"HOME": "/home/u"},
			want: UpOptions{Listen: "127.0.0.1:8080", DataDir: "/home/u/.local/share/gust", GraceTimeout: 10 * time.Second,
				PricePerRequest: 0.0000002, PricePerGBSecond: 0.0000166667}},
		{name: "xdg", args: []string{"up"}, env: map[string]string{"HOME": "/home/u", "XDG_DATA_HOME": "/xdg"},
			want: UpOptions{Listen: "127.0.0.1:8080", DataDir: "/xdg/gust", GraceTimeout: 10 * time.Second,
				PricePerRequest: 0.0000002, PricePerGBSecond: 0.0000166667}},
		{name: "flags", args: []string{"up", "--listen", ":9000", "--data", "/d", "--examples", "--grace", "3s",
			"--idle-timeout", "1m", "--memory", "2048", "-v", "--price-per-request", "0.000001", "--price-per-gb-second", "0"},
			want: UpOptions{Listen: ":9000", DataDir: "/d", Examples: true, GraceTimeout: 3 * time.Second,
				IdleTimeout: time.Minute, MemoryMB: 2048, Verbose: true, PricePerRequest: 0.000001}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got UpOptions
			var stdout bytes.Buffer
			code := Run(context.Background(), tt.args, Env{
				Stdout: &stdout,
				Getenv: func(k string) string { return tt.env[k] },
				Up: func(ctx context.Context, o UpOptions, out, _ io.Writer) error {
					got = o
					io.WriteString(out, "up\n")
					if ctx.Err() != nil {
						return ctx.Err()
					}
					return nil
				},
			})
			if code != 0 {
				t.Fatalf("Run(%q) = %d", tt.args, code)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Up options (-want +got):\n%s", diff)
			}
			if stdout.String() != "up\n" {
				t.Errorf("stdout = %q, want the Up function's output", stdout.String())
			}
		})
	}
	for _, args := range [][]string{
		{"up", "--data", "/d", "--price-per-request=-1"},
		{"up", "--data", "/d", "--price-per-gb-second=-0.1"},
		{"up", "--data", "/d", "--price-per-request", "cheap"},
	} {
		t.Run(strings.Join(args[3:], " "), func(t *testing.T) {
			var stderr bytes.Buffer
			code := Run(context.Background(), args, Env{
				Stderr: &stderr,
				Up: func(context.Context, UpOptions, io.Writer, io.Writer) error {
					t.Error("Up called with a bad price")
					return nil
				},
			})
			if code != ExitUsage || !strings.Contains(stderr.String(), "--price-per-") {
				t.Errorf("Run(%q) = %d, %q; want %d and a message about the price", args, code, stderr.String(), ExitUsage)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		var stderr bytes.Buffer
		code := Run(context.Background(), []string{"up", "--data", "/d"}, Env{
			Stderr: &stderr,
			Up:     func(context.Context, UpOptions, io.Writer, io.Writer) error { return errors.New("address in use") },
		})
		if code != 1 || !strings.Contains(stderr.String(), "gust: address in use") {
			t.Errorf("Run(up) with a failing node = %d, %q; want 1 and the error", code, stderr.String())
		}
	})
}

func TestReadPayload(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.json")
	if err := os.WriteFile(p, []byte(`{"f":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in, stdin, want string
		wantErr         bool
	}{
		{in: `{"a":1}`, want: `{"a":1}`},
		{in: "", want: ""},
		{in: "-", stdin: "from stdin", want: "from stdin"},
		{in: "@" + p, want: `{"f":1}`},
		{in: "@" + filepath.Join(dir, "missing"), wantErr: true},
	}
	for _, tt := range tests {
		got, err := readPayload(tt.in, strings.NewReader(tt.stdin))
		if (err != nil) != tt.wantErr || string(got) != tt.want {
			t.Errorf("readPayload(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "10m", want: now.Add(-10 * time.Minute)},
		{in: "2h30m", want: now.Add(-150 * time.Minute)},
		{in: "2026-11-27T11:00:00Z", want: time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC)},
		{in: "-5m", wantErr: true},
		{in: "yesterday", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}}
	for _, tt := range tests {
		if got := humanBytes(tt.in); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatDollars(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "$0.00"},
		{1, "$1.00"},
		{1.5, "$1.50"},
		{12.3456789, "$12.345679"},
		{0.000012, "$0.000012"},
		{0.0000122501, "$0.000012"},
		{0.00021, "$0.00021"},
		{0.0000041, "$0.0000041"},
		{0.0000002, "$0.0000002"},
		{0.000000000001, "$0.00"},
	}
	for _, tt := range tests {
		if got := formatDollars(tt.in); got != tt.want {
			t.Errorf("formatDollars(%g) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatPrice(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{{0, "$0.00"}, {0.0000002, "$0.0000002"}, {0.0000166667, "$0.0000166667"}, {2, "$2.00"}, {0.5, "$0.50"}}
	for _, tt := range tests {
		if got := formatPrice(tt.in); got != tt.want {
			t.Errorf("formatPrice(%g) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
