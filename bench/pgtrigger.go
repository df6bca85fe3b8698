package main

// The pgtrigger scenario: end-to-end latency of a PostgreSQL trigger,
// from a committed row to the start of the invocation it triggers,
// through the node's trigger manager and a real logical replication
// stream (internal/trigger/postgres).
//
// It creates a fresh database with one table, deploys examples/hello
// (an SDK function that needs no grants) as pgtrigger-hello, and puts a
// trigger on the table's inserts with the settings that deliver soonest:
// one change per batch and no batch window. Rows are then inserted one
// at a time, each in its own transaction (autocommit), and the next one
// only once the previous row's invocation has been seen and a random
// 20-50 ms pause has passed, so that every commit is measured alone, not
// queued behind another.
//
// A row's commit time is the moment its INSERT returned to the client
// (the COMMIT's answer); its start time is the Start of the engine record
// of the invocation (when the function began running in an instance).
// The record carries no payload, so rows and invocations are matched by
// order: the trigger delivers in commit order, one batch at a time, one
// change per batch, so the i-th invocation is the i-th row. That is
// checked: exactly one invocation per row, none left over.
//
// A second, shorter pass runs the same rows with a 10 ms batch window
// (and the default batch size): a lone change then waits the whole
// window, and the difference between the two medians is the window's
// contribution.
//
// The database is reached at GUST_BENCH_POSTGRES (a postgres:// URL of
// a superuser or a user that may create databases and replicate; default
// postgres://postgres@127.0.0.1:5432/postgres, as .ci/postgres.sh sets
// it up). The trigger (its replication slot and publication), the
// function and the database are removed at the end, on error too.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/engine"
	"github.com/gustfaas/gust/internal/trigger/postgres"
)

const (
	// pgDefaultDSN is the server the scenario uses unless
	// GUST_BENCH_POSTGRES names another.
	pgDefaultDSN = "postgres://postgres@127.0.0.1:5432/postgres"
	// pgRows is how many rows are measured without a window (fewer when
	// -duration runs out first), pgWindowRows with one.
	pgRows       = 200
	pgWindowRows = 50
	// pgWarmup rows go through first, unmeasured: the stream connects and
	// the function's instance starts.
	pgWarmup = 10
	// pgWindowMs is the batch window of the second pass.
	pgWindowMs = 10
	// pgGapMin and pgGapMax bound the pause between an invocation and the
	// next commit.
	pgGapMin, pgGapMax = 20 * time.Millisecond, 50 * time.Millisecond
	// pgFunction and pgTrigger name what the scenario deploys.
	pgFunction = "pgtrigger-hello"
	pgTrigger  = "bench-pgtrigger"
)

// pgInvocation is what the scenario keeps of an engine record.
type pgInvocation struct {
	arrived time.Time // the invocation reached the engine
	start   time.Time // the function began running
	cold    bool
	outcome engine.Outcome
}

// pgSample is one measured row.
type pgSample struct {
	sent   time.Time // the INSERT was about to be sent
	commit time.Time // the INSERT (its COMMIT) returned to the client
	inv    pgInvocation
}

func (s pgSample) toStart() time.Duration   { return s.inv.start.Sub(s.commit) }
func (s pgSample) fromSent() time.Duration  { return s.inv.start.Sub(s.sent) }
func (s pgSample) roundTrip() time.Duration { return s.commit.Sub(s.sent) }
func (s pgSample) toArrival() time.Duration { return s.inv.arrived.Sub(s.commit) }
func (s pgSample) queued() time.Duration    { return s.inv.start.Sub(s.inv.arrived) }

func (b *bench) pgtrigger(ctx context.Context) (rows []row, err error) {
	load0 := loadAvg()
	admin, dsn, dbName, err := pgCreateDatabase(ctx)
	if err != nil {
		return nil, err
	}
	// Cleanup, in reverse order of the defers: the trigger (its slot
	// and publication), the function, then the database. A cleanup
	// failure is reported unless the scenario already failed.
	defer func() {
		if cerr := pgDropDatabase(admin, dbName); cerr != nil {
			fmt.Fprintf(b.log, "bench: pgtrigger: cleanup: %v\n", cerr)
			err = cmp.Or(err, cerr)
		}
	}()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", dbName, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE bench_rows (id bigint PRIMARY KEY, note text NOT NULL)"); err != nil {
		return nil, fmt.Errorf("create table: %w", err)
	}

	if _, err := b.c.CreateFunction(ctx, api.CreateFunctionRequest{FunctionName: pgFunction, Runtime: "wasm", Code: &api.FunctionCode{ZipFile: b.hello}}); err != nil {
		return nil, fmt.Errorf("deploy %s: %w", pgFunction, err)
	}
	defer func() {
		if cerr := b.c.DeleteFunction(context.Background(), pgFunction); cerr != nil {
			err = cmp.Or(err, fmt.Errorf("delete function %s: %w", pgFunction, cerr))
		}
	}()

	// Every record of the function, in the order the engine reports
	// them (the trigger invokes one batch at a time).
	invs := make(chan pgInvocation, 4096)
	tap := func(r *engine.Record) {
		if r.Function != pgFunction {
			return
		}
		select {
		case invs <- pgInvocation{arrived: r.Start.Add(-r.QueueWait), start: r.Start, cold: r.Cold, outcome: r.Outcome}:
		default: // cannot happen: at most one record per row, and rows wait for them
		}
	}
	b.tap.Store(&tap)
	defer b.tap.Store(nil)

	trig := api.Trigger{Name: pgTrigger, Function: pgFunction, Postgres: &api.PostgresSource{
		DSN: dsn, Tables: []string{"public.bench_rows"}, Events: []string{"insert"},
		BatchSize: 1, BatchWindowMs: 0, MaxAttempts: 1,
	}}
	created, err := b.c.CreateTrigger(ctx, trig)
	if err != nil {
		return nil, fmt.Errorf("create trigger: %w", err)
	}
	slot := created.Resource // the slot and the publication are both named so
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if cerr := b.c.DeleteTrigger(dctx, pgTrigger); cerr != nil {
			err = cmp.Or(err, fmt.Errorf("delete trigger %s: %w", pgTrigger, cerr))
			return
		}
		if left := pgLeftovers(dctx, admin, slot, dsn); left != "" {
			err = cmp.Or(err, fmt.Errorf("trigger %s deleted but %s", pgTrigger, left))
		}
	}()

	m := pgMeasurer{conn: conn, invs: invs, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))}
	// The first row waits for the stream to connect.
	if _, err := m.measure(ctx, pgWarmup, time.Time{}, 30*time.Second); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	deadline := time.Now().Add(b.o.duration)
	plain, err := m.measure(ctx, pgRows, deadline, 10*time.Second)
	if err != nil {
		return nil, err
	}

	// The second pass: the default batch size with a window.
	trig.Postgres.BatchSize, trig.Postgres.BatchWindowMs = 0, pgWindowMs
	if _, err := b.c.PutTrigger(ctx, trig); err != nil {
		return nil, fmt.Errorf("put trigger with a window: %w", err)
	}
	if err := pgWaitRunning(ctx, b, trig); err != nil {
		return nil, err
	}
	if _, err := m.measure(ctx, pgWarmup/2, time.Time{}, 30*time.Second); err != nil {
		return nil, fmt.Errorf("warm-up with a window: %w", err)
	}
	windowed, err := m.measure(ctx, pgWindowRows, time.Time{}, 10*time.Second)
	if err != nil {
		return nil, err
	}
	// Nothing delivered twice: no invocation without its row.
	select {
	case inv := <-invs:
		return nil, fmt.Errorf("an invocation with no row of its own (started %s): rows and invocations out of step", inv.start.Format(time.RFC3339Nano))
	case <-time.After(500 * time.Millisecond):
	}

	toStart := pgDurations(plain, pgSample.toStart)
	fromSent := pgDurations(plain, pgSample.fromSent)
	roundTrip := pgDurations(plain, pgSample.roundTrip)
	toArrival := pgDurations(plain, pgSample.toArrival)
	queued := pgDurations(plain, pgSample.queued)
	wStart := pgDurations(windowed, pgSample.toStart)
	cold, early := 0, 0
	for _, s := range plain {
		if s.inv.cold {
			cold++
		}
		if s.toStart() < 0 {
			early++
		}
	}
	ms := func(d time.Duration) float64 { return round2(us(d) / 1000) }
	note := fmt.Sprintf("%d rows, one per transaction, %s-%s apart; batch size 1, no window; %d cold starts; load average %s → %s",
		len(plain), pgGapMin, pgGapMax, cold, load0, loadAvg())
	return []row{
		{"pgtrigger", "commit → function start p50", ms(percentile(toStart, .5)), "ms", "< 20 ms", note},
		{"pgtrigger", "commit → function start p90", ms(percentile(toStart, .9)), "ms", "", ""},
		{"pgtrigger", "commit → function start p99", ms(percentile(toStart, .99)), "ms", "", ""},
		{"pgtrigger", "commit → function start max", ms(toStart[len(toStart)-1]), "ms", "", ""},
		{"pgtrigger", "commit → function start min", ms(toStart[0]), "ms", "", fmt.Sprintf("%d of %d started before the COMMIT's answer reached the client", early, len(plain))},
		{"pgtrigger", "INSERT sent → function start p50", ms(percentile(fromSent, .5)), "ms", "", "an upper bound: the commit happens during the INSERT's round trip"},
		{"pgtrigger", "INSERT sent → function start p99", ms(percentile(fromSent, .99)), "ms", "", ""},
		{"pgtrigger", "INSERT round trip (autocommit) p50", ms(percentile(roundTrip, .5)), "ms", "", ""},
		{"pgtrigger", "commit → invocation reaches the engine p50", ms(percentile(toArrival, .5)), "ms", "", "replication, decoding and the trigger's batching"},
		{"pgtrigger", "commit → invocation reaches the engine p99", ms(percentile(toArrival, .99)), "ms", "", ""},
		{"pgtrigger", "engine: arrival → function start p50", ms(percentile(queued, .5)), "ms", "", "taking a warm instance"},
		{"pgtrigger", "engine: arrival → function start p99", ms(percentile(queued, .99)), "ms", "", ""},
		{"pgtrigger", fmt.Sprintf("commit → function start p50, %d ms batch window", pgWindowMs), ms(percentile(wStart, .5)), "ms", "", fmt.Sprintf("%d rows, default batch size (%d)", len(windowed), postgres.DefaultBatchSize)},
		{"pgtrigger", fmt.Sprintf("commit → function start p99, %d ms batch window", pgWindowMs), ms(percentile(wStart, .99)), "ms", "", ""},
		{"pgtrigger", "batch window's contribution p50", ms(percentile(wStart, .5) - percentile(toStart, .5)), "ms", "", "a lone change waits the whole window"},
	}, nil
}

// pgMeasurer inserts rows and matches them with invocations.
type pgMeasurer struct {
	conn *pgx.Conn
	invs <-chan pgInvocation
	rnd  *rand.Rand
	next int64 // the next row's id
}

// measure inserts n rows (fewer if deadline passes first; a zero
// deadline does not), each after the previous row's invocation and a
// pause, and returns them with their invocations. wait bounds the wait
// for each invocation.
func (m *pgMeasurer) measure(ctx context.Context, n int, deadline time.Time, wait time.Duration) ([]pgSample, error) {
	var out []pgSample
	for i := 0; i < n && (deadline.IsZero() || time.Now().Before(deadline)); i++ {
		m.next++
		id := m.next
		sent := time.Now()
		if _, err := m.conn.Exec(ctx, "INSERT INTO bench_rows (id, note) VALUES ($1, $2)", id, fmt.Sprintf("row-%d", id)); err != nil {
			return nil, fmt.Errorf("insert row %d: %w", id, err)
		}
		s := pgSample{sent: sent, commit: time.Now()}
		t := time.NewTimer(wait)
		select {
		case s.inv = <-m.invs:
			t.Stop()
		case <-t.C:
			return nil, fmt.Errorf("row %d: no invocation within %s", id, wait)
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		if s.inv.outcome != engine.Success {
			return nil, fmt.Errorf("row %d: invocation outcome %v", id, s.inv.outcome)
		}
		if s.inv.arrived.Before(sent) {
			// It belongs to an earlier row: the order matching is wrong.
			return nil, fmt.Errorf("row %d: an invocation that arrived %s before the row was sent: rows and invocations out of step", id, sent.Sub(s.inv.arrived))
		}
		out = append(out, s)
		time.Sleep(pgGapMin + time.Duration(m.rnd.Int64N(int64(pgGapMax-pgGapMin))))
	}
	if len(out) == 0 {
		return nil, errors.New("no row measured (is -duration too short?)")
	}
	return out, nil
}

// pgDurations returns one latency of each sample, sorted.
func pgDurations(ss []pgSample, of func(pgSample) time.Duration) []time.Duration {
	ds := make([]time.Duration, 0, len(ss))
	for _, s := range ss {
		ds = append(ds, of(s))
	}
	sortD(ds)
	return ds
}

// pgWaitRunning waits until the node runs the trigger as t defines it.
func pgWaitRunning(ctx context.Context, b *bench, t api.Trigger) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := b.c.GetTrigger(ctx, t.Name)
		if err != nil {
			return err
		}
		if s.State == "running" && s.Postgres != nil && s.Postgres.BatchSize == t.Postgres.BatchSize && s.Postgres.BatchWindowMs == t.Postgres.BatchWindowMs {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("trigger %s not running as defined after 30 s: state %q, error %q", t.Name, s.State, s.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pgCreateDatabase creates a database of its own for the scenario and
// returns an admin connection (to the server's default database), the
// new database's DSN and its name.
func pgCreateDatabase(ctx context.Context) (*pgx.Conn, string, string, error) {
	base := cmp.Or(os.Getenv("GUST_BENCH_POSTGRES"), pgDefaultDSN)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, "", "", fmt.Errorf("GUST_BENCH_POSTGRES %q: want a postgres:// URL", base)
	}
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return nil, "", "", fmt.Errorf("PostgreSQL at %s (bash .ci/postgres.sh sets it up): %w", u.Redacted(), err)
	}
	var level string
	if err := admin.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil || level != "logical" {
		admin.Close(ctx)
		return nil, "", "", fmt.Errorf("PostgreSQL at %s: wal_level is %q, not logical (%v)", u.Redacted(), level, err)
	}
	name := fmt.Sprintf("gust_bench_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		return nil, "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	return admin, u.String(), name, nil
}

// pgLeftovers reports a replication slot or publication named slot that
// is still there, or "" when both are gone.
func pgLeftovers(ctx context.Context, admin *pgx.Conn, slot, dsn string) string {
	var left []string
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&n); err != nil {
		return "its replication slot could not be looked up: " + err.Error()
	} else if n > 0 {
		left = append(left, "replication slot "+slot+" remains")
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "its publication could not be looked up: " + err.Error()
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_publication WHERE pubname = $1", slot).Scan(&n); err != nil {
		return "its publication could not be looked up: " + err.Error()
	} else if n > 0 {
		left = append(left, "publication "+slot+" remains")
	}
	return strings.Join(left, ", ")
}

// pgDropDatabase drops the scenario's database, and any replication
// slot still in it (which would keep it from being dropped), then closes
// admin.
func pgDropDatabase(admin *pgx.Conn, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer admin.Close(ctx)
	var errs []error
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL", name); err != nil {
		errs = append(errs, fmt.Errorf("release the slots left in %s: %w", name, err))
	}
	for range 50 { // a terminated walsender takes a moment to let go
		var active int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE database = $1 AND active", name).Scan(&active); err != nil || active == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", name); err != nil {
		errs = append(errs, fmt.Errorf("drop the slots left in %s: %w", name, err))
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		errs = append(errs, fmt.Errorf("drop database %s: %w", name, err))
	}
	return errors.Join(errs...)
}

// loadAvg is the one-minute load average, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
