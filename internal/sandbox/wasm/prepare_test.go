package wasm

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Hand-assembled pieces for the rewriter's tests.

const (
	secGlobal = 6
	secData   = 11
)

// activeSeg is an active data segment (flags 0) at a constant offset.
func activeSeg(offset int32, init string) []byte {
	b := append([]byte{0, 0x41}, appendSleb(nil, int64(offset))...)
	b = append(b, 0x0b, byte(len(init)))
	return append(b, init...)
}

// dataModule is a command with one page of memory, exported, and the given
// data segments; _start loops n times when loop is set.
func dataModule(segs ...[]byte) []byte {
	return wasmModule(
		section(secType, []byte{0x60, 0, 0}),
		section(secFunction, []byte{0}),
		section(secMemory, []byte{0, 1}),
		section(secExport,
			append(wasmName("_start"), 0, 0),
			append(wasmName("memory"), 2, 0)),
		section(secCode, []byte{2, 0, 0x0b}),
		section(secData, segs...),
	)
}

// spinModule is a command whose _start spins forever in a loop, with a
// mutable global, to exercise the interrupt without any guest runtime.
func spinModule() []byte {
	return wasmModule(
		section(secType, []byte{0x60, 0, 0}),
		section(secFunction, []byte{0}),
		section(secMemory, []byte{0, 1}),
		section(secGlobal, []byte{valI64, 1, 0x42, 0, 0x0b}),
		section(secExport,
			append(wasmName("_start"), 0, 0),
			append(wasmName("memory"), 2, 0)),
		// loop: global0 += 1; br 0
		section(secCode, []byte{14, 0, 0x03, 0x40, 0x23, 0, 0x42, 1, 0x7c, 0x24, 0, 0x0c, 0, 0x0b, 0x0b}),
		section(secData, activeSeg(8, "spin")),
	)
}

func TestParseDataSection(t *testing.T) {
	vec := func(entries ...[]byte) []byte {
		return append([]byte{byte(len(entries))}, bytes.Join(entries, nil)...)
	}
	tests := []struct {
		name    string
		body    []byte
		want    []dataSegment
		wantErr error
	}{
		{"empty", vec(), []dataSegment{}, nil},
		{"two", vec(activeSeg(16, "ab"), activeSeg(1000, "xyz")), []dataSegment{{16, []byte("ab")}, {1000, []byte("xyz")}}, nil},
		{"explicit memory 0", vec([]byte{2, 0, 0x41, 4, 0x0b, 1, 'q'}), []dataSegment{{4, []byte("q")}}, nil},
		{"large offset", vec(activeSeg(1<<20+3, "z")), []dataSegment{{1<<20 + 3, []byte("z")}}, nil},
		{"passive", vec([]byte{1, 2, 'h', 'i'}), nil, errNotActiveConst},
		{"memory 1", vec([]byte{2, 1, 0x41, 4, 0x0b, 1, 'q'}), nil, errNotActiveConst},
		{"global offset", vec([]byte{0, 0x23, 0, 0x0b, 1, 'q'}), nil, errNotActiveConst},
		{"truncated", vec(activeSeg(16, "ab"))[:6], nil, errMalformed},
		{"length past end", vec([]byte{0, 0x41, 4, 0x0b, 9, 'q'}), nil, errMalformed},
		{"count past end", []byte{0xff, 0xff, 0x03}, nil, errMalformed},
		{"trailing bytes", append(vec(activeSeg(16, "ab")), 0), nil, errMalformed},
		{"overlong offset", vec([]byte{0, 0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b, 0}), nil, errMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDataSection(tt.body)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("parseDataSection() error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && !slices.EqualFunc(got, tt.want, func(a, b dataSegment) bool {
				return a.offset == b.offset && bytes.Equal(a.init, b.init)
			}) {
				t.Errorf("parseDataSection() = %v, want %v", got, tt.want)
			}
			if tt.wantErr == nil {
				if again, err := parseDataSection(encodeDataSection(got)); err != nil || len(again) != len(got) {
					t.Errorf("parseDataSection(encodeDataSection()) = %v, %v; want %d segments", again, err, len(got))
				}
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	tests := []struct {
		name          string
		code          []byte
		wantImage     []byte
		wantStripped  bool
		interruptible bool
		globals       int
	}{
		{"segments", dataModule(activeSeg(4, "abc"), activeSeg(100, "z"), activeSeg(5, "X")), append(append([]byte{0, 0, 0, 0, 'a', 'X', 'c'}, make([]byte, 93)...), 'z'), true, true, 0},
		{"no data", trapModule(), nil, false, true, 0},
		{"passive kept", dataModule([]byte{1, 2, 'h', 'i'}), nil, false, true, 0},
		{"beyond memory kept", dataModule(activeSeg(65535, "ab")), nil, false, true, 0},
		{"loop and global", spinModule(), []byte{0, 0, 0, 0, 0, 0, 0, 0, 's', 'p', 'i', 'n'}, true, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := prepareWith(tt.code, 1<<30, true)
			if err != nil {
				t.Fatalf("prepare() = %v", err)
			}
			if p.stripped != tt.wantStripped || !bytes.Equal(p.image, tt.wantImage) {
				t.Errorf("prepare() stripped %v image %q, want %v %q", p.stripped, p.image, tt.wantStripped, tt.wantImage)
			}
			if p.keepsData == p.stripped && findDataSection(t, tt.code) {
				t.Errorf("prepare() keepsData = %v with stripped = %v", p.keepsData, p.stripped)
			}
			if p.interruptible != tt.interruptible || len(p.globals) != tt.globals {
				t.Errorf("prepare() interruptible %v, %d globals; want %v, %d", p.interruptible, len(p.globals), tt.interruptible, tt.globals)
			}
			checkEquivalent(t, tt.code, p)
		})
	}
	t.Run("refuses its own export names", func(t *testing.T) {
		code := wasmModule(
			section(secType, []byte{0x60, 0, 0}),
			section(secFunction, []byte{0}),
			section(secExport, append(wasmName("gust:interrupt"), 0, 0)),
			section(secCode, []byte{2, 0, 0x0b}),
		)
		if _, err := prepare(code, 1<<30); err == nil {
			t.Error("prepare() of a module exporting gust:interrupt succeeded")
		}
	})
	t.Run("loops are instrumented", func(t *testing.T) {
		p, err := prepareWith(spinModule(), 1<<30, true)
		if err != nil {
			t.Fatal(err)
		}
		secs, _ := splitSections(p.code)
		_, facts, err := walkCode(findSection(secs, secIDCode), nil)
		// One loop; its check is an if block after the loop header.
		if err != nil || facts.loops != 1 || !bytes.Contains(findSection(secs, secIDCode), []byte{0x03, 0x40, 0x23, 1, 0x04, 0x40, 0x00, 0x0b}) {
			t.Errorf("code section %x (%v): want the loop followed by a check of global 1", findSection(secs, secIDCode), err)
		}
	})
}

func findDataSection(t *testing.T, code []byte) bool {
	secs, err := splitSections(code)
	if err != nil {
		t.Fatal(err)
	}
	return findSection(secs, secIDData) != nil
}

// TestPrepareGuests: the prepared example and test guests instantiate to
// the same memory as the originals and export the same functions.
func TestPrepareGuests(t *testing.T) {
	for _, name := range []string{"hello", "httpapi", "sdkguest", "command"} {
		t.Run(name, func(t *testing.T) {
			code := guest(t, name)
			p, err := prepare(code, 1<<30)
			if err != nil {
				t.Fatalf("prepare() = %v", err)
			}
			if !p.stripped || p.interruptible != instrumentLoops || !p.snapshotable || p.segments < 1000 {
				t.Errorf("prepare(%s) stripped %v interruptible %v snapshotable %v segments %d; want all and thousands of segments",
					name, p.stripped, p.interruptible, p.snapshotable, p.segments)
			}
			checkEquivalent(t, code, p)
		})
	}
}

// checkEquivalent instantiates the original module and the prepared one
// (its memory from the image) in the interpreter, without running them,
// and compares their memories and exported functions.
func checkEquivalent(t testing.TB, code []byte, p *prepared) {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithMemoryLimitPages(256))
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	orig, err := r.CompileModule(ctx, code)
	if err != nil {
		t.Skipf("original does not compile: %v", err)
	}
	prep, err := r.CompileModule(ctx, p.code)
	if err != nil {
		t.Fatalf("prepared module does not compile: %v", err)
	}
	for name := range orig.ExportedFunctions() {
		if _, ok := prep.ExportedFunctions()[name]; !ok {
			t.Errorf("prepared module lacks export %s", name)
		}
	}
	if len(prep.ExportedFunctions()) != len(orig.ExportedFunctions()) {
		t.Errorf("prepared module exports %d functions, want %d", len(prep.ExportedFunctions()), len(orig.ExportedFunctions()))
	}
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
	m1, err := r.InstantiateModule(ctx, orig, cfg)
	if err != nil {
		t.Skipf("original does not instantiate: %v", err)
	}
	pctx := ctx
	if p.stripped {
		im, err := newMemImage(p.image)
		if err != nil {
			t.Fatal(err)
		}
		defer im.close()
		pctx = experimental.WithMemoryAllocator(ctx, im)
	}
	m2, err := r.InstantiateModule(pctx, prep, cfg)
	if err != nil {
		t.Fatalf("prepared module does not instantiate: %v", err)
	}
	// wazero's Module.Memory returns a non-nil interface holding nil for a
	// module without memory: ask the binary.
	secs, err := splitSections(code)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := readModuleInfo(secs)
	if err != nil {
		t.Fatal(err)
	}
	if mi.hasMemory {
		mem1, mem2 := m1.Memory(), m2.Memory()
		b1, _ := mem1.Read(0, mem1.Size())
		b2, _ := mem2.Read(0, mem2.Size())
		if !bytes.Equal(b1, b2) {
			t.Errorf("memory after instantiation differs (sizes %d and %d)", len(b1), len(b2))
		}
	}
}

// FuzzPrepare: preparation never panics, and whatever it accepts of a
// module wazero accepts compiles, instantiates to the same memory and
// exports the same functions.
func FuzzPrepare(f *testing.F) {
	for _, m := range [][]byte{
		dataModule(activeSeg(4, "abc"), activeSeg(100, "z"), activeSeg(5, "X")),
		dataModule([]byte{1, 2, 'h', 'i'}),
		spinModule(),
		trapModule(),
		quietModule(),
		importModule("wasi_snapshot_preview1", "proc_exit"),
	} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, code []byte) {
		p, err := prepare(code, 16<<20)
		if err != nil || !plausibleCounts(code) {
			return
		}
		checkEquivalent(t, code, p)
	})
}

// plausibleCounts reports whether every vector section declares no more
// elements than it has bytes. wazero allocates by the declared count
// before reading, so a fuzzed count of 2³⁰ would spend the fuzzer's time
// and memory in wazero, not in the code under test.
func plausibleCounts(code []byte) bool {
	secs, err := splitSections(code)
	if err != nil {
		return false
	}
	for _, s := range secs {
		if s.id == secIDCustom || s.id == secIDStart || s.id == secIDDataCount {
			continue
		}
		r := reader{b: s.body}
		if n := r.u32(); r.err != nil || int(n) > len(s.body) {
			return false
		}
	}
	return true
}
