package wasm

// heapMemory is a linear memory on the Go heap, for when an image cannot
// be mapped.
type heapMemory struct {
	buf []byte
	max uint64
}

// Reallocate implements experimental.LinearMemory.
func (h *heapMemory) Reallocate(size uint64) []byte {
	switch {
	case size > h.max && size > uint64(len(h.buf)):
		return nil
	case size <= uint64(cap(h.buf)):
		h.buf = h.buf[:size]
	default:
		grown := make([]byte, size, max(size, min(2*uint64(cap(h.buf)), h.max)))
		copy(grown, h.buf)
		h.buf = grown
	}
	return h.buf
}

// Free implements experimental.LinearMemory.
func (h *heapMemory) Free() { h.buf = nil }
