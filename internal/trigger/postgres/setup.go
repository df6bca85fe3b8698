package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// connectTimeout bounds a connection attempt when the DSN sets no
	// connect_timeout.
	connectTimeout = 10 * time.Second
	// closeTimeout bounds closing a connection politely.
	closeTimeout = 2 * time.Second
	// slotReleaseWait is how long Teardown waits for a terminated
	// walsender to release the slot.
	slotReleaseWait = 10 * time.Second
	// pollEvery is the pause between two looks at a slot being released.
	pollEvery = 20 * time.Millisecond
)

// ErrNotSetUp is wrapped by the errors saying that the stream's slot or
// publication does not exist (never set up, or dropped from outside
// Gust): run Setup again.
var ErrNotSetUp = errors.New("change stream is not set up")

// PostgreSQL error codes this package tells apart.
const (
	codeInvalidPassword      = "28P01"
	codeInvalidAuthorization = "28000"
	codeInvalidCatalogName   = "3D000" // the database does not exist
	codeInsufficientPriv     = "42501"
	codeUndefinedObject      = "42704"
	codeDuplicateObject      = "42710"
	codeObjectInUse          = "55006"
	codeNotInPrerequisite    = "55000"
	codeTooManyConnections   = "53300"
)

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// address names the server of cfg for messages: host:port, or the unix
// socket.
func address(cfg *pgconn.Config) string {
	if strings.HasPrefix(cfg.Host, "/") {
		return fmt.Sprintf("unix socket %s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// parseConfig parses the DSN for a normal connection.
func parseConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, &ValidationError{Field: "dsn", Message: fmt.Sprintf("dsn: %v", err), Err: err}
	}
	delete(cfg.RuntimeParams, "replication")
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "gust"
	}
	return cfg, nil
}

// connect opens a normal connection, naming the problem when it fails.
func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := parseConfig(dsn)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(&cfg.Config, "", err)
	}
	return conn, nil
}

// replicationConfig parses the DSN for a replication connection: one in
// the database's replication mode, with the session settings the value
// decoder relies on (ISO dates, UTC).
func replicationConfig(c Config) (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(c.DSN)
	if err != nil {
		return nil, &ValidationError{Field: "dsn", Message: fmt.Sprintf("dsn: %v", err), Err: err}
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["DateStyle"] = "ISO, MDY"
	cfg.RuntimeParams["TimeZone"] = "UTC"
	cfg.RuntimeParams["IntervalStyle"] = "postgres"
	cfg.RuntimeParams["extra_float_digits"] = "3"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = c.SlotName()
	}
	return cfg, nil
}

// replicationConnect opens a replication connection.
func replicationConnect(ctx context.Context, c Config) (*pgconn.PgConn, error) {
	cfg, err := replicationConfig(c)
	if err != nil {
		return nil, err
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(cfg, "replication ", err)
	}
	return conn, nil
}

// connectError names what went wrong connecting to cfg's server: an
// unreachable server (with its address), a refused user or password, a
// missing database. kind is "" or "replication ".
func connectError(cfg *pgconn.Config, kind string, err error) error {
	where := address(cfg)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		var msg string
		switch pgErr.Code {
		case codeInvalidPassword:
			msg = fmt.Sprintf("authentication failed for user %q at %s: %s", cfg.User, where, pgErr.Message)
		case codeInvalidAuthorization:
			if kind != "" {
				msg = fmt.Sprintf("user %q may not open a replication connection to %s (check pg_hba.conf): %s", cfg.User, where, pgErr.Message)
			} else {
				msg = fmt.Sprintf("authentication failed for user %q at %s: %s", cfg.User, where, pgErr.Message)
			}
		case codeInvalidCatalogName:
			msg = fmt.Sprintf("database %q does not exist at %s", cfg.Database, where)
		case codeInsufficientPriv:
			msg = fmt.Sprintf("user %q may not open a %sconnection to %s: %s", cfg.User, kind, where, pgErr.Message)
		default:
			return fmt.Errorf("%sconnection to PostgreSQL at %s refused: %w", kind, where, err)
		}
		return &ValidationError{Field: "dsn", Message: msg, Err: err}
	}
	return &ValidationError{Field: "dsn", Message: fmt.Sprintf("cannot reach PostgreSQL at %s: %s", where, reason(err)), Err: err}
}

// reason shortens a connection failure to one line: the network error if
// there is one (pgconn reports every attempt, one a line).
func reason(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Error()
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// closeConn closes a normal connection, bounded in time.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// walLevelError is the error for a database whose wal_level is not
// logical.
func walLevelError(db, where, level string) error {
	return &ValidationError{Field: "dsn", Message: fmt.Sprintf(
		"database %q at %s has wal_level=%s; logical replication needs wal_level=logical "+
			"(ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)", db, where, level)}
}

// tableInfo is what Check learns about one table.
type tableInfo struct {
	Table
	kind  string // pg_class.relkind
	ident string // pg_class.relreplident: d(efault), n(othing), f(ull), i(ndex)
	// hasKey reports whether the replica identity has columns: a primary
	// key for ident d, the chosen index for ident i.
	hasKey bool
}

// relkinds names pg_class.relkind values for messages.
var relkinds = map[string]string{
	"v": "a view", "m": "a materialized view", "f": "a foreign table", "S": "a sequence",
	"i": "an index", "I": "a partitioned index", "c": "a composite type", "t": "a TOAST table",
}

// checker verifies a stream's database on an open connection.
type checker struct {
	c     Config
	conn  *pgx.Conn
	db    string
	where string
}

func newChecker(ctx context.Context, c Config, conn *pgx.Conn) (*checker, error) {
	k := &checker{c: c, conn: conn, where: address(&conn.Config().Config)}
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&k.db); err != nil {
		return nil, fmt.Errorf("query database at %s: %w", k.where, err)
	}
	return k, nil
}

// check runs every check that needs only a normal connection, and
// returns the tables.
func (k *checker) check(ctx context.Context) ([]tableInfo, error) {
	var level string
	if err := k.conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return nil, fmt.Errorf("read wal_level of %s: %w", k.where, err)
	}
	if level != "logical" {
		return nil, walLevelError(k.db, k.where, level)
	}
	var user string
	var mayReplicate bool
	err := k.conn.QueryRow(ctx,
		"SELECT current_user::text, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user").
		Scan(&user, &mayReplicate)
	if err != nil {
		return nil, fmt.Errorf("read the role of the current user at %s: %w", k.where, err)
	}
	if !mayReplicate {
		return nil, &ValidationError{Field: "dsn", Message: fmt.Sprintf(
			"user %q may not use replication at %s: grant it with ALTER ROLE %s REPLICATION (or connect as a superuser)",
			user, k.where, quoteIdent(user))}
	}
	var infos []tableInfo
	for _, t := range k.c.tables() {
		info, err := k.table(ctx, t)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	if err := k.slot(ctx); err != nil {
		return nil, err
	}
	return infos, nil
}

// table checks that t exists, is a table, and can be published for the
// stream's events.
func (k *checker) table(ctx context.Context, t Table) (tableInfo, error) {
	info := tableInfo{Table: t}
	err := k.conn.QueryRow(ctx, `
SELECT c.relkind::text, c.relreplident::text,
       CASE c.relreplident
         WHEN 'd' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
         WHEN 'i' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
         ELSE c.relreplident = 'f'
       END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2`, t.Schema, t.Name).Scan(&info.kind, &info.ident, &info.hasKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return info, &ValidationError{Field: "tables", Message: fmt.Sprintf(
			"table %s does not exist in database %q at %s", t, k.db, k.where)}
	}
	if err != nil {
		return info, fmt.Errorf("look up table %s at %s: %w", t, k.where, err)
	}
	if info.kind != "r" && info.kind != "p" {
		what := relkinds[info.kind]
		if what == "" {
			what = "not a table"
		}
		return info, &ValidationError{Field: "tables", Message: fmt.Sprintf(
			"%s in database %q is %s: only tables can be streamed", t, k.db, what)}
	}
	needsKey := (k.c.publishes(Update) || k.c.publishes(Delete)) && !k.c.ReplicaIdentityFull
	if needsKey && !info.hasKey {
		return info, &ValidationError{Field: "tables", Message: fmt.Sprintf(
			"table %s has no primary key (nor another replica identity): published for updates and deletes, "+
				"PostgreSQL would refuse UPDATE and DELETE on it; add a primary key, set replicaIdentityFull, or stream inserts only", t)}
	}
	return info, nil
}

// slot checks that the stream's slot, if it exists, is a pgoutput slot
// of this database, and otherwise that the server has a free slot.
func (k *checker) slot(ctx context.Context) error {
	var plugin, db string
	err := k.conn.QueryRow(ctx,
		"SELECT coalesce(plugin::text, ''), coalesce(database::text, '') FROM pg_replication_slots WHERE slot_name = $1",
		k.c.SlotName()).Scan(&plugin, &db)
	switch {
	case err == nil:
		if db != k.db || plugin != "pgoutput" {
			return &ValidationError{Field: "name", Message: fmt.Sprintf(
				"replication slot %s at %s belongs to something else (database %q, plugin %q): choose another name",
				k.c.SlotName(), k.where, db, plugin)}
		}
		return nil
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("look up replication slot %s at %s: %w", k.c.SlotName(), k.where, err)
	}
	var used, maxSlots int
	err = k.conn.QueryRow(ctx,
		"SELECT (SELECT count(*) FROM pg_replication_slots)::int, current_setting('max_replication_slots')::int").
		Scan(&used, &maxSlots)
	if err != nil {
		return fmt.Errorf("count replication slots at %s: %w", k.where, err)
	}
	if used >= maxSlots {
		return &ValidationError{Field: "dsn", Message: fmt.Sprintf(
			"all %d replication slots of %s are in use (max_replication_slots): drop unused ones or raise the setting", maxSlots, k.where)}
	}
	return nil
}

// Check connects to the stream's database and verifies that it can serve
// the stream: the server is reachable and accepts the user, its wal_level
// is logical, the user may replicate (role attribute, and pg_hba.conf for
// a replication connection), each table exists and can be published for
// the stream's events, and a replication slot is available. Each error
// names the problem; those about the configuration are
// *ValidationError. Check changes nothing.
func Check(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	conn, err := connect(ctx, c.DSN)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	k, err := newChecker(ctx, c, conn)
	if err != nil {
		return err
	}
	if _, err := k.check(ctx); err != nil {
		return err
	}
	rc, err := replicationConnect(ctx, c)
	if err != nil {
		return err
	}
	defer closeReplication(rc)
	if _, err := pglogrepl.IdentifySystem(ctx, rc); err != nil {
		return fmt.Errorf("identify system over a replication connection to %s: %w", k.where, err)
	}
	return nil
}

// closeReplication closes a replication connection, bounded in time.
func closeReplication(conn *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// Setup creates the stream's publication (FOR TABLE the tables, WITH
// publish = the events) and its logical replication slot (pgoutput) if
// they are missing, and brings an existing publication's tables and
// events in line with c. It runs Check's checks first, and sets REPLICA
// IDENTITY FULL on the tables if c.ReplicaIdentityFull asks for it (it
// never resets it). Setup is idempotent. The slot starts at the moment
// it is created: changes committed before are not streamed.
func Setup(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	conn, err := connect(ctx, c.DSN)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	k, err := newChecker(ctx, c, conn)
	if err != nil {
		return err
	}
	infos, err := k.check(ctx)
	if err != nil {
		return err
	}
	if c.ReplicaIdentityFull {
		for _, t := range infos {
			if t.ident == "f" {
				continue
			}
			if _, err := conn.Exec(ctx, "ALTER TABLE "+t.quoted()+" REPLICA IDENTITY FULL"); err != nil {
				return fmt.Errorf("set replica identity full on %s: %w", t.Table, err)
			}
		}
	}
	// The publication comes first: pgoutput looks it up as of each
	// change it decodes, so it must be older than the slot.
	if err := k.publication(ctx); err != nil {
		return err
	}
	return k.createSlot(ctx)
}

// publication creates or updates the stream's publication.
func (k *checker) publication(ctx context.Context) error {
	name := k.c.PublicationName()
	var version int
	if err := k.conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("read server version of %s: %w", k.where, err)
	}
	var tables []string
	for _, t := range k.c.tables() {
		tables = append(tables, t.quoted())
	}
	with := "publish = " + quoteLiteral(strings.Join(k.c.events(), ", "))
	if version >= 130000 {
		// Changes of a partitioned table's partitions come as the
		// table's own.
		with += ", publish_via_partition_root = true"
	}
	var exists bool
	if err := k.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up publication %s at %s: %w", name, k.where, err)
	}
	if !exists {
		_, err := k.conn.Exec(ctx, "CREATE PUBLICATION "+quoteIdent(name)+" FOR TABLE "+strings.Join(tables, ", ")+" WITH ("+with+")")
		if err == nil {
			return nil
		}
		if pgCode(err) != codeDuplicateObject {
			return fmt.Errorf("create publication %s at %s: %w", name, k.where, err)
		}
	}
	same, err := k.samePublication(ctx)
	if err != nil || same {
		return err
	}
	if _, err := k.conn.Exec(ctx, "ALTER PUBLICATION "+quoteIdent(name)+" SET TABLE "+strings.Join(tables, ", ")); err != nil {
		return fmt.Errorf("update the tables of publication %s at %s: %w", name, k.where, err)
	}
	if _, err := k.conn.Exec(ctx, "ALTER PUBLICATION "+quoteIdent(name)+" SET ("+with+")"); err != nil {
		return fmt.Errorf("update the events of publication %s at %s: %w", name, k.where, err)
	}
	return nil
}

// samePublication reports whether the existing publication already has
// the stream's tables and events.
func (k *checker) samePublication(ctx context.Context) (bool, error) {
	name := k.c.PublicationName()
	var ins, upd, del, all bool
	err := k.conn.QueryRow(ctx, "SELECT pubinsert, pubupdate, pubdelete, puballtables FROM pg_publication WHERE pubname = $1", name).
		Scan(&ins, &upd, &del, &all)
	if err != nil {
		return false, fmt.Errorf("read publication %s at %s: %w", name, k.where, err)
	}
	if all || ins != k.c.publishes(Insert) || upd != k.c.publishes(Update) || del != k.c.publishes(Delete) {
		return false, nil
	}
	rows, err := k.conn.Query(ctx, "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1", name)
	if err != nil {
		return false, fmt.Errorf("read the tables of publication %s at %s: %w", name, k.where, err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Table, error) {
		var t Table
		err := r.Scan(&t.Schema, &t.Name)
		return t, err
	})
	if err != nil {
		return false, fmt.Errorf("read the tables of publication %s at %s: %w", name, k.where, err)
	}
	want := k.c.tables()
	less := func(a, b Table) int { return strings.Compare(a.String(), b.String()) }
	slices.SortFunc(got, less)
	slices.SortFunc(want, less)
	return slices.Equal(got, want), nil
}

// createSlot creates the stream's slot unless it exists (check verified
// that an existing one is a pgoutput slot of this database).
func (k *checker) createSlot(ctx context.Context) error {
	name := k.c.SlotName()
	var exists bool
	if err := k.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up replication slot %s at %s: %w", name, k.where, err)
	}
	if exists {
		return nil
	}
	_, err := k.conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", name)
	if err != nil && pgCode(err) != codeDuplicateObject {
		return fmt.Errorf("create replication slot %s at %s: %w", name, k.where, err)
	}
	return nil
}

// Teardown drops the stream's slot and publication; what is already gone
// is skipped. A slot still in use (by a Run elsewhere, or one not yet
// stopped) is released first by terminating the walsender serving it;
// that Run then fails with ErrNotSetUp. Teardown needs only the DSN and
// the name of c to be valid.
func Teardown(ctx context.Context, c Config) error {
	if strings.TrimSpace(c.DSN) == "" {
		return invalid("dsn", "the database needs a DSN (postgres://user@host:5432/db or host=... dbname=...)")
	}
	if err := ValidateName(c.Name); err != nil {
		return &ValidationError{Field: "name", Message: err.Error(), Err: err}
	}
	conn, err := connect(ctx, c.DSN)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	where := address(&conn.Config().Config)
	if err := dropSlot(ctx, conn, c.SlotName(), where); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+quoteIdent(c.PublicationName())); err != nil {
		return fmt.Errorf("drop publication %s at %s: %w", c.PublicationName(), where, err)
	}
	return nil
}

// dropSlot drops a replication slot, terminating the process that holds
// it if need be.
func dropSlot(ctx context.Context, conn *pgx.Conn, name, where string) error {
	deadline := time.Now().Add(slotReleaseWait)
	for {
		var pid *int32
		err := conn.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", name).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("look up replication slot %s at %s: %w", name, where, err)
		}
		if pid != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("replication slot %s at %s is still in use by process %d", name, where, *pid)
			}
			if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1)", *pid); err != nil {
				return fmt.Errorf("release replication slot %s at %s from process %d: %w", name, where, *pid, err)
			}
			if err := sleep(ctx, pollEvery); err != nil {
				return err
			}
			continue
		}
		_, err = conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", name)
		switch pgCode(err) {
		case "":
			if err != nil {
				return fmt.Errorf("drop replication slot %s at %s: %w", name, where, err)
			}
			return nil
		case codeUndefinedObject:
			return nil
		case codeObjectInUse:
			// Taken again in between (a Run reconnecting): release
			// it again.
			continue
		default:
			return fmt.Errorf("drop replication slot %s at %s: %w", name, where, err)
		}
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
