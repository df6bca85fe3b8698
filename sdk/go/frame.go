package gust

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// frameVersion is the version byte of the request frames this SDK reads.
const frameVersion = 1

// frameHeaderSize is the fixed part of a frame: version, reserved bytes and
// the deadline.
const frameHeaderSize = 12

// frame is a decoded request frame. Its byte slices alias the buffer it was
// decoded from.
type frame struct {
	deadlineMS int64
	requestID  []byte
	function   []byte
	payload    []byte
}

var errShortFrame = errors.New("gust: request frame truncated")

// decodeFrame parses a request frame (see the package documentation).
func decodeFrame(b []byte) (frame, error) {
	var f frame
	if len(b) < frameHeaderSize {
		return f, errShortFrame
	}
	if b[0] != frameVersion {
		return f, fmt.Errorf("gust: unsupported request frame version %d (this SDK speaks %d)", b[0], frameVersion)
	}
	if b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return f, errors.New("gust: request frame has non-zero reserved bytes")
	}
	f.deadlineMS = int64(binary.LittleEndian.Uint64(b[4:12]))
	rest := b[frameHeaderSize:]
	var err error
	if f.requestID, rest, err = lengthPrefixed(rest); err != nil {
		return f, err
	}
	if f.function, rest, err = lengthPrefixed(rest); err != nil {
		return f, err
	}
	if f.payload, rest, err = lengthPrefixed(rest); err != nil {
		return f, err
	}
	if len(rest) != 0 {
		return f, fmt.Errorf("gust: %d unexpected bytes after the request frame", len(rest))
	}
	return f, nil
}

func lengthPrefixed(b []byte) (field, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errShortFrame
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, nil, errShortFrame
	}
	return b[:n:n], b[n:], nil
}

// appendFrame encodes a request frame; the host has its own encoder, this
// one serves the SDK's tests.
func appendFrame(dst []byte, f frame) []byte {
	dst = append(dst, frameVersion, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(f.deadlineMS))
	for _, field := range [][]byte{f.requestID, f.function, f.payload} {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(field)))
		dst = append(dst, field...)
	}
	return dst
}
