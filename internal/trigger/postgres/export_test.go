package postgres

// Internals for the tests.
var (
	DecodeValue      = decodeValue
	WalLevelError    = walLevelError
	ParseGUCDuration = parseGUCDuration
)

// Sessions returns how many connections of s reached streaming.
func (s *Stream) Sessions() int64 { return s.sessions.Load() }
