package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// This file is a small reader and rewriter of WebAssembly binaries, just
// enough for deploy-time preparation (see prepare.go): it splits a module
// into sections, decodes the import, memory, global, export and data
// sections and walks function bodies instruction by instruction. Sections
// it does not change are copied byte for byte. It never trusts its input:
// every length is checked, and anything it does not understand is an
// error, upon which the caller compiles the module unchanged.

// Section ids.
const (
	secIDCustom    = 0
	secIDType      = 1
	secIDImport    = 2
	secIDFunction  = 3
	secIDTable     = 4
	secIDMemory    = 5
	secIDGlobal    = 6
	secIDExport    = 7
	secIDStart     = 8
	secIDElement   = 9
	secIDCode      = 10
	secIDData      = 11
	secIDDataCount = 12
	secIDTag       = 13
)

// sectionRank is a section's place in the order the binary format
// requires; custom sections have none.
var sectionRank = map[byte]int{
	secIDType: 1, secIDImport: 2, secIDFunction: 3, secIDTable: 4,
	secIDMemory: 5, secIDTag: 6, secIDGlobal: 7, secIDExport: 8,
	secIDStart: 9, secIDElement: 10, secIDDataCount: 11, secIDCode: 12,
	secIDData: 13,
}

// Value types.
const (
	valI32 = 0x7f
	valI64 = 0x7e
	valF32 = 0x7d
	valF64 = 0x7c
)

var errMalformed = errors.New("malformed module")

// wasmHeader is the magic number and version 1.
var wasmHeader = []byte("\x00asm\x01\x00\x00\x00")

// rawSection is one section as found in the binary.
type rawSection struct {
	id   byte
	body []byte // the contents, without id and size
}

// splitSections splits a module into its sections, checking only the
// header, the framing and the order of non-custom sections.
func splitSections(b []byte) ([]rawSection, error) {
	if !bytes.HasPrefix(b, wasmHeader) {
		return nil, fmt.Errorf("%w: bad header", errMalformed)
	}
	r := reader{b: b, off: len(wasmHeader)}
	var secs []rawSection
	last := 0
	for !r.done() {
		id := r.byte()
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			return nil, r.err
		}
		if id != secIDCustom {
			rank, ok := sectionRank[id]
			if !ok {
				return nil, fmt.Errorf("%w: unknown section %d", errMalformed, id)
			}
			if rank <= last {
				return nil, fmt.Errorf("%w: section %d out of order", errMalformed, id)
			}
			last = rank
		}
		secs = append(secs, rawSection{id: id, body: body})
	}
	return secs, nil
}

// joinSections encodes a module from its sections.
func joinSections(secs []rawSection) []byte {
	n := len(wasmHeader)
	for _, s := range secs {
		n += 1 + 5 + len(s.body)
	}
	out := make([]byte, 0, n)
	out = append(out, wasmHeader...)
	for _, s := range secs {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out
}

// customName returns the name of a custom section.
func customName(body []byte) string {
	r := reader{b: body}
	name := r.name()
	if r.err != nil {
		return ""
	}
	return name
}

// setSection replaces the section with the given id, or inserts it where
// the binary format wants it.
func setSection(secs []rawSection, id byte, body []byte) []rawSection {
	for i := range secs {
		if secs[i].id == id {
			secs[i].body = body
			return secs
		}
	}
	rank := sectionRank[id]
	at := len(secs)
	for i, s := range secs {
		if s.id != secIDCustom && sectionRank[s.id] > rank {
			at = i
			break
		}
	}
	return append(secs[:at], append([]rawSection{{id: id, body: body}}, secs[at:]...)...)
}

// findSection returns the body of the section with the given id, or nil.
func findSection(secs []rawSection, id byte) []byte {
	for _, s := range secs {
		if s.id == id {
			return s.body
		}
	}
	return nil
}

// reader decodes the binary format. The first error sticks; later reads
// return zero values.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w at offset %d: %s", errMalformed, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("length %d exceeds the %d bytes left", n, len(r.b)-r.off)
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

// uleb reads an unsigned LEB128 number of at most bits bits.
func (r *reader) uleb(bits uint) uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift >= bits || shift+7 > bits && c&0x7f>>(bits-shift) != 0 {
			r.fail("integer too large")
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
}

// sleb reads a signed LEB128 number of at most bits bits.
func (r *reader) sleb(bits uint) int64 {
	var v int64
	var shift uint
	var c byte
	for {
		c = r.byte()
		if r.err != nil {
			return 0
		}
		if shift >= bits {
			r.fail("integer too large")
			return 0
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			break
		}
	}
	if shift < 64 && c&0x40 != 0 {
		v |= -1 << shift
	}
	if bits < 64 && (v < -(1<<(bits-1)) || v >= 1<<(bits-1)) {
		r.fail("integer too large")
		return 0
	}
	return v
}

func (r *reader) u32() uint32 { return uint32(r.uleb(32)) }

// count reads a vector length, refusing one that cannot fit in what is
// left (each element takes at least one byte).
func (r *reader) count() int {
	n := r.u32()
	if r.err == nil && int64(n) > int64(len(r.b)-r.off) {
		r.fail("vector of %d elements in %d bytes", n, len(r.b)-r.off)
		return 0
	}
	return int(n)
}

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

// limits reads memory or table limits; it returns min, max and whether
// max is present.
func (r *reader) limits() (lo, hi uint64, hasMax bool) {
	flags := r.byte()
	if flags > 7 {
		r.fail("limits flags %#x", flags)
		return
	}
	bits := uint(32)
	if flags&4 != 0 {
		bits = 64
	}
	lo = r.uleb(bits)
	if flags&1 != 0 {
		hi, hasMax = r.uleb(bits), true
	}
	return
}

// valType reads a value type.
func (r *reader) valType() byte {
	t := r.byte()
	switch t {
	case valI32, valI64, valF32, valF64, 0x7b, 0x70, 0x6f:
	case 0x63, 0x64: // (ref null? heaptype)
		r.sleb(33)
	default:
		r.fail("value type %#x", t)
	}
	return t
}

// expr skips a constant expression up to and including its end.
func (r *reader) constExpr() {
	for r.err == nil {
		op := r.byte()
		if op == 0x0b {
			return
		}
		skipImmediates(r, op, nil)
	}
}

// moduleInfo is what preparation needs to know about a module.
type moduleInfo struct {
	importedGlobals int
	globals         []globalInfo // defined globals, in order
	memMin, memMax  uint64       // of the module's own memory, in pages
	hasMemMax       bool
	hasMemory       bool
	exports         map[string]bool
	dataCount       bool // has a data count section
}

type globalInfo struct {
	typ     byte
	mutable bool
}

// readModuleInfo decodes the import, memory, global and export sections.
func readModuleInfo(secs []rawSection) (*moduleInfo, error) {
	mi := &moduleInfo{exports: map[string]bool{}}
	for _, s := range secs {
		r := reader{b: s.body}
		switch s.id {
		case secIDImport:
			for range r.count() {
				r.name()
				r.name()
				switch kind := r.byte(); kind {
				case 0: // func
					r.u32()
				case 1: // table
					r.valType()
					r.limits()
				case 2: // memory
					r.limits()
					mi.hasMemory = true // imported: refused by classify anyway
				case 3: // global
					r.valType()
					r.byte()
					mi.importedGlobals++
				case 4: // tag
					r.byte()
					r.u32()
				default:
					r.fail("import kind %d", kind)
				}
			}
		case secIDMemory:
			n := r.count()
			if n > 1 {
				r.fail("%d memories", n)
			}
			for range n {
				mi.memMin, mi.memMax, mi.hasMemMax = r.limits()
				mi.hasMemory = true
			}
		case secIDGlobal:
			for range r.count() {
				t := r.valType()
				mut := r.byte()
				if mut > 1 {
					r.fail("global mutability %d", mut)
				}
				r.constExpr()
				mi.globals = append(mi.globals, globalInfo{typ: t, mutable: mut == 1})
			}
		case secIDExport:
			for range r.count() {
				mi.exports[r.name()] = true
				r.byte()
				r.u32()
			}
		case secIDDataCount:
			mi.dataCount = true
			r.u32()
		default:
			continue
		}
		if r.err == nil && !r.done() {
			r.fail("%d trailing bytes in section %d", len(r.b)-r.off, s.id)
		}
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, r.err)
		}
	}
	return mi, nil
}

// dataSegment is one active segment of memory 0 at a constant offset.
type dataSegment struct {
	offset uint32
	init   []byte
}

// errNotActiveConst reports a data section that is not only active
// segments at constant offsets in memory 0.
var errNotActiveConst = errors.New("data section holds segments other than active ones at constant offsets")

// parseDataSection decodes a data section holding only active segments of
// memory 0 at i32.const offsets, which is what compilers emit for static
// data (Go's linker emits one per symbol group, thousands of them).
// Anything else (passive segments, global-relative offsets) is reported
// as errNotActiveConst.
func parseDataSection(body []byte) ([]dataSegment, error) {
	r := reader{b: body}
	n := r.count()
	segs := make([]dataSegment, 0, n)
	for range n {
		flags := r.u32()
		switch flags {
		case 0:
		case 2:
			if r.u32() != 0 {
				return nil, errNotActiveConst
			}
		default:
			if r.err == nil {
				return nil, errNotActiveConst
			}
		}
		if op := r.byte(); op != 0x41 && r.err == nil { // i32.const
			return nil, errNotActiveConst
		}
		off := r.sleb(32)
		if end := r.byte(); end != 0x0b && r.err == nil {
			return nil, errNotActiveConst
		}
		init := r.bytes(int(r.u32()))
		if r.err != nil {
			return nil, r.err
		}
		segs = append(segs, dataSegment{offset: uint32(off), init: init})
	}
	if r.err == nil && !r.done() {
		r.fail("%d trailing bytes", len(r.b)-r.off)
	}
	return segs, r.err
}

// encodeDataSection encodes active segments of memory 0.
func encodeDataSection(segs []dataSegment) []byte {
	n := 5
	for _, s := range segs {
		n += 1 + 1 + 5 + 1 + 5 + len(s.init)
	}
	out := make([]byte, 0, n)
	out = binary.AppendUvarint(out, uint64(len(segs)))
	for _, s := range segs {
		out = append(out, 0, 0x41)
		out = appendSleb(out, int64(int32(s.offset)))
		out = append(out, 0x0b)
		out = binary.AppendUvarint(out, uint64(len(s.init)))
		out = append(out, s.init...)
	}
	return out
}

// dataEnd is the end of the highest segment.
func dataEnd(segs []dataSegment) uint64 {
	var end uint64
	for _, s := range segs {
		end = max(end, uint64(s.offset)+uint64(len(s.init)))
	}
	return end
}

// paint writes segments onto a memory image, as instantiation would.
func paint(img []byte, segs []dataSegment) {
	for _, s := range segs {
		copy(img[s.offset:], s.init)
	}
}

func appendSleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// codeFacts is what walking the function bodies found.
type codeFacts struct {
	loops        int  // loop instructions
	tailCalls    bool // return_call and friends
	mutatesTable bool // table.set, table.grow, ...
	usesData     bool // memory.init or data.drop
}

// walkCode decodes every function body in a code section. When check is
// not nil, the bytes of check are inserted after every loop instruction's
// block type and the rewritten section is returned.
func walkCode(body []byte, check []byte) ([]byte, codeFacts, error) {
	var facts codeFacts
	r := reader{b: body}
	n := r.count()
	var out []byte
	if check != nil {
		out = make([]byte, 0, len(body)+len(body)/8)
		out = binary.AppendUvarint(out, uint64(n))
	}
	var fn []byte
	for i := range n {
		size := r.u32()
		fr := reader{b: r.bytes(int(size))}
		if r.err != nil {
			return nil, facts, r.err
		}
		// Locals.
		for range fr.count() {
			fr.u32()
			fr.valType()
		}
		if check != nil {
			fn = append(fn[:0], fr.b[:fr.off]...)
		}
		depth := 1
		for depth > 0 && fr.err == nil {
			at := fr.off
			op := fr.byte()
			switch op {
			case 0x02, 0x04: // block, if
				depth++
			case 0x03: // loop
				depth++
				facts.loops++
			case 0x1f: // try_table
				depth++
			case 0x0b: // end
				depth--
			case 0x12, 0x13: // return_call, return_call_indirect
				facts.tailCalls = true
			case 0x26: // table.set
				facts.mutatesTable = true
			case 0xfc:
				sub := reader{b: fr.b, off: fr.off}
				switch sub.u32() {
				case 8, 9: // memory.init, data.drop
					facts.usesData = true
				case 12, 13, 14, 15, 17: // table.init, elem.drop, table.copy, table.grow, table.fill
					facts.mutatesTable = true
				}
			}
			skipImmediates(&fr, op, &facts)
			if check != nil {
				fn = append(fn, fr.b[at:fr.off]...)
				if op == 0x03 && fr.err == nil {
					fn = append(fn, check...)
				}
			}
		}
		if fr.err == nil && !fr.done() {
			fr.fail("%d bytes after the end of the body", len(fr.b)-fr.off)
		}
		if fr.err != nil {
			return nil, facts, fmt.Errorf("function body %d: %w", i, fr.err)
		}
		if check != nil {
			out = binary.AppendUvarint(out, uint64(len(fn)))
			out = append(out, fn...)
		}
	}
	if r.err == nil && !r.done() {
		r.fail("%d trailing bytes", len(r.b)-r.off)
	}
	return out, facts, r.err
}

// skipImmediates reads the immediates of the instruction op. It fails on
// opcodes it does not know, so that no instruction is ever misread.
func skipImmediates(r *reader, op byte, facts *codeFacts) {
	switch {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0b, op == 0x0f,
		op == 0x1a, op == 0x1b, op >= 0x45 && op <= 0xc4, op == 0xd1:
		// No immediates.
	case op == 0x02, op == 0x03, op == 0x04: // block, loop, if
		r.sleb(33)
	case op == 0x0c, op == 0x0d: // br, br_if
		r.u32()
	case op == 0x0e: // br_table
		for range r.count() {
			r.u32()
		}
		r.u32()
	case op == 0x10, op == 0x12: // call, return_call
		r.u32()
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x08: // throw
		r.u32()
	case op == 0x0a: // throw_ref
	case op == 0x1f: // try_table
		r.sleb(33)
		for range r.count() {
			switch kind := r.byte(); kind {
			case 0, 1:
				r.u32()
				r.u32()
			case 2, 3:
				r.u32()
			default:
				r.fail("catch kind %d", kind)
			}
		}
	case op == 0x1c: // select t*
		for range r.count() {
			r.valType()
		}
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		memarg(r)
	case op == 0x3f, op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41:
		r.sleb(32)
	case op == 0x42:
		r.sleb(64)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null
		r.sleb(33)
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7: // saturating truncations
		case sub == 8: // memory.init
			r.u32()
			r.u32()
		case sub == 9: // data.drop
			r.u32()
		case sub == 10: // memory.copy
			r.u32()
			r.u32()
		case sub == 11: // memory.fill
			r.u32()
		case sub == 12, sub == 14: // table.init, table.copy
			r.u32()
			r.u32()
		case sub == 13, sub == 15, sub == 16, sub == 17: // elem.drop, table.grow/size/fill
			r.u32()
		default:
			r.fail("instruction 0xfc %d", sub)
		}
	case op == 0xfd: // SIMD
		switch sub := r.u32(); {
		case sub <= 11, sub == 92, sub == 93: // loads and stores
			memarg(r)
		case sub == 12, sub == 13: // v128.const, i8x16.shuffle
			r.bytes(16)
		case sub >= 21 && sub <= 34: // lane extract and replace
			r.byte()
		case sub >= 84 && sub <= 91: // load and store lane
			memarg(r)
			r.byte()
		case sub <= 0x113:
			// No immediates.
		default:
			r.fail("instruction 0xfd %d", sub)
		}
	case op == 0xfe: // atomics
		switch sub := r.u32(); {
		case sub == 3: // atomic.fence
			r.byte()
		case sub <= 2, sub >= 0x10 && sub <= 0x4e:
			memarg(r)
		default:
			r.fail("instruction 0xfe %d", sub)
		}
	default:
		r.fail("instruction %#x", op)
	}
}

func memarg(r *reader) {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.uleb(64)
}
