//go:build !wasip1

package gust

// rawCall outside wasip1 has no host: every call fails with Unavailable,
// so code using storage or outbound HTTP builds and can be tested
// anywhere, and fails clearly when run outside Gust.
func rawCall([]byte) []byte {
	const msg = "gust: host calls need the Gust WebAssembly runtime (build with GOOS=wasip1)"
	code := "Unavailable"
	b := []byte{callFailed}
	b = append(b, byte(len(code)), 0, 0, 0)
	b = append(b, code...)
	b = append(b, byte(len(msg)), 0, 0, 0)
	return append(b, msg...)
}
