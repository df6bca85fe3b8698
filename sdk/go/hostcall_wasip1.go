//go:build wasip1

package gust

import "unsafe"

//go:wasmimport gust call
func hostCallImport(ptr unsafe.Pointer, size uint32) uint32

//go:wasmimport gust take
func hostTakeImport(ptr unsafe.Pointer)

// rawCall hands an encoded call to the host and fetches its answer.
func rawCall(req []byte) []byte {
	n := hostCallImport(unsafe.Pointer(unsafe.SliceData(req)), uint32(len(req)))
	resp := make([]byte, n)
	hostTakeImport(unsafe.Pointer(unsafe.SliceData(resp)))
	return resp
}
