//go:build linux

package wasm

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tetratelabs/wazero/experimental"
)

// memImage is the initial contents of a module's linear memory (the data
// segments painted onto zeroed memory, or a pre-initialised snapshot),
// held in a memfd. Every instance maps it privately: pages nobody writes
// are shared between all instances of the image (and with the page
// cache); a page an instance writes is copied for that instance alone.
// Memory past the image is anonymous, so zeroed pages cost nothing until
// touched and are returned to the system when the instance closes.
//
// Page faults are a large part of a young instance's cost: several
// microseconds each on a virtual machine, and a copy-on-write fault for
// every page the first invocation writes. So the first instance to serve
// an invocation reports which pages of the image it wrote
// (learnHotPages), and later instances have the kernel copy those when
// they are mapped (MADV_POPULATE_WRITE), in one system call per run of
// pages. Measured on hello: Start +50µs, first invocation -170µs.
// Prefaulting the pages only read as well (MADV_POPULATE_READ) cost more
// at Start than it saved, and is not done.
type memImage struct {
	fd   int
	size uint64 // bytes of the image, a multiple of the system page size
	// written are the runs of pages the first invocation wrote, as
	// [offset, end) byte ranges; nil until learnt.
	written atomic.Pointer[[][2]uint64]
	// cleanup closes the file should the image be dropped without close.
	cleanup runtime.Cleanup
}

// newMemImage stores b in a memfd. An empty b needs no file.
func newMemImage(b []byte) (*memImage, error) {
	im := &memImage{fd: -1, size: roundPage(uint64(len(b)))}
	if len(b) == 0 {
		return im, nil
	}
	fd, err := unix.MemfdCreate("gust-wasm-memory", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("wasm: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(im.size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("wasm: sizing memory image: %w", err)
	}
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], int64(off))
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("wasm: writing memory image: %w", err)
		}
		off += n
	}
	im.fd = fd
	im.cleanup = runtime.AddCleanup(im, func(fd int) { unix.Close(fd) }, fd)
	return im, nil
}

// close releases the file; mappings made from it stay valid.
func (im *memImage) close() {
	if im.fd >= 0 {
		im.cleanup.Stop()
		unix.Close(im.fd)
		im.fd = -1
	}
}

// Allocate implements experimental.MemoryAllocator: it reserves max bytes
// of address space (nothing is committed) and maps the image at its start.
func (im *memImage) Allocate(_, maxBytes uint64) experimental.LinearMemory {
	reserve := roundPage(max(maxBytes, im.size))
	if reserve == 0 {
		return &heapMemory{}
	}
	base, err := unix.MmapPtr(-1, 0, nil, uintptr(reserve), unix.PROT_NONE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return im.heap(maxBytes) // out of address space or mappings
	}
	m := &mappedMemory{base: base, reserved: reserve}
	if im.size > 0 {
		if _, err := unix.MmapPtr(im.fd, 0, base, uintptr(im.size), unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_FIXED); err != nil {
			m.Free()
			return im.heap(maxBytes)
		}
		m.committed = im.size
		if w := im.written.Load(); w != nil {
			populate(base, *w, unix.MADV_POPULATE_WRITE)
		}
	}
	return m
}

// populate asks the kernel to fault in runs of pages (failures only cost
// the faults it would have saved).
func populate(base unsafe.Pointer, runs [][2]uint64, advice int) {
	for _, r := range runs {
		_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(base, r[0])), r[1]-r[0]), advice)
	}
}

// maxHotWritten bounds the pages prefaulted for writing, as a share of the
// image: each is a private copy for every instance.
const maxHotWritten = 8

// learnHotPages records which pages of the image an instance whose memory
// starts at mem has written, unless that is known already. It reads the
// page flags in /proc/self/pagemap: a page of the private mapping that is
// present but no longer file-backed was copied on write.
func (im *memImage) learnHotPages(mem []byte) {
	if im.fd < 0 || im.written.Load() != nil || uint64(len(mem)) < im.size {
		return
	}
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return
	}
	defer f.Close()
	pages := im.size / pageSize
	entries := make([]byte, 8*pages)
	start := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mem)))) / pageSize
	if n, err := f.ReadAt(entries, int64(start*8)); err != nil || n != len(entries) {
		return
	}
	const present, fileOrShared = 1 << 63, 1 << 61
	written := [][2]uint64{}
	var n uint64
	for i := range pages {
		if e := binary.LittleEndian.Uint64(entries[8*i:]); e&present == 0 || e&fileOrShared != 0 {
			continue
		}
		n++
		off := i * pageSize
		if k := len(written); k > 0 && written[k-1][1] == off {
			written[k-1][1] += pageSize
		} else {
			written = append(written, [2]uint64{off, off + pageSize})
		}
	}
	if n > pages/maxHotWritten {
		written = written[:0] // an unusual first invocation: copy nothing for everyone
	}
	im.written.CompareAndSwap(nil, &written)
}

// heap is the fallback when mapping fails: a copy of the image on the Go
// heap. wazero offers no way to fail an allocation.
func (im *memImage) heap(maxBytes uint64) experimental.LinearMemory {
	h := &heapMemory{max: maxBytes}
	if im.size > 0 {
		h.buf = make([]byte, im.size)
		if n, err := unix.Pread(im.fd, h.buf, 0); err != nil || n != len(h.buf) {
			h.buf = nil // instantiation fails on a memory smaller than its minimum
		}
	}
	return h
}

// mappedMemory is one instance's linear memory, see memImage.
type mappedMemory struct {
	base      unsafe.Pointer
	reserved  uint64 // bytes of address space
	committed uint64 // bytes readable and writable
}

// Reallocate implements experimental.LinearMemory. The buffer never moves.
func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > m.reserved {
		return nil
	}
	if size == 0 {
		return []byte{}
	}
	if size > m.committed {
		want := roundPage(size)
		grow := unsafe.Slice((*byte)(unsafe.Add(m.base, m.committed)), want-m.committed)
		if err := unix.Mprotect(grow, unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return nil
		}
		m.committed = want
	}
	return unsafe.Slice((*byte)(m.base), size)
}

// Free implements experimental.LinearMemory.
func (m *mappedMemory) Free() {
	if m.base != nil {
		_ = unix.MunmapPtr(m.base, uintptr(m.reserved))
		m.base = nil
		m.reserved, m.committed = 0, 0
	}
}

var pageSize = uint64(os.Getpagesize())

func roundPage(n uint64) uint64 { return (n + pageSize - 1) &^ (pageSize - 1) }

// learned reports whether the hot pages are known.
func (im *memImage) learned() bool { return im.fd < 0 || im.written.Load() != nil }
