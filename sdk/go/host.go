package gust

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HostError is a failed call to the platform: storage or outbound HTTP.
// Compare it with errors.Is against ErrNotFound, ErrConflict,
// ErrAccessDenied and the other Err values, which match by Code.
type HostError struct {
	// Code names the failure, for example "NotFound" or "AccessDenied".
	Code    string
	Message string
}

func (e *HostError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Message
}

// ErrorType returns "Host." and the code, the errorType a handler
// returning e reports to its caller.
func (e *HostError) ErrorType() string { return "Host." + e.Code }

// Is reports whether target is a HostError with the same code and no
// message of its own (one of the Err values).
func (e *HostError) Is(target error) bool {
	t, ok := target.(*HostError)
	return ok && t.Message == "" && t.Code == e.Code
}

// The failures a host call reports, for errors.Is.
var (
	// ErrNotFound: no such key or object.
	ErrNotFound = &HostError{Code: "NotFound"}
	// ErrConflict: a compare-and-set found another revision.
	ErrConflict = &HostError{Code: "Conflict"}
	// ErrAccessDenied: the function is not granted the bucket or host.
	ErrAccessDenied = &HostError{Code: "AccessDenied"}
	// ErrNoSuchBucket: the bucket does not exist.
	ErrNoSuchBucket = &HostError{Code: "NoSuchBucket"}
	// ErrTooLarge: a value, object or response over its limit.
	ErrTooLarge = &HostError{Code: "TooLarge"}
	// ErrInvalid: a bad key, name or argument.
	ErrInvalid = &HostError{Code: "Invalid"}
	// ErrUnavailable: no host to call (outside a Gust wasm runtime, or
	// while the module initialises).
	ErrUnavailable = &HostError{Code: "Unavailable"}
)

// Response status bytes of the host call ABI.
const (
	callOK     = 0
	callFailed = 1
)

// hostCall performs one operation on the host: the call is the
// operation's name and its arguments as length-prefixed fields; the
// answer a status byte and the result fields (see the wasm runtime's
// host.go for the ABI).
func hostCall(op string, args ...[]byte) ([][]byte, error) {
	n := 4 + len(op)
	for _, a := range args {
		n += 4 + len(a)
	}
	req := make([]byte, 0, n)
	req = binary.LittleEndian.AppendUint32(req, uint32(len(op)))
	req = append(req, op...)
	for _, a := range args {
		req = binary.LittleEndian.AppendUint32(req, uint32(len(a)))
		req = append(req, a...)
	}
	resp := rawCall(req)
	if len(resp) == 0 {
		return nil, &HostError{Code: "BadResponse", Message: "gust: the host answered " + op + " with nothing"}
	}
	fields, err := splitFields(resp[1:])
	if err != nil {
		return nil, &HostError{Code: "BadResponse", Message: "gust: malformed answer to " + op + ": " + err.Error()}
	}
	switch resp[0] {
	case callOK:
		return fields, nil
	case callFailed:
		if len(fields) != 2 {
			return nil, &HostError{Code: "BadResponse", Message: "gust: malformed error answer to " + op}
		}
		return nil, &HostError{Code: string(fields[0]), Message: string(fields[1])}
	}
	return nil, &HostError{Code: "BadResponse", Message: fmt.Sprintf("gust: unknown status %d answering %s", resp[0], op)}
}

// splitFields splits b into its length-prefixed fields (aliasing b).
func splitFields(b []byte) ([][]byte, error) {
	var fields [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("truncated field length")
		}
		n := binary.LittleEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, errors.New("field longer than the answer")
		}
		fields = append(fields, b[4:4+n:4+n])
		b = b[4+n:]
	}
	return fields, nil
}

// u64 encodes a number argument; num decodes a number result.
func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func num(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, &HostError{Code: "BadResponse", Message: fmt.Sprintf("gust: a number of %d bytes in a host answer", len(b))}
	}
	return binary.LittleEndian.Uint64(b), nil
}

// want checks that an answer has n fields.
func want(op string, fields [][]byte, n int) error {
	if len(fields) < n {
		return &HostError{Code: "BadResponse", Message: fmt.Sprintf("gust: %s answered %d fields, want %d", op, len(fields), n)}
	}
	return nil
}
