package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/gobuild"
	"github.com/gustfaas/gust/internal/sandbox"
)

// testRT is shared by the tests of this package so that each guest module
// is compiled once per test binary (a wazero compilation cache is shared
// across all wazero runtimes that use it).
var testRT *Runtime

// testCacheDir is testRT's compilation cache directory.
var testCacheDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gust-wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	testCacheDir = filepath.Join(dir, "cache")
	testRT, err = New(context.Background(), Options{CacheDir: testCacheDir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testRT.Close(context.Background())
	return m.Run()
}

type guestBuild struct {
	dir     string
	command bool
	once    sync.Once
	code    []byte
	err     error
}

// guests are built on first use, once per test binary.
var guests = map[string]*guestBuild{
	"hello":    {dir: "../../../examples/hello"},
	"httpapi":  {dir: "../../../examples/httpapi"},
	"sdkguest": {dir: "testdata/sdkguest"},
	"command":  {dir: "testdata/command", command: true},
}

// guest returns the module bytes of a test guest.
func guest(tb testing.TB, name string) []byte {
	tb.Helper()
	g, ok := guests[name]
	if !ok {
		tb.Fatalf("no guest %q", name)
	}
	g.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if g.command {
			g.code, g.err = gobuild.BuildCommand(ctx, g.dir)
		} else {
			g.code, g.err = gobuild.Build(ctx, g.dir)
		}
	})
	if g.err != nil {
		if errors.Is(g.err, gobuild.ErrNoGo) {
			tb.Skipf("building guest %s: %v", name, g.err)
		}
		tb.Fatalf("building guest %s: %v", name, g.err)
	}
	return g.code
}

// load loads code into rt (testRT when nil) and closes it at the end of the
// test.
func load(tb testing.TB, rt *Runtime, spec sandbox.Spec) *Program {
	tb.Helper()
	if rt == nil {
		rt = testRT
	}
	if spec.Function == "" {
		spec.Function = "test-fn"
	}
	p, err := rt.Load(context.Background(), spec)
	if err != nil {
		tb.Fatalf("Load(%s) = %v", spec.Function, err)
	}
	tb.Cleanup(func() { p.Close(context.Background()) })
	return p.(*Program)
}

// start starts an instance and closes it at the end of the test.
func start(tb testing.TB, p *Program) sandbox.Instance {
	tb.Helper()
	in, err := p.Start(context.Background())
	if err != nil {
		tb.Fatalf("Start() = %v", err)
	}
	tb.Cleanup(func() { in.Close(context.Background()) })
	return in
}

// invoke invokes with a payload and a generous deadline, failing the test
// on a lost instance.
func invoke(tb testing.TB, in sandbox.Instance, payload string) sandbox.Response {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := in.Invoke(ctx, sandbox.Request{RequestID: "req-1", Payload: []byte(payload)})
	if err != nil {
		tb.Fatalf("Invoke(%s) = %v (response %+v, log %q)", payload, err, resp.Err, resp.Log)
	}
	return resp
}

// Hand-assembled modules.

func wasmModule(sections ...[]byte) []byte {
	return bytes.Join(append([][]byte{[]byte("\x00asm\x01\x00\x00\x00")}, sections...), nil)
}

func section(id byte, entries ...[]byte) []byte {
	body := append([]byte{byte(len(entries))}, bytes.Join(entries, nil)...)
	return append([]byte{id, byte(len(body))}, body...)
}

func wasmName(s string) []byte { return append([]byte{byte(len(s))}, s...) }

const (
	secType     = 1
	secImport   = 2
	secFunction = 3
	secMemory   = 5
	secExport   = 7
	secCode     = 10
)

// trapModule is a command whose _start executes unreachable.
func trapModule() []byte {
	return wasmModule(
		section(secType, []byte{0x60, 0, 0}),
		section(secFunction, []byte{0}),
		section(secMemory, []byte{0, 1}),
		section(secExport,
			append(wasmName("_start"), 0, 0),
			append(wasmName("memory"), 2, 0)),
		section(secCode, []byte{3, 0, 0x00, 0x0b}),
	)
}

// importModule is a command importing module.name as a () -> () function.
func importModule(module, name string) []byte {
	return wasmModule(
		section(secType, []byte{0x60, 0, 0}),
		section(secImport, append(append(wasmName(module), wasmName(name)...), 0, 0)),
		section(secFunction, []byte{0}),
		section(secExport, append(wasmName("_start"), 0, 1)),
		section(secCode, []byte{2, 0, 0x0b}),
	)
}

// noExportModule defines a function but exports nothing.
func noExportModule() []byte {
	return wasmModule(
		section(secType, []byte{0x60, 0, 0}),
		section(secFunction, []byte{0}),
		section(secCode, []byte{2, 0, 0x0b}),
	)
}

// quietModule is a command whose _start returns at once, without memory.
func quietModule() []byte {
	return wasmModule(
		section(secType, []byte{0x60, 0, 0}),
		section(secFunction, []byte{0}),
		section(secExport, append(wasmName("_start"), 0, 0)),
		section(secCode, []byte{2, 0, 0x0b}),
	)
}
