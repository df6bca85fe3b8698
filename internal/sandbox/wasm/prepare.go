package wasm

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Deploy-time preparation.
//
// Load rewrites every module once before compiling it; the rewritten
// bytes are what is compiled and what the compilation cache is keyed by.
// Three changes, each skipped when the module does not allow it:
//
//  1. Data. Go's linker emits ~28,000 small active data segments, and
//     wazero evaluates and copies each at every instantiation. Preparation
//     takes them out of the module: they are painted once onto a memory
//     image, and instances get their memory from that image through
//     wazero's memory-allocator hook (copy-on-write; see memImage).
//     Modules whose segments are not all active at constant offsets
//     within the initial memory keep them.
//  2. Interruption. A global (exported as exportInterrupt) is added and
//     every loop header gets "if the global is set, trap". A deadline sets
//     the global from a context.AfterFunc, so a runaway guest stops at its
//     next loop iteration. This replaces wazero's WithCloseOnContextDone,
//     which compiles a call out to Go into every loop header and costs
//     ~25µs on a hello-world invocation (see interrupt.go). Modules the
//     walker cannot decode, or using tail calls (an infinite tail
//     recursion passes no loop header), keep WithCloseOnContextDone.
//  3. Globals. Every mutable global is exported (as exportGlobalPrefix+its
//     index), so that a pre-initialised snapshot can capture and restore
//     them (see snapshot.go).
//
// Everything else in the module is left byte for byte as it was, except
// DWARF custom sections (.debug_*) when loops were instrumented: their
// code offsets no longer hold, and wrong source lines in a stack trace are
// worse than none. Function names (the name section) are kept.

// Names of the exports preparation adds. They contain a colon, which no
// Go or C identifier does.
const (
	exportInterrupt    = "gust:interrupt"
	exportGlobalPrefix = "gust:global:"
)

// prepared is a module made ready for fast instantiation.
type prepared struct {
	code []byte // the module to compile
	// image is the initial memory (the data segments painted onto zeroed
	// memory, trailing zeros cut), or nil when the module keeps its data
	// segments. When stripped is true, instances must get their memory
	// from the image, even an empty one.
	image    []byte
	stripped bool
	// keepsData: the compiled module still has a data section.
	keepsData bool
	// interruptible: loops check exportInterrupt.
	interruptible bool
	// globals are the export names of the module's mutable globals, all
	// of them, or nil when they could not all be exported.
	globals []string
	// snapshotable: nothing but memory and globals changes while the
	// module runs (no table mutation), so a snapshot of them is complete.
	snapshotable bool
	// segments is how many data segments the module had.
	segments int
}

// prepare rewrites a module; see the comment above. maxMemory is the
// memory cap of its instances in bytes: a module whose data lies beyond
// keeps its segments (and fails to instantiate). An error means the
// module is malformed or uses something the rewriter does not know, and
// the caller compiles the original instead (wazero then reports what is
// wrong with it, if anything).
func prepare(code []byte, maxMemory uint64) (*prepared, error) {
	return prepareWith(code, maxMemory, instrumentLoops)
}

// prepareWith is prepare with loop instrumentation chosen by the caller
// (tests exercise it while it is off by default).
func prepareWith(code []byte, maxMemory uint64, instrument bool) (*prepared, error) {
	secs, err := splitSections(code)
	if err != nil {
		return nil, err
	}
	mi, err := readModuleInfo(secs)
	if err != nil {
		return nil, err
	}
	for name := range mi.exports {
		if strings.HasPrefix(name, "gust:") {
			return nil, fmt.Errorf("module already exports %q", name)
		}
	}
	p := &prepared{}

	// Code: find out what it does, and (when enabled) instrument loops.
	interruptIdx := uint32(mi.importedGlobals + len(mi.globals))
	check := binary.AppendUvarint([]byte{0x23}, uint64(interruptIdx)) // global.get
	check = append(check, 0x04, 0x40, 0x00, 0x0b)                     // if unreachable end
	var facts codeFacts
	if body := findSection(secs, secIDCode); body != nil {
		if _, facts, err = walkCode(body, nil); err != nil {
			return nil, err
		}
		if instrument && !facts.tailCalls {
			rewritten, _, err := walkCode(body, check)
			if err != nil {
				return nil, err
			}
			secs = setSection(secs, secIDCode, rewritten)
			p.interruptible = true
		}
	} else {
		p.interruptible = instrument // no code, no loops
	}
	p.snapshotable = !facts.mutatesTable

	// Data: strip active segments into an image.
	if body := findSection(secs, secIDData); body != nil && !facts.usesData && mi.hasMemory {
		segs, err := parseDataSection(body)
		if err != nil && err != errNotActiveConst {
			return nil, err
		}
		if end := dataEnd(segs); err == nil && mi.memMin <= 65536 && end <= mi.memMin*65536 && end <= maxMemory {
			p.segments = len(segs)
			img := make([]byte, dataEnd(segs))
			paint(img, segs)
			p.image = trimZeros(img)
			p.stripped = true
			secs = removeSection(secs, secIDData)
			secs = removeSection(secs, secIDDataCount)
		}
	}

	// Globals and exports.
	var globalsBody, exportsBody []byte
	newGlobals, newExports := 0, 0
	if p.interruptible {
		globalsBody = append(globalsBody, valI32, 1, 0x41, 0, 0x0b) // (mut i32) (i32.const 0)
		newGlobals++
		exportsBody = appendExport(exportsBody, exportInterrupt, 3, interruptIdx)
		newExports++
	}
	for i, g := range mi.globals {
		if !g.mutable {
			continue
		}
		idx := uint32(mi.importedGlobals + i)
		name := exportGlobalPrefix + strconv.FormatUint(uint64(idx), 10)
		exportsBody = appendExport(exportsBody, name, 3, idx)
		newExports++
		p.globals = append(p.globals, name)
	}
	if newGlobals > 0 {
		secs = setSection(secs, secIDGlobal, appendVec(findSection(secs, secIDGlobal), newGlobals, globalsBody))
	}
	if newExports > 0 {
		secs = setSection(secs, secIDExport, appendVec(findSection(secs, secIDExport), newExports, exportsBody))
	}
	if p.interruptible && facts.loops > 0 {
		secs = dropDWARF(secs)
	}
	p.keepsData = findSection(secs, secIDData) != nil
	p.code = joinSections(secs)
	return p, nil
}

// appendVec appends n encoded entries to the body of a vector section (nil
// for an absent section).
func appendVec(body []byte, n int, entries []byte) []byte {
	r := reader{b: body}
	old := 0
	if len(body) > 0 {
		old = int(r.u32())
	}
	out := binary.AppendUvarint(make([]byte, 0, len(body)+len(entries)+5), uint64(old+n))
	out = append(out, body[r.off:]...)
	return append(out, entries...)
}

func appendExport(b []byte, name string, kind byte, idx uint32) []byte {
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = append(b, kind)
	return binary.AppendUvarint(b, uint64(idx))
}

func removeSection(secs []rawSection, id byte) []rawSection {
	out := secs[:0]
	for _, s := range secs {
		if s.id != id {
			out = append(out, s)
		}
	}
	return out
}

// dropDWARF removes the .debug_* custom sections.
func dropDWARF(secs []rawSection) []rawSection {
	out := secs[:0]
	for _, s := range secs {
		if s.id == secIDCustom && strings.HasPrefix(customName(s.body), ".debug_") {
			continue
		}
		out = append(out, s)
	}
	return out
}

func trimZeros(b []byte) []byte {
	i := len(b)
	for i > 0 && b[i-1] == 0 {
		i--
	}
	return b[:i]
}
