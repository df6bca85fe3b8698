package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gustfaas/gust/internal/trigger/postgres"
)

// TestPostgresRestartMidStream restarts a private PostgreSQL server while
// a stream delivers and rows keep coming: the stream reconnects by itself
// and no change is lost. Each mode stops the server its own way: "fast"
// cleanly (a shutdown checkpoint), "immediate" as a crash (recovery on
// start, the slot back at its last saved position).
func TestPostgresRestartMidStream(t *testing.T) {
	pg := startCluster(t)
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) { testRestart(t, pg, mode) })
	}
	t.Run("shutdown while a batch keeps failing", func(t *testing.T) { testStuckShutdown(t, pg) })
}

// testStuckShutdown: a fast shutdown waits until replication clients
// confirm what they were sent, so a stream whose batch keeps failing must
// let its connection go, or the server never stops. After the restart the
// batch comes again and, once the function works, is delivered.
func testStuckShutdown(t *testing.T, pg *cluster) {
	dsn := pg.dsn()
	admin := connect(t, dsn)
	table := createTable(t, admin, "id bigint PRIMARY KEY")
	c := postgres.Config{DSN: dsn, Tables: []string{table}, Name: uniqueName(t, "stuck_"), BatchSize: 10}
	setup(t, c)
	var failing atomic.Bool
	failing.Store(true)
	var attempts atomic.Int32
	var mu sync.Mutex
	var delivered []int64
	deliver := func(ctx context.Context, b postgres.Batch) error {
		if failing.Load() {
			attempts.Add(1)
			return errors.New("the function cannot run")
		}
		mu.Lock()
		delivered = append(delivered, ids(b.Changes)...)
		mu.Unlock()
		return nil
	}
	s := open(t, c, fastRetry)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			s.Run(ctx, deliver)
		}
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitConnected(t, s)
	exec(t, admin, "INSERT INTO "+table+" SELECT generate_series(1, 5)")
	admin.Close(context.Background())
	waitFor(t, 20*time.Second, "the batch to fail", func() bool { return attempts.Load() > 0 })

	// pg_ctl gives up after 30 s: a stream holding the connection makes
	// the stop fail, and with it the test.
	if err := pg.stop("fast"); err != nil {
		t.Fatalf("a fast shutdown with a failing batch: %v", err)
	}
	pg.start(t)
	failing.Store(false)
	waitFor(t, 30*time.Second, "the batch after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) >= 5
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(delivered[:5], []int64{1, 2, 3, 4, 5}) {
		t.Errorf("delivered %v, want 1..5 in order", delivered)
	}
}

func testRestart(t *testing.T, pg *cluster, mode string) {
	const (
		rows      = 600
		perTx     = 3
		holdAt    = 150 // changes delivered when a batch is held across the stop
		backlogAt = 250 // rows inserted when the server stops
		gateAt    = 400 // rows not inserted before the restart is over
		deadline  = 45 * time.Second
	)
	dsn := pg.dsn()
	admin := connect(t, dsn)
	table := createTable(t, admin, "id bigint PRIMARY KEY")
	c := postgres.Config{DSN: dsn, Tables: []string{table}, Name: uniqueName(t, "restart_"), BatchSize: 10}
	setup(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	// The batch that reaches holdAt changes waits in deliver while the
	// server goes down. A fast shutdown waits for the stream to confirm
	// what was sent to it, so the batch is released once the server
	// refuses connections; after an immediate one it ends on a broken
	// connection, and changes not confirmed to the slot may come again.
	var (
		mu        sync.Mutex
		delivered []int64
	)
	holding, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	heldAt := 0 // changes delivered with the held batch, set before holding closes
	deliver := func(ctx context.Context, b postgres.Batch) error {
		mu.Lock()
		delivered = append(delivered, ids(b.Changes)...)
		n := len(delivered)
		mu.Unlock()
		if n >= holdAt && held.CompareAndSwap(false, true) {
			heldAt = n
			close(holding)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}
	distinct := func() int {
		mu.Lock()
		defer mu.Unlock()
		seen := make(map[int64]bool, len(delivered))
		for _, id := range delivered {
			seen[id] = true
		}
		return len(seen)
	}

	// Run, restarted when it returns, as the trigger manager does; the
	// stream should not need that (a lost connection is retried inside
	// Run), so each return is an error.
	s := open(t, c, fastRetry)
	runCtx, stopRun := context.WithCancel(context.Background())
	var runs sync.WaitGroup
	runs.Go(func() {
		for runCtx.Err() == nil {
			if err := s.Run(runCtx, deliver); err != nil {
				t.Errorf("Run returned %v during the restart; want it to reconnect by itself", err)
				time.Sleep(fastRetry.RetryMin)
			}
		}
	})
	t.Cleanup(func() {
		stopRun()
		runs.Wait()
	})
	waitConnected(t, s)

	// One inserter, rows in id order (so ids follow commit order), which
	// waits at gateAt for the restart to be over and retries a
	// transaction the stopping server broke (ON CONFLICT: one that
	// committed after all is not inserted twice).
	restarted := make(chan struct{})
	var inserted atomic.Int64
	insertErr := make(chan error, 1)
	go func() { insertErr <- insertRows(ctx, dsn, table, rows, perTx, gateAt, restarted, &inserted) }()

	select {
	case <-holding:
	case err := <-insertErr:
		t.Fatalf("inserter stopped before %d changes were delivered: %v", holdAt, err)
	case <-ctx.Done():
		t.Fatalf("%d changes not delivered within %s (%d delivered, %d rows inserted; status %+v)",
			holdAt, deadline, distinct(), inserted.Load(), s.Status())
	}
	// Rows keep coming while the batch is held: the server goes down
	// with changes sent to the stream or waiting in the slot, none of
	// them confirmed.
	waitFor(t, 20*time.Second, fmt.Sprintf("%d rows inserted", backlogAt), func() bool { return inserted.Load() >= backlogAt })
	before := inserted.Load()
	// Refusing connections, the server is going down and its backends
	// (the inserter's) are gone.
	stopped := make(chan error, 1)
	go func() { stopped <- pg.stop(mode) }()
	waitFor(t, 20*time.Second, "the server to refuse connections", func() bool { return !pg.accepting() })
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the stream to notice the server is gone", func() bool { return !s.Status().Connected })
	pg.start(t)
	close(restarted)
	waitFor(t, 20*time.Second, "the stream to reconnect", func() bool { return s.Status().Connected })

	if err := <-insertErr; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, fmt.Sprintf("all %d changes", rows), func() bool { return distinct() >= rows })
	stopRun()
	runs.Wait()

	// Every row at least once; the first delivery of each in commit
	// order (a change coming again is one already delivered).
	mu.Lock()
	got := slices.Clone(delivered)
	mu.Unlock()
	seen := make(map[int64]bool, rows)
	var last int64
	again := 0
	for i, id := range got {
		switch {
		case seen[id]:
			again++
		case id < last:
			t.Fatalf("delivery %d: id %d first delivered after id %d: not in commit order", i, id, last)
		default:
			seen[id], last = true, id
		}
	}
	for id := int64(1); id <= rows; id++ {
		if !seen[id] {
			t.Errorf("id %d never delivered", id)
		}
	}
	if n := s.Sessions(); n < 2 {
		t.Errorf("%d streaming connections, want at least 2 (one before the restart, one after)", n)
	}
	t.Logf("%s stop with %d rows inserted and %d changes delivered: %d deliveries, %d of them again, %d connections",
		mode, before, heldAt, len(got), again, s.Sessions())
}

// insertRows inserts ids 1..rows into table in transactions of perTx
// rows, reconnecting and retrying while the server is away, and waits
// for gate to close before inserting an id above gateAt.
func insertRows(ctx context.Context, dsn, table string, rows, perTx, gateAt int, gate <-chan struct{}, inserted *atomic.Int64) error {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	var lastErr error
	for first := 1; first <= rows; {
		if first+perTx-1 > gateAt {
			select {
			case <-gate:
			case <-ctx.Done():
				return fmt.Errorf("inserter: waiting for the restart: %w", ctx.Err())
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("inserter: row %d not inserted (last error: %v): %w", first, lastErr, ctx.Err())
		}
		if conn == nil {
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				lastErr = err
				time.Sleep(20 * time.Millisecond)
				continue
			}
			conn = c
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var b pgx.Batch
			for id := first; id < first+perTx && id <= rows; id++ {
				b.Queue("INSERT INTO "+table+" VALUES ($1) ON CONFLICT DO NOTHING", id)
			}
			return tx.SendBatch(ctx, &b).Close()
		})
		if err != nil {
			lastErr = err
			conn.Close(context.Background())
			conn = nil
			continue
		}
		first += perTx
		inserted.Store(int64(min(first-1, rows)))
	}
	return nil
}

// cluster is a PostgreSQL server of the test's own, on a free port, so
// that it can be stopped and started without disturbing the machine's.
type cluster struct {
	bin  string // directory of the PostgreSQL programs
	data string // data directory
	port int
	// runAs, when set, runs the programs as that user: PostgreSQL
	// refuses to run as root.
	runAs string
}

// startCluster creates and starts a private cluster (wal_level=logical,
// 127.0.0.1 on a free port, its socket in its directory), which is
// stopped and removed when the test ends. Missing PostgreSQL programs
// fail the test (skip it with -short).
func startCluster(t *testing.T) *cluster {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		if testing.Short() {
			t.Skipf("no PostgreSQL server programs: %v", err)
		}
		t.Fatalf("this test runs a PostgreSQL server of its own and needs its programs (initdb, pg_ctl, postgres): %v; "+
			"install PostgreSQL (apt-get install postgresql) or run with -short to skip it", err)
	}
	pg := &cluster{bin: bin, port: closedPort(t)}
	// The directory is the postgres user's when the test runs as root,
	// so it is not made by t.TempDir, whose parent only root may enter.
	dir, err := os.MkdirTemp("", "gust-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, the test runs PostgreSQL as user postgres, which PostgreSQL's packages create: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		pg.runAs = u.Username
	}
	pg.data = filepath.Join(dir, "data")
	pg.run(t, "initdb", "-D", pg.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
fsync = off
full_page_writes = off
shared_buffers = 16MB
`, pg.port, dir)
	// Appending keeps the file's owner (root may write it anyway).
	f, err := os.OpenFile(filepath.Join(pg.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Immediate: the cluster is thrown away.
		pg.command("pg_ctl", "stop", "-D", pg.data, "-m", "immediate", "-w").Run()
	})
	pg.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.dsnOf("postgres"))
	if err != nil {
		t.Fatalf("connect to the private cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE test"); err != nil {
		t.Fatal(err)
	}
	return pg
}

// postgresBin finds the directory of the PostgreSQL server programs: the
// newest /usr/lib/postgresql/*/bin (Debian and Ubuntu), else pg_config
// --bindir, else the PATH.
func postgresBin() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
				return false
			}
		}
		return true
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		switch va, vb := version(a), version(b); {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if out, err := osexec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d, nil
		}
	}
	if p, err := osexec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); has(d) {
			return d, nil
		}
	}
	return "", errors.New("no directory with initdb, pg_ctl and postgres in /usr/lib/postgresql/*/bin, pg_config --bindir or the PATH")
}

// command returns the command running a PostgreSQL program as the
// cluster's user.
func (pg *cluster) command(name string, args ...string) *osexec.Cmd {
	path := filepath.Join(pg.bin, name)
	var cmd *osexec.Cmd
	if pg.runAs != "" {
		cmd = osexec.Command("runuser", append([]string{"-u", pg.runAs, "--", path}, args...)...)
	} else {
		cmd = osexec.Command(path, args...)
	}
	// A directory the user may enter (not the package's, which may be
	// root's alone).
	cmd.Dir = os.TempDir()
	return cmd
}

// run runs a program, failing the test if it fails.
func (pg *cluster) run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := pg.command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// start starts the server and waits until it accepts connections.
func (pg *cluster) start(t *testing.T) {
	t.Helper()
	log := filepath.Join(filepath.Dir(pg.data), "server.log")
	if out, err := pg.command("pg_ctl", "start", "-D", pg.data, "-l", log, "-w", "-t", "60").CombinedOutput(); err != nil {
		logText, _ := os.ReadFile(log)
		t.Fatalf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, logText)
	}
}

// stop stops the server in mode (fast, immediate) and waits until it is
// down.
func (pg *cluster) stop(mode string) error {
	if out, err := pg.command("pg_ctl", "stop", "-D", pg.data, "-m", mode, "-w", "-t", "30").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	return nil
}

// accepting reports whether the server accepts a connection.
func (pg *cluster) accepting() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.dsnOf("postgres"))
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

// dsn is the test database of the cluster.
func (pg *cluster) dsn() string { return pg.dsnOf("test") }

func (pg *cluster) dsnOf(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, db)
}
