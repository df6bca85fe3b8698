package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// zipEntry is one file of a zip as a test sees it.
type zipEntry struct {
	Mode fs.FileMode
	Data string
}

// readZip returns the files of a zip by name.
func readZip(t *testing.T, code []byte) map[string]zipEntry {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(code), int64(len(code)))
	if err != nil {
		t.Fatalf("zip.NewReader: %v", err)
	}
	files := map[string]zipEntry{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("open %s: %v", f.Name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", f.Name, err)
		}
		files[f.Name] = zipEntry{Mode: f.Mode(), Data: string(data)}
	}
	return files
}

// makeZip returns a zip of name -> contents, all mode 0644.
func makeZip(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var z zipBuilder
	z.init()
	for name, data := range files {
		if err := z.add(name, 0o644, strings.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	code, err := z.finish()
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// testTree writes files under dir: a name ending in "@" is a symbolic
// link to the contents; a name ending in "*" is an executable.
func testTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		mode := fs.FileMode(0o644)
		link := strings.HasSuffix(name, "@")
		if strings.HasSuffix(name, "*") {
			mode = 0o755
		}
		name = strings.TrimRight(name, "@*")
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if link {
			err = os.Symlink(data, p)
		} else if err = os.WriteFile(p, []byte(data), mode); err == nil {
			err = os.Chmod(p, mode) // beat the umask
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestPack(t *testing.T) {
	fakeELF := "\x7fELF fake executable"
	tests := []struct {
		name    string
		runtime string
		files   map[string]string // the tree, see testTree
		path    string            // PATH relative to the tree; "" is the tree itself
		want    map[string]zipEntry
		wantRaw string // when set, the code must be exactly this file of the tree
		wantErr string
	}{
		{name: "wasm module as is", runtime: "wasm", files: map[string]string{"f.wasm": string(wasmModule)},
			path: "f.wasm", wantRaw: "f.wasm"},
		{name: "wasm refuses text", runtime: "wasm", files: map[string]string{"f.txt": "hi"}, path: "f.txt",
			wantErr: "PATH must be a .wasm file"},
		{name: "wasm builds directories", runtime: "wasm", files: map[string]string{"main.go": "package main\n"},
			wantRaw: "-wasm"},

		{name: "provided executable", runtime: "provided.al2023", files: map[string]string{"mybin*": fakeELF}, path: "mybin",
			want: map[string]zipEntry{"bootstrap": {0o755, fakeELF}}},
		{name: "provided ELF without x bit", runtime: "provided.al2", files: map[string]string{"mybin": fakeELF}, path: "mybin",
			want: map[string]zipEntry{"bootstrap": {0o755, fakeELF}}},
		{name: "provided shell script", runtime: "provided", files: map[string]string{"run.sh*": "#!/bin/sh\n"}, path: "run.sh",
			want: map[string]zipEntry{"bootstrap": {0o755, "#!/bin/sh\n"}}},
		{name: "provided zip as is", runtime: "provided.al2023",
			files: map[string]string{"fn.zip": string(makeZip(t, map[string]string{"bootstrap": "x"}))}, path: "fn.zip", wantRaw: "fn.zip"},
		{name: "provided zip without bootstrap", runtime: "provided.al2023",
			files: map[string]string{"fn.zip": string(makeZip(t, map[string]string{"sub/bootstrap": "x"}))}, path: "fn.zip",
			wantErr: "no bootstrap at its root"},
		{name: "provided refuses a plain file", runtime: "provided.al2023", files: map[string]string{"notes.txt": "hi"},
			path: "notes.txt", wantErr: "PATH must be a .zip holding a bootstrap"},
		{name: "provided builds directories", runtime: "provided.al2023", files: map[string]string{"main.go": "package main\n"},
			want: map[string]zipEntry{"bootstrap": {0o755, "built"}}},

		{name: "nodejs single file", runtime: "nodejs22.x", files: map[string]string{"src/index.mjs": "export const handler = 1"},
			path: "src/index.mjs", want: map[string]zipEntry{"index.mjs": {0o644, "export const handler = 1"}}},
		{name: "python zip as is", runtime: "python3.12",
			files: map[string]string{"fn.zip": string(makeZip(t, map[string]string{"app.py": "x"}))}, path: "fn.zip", wantRaw: "fn.zip"},
		{name: "python .zip that is not one", runtime: "python3.12", files: map[string]string{"fn.zip": "nope"}, path: "fn.zip",
			wantErr: "not a zip file"},
		{name: "nodejs directory", runtime: "nodejs20.x",
			files: map[string]string{
				"index.mjs":                         "i",
				"lib/util.mjs":                      "u",
				"bin/tool*":                         "#!/usr/bin/env node",
				".git/HEAD":                         "ref",
				"node_modules/left-pad/index.js":    "lp",
				"node_modules/.cache/babel/x.json":  "cache",
				"node_modules/.bin/left-pad@":       "../left-pad/index.js",
				"node_modules/left-pad/.cache/keep": "k", // only node_modules/.cache is a cache
			},
			want: map[string]zipEntry{
				"index.mjs":                         {0o644, "i"},
				"lib/util.mjs":                      {0o644, "u"},
				"bin/tool":                          {0o755, "#!/usr/bin/env node"},
				"node_modules/left-pad/index.js":    {0o644, "lp"},
				"node_modules/.bin/left-pad":        {0o644, "lp"},
				"node_modules/left-pad/.cache/keep": {0o644, "k"},
			}},
		{name: "python directory", runtime: "python3.13",
			files: map[string]string{
				"app.py":                        "a",
				"pkg/__init__.py":               "",
				"pkg/__pycache__/x.cpython.pyc": "pyc",
				"__pycache__/app.cpython.pyc":   "pyc",
				"shared@":                       "pkg",
			},
			want: map[string]zipEntry{
				"app.py":             {0o644, "a"},
				"pkg/__init__.py":    {0o644, ""},
				"shared/__init__.py": {0o644, ""},
			}},
		{name: "symlink out of the directory", runtime: "python3.12",
			files: map[string]string{"fn/app.py": "a", "fn/secret@": "../outside", "outside": "s"}, path: "fn",
			wantErr: "leaves the directory"},
		{name: "symlink to an absolute path", runtime: "nodejs22.x",
			files: map[string]string{"fn/index.mjs": "i", "fn/etc@": "/etc"}, path: "fn",
			wantErr: "leaves the directory"},
		{name: "symlink cycle", runtime: "nodejs22.x",
			files: map[string]string{"index.mjs": "i", "sub/up@": ".."}, wantErr: "symbolic link cycle"},
		{name: "empty directory", runtime: "nodejs22.x", files: map[string]string{".git/HEAD": "ref"},
			wantErr: "holds no files"},

		{name: "unknown runtime", runtime: "java21", files: map[string]string{"f.jar": "x"}, path: "f.jar",
			wantErr: `--runtime "java21"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			testTree(t, dir, tt.files)
			p := filepath.Join(dir, filepath.FromSlash(tt.path))
			pk := packager{
				buildWasm:      func(context.Context, string) ([]byte, error) { return []byte("-wasm"), nil },
				buildBootstrap: func(context.Context, string) ([]byte, error) { return []byte("built"), nil },
				progress:       func(string, ...any) {},
			}
			code, err := pk.pack(context.Background(), tt.runtime, p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("pack(%q, %s) error = %v, want %q", tt.runtime, tt.path, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("pack(%q, %s): %v", tt.runtime, tt.path, err)
			}
			if tt.wantRaw != "" {
				want := []byte(tt.wantRaw)
				if raw, err := os.ReadFile(filepath.Join(dir, tt.wantRaw)); err == nil {
					want = raw
				}
				if !bytes.Equal(code, want) {
					t.Errorf("pack(%q, %s) = %q, want %q", tt.runtime, tt.path, code, want)
				}
				return
			}
			if diff := cmp.Diff(tt.want, readZip(t, code)); diff != "" {
				t.Errorf("pack(%q, %s) zip (-want +got):\n%s", tt.runtime, tt.path, diff)
			}
		})
	}
}

// TestPackDeterministic checks that the same sources give the same zip,
// whatever their modification times.
func TestPackDeterministic(t *testing.T) {
	dir := t.TempDir()
	testTree(t, dir, map[string]string{"app.py": "a", "lib/x.py": "x"})
	pk := packager{progress: func(string, ...any) {}}
	first, err := pk.pack(context.Background(), "python3.12", dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "app.py"), zipEpoch.AddDate(40, 0, 0), zipEpoch.AddDate(40, 0, 0)); err != nil {
		t.Fatal(err)
	}
	second, err := pk.pack(context.Background(), "python3.12", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("packing the same sources twice gave different zips")
	}
}

func TestDefaultHandler(t *testing.T) {
	tests := []struct{ runtime, want string }{
		{"nodejs20.x", "index.handler"},
		{"nodejs22.x", "index.handler"},
		{"python3.11", "app.handler"},
		{"python3.13", "app.handler"},
		{"provided.al2023", ""},
		{"wasm", ""},
	}
	for _, tt := range tests {
		t.Run(tt.runtime, func(t *testing.T) {
			if got := defaultHandler(tt.runtime); got != tt.want {
				t.Errorf("defaultHandler(%q) = %q, want %q", tt.runtime, got, tt.want)
			}
		})
	}
}

// TestPackBuildsLambdaGo builds examples/lambda-go with the go tool into a
// zip whose bootstrap is an executable for this machine's architecture.
func TestPackBuildsLambdaGo(t *testing.T) {
	var steps []string
	pk := packager{buildBootstrap: buildBootstrap, progress: func(format string, args ...any) {
		steps = append(steps, format)
	}}
	code, err := pk.pack(t.Context(), "provided.al2023", filepath.Join("..", "..", "examples", "lambda-go"))
	if err != nil {
		t.Fatalf("pack(provided.al2023, examples/lambda-go): %v", err)
	}
	files := readZip(t, code)
	if len(files) != 1 {
		t.Errorf("zip holds %d files, want only bootstrap", len(files))
	}
	bs, ok := files["bootstrap"]
	if !ok {
		t.Fatal("zip holds no bootstrap")
	}
	if bs.Mode != 0o755 {
		t.Errorf("bootstrap mode = %v, want -rwxr-xr-x", bs.Mode)
	}
	f, err := elf.NewFile(strings.NewReader(bs.Data))
	if err != nil {
		t.Fatalf("bootstrap is not an ELF file: %v", err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		t.Errorf("bootstrap ELF type = %v, want an executable", f.Type)
	}
	wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	if wantMachine != 0 && f.Machine != wantMachine {
		t.Errorf("bootstrap ELF machine = %v, want %v", f.Machine, wantMachine)
	}
	if f.Section(".symtab") != nil {
		t.Error("bootstrap has a symbol table, want it stripped (-ldflags=-s)")
	}
	if diff := cmp.Diff([]string{"building %s for linux/%s...", "packaging bootstrap..."}, steps); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
}

func TestBuildBootstrapFailure(t *testing.T) {
	dir := t.TempDir()
	testTree(t, dir, map[string]string{"go.mod": "module broken\n", "main.go": "package main\nfunc main() { undefined() }\n"})
	_, err := buildBootstrap(t.Context(), dir)
	if err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Errorf("buildBootstrap(broken) error = %v, want go's message", err)
	}
	var exitErr interface{ ExitCode() int }
	if !errors.As(err, &exitErr) {
		t.Errorf("buildBootstrap(broken) error = %T, want it to wrap the go tool's exit", err)
	}
}
