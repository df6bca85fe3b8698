package manager

import (
	"net/url"
	"regexp"
	"strings"
)

// passwordRE finds password=... in a key=value DSN (quoted or not).
var passwordRE = regexp.MustCompile(`(?i)(^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)

// RedactDSN returns a PostgreSQL DSN without its password, for display.
func RedactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(unparsable DSN)"
		}
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		if q.Has("password") {
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return strings.Join(strings.Fields(passwordRE.ReplaceAllString(dsn, "$1")), " ")
}
