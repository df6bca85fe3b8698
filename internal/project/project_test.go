package project

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gustfaas/gust/internal/registry"
)

// testDir makes a project directory holding the code paths the tests name.
func testDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"greet", "py"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"app.wasm": "\x00asm\x01\x00\x00\x00", "py/app.py": "def handler(e, c): return e\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func intp(n int) *int { return &n }

func TestParse(t *testing.T) {
	dir := testDir(t)
	tests := []struct {
		name string
		yaml string
		want []*Function
	}{
		{
			name: "defaults",
			yaml: "functions:\n  greet:\n    code: ./greet\n",
			want: []*Function{{Name: "greet", Line: 2, Runtime: "wasm", Code: filepath.Join(dir, "greet"), CodeIsDir: true,
				MemoryMB: 128, TimeoutSec: 3, Alias: "live"}},
		},
		{
			name: "every field",
			yaml: `functions:
  api:
    runtime: python3.12
    code: py
    handler: app.main
    memory: 512
    timeout: 30
    env:
      STAGE: prod
      PORT: 8080
      DEBUG: false
      EMPTY: ""
    description: the API
    reserved_concurrency: 10
    provisioned: 2
    idle_timeout: 2m
    alias: prod
    canary: 25
`,
			want: []*Function{{Name: "api", Line: 2, Runtime: "python3.12", Code: filepath.Join(dir, "py"), CodeIsDir: true,
				Handler: "app.main", MemoryMB: 512, TimeoutSec: 30,
				Env:         map[string]string{"STAGE": "prod", "PORT": "8080", "DEBUG": "false", "EMPTY": ""},
				Description: "the API", ReservedConcurrency: intp(10), Provisioned: 2, IdleTimeoutSec: 120, Alias: "prod", Canary: 25}},
		},
		{
			name: "default handlers, durations, sorted by name",
			yaml: `functions:
  b-node: {runtime: nodejs20.x, code: py, timeout: "1m"}
  a_py: {runtime: python3.11, code: py/app.py, idle_timeout: 30}
  c: {code: app.wasm, reserved_concurrency: 0}
`,
			want: []*Function{
				{Name: "a_py", Line: 3, Runtime: "python3.11", Code: filepath.Join(dir, "py", "app.py"), Handler: "app.handler",
					MemoryMB: 128, TimeoutSec: 3, IdleTimeoutSec: 30, Alias: "live"},
				{Name: "b-node", Line: 2, Runtime: "nodejs20.x", Code: filepath.Join(dir, "py"), CodeIsDir: true, Handler: "index.handler",
					MemoryMB: 128, TimeoutSec: 60, Alias: "live"},
				{Name: "c", Line: 4, Runtime: "wasm", Code: filepath.Join(dir, "app.wasm"), MemoryMB: 128, TimeoutSec: 3,
					ReservedConcurrency: intp(0), Alias: "live"},
			},
		},
		{
			name: "anchors, merge keys and x- keys",
			yaml: `x-common: &common
  memory: 256
  env: &env {STAGE: test}
functions:
  one:
    <<: *common
    code: greet
    memory: 1024
  two:
    <<: *common
    code: greet
    env:
      <<: *env
      EXTRA: "1"
`,
			want: []*Function{
				{Name: "one", Line: 5, Runtime: "wasm", Code: filepath.Join(dir, "greet"), CodeIsDir: true, MemoryMB: 1024, TimeoutSec: 3,
					Env: map[string]string{"STAGE": "test"}, Alias: "live"},
				{Name: "two", Line: 9, Runtime: "wasm", Code: filepath.Join(dir, "greet"), CodeIsDir: true, MemoryMB: 256, TimeoutSec: 3,
					Env: map[string]string{"STAGE": "test", "EXTRA": "1"}, Alias: "live"},
			},
		},
		{
			name: "absolute code path",
			yaml: "functions:\n  abs:\n    code: " + filepath.Join(dir, "app.wasm") + "\n",
			want: []*Function{{Name: "abs", Line: 2, Runtime: "wasm", Code: filepath.Join(dir, "app.wasm"), MemoryMB: 128, TimeoutSec: 3, Alias: "live"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, "gust.yaml")
			p, err := Parse(file, []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse = %v", err)
			}
			if p.File != file || p.Dir != dir {
				t.Errorf("Parse: File, Dir = %q, %q, want %q, %q", p.File, p.Dir, file, dir)
			}
			if diff := cmp.Diff(tt.want, p.Functions); diff != "" {
				t.Errorf("Parse functions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseErrors: every kind of bad input is refused with the file, the
// line and the field.
func TestParseErrors(t *testing.T) {
	dir := testDir(t)
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		yaml string
		want []string // each error line, without the "file:" prefix
	}{
		{"empty file", "", []string{"1: functions: missing: the file is empty (declare at least one function under functions:)"}},
		{"comment only", "# nothing\n", []string{"1: functions: missing: the file is empty (declare at least one function under functions:)"}},
		{"syntax", "functions:\n  greet:\n    code: ./greet\n   memory: 128\n", []string{"4: not valid YAML: did not find expected key"}},
		{"unclosed flow", "functions:\n  greet:\n    code: [a\n    memory: 1\n", []string{"3: not valid YAML: did not find expected ',' or ']'"}},
		{"mapping in a value", "functions:\n  greet:\n    code: a: b\n", []string{"3: not valid YAML: mapping values are not allowed in this context"}},
		{"unclosed quote", "functions:\n  greet:\n    code: \"greet\n", []string{"3: not valid YAML: found unexpected end of stream"}},
		{"tab indentation", "functions:\n\tgreet: {}\n", []string{"2: not valid YAML: found character that cannot start any token"}},
		{"not a mapping", "- a\n- b\n", []string{"1: want a mapping with a functions: key, got a list"}},
		{"no functions key", "function:\n  greet: {code: greet}\n", []string{
			"1: function: unknown field (known fields: buckets, functions, schedules, triggers)"}},
		{"functions missing", "x-only: 1\n", []string{"1: functions: missing: declare at least one function"}},
		{"functions empty", "functions: {}\n", []string{"1: functions: empty: declare at least one function"}},
		{"functions a list", "functions:\n  - greet\n", []string{"2: functions: want a mapping of function names to functions, got a list"}},
		{"function not a mapping", "functions:\n  greet: ./greet\n", []string{
			"2: functions.greet: want a mapping of settings (at least code:), got \"./greet\""}},
		{"unknown field", "functions:\n  greet:\n    code: greet\n    memroy: 256\n", []string{
			"4: functions.greet.memroy: unknown field (known fields: alias, canary, code, description, env, grants, handler, idle_timeout, memory, provisioned, reserved_concurrency, runtime, timeout)"}},
		{"duplicate function", "functions:\n  greet: {code: greet}\n  greet: {code: greet}\n", []string{
			"3: functions.greet: given twice (first on line 2)"}},
		{"duplicate field", "functions:\n  greet:\n    code: greet\n    code: py\n", []string{
			"4: functions.greet.code: given twice (first on line 3)"}},
		{"invalid name", "functions:\n  hello world:\n    code: greet\n", []string{
			"2: functions.hello world: invalid function name: must satisfy regular expression pattern: [a-zA-Z0-9-_]+, got hello world"}},
		{"name too long", "functions:\n  " + strings.Repeat("n", 65) + ":\n    code: greet\n", []string{
			"2: functions." + strings.Repeat("n", 65) + ": invalid function name: must have length less than or equal to 64, got " + strings.Repeat("n", 65)}},
		{"missing code", "functions:\n  greet:\n    memory: 256\n", []string{
			"2: functions.greet.code: missing: name the function's code, a file or a directory relative to gust.yaml"}},
		{"code not found", "functions:\n  greet:\n    code: ./gret\n", []string{
			"3: functions.greet.code: ./gret: no such file or directory"}},
		{"code empty", "functions:\n  greet:\n    code: \"\"\n", []string{"3: functions.greet.code: empty: name a file or a directory"}},
		{"code a number", "functions:\n  greet:\n    code: 12\n", []string{"3: functions.greet.code: want a string, got the number 12"}},
		{"unknown runtime", "functions:\n  greet:\n    code: greet\n    runtime: java21\n", []string{
			"4: functions.greet.runtime: unknown runtime \"java21\": want one of " + strings.Join(registry.Runtimes, ", ")}},
		{"memory too large", "functions:\n  greet:\n    code: greet\n    memory: 99999\n", []string{
			"4: functions.greet.memory: must have value between 128 and 10240, got 99999"}},
		{"memory zero", "functions:\n  greet:\n    code: greet\n    memory: 0\n", []string{
			"4: functions.greet.memory: must be between 128 and 10240 MB, got 0 (leave memory out for the default, 128)"}},
		{"memory a string", "functions:\n  greet:\n    code: greet\n    memory: 128MB\n", []string{
			"4: functions.greet.memory: want a whole number of MB, got \"128MB\""}},
		{"memory a float", "functions:\n  greet:\n    code: greet\n    memory: 128.5\n", []string{
			"4: functions.greet.memory: want a whole number of MB, got the number 128.5"}},
		{"timeout too long", "functions:\n  greet:\n    code: greet\n    timeout: 901\n", []string{
			"4: functions.greet.timeout: must have value between 1 and 900, got 901"}},
		{"timeout negative duration", "functions:\n  greet:\n    code: greet\n    timeout: -5s\n", []string{
			"4: functions.greet.timeout: -5s is out of range"}},
		{"timeout fraction", "functions:\n  greet:\n    code: greet\n    timeout: 1.5s\n", []string{
			"4: functions.greet.timeout: 1.5s is not a whole number of seconds"}},
		{"timeout not a duration", "functions:\n  greet:\n    code: greet\n    timeout: soon\n", []string{
			"4: functions.greet.timeout: want seconds (10) or a duration (\"10s\", \"2m\"), got \"soon\""}},
		{"timeout a list", "functions:\n  greet:\n    code: greet\n    timeout: [1]\n", []string{
			"4: functions.greet.timeout: want seconds (10) or a duration (\"10s\", \"2m\"), got a list"}},
		{"idle timeout too long", "functions:\n  greet:\n    code: greet\n    idle_timeout: 25h\n", []string{
			"4: functions.greet.idle_timeout: idle timeout 90000s must be between 0 (the node's default) and 86400 seconds"}},
		{"env not a mapping", "functions:\n  greet:\n    code: greet\n    env: [A=1]\n", []string{
			"4: functions.greet.env: want a mapping of variable names to values, got a list"}},
		{"env bad name", "functions:\n  greet:\n    code: greet\n    env:\n      OK: 1\n      1BAD: x\n", []string{
			"6: functions.greet.env.1BAD: environment variable name \"1BAD\" is invalid: names start with a letter and contain only letters, digits and underscores"}},
		{"env reserved name", "functions:\n  greet:\n    code: greet\n    env:\n      AWS_REGION: x\n", []string{
			"5: functions.greet.env.AWS_REGION: Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: AWS_REGION"}},
		{"env null value", "functions:\n  greet:\n    code: greet\n    env:\n      A:\n", []string{
			"5: functions.greet.env.A: no value: write \"\" for an empty one"}},
		{"env nested value", "functions:\n  greet:\n    code: greet\n    env:\n      A: {b: c}\n", []string{
			"5: functions.greet.env.A: want a value (a string, number or boolean), got a mapping"}},
		{"env variable too large", "functions:\n  greet:\n    code: greet\n    env:\n      A: " + strings.Repeat("v", 5000) + "\n", []string{
			"5: functions.greet.env.A: Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: 5001 bytes"}},
		{"env too large", "functions:\n  greet:\n    code: greet\n    env:\n      A: " + strings.Repeat("v", 2500) + "\n      B: " + strings.Repeat("v", 2500) + "\n", []string{
			"4: functions.greet.env: Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: 5002 bytes"}},
		{"description too long", "functions:\n  greet:\n    code: greet\n    description: " + long + "\n", []string{
			"4: functions.greet.description: must have length less than or equal to 256"}},
		{"handler too long", "functions:\n  greet:\n    code: py\n    runtime: python3.11\n    handler: " + long + "\n", []string{
			"5: functions.greet.handler: must have length less than or equal to 128"}},
		{"handler empty for python", "functions:\n  greet:\n    code: py\n    runtime: python3.11\n    handler: \"\"\n", []string{
			"5: functions.greet.handler: Handler is required for runtime python3.11 (for example index.handler or app.handler)"}},
		{"alias invalid", "functions:\n  greet:\n    code: greet\n    alias: \"12\"\n", []string{
			"4: functions.greet.alias: invalid alias name: must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+) (letters, digits, - and _, not only digits), got 12"}},
		{"alias a number", "functions:\n  greet:\n    code: greet\n    alias: 12\n", []string{
			"4: functions.greet.alias: want a string, got the number 12"}},
		{"canary out of range", "functions:\n  greet:\n    code: greet\n    canary: 100\n", []string{
			"4: functions.greet.canary: 100 is out of range: want a percentage of traffic from 1 to 99 (leave canary out to move the alias at once)"}},
		{"canary zero", "functions:\n  greet:\n    code: greet\n    canary: 0\n", []string{
			"4: functions.greet.canary: 0 is out of range: want a percentage of traffic from 1 to 99 (leave canary out to move the alias at once)"}},
		{"canary a percentage string", "functions:\n  greet:\n    code: greet\n    canary: 10%\n", []string{
			"4: functions.greet.canary: want a percentage of traffic, 1 to 99, got \"10%\""}},
		{"reserved negative", "functions:\n  greet:\n    code: greet\n    reserved_concurrency: -1\n", []string{
			"4: functions.greet.reserved_concurrency: must have value between 0 and 10000, got -1"}},
		{"provisioned over reserved", "functions:\n  greet:\n    code: greet\n    reserved_concurrency: 1\n    provisioned: 2\n", []string{
			"5: functions.greet.provisioned: Requested Provisioned Concurrency (2) should not be greater than the reservedConcurrentExecution for function (1)"}},
		{"huge integer", "functions:\n  greet:\n    code: greet\n    memory: 99999999999999999999\n", []string{
			"4: functions.greet.memory: want a whole number of MB, got the number 99999999999999999999"}},
		{"bad merge", "functions:\n  greet:\n    <<: 3\n    code: greet\n", []string{
			"3: functions.greet: a merge (<<) takes a mapping or a list of mappings, got the number 3"}},
		{"merge cycle", "functions:\n  greet: &g\n    code: greet\n    <<: *g\n", []string{
			"2: functions.greet: a merge (<<) includes the mapping it is in"}},
		{"several errors, in line order", "functions:\n  b:\n    code: greet\n    memory: 1\n  a:\n    timeout: 0\n    code: nope\n", []string{
			"4: functions.b.memory: must have value between 128 and 10240, got 1",
			"6: functions.a.timeout: must be between 1 and 900 seconds, got 0 (leave timeout out for the default, 3)",
			"7: functions.a.code: nope: no such file or directory"}},
		{"several errors in one function", "functions:\n  a:\n    code: greet\n    memory: 1\n    timeout: 1000\n    runtime: cobol\n", []string{
			"4: functions.a.memory: must have value between 128 and 10240, got 1",
			"5: functions.a.timeout: must have value between 1 and 900, got 1000",
			"6: functions.a.runtime: unknown runtime \"cobol\": want one of " + strings.Join(registry.Runtimes, ", ")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, "gust.yaml")
			p, err := Parse(file, []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", p)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Parse error %T %v, want Errors", err, err)
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = file + ":" + w
			}
			if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("Parse error (-want +got):\n%s", diff)
			}
			var one *Error
			if !errors.As(err, &one) || one.File != file {
				t.Errorf("errors.As(*Error) = %v, file %q", one, file)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := testDir(t)
	file := filepath.Join(dir, "gust.yaml")
	if _, err := Load(file); err == nil || err.Error() != file+": no such file or directory" {
		t.Errorf("Load(missing) = %v, want %q", err, file+": no such file or directory")
	}
	os.WriteFile(file, []byte("functions:\n  greet: {code: greet}\n"), 0o644)
	p, err := Load(file)
	if err != nil || len(p.Functions) != 1 || p.Function("greet") == nil || p.Function("nope") != nil {
		t.Errorf("Load = %+v, %v, want one function greet", p, err)
	}
	os.WriteFile(file, bytes.Repeat([]byte("#"), MaxFileBytes+1), 0o644)
	if _, err := Load(file); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(huge) = %v, want too large", err)
	}
}

// TestExampleProject: the example project the repository ships is valid.
func TestExampleProject(t *testing.T) {
	p, err := Load(filepath.Join("..", "..", "examples", "project", DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range p.Functions {
		names = append(names, f.Name)
	}
	if diff := cmp.Diff([]string{"greet", "slugify", "wordcount"}, names); diff != "" {
		t.Errorf("example functions (-want +got):\n%s", diff)
	}
	if g := p.Function("greet"); !g.Builds() || g.Env["GREETING"] != "Hello" || g.Env["STAGE"] != "example" || g.TimeoutSec != 5 {
		t.Errorf("greet = %+v, want a Go build with GREETING and STAGE, timeout 5", g)
	}
}

func TestDefaultHandler(t *testing.T) {
	for rt, want := range map[string]string{"nodejs22.x": "index.handler", "python3.13": "app.handler", "wasm": "", "provided.al2023": ""} {
		if got := DefaultHandler(rt); got != want {
			t.Errorf("DefaultHandler(%q) = %q, want %q", rt, got, want)
		}
	}
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, b := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestStoredDigest(t *testing.T) {
	mod := []byte("\x00asm\x01\x00\x00\x00")
	z := zipOf(t, map[string][]byte{"app.py": []byte("x")})
	tests := []struct {
		name, rt string
		code     []byte
		want     string // "" means an error
	}{
		{"wasm module", "wasm", mod, registry.Digest(mod)},
		{"wasm in a zip", "wasm", zipOf(t, map[string][]byte{"f.wasm": mod, "README": []byte("r")}), registry.Digest(mod)},
		{"wasm zip without module", "wasm", z, ""},
		{"wasm zip with two", "wasm", zipOf(t, map[string][]byte{"a.wasm": mod, "b.wasm": mod}), ""},
		{"wasm not a zip", "wasm", []byte("hello"), ""},
		{"python zip", "python3.11", z, registry.Digest(z)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := StoredDigest(tt.rt, tt.code)
			if tt.want == "" {
				if err == nil {
					t.Errorf("StoredDigest = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("StoredDigest = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func TestFunctionDigest(t *testing.T) {
	base := Function{Name: "a", Runtime: "wasm", MemoryMB: 128, TimeoutSec: 3, Env: map[string]string{"A": "1", "B": "2"}, Alias: "live"}
	d := base.Digest("abc")
	same := base
	same.Env = map[string]string{"B": "2", "A": "1"}
	same.Alias, same.Canary, same.Line = "prod", 10, 9 // not configuration of the function
	if got := same.Digest("abc"); got != d {
		t.Errorf("Digest with the same configuration = %s, want %s", got, d)
	}
	for name, change := range map[string]func(*Function){
		"memory":   func(f *Function) { f.MemoryMB = 256 },
		"env":      func(f *Function) { f.Env = map[string]string{"A": "1"} },
		"reserved": func(f *Function) { f.ReservedConcurrency = intp(0) },
		"handler":  func(f *Function) { f.Handler = "x" },
	} {
		f := base
		change(&f)
		if f.Digest("abc") == d {
			t.Errorf("Digest ignores %s", name)
		}
	}
	if base.Digest("abd") == d {
		t.Errorf("Digest ignores the code")
	}
}

// TestBuildInputs: the build-inputs digest is stable, ignores where the
// sources are, and changes with a source file, an embedded file or the
// module's go.mod.
func TestBuildInputs(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool")
	}
	_, file, _, _ := runtime.Caller(0)
	repo, _ := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	mkModule := func(dir string) {
		os.MkdirAll(filepath.Join(dir, "fn"), 0o755)
		goMod := "module example.com/p\n\ngo 1.26\n"
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o644)
		os.WriteFile(filepath.Join(dir, "fn", "main.go"), []byte("package main\n\nimport _ \"embed\"\n\n//go:embed data.txt\nvar data string\n\nfunc main() { println(data) }\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "fn", "data.txt"), []byte("one"), 0o644)
		os.WriteFile(filepath.Join(dir, "fn", "notes.md"), []byte("not an input"), 0o644)
	}
	ctx := context.Background()
	inputs := func(dir, rt string) string {
		t.Helper()
		f := &Function{Name: "fn", Runtime: rt, Code: filepath.Join(dir, "fn"), CodeIsDir: true}
		d, err := BuildInputs(ctx, f)
		if err != nil {
			t.Fatalf("BuildInputs(%s) = %v", f.Code, err)
		}
		return d
	}
	a, b := t.TempDir(), t.TempDir()
	mkModule(a)
	mkModule(b)
	da := inputs(a, "wasm")
	if again := inputs(a, "wasm"); again != da {
		t.Errorf("BuildInputs twice = %s, %s", da, again)
	}
	if db := inputs(b, "wasm"); db != da {
		t.Errorf("BuildInputs of the same sources elsewhere = %s, want %s", db, da)
	}
	if dp := inputs(a, "provided.al2023"); dp == da {
		t.Errorf("BuildInputs ignores the runtime (the build)")
	}
	os.WriteFile(filepath.Join(b, "fn", "notes.md"), []byte("changed"), 0o644)
	if db := inputs(b, "wasm"); db != da {
		t.Errorf("BuildInputs changed with a file the build does not read")
	}
	for _, change := range []struct{ file, body string }{
		{"fn/data.txt", "two"},
		{"fn/main.go", "package main\n\nimport _ \"embed\"\n\n//go:embed data.txt\nvar data string\n\nfunc main() { println(data, 2) }\n"},
		{"go.mod", "module example.com/p\n\ngo 1.25\n"},
	} {
		os.WriteFile(filepath.Join(b, change.file), []byte(change.body), 0o644)
		db := inputs(b, "wasm")
		if db == da {
			t.Errorf("BuildInputs ignores a change of %s", change.file)
		}
		da = db
	}

	// A package of the repository's own module (as the example project
	// is) is hashed by content with the module's go.mod.
	g := &Function{Name: "greet", Runtime: "wasm", Code: filepath.Join(repo, "examples", "project", "greet"), CodeIsDir: true}
	if _, err := BuildInputs(ctx, g); err != nil {
		t.Errorf("BuildInputs(examples/project/greet) = %v", err)
	}
	if _, err := BuildInputs(ctx, &Function{Name: "x", Runtime: "python3.11", Code: a, CodeIsDir: true}); err == nil {
		t.Errorf("BuildInputs of a function that is not built succeeded")
	}
}

func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	os.Mkdir(filepath.Join(dir, "greet"), 0o755)
	for _, s := range []string{
		"functions:\n  greet:\n    code: greet\n",
		"x-a: &a {memory: 256}\nfunctions:\n  g: {<<: *a, code: greet, env: {A: 1}}\n",
		"functions:\n  g: {code: greet, timeout: 10s, idle_timeout: 1m, canary: 10, alias: prod}\n",
		"a: &a [*a]\n",
		"functions: &f {g: *f}\n",
		"functions:\n  g:\n    <<: [{memory: 1}, {timeout: 2}]\n",
		"functions:\n  g: {code: greet, grants: {kv: [items], objects: [photos], hosts: [api.github.com, \"*.example.com\", \"127.0.0.1:9000\"]}}\n" +
			"buckets:\n  items: {kind: kv}\n  photos: {kind: objects, max_object_size: 16MB}\n",
		"functions:\n  g: {code: greet}\ntriggers:\n  up:\n    function: g\n    objects: {bucket: photos, prefix: \"in/\", events: [created]}\n" +
			"  it:\n    function: g\n    kv: {bucket: items, events: [put, delete]}\n",
		"functions:\n  g: {code: greet}\ntriggers:\n  orders:\n    function: audit\n    postgres:\n      dsn: ${ORDERS_DSN}\n" +
			"      tables: [public.orders]\n      events: [insert]\n      batch_size: 50\n      batch_window: 100ms\n",
		"functions:\n  g: {code: greet}\ntriggers:\n  jobs:\n    function: worker\n    queue: {stream: JOBS, batch_size: 10, concurrency: 2}\n" +
			"  subj:\n    function: g\n    queue: {subject: jobs.>, url: \"nats://${NATS_HOST}:4222\"}\n",
	} {
		f.Add([]byte(s))
	}
	env := func(k string) string {
		return map[string]string{"ORDERS_DSN": "postgres://u:p@127.0.0.1/db", "NATS_HOST": "127.0.0.1"}[k]
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseWith(filepath.Join(dir, "gust.yaml"), data, Options{Getenv: env})
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("Parse error %T %v, want Errors", err, err)
			}
			for _, e := range es {
				if e.File == "" || e.Problem == "" {
					t.Fatalf("Parse error without file or problem: %+v", e)
				}
			}
			return
		}
		if len(p.Functions) == 0 {
			t.Fatalf("Parse accepted a project with no functions")
		}
		for _, fn := range p.Functions {
			rf := &registry.Function{Name: fn.Name, Runtime: fn.Runtime, Handler: fn.Handler, MemoryMB: fn.MemoryMB,
				TimeoutSec: fn.TimeoutSec, Env: fn.Env, Description: fn.Description, ReservedConcurrency: fn.ReservedConcurrency,
				ProvisionedConcurrency: fn.Provisioned, IdleTimeoutSec: fn.IdleTimeoutSec}
			if err := registry.Normalize(rf); err != nil {
				t.Fatalf("Parse accepted %+v, which the registry refuses: %v", fn, err)
			}
			if registry.ValidateAliasName(fn.Alias) != nil || fn.Canary < 0 || fn.Canary > 99 || fn.Code == "" {
				t.Fatalf("Parse accepted %+v", fn)
			}
			if fn.Grants != nil {
				g := fn.Grants.Clone()
				rf := &registry.Function{Name: fn.Name, Runtime: fn.Runtime, MemoryMB: 128, TimeoutSec: 3, Grants: g}
				if err := registry.Normalize(rf); err != nil || !rf.Grants.Equal(fn.Grants) {
					t.Fatalf("Parse accepted grants %+v, which the registry refuses or changes: %v", fn.Grants, err)
				}
			}
		}
		for _, b := range p.Buckets {
			if registry.ValidateBucketName(b.Name) != nil || (b.Kind != BucketKV && b.Kind != BucketObjects) || b.MaxObjectSize < 0 {
				t.Fatalf("Parse accepted bucket %+v", b)
			}
		}
		for _, tr := range p.Triggers {
			n := 0
			for _, set := range []bool{tr.KV != nil, tr.Objects != nil, tr.Queue != nil, tr.Postgres != nil} {
				if set {
					n++
				}
			}
			if n != 1 || !ValidTriggerName(tr.Name) || registry.ValidateName(tr.Function) != nil {
				t.Fatalf("Parse accepted trigger %+v", tr.Trigger)
			}
			if pg := tr.Postgres; pg != nil && (pg.DSN == "" || len(pg.Tables) == 0) {
				t.Fatalf("Parse accepted postgres trigger %+v", pg)
			}
			if q := tr.Queue; q != nil && (q.Subject == "") == (q.Stream == "") {
				t.Fatalf("Parse accepted queue trigger %+v", q)
			}
		}
	})
}
