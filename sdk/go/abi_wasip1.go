//go:build wasip1

package gust

import "unsafe"

// reqBuf receives request frames from the host; it is kept alive and reused
// for every invocation that fits.
var reqBuf []byte

//go:wasmimport gust result
func hostResult(ptr unsafe.Pointer, size uint32)

// gustAlloc returns a buffer of at least size bytes for the next request.
//
//go:wasmexport gust_alloc
func gustAlloc(size uint32) uint32 {
	if size == 0 {
		size = 1
	}
	if uint32(cap(reqBuf)) < size {
		reqBuf = make([]byte, size)
	}
	reqBuf = reqBuf[:cap(reqBuf)]
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(reqBuf))))
}

// gustInvoke serves the request frame in the first size bytes of reqBuf.
//
//go:wasmexport gust_invoke
func gustInvoke(size uint32) uint32 {
	if uint64(size) > uint64(len(reqBuf)) {
		size = uint32(len(reqBuf)) // the frame decoder reports the truncation
	}
	out, status := dispatch(reqBuf[:size])
	hostResult(unsafe.Pointer(unsafe.SliceData(out)), uint32(len(out)))
	return status
}
