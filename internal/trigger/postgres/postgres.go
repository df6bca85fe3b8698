// Package postgres streams row changes out of a PostgreSQL database for
// database-change triggers, through logical replication with the built-in
// pgoutput plugin (PostgreSQL 10 or later with wal_level=logical).
//
// One change stream (Config) owns two objects in the database, both named
// "gust_" + Config.Name: a publication of the stream's tables and events,
// and a logical replication slot, which keeps the position up to which
// changes have been delivered. Check verifies at configuration time that
// the database can serve the stream, Setup creates (or updates) the
// publication and the slot, and Teardown drops them.
//
// Stream.Run reads the slot and hands changes to a deliver function in
// batches, in commit order, one batch at a time. Delivery is at least
// once: the slot's confirmed position only ever moves past changes whose
// batch was delivered successfully, so after a stop, a lost connection or
// a PostgreSQL restart the stream resumes from there, and changes that
// were delivered but not yet confirmed come again. A failed batch is
// delivered again, the same batch, after a backoff.
//
// Old row values: PostgreSQL sends the whole old row of an update or a
// delete only for tables with REPLICA IDENTITY FULL; otherwise a delete
// carries the old key columns only, and an update carries them only when
// the key changed. Setup leaves user tables alone unless
// Config.ReplicaIdentityFull asks it to set REPLICA IDENTITY FULL on them.
// A table without a primary key (nor another replica identity) cannot be
// published for updates or deletes (PostgreSQL would then refuse UPDATE
// and DELETE on it): Check reports that.
//
// Column values are decoded by type: integers (int2, int4, int8, oid) as
// numbers, float4 and float8 as numbers (NaN and infinities as strings),
// numeric as a JSON number (NaN and infinities as strings), bool as a
// boolean, json and jsonb as raw JSON, timestamptz as an RFC 3339 string in
// UTC, timestamp without time zone as an RFC 3339 string without offset
// ("2006-01-02T15:04:05.999999"), NULL as nil, and everything else (text,
// uuid, date, arrays, bytea, enums, ...) as PostgreSQL's text form.
// ±infinity timestamps come as the strings "infinity" and "-infinity".
package postgres

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gustfaas/gust/api"
)

// Defaults and bounds of Config.
const (
	DefaultBatchSize = 100
	MaxBatchSize     = api.MaxTriggerBatchSize
	// MinBatchWindow and MaxBatchWindow bound a non-zero BatchWindow.
	MinBatchWindow = time.Millisecond
	MaxBatchWindow = api.MaxTriggerBatchWindow
	// MaxNameLen bounds Config.Name, so that "gust_" + Name fits
	// PostgreSQL's 63-byte identifiers.
	MaxNameLen = 50
	// MaxTables bounds Config.Tables.
	MaxTables = 100
	// Prefix starts the names of the slot and the publication.
	Prefix = "gust_"
)

// The events a stream may publish.
const (
	Insert = "insert"
	Update = "update"
	Delete = "delete"
)

// allEvents lists the events in the order PostgreSQL's publish option
// names them.
var allEvents = []string{Insert, Update, Delete}

// Config is one change stream. The zero value of each optional field
// means its default.
type Config struct {
	// DSN locates the database: a URL (postgres://user:pass@host:port/db)
	// or key=value pairs (host=... dbname=...). The user needs the
	// REPLICATION attribute (or superuser), and ownership of the tables
	// for Setup to publish them.
	DSN string
	// Tables are the tables whose changes are streamed, as
	// "schema.table"; a bare name means "public.name". Names are taken
	// literally (they are quoted in SQL), so "Orders" is not "orders".
	Tables []string
	// Events is a subset of "insert", "update" and "delete"; empty means
	// all three.
	Events []string
	// Name names the slot and the publication: both are "gust_" + Name.
	// It is 1 to 50 lowercase letters, digits and '_', starting with a
	// letter.
	Name string
	// BatchSize is the most changes per batch (default 100, at most
	// 1000).
	BatchSize int
	// BatchWindow is how long a batch may wait to fill, from its first
	// change: 0 (the default) delivers at once the changes already
	// received, as Lambda's stream event sources do by default;
	// otherwise 1 ms to 5 minutes.
	BatchWindow time.Duration
	// ReplicaIdentityFull makes Setup run ALTER TABLE ... REPLICA
	// IDENTITY FULL on each table, so that updates and deletes carry the
	// whole old row (at the price of more WAL). Off by default: Setup
	// does not alter user tables unless asked, and Old then holds the key
	// columns only (see the package documentation).
	ReplicaIdentityFull bool
}

// ValidationError is a setting that breaks a rule, or a database that
// refuses the stream (unreachable, a missing table, wal_level not
// logical). Field names the setting ("dsn", "tables", "events", "name",
// "batchSize", "batchWindow").
type ValidationError struct {
	Field   string
	Message string
	// Err is the underlying error, if any.
	Err error
}

func (e *ValidationError) Error() string { return e.Message }

// Unwrap returns the underlying error.
func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

var (
	nameRE  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)
)

// maxIdentLen is PostgreSQL's identifier limit (NAMEDATALEN - 1).
const maxIdentLen = 63

// Validate checks the settings without reaching the database: the DSN
// parses, the tables are well formed, the events are known and the name
// is valid. Its errors are *ValidationError.
func (c Config) Validate() error {
	if strings.TrimSpace(c.DSN) == "" {
		return invalid("dsn", "the database needs a DSN (postgres://user@host:5432/db or host=... dbname=...)")
	}
	if _, err := pgconn.ParseConfig(c.DSN); err != nil {
		return &ValidationError{Field: "dsn", Message: fmt.Sprintf("dsn: %v", err), Err: err}
	}
	if len(c.Tables) == 0 {
		return invalid("tables", "a change stream needs at least one table (schema.table)")
	}
	if len(c.Tables) > MaxTables {
		return invalid("tables", "%d tables: a change stream has at most %d", len(c.Tables), MaxTables)
	}
	seen := make(map[Table]bool, len(c.Tables))
	for _, name := range c.Tables {
		t, err := ParseTable(name)
		if err != nil {
			return &ValidationError{Field: "tables", Message: err.Error(), Err: err}
		}
		if seen[t] {
			return invalid("tables", "table %s is listed twice", t)
		}
		seen[t] = true
	}
	known := make(map[string]bool, len(c.Events))
	for _, e := range c.Events {
		if !slices.Contains(allEvents, e) {
			return invalid("events", "unknown event %q: events are insert, update and delete", e)
		}
		if known[e] {
			return invalid("events", "event %q is listed twice", e)
		}
		known[e] = true
	}
	if err := ValidateName(c.Name); err != nil {
		return &ValidationError{Field: "name", Message: err.Error(), Err: err}
	}
	switch {
	case c.BatchSize < 0 || c.BatchSize > MaxBatchSize:
		return invalid("batchSize", "batch size %d is out of range: 1 to %d (0 for the default, %d)", c.BatchSize, MaxBatchSize, DefaultBatchSize)
	case c.BatchWindow < 0 || c.BatchWindow > MaxBatchWindow:
		return invalid("batchWindow", "batch window %s is out of range: 0 to %s", c.BatchWindow, MaxBatchWindow)
	case c.BatchWindow > 0 && c.BatchWindow < MinBatchWindow:
		return invalid("batchWindow", "batch window %s is too short: 0 (deliver what is ready) or at least %s", c.BatchWindow, MinBatchWindow)
	}
	return nil
}

// ValidateName checks a stream name: 1 to 50 lowercase letters, digits
// and '_', starting with a letter.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("the change stream needs a name (it names the slot and the publication)")
	case len(name) > MaxNameLen:
		return fmt.Errorf("name %.20q... is %d bytes long: at most %d", name, len(name), MaxNameLen)
	case !nameRE.MatchString(name):
		return fmt.Errorf("name %q is not valid: use lowercase letters, digits and '_', starting with a letter", name)
	}
	return nil
}

// WithDefaults returns c with every zero setting replaced by its default.
func (c Config) WithDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if len(c.Events) == 0 {
		c.Events = slices.Clone(allEvents)
	}
	return c
}

// SlotName is the name of the stream's replication slot.
func (c Config) SlotName() string { return Prefix + c.Name }

// PublicationName is the name of the stream's publication.
func (c Config) PublicationName() string { return Prefix + c.Name }

// tables returns the parsed tables; c must be valid.
func (c Config) tables() []Table {
	ts := make([]Table, 0, len(c.Tables))
	for _, name := range c.Tables {
		t, _ := ParseTable(name)
		ts = append(ts, t)
	}
	return ts
}

// events returns the events in PostgreSQL's order (all three when empty).
func (c Config) events() []string {
	if len(c.Events) == 0 {
		return allEvents
	}
	var es []string
	for _, e := range allEvents {
		if slices.Contains(c.Events, e) {
			es = append(es, e)
		}
	}
	return es
}

// publishes reports whether the stream publishes event e.
func (c Config) publishes(e string) bool { return slices.Contains(c.events(), e) }

// Table is a schema-qualified table name.
type Table struct {
	Schema string
	Name   string
}

// String returns the table as schema.name.
func (t Table) String() string { return t.Schema + "." + t.Name }

// quoted returns the table as a quoted SQL identifier.
func (t Table) quoted() string { return quoteIdent(t.Schema) + "." + quoteIdent(t.Name) }

// ParseTable parses "schema.table", or a bare "table" in schema public.
// Each part is 1 to 63 letters, digits, '_' and '$', not starting with a
// digit or '$'.
func ParseTable(s string) (Table, error) {
	if s == "" {
		return Table{}, errors.New("a table name is empty")
	}
	parts := strings.Split(s, ".")
	var t Table
	switch len(parts) {
	case 1:
		t = Table{Schema: "public", Name: parts[0]}
	case 2:
		t = Table{Schema: parts[0], Name: parts[1]}
	default:
		return Table{}, fmt.Errorf("table %q is not schema.table", s)
	}
	for _, p := range []string{t.Schema, t.Name} {
		switch {
		case p == "":
			return Table{}, fmt.Errorf("table %q has an empty part: write schema.table or table", s)
		case len(p) > maxIdentLen:
			return Table{}, fmt.Errorf("table %q: %.20q... is longer than PostgreSQL's %d-byte identifiers", s, p, maxIdentLen)
		case !identRE.MatchString(p):
			return Table{}, fmt.Errorf("table %q: %q is not a plain identifier (letters, digits, '_' and '$', not starting with a digit)", s, p)
		}
	}
	return t, nil
}

// quoteIdent quotes a SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// quoteLiteral quotes a SQL string literal (standard_conforming_strings
// on, as it is by default since PostgreSQL 9.1).
func quoteLiteral(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}
