//go:build !linux

package wasm

import "github.com/tetratelabs/wazero/experimental"

// memImage is the initial contents of a module's linear memory. Without
// Linux's memfd every instance gets a copy on the Go heap.
type memImage struct {
	data []byte
	size uint64
}

func newMemImage(b []byte) (*memImage, error) {
	return &memImage{data: b, size: uint64(len(b))}, nil
}

func (im *memImage) close() {}

// Allocate implements experimental.MemoryAllocator.
func (im *memImage) Allocate(_, maxBytes uint64) experimental.LinearMemory {
	h := &heapMemory{max: maxBytes}
	if len(im.data) > 0 {
		h.buf = append([]byte(nil), im.data...)
	}
	return h
}

func (im *memImage) learnHotPages([]byte) {}

func (im *memImage) learned() bool { return true }
