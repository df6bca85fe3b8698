package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gustfaas/gust/internal/trigger/postgres"
)

// sharedDSN is the machine's PostgreSQL (wal_level=logical, set by
// .ci/postgres.sh), shared with other test packages: tests make their own
// tables, slots and publications, with unique names, and drop them.
const sharedDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// fastRetry keeps the backoffs of tests short.
var fastRetry = postgres.Options{RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// uniqueName returns prefix followed by random hex: a fresh table or
// stream name.
func uniqueName(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// connect opens a normal connection to dsn, closed when the test ends.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// exec runs SQL statements, failing the test on error.
func exec(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// createTable creates public.<unique name> with the given columns, and
// drops it when the test ends. It returns the table's name.
func createTable(t testing.TB, conn *pgx.Conn, columns string) string {
	t.Helper()
	name := uniqueName(t, "gust_test_")
	exec(t, conn, fmt.Sprintf("CREATE TABLE public.%s (%s)", name, columns))
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP TABLE IF EXISTS public."+name)
	})
	return name
}

// setup sets the stream of c up, and tears it down when the test ends.
func setup(t testing.TB, c postgres.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := postgres.Teardown(ctx, c); err != nil {
			t.Errorf("Teardown: %v", err)
		}
	})
	if err := postgres.Setup(ctx, c); err != nil {
		t.Fatalf("Setup: %v", err)
	}
}

// open returns the stream of c with the test's options.
func open(t testing.TB, c postgres.Config, o postgres.Options) *postgres.Stream {
	t.Helper()
	s, err := postgres.Open(c, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// recorder keeps what Run delivered.
type recorder struct {
	mu      sync.Mutex
	batches []postgres.Batch
	// fail, if set, decides whether a batch fails.
	fail func(b postgres.Batch) error
}

func (r *recorder) deliver(_ context.Context, b postgres.Batch) error {
	r.mu.Lock()
	r.batches = append(r.batches, b)
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		return fail(b)
	}
	return nil
}

// changes returns every change delivered by a successful batch, in
// delivery order.
func (r *recorder) changes() []postgres.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []postgres.Change
	for _, b := range r.batches {
		out = append(out, b.Changes...)
	}
	return out
}

func (r *recorder) count() int { return len(r.changes()) }

func (r *recorder) allBatches() []postgres.Batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

// runner is a Run in the background.
type runner struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // what Run returned, once done is closed
}

// run runs s in the background until stop or the test's end.
func run(t testing.TB, s *postgres.Stream, deliver func(context.Context, postgres.Batch) error) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = s.Run(ctx, deliver)
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels Run and returns what it returned.
func (r *runner) stop() error {
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(20 * time.Second):
		return errors.New("Run did not return within 20s of its context ending")
	}
}

// wait waits for Run to return by itself, and returns what it returned.
func (r *runner) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		t.Fatalf("Run did not return within %s", timeout)
		return nil
	}
}

// waitConnected waits until s streams.
func waitConnected(t testing.TB, s *postgres.Stream) {
	t.Helper()
	waitFor(t, 20*time.Second, "the stream to connect", func() bool { return s.Status().Connected })
}

// closedPort returns a local TCP port that nothing listens on.
func closedPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// ids returns the "id" of each change's row (New, or Old for a delete).
func ids(cs []postgres.Change) []int64 {
	var out []int64
	for _, c := range cs {
		row := c.New
		if row == nil {
			row = c.Old
		}
		id, _ := row["id"].(int64)
		out = append(out, id)
	}
	return out
}

// contains reports whether err's message contains every part.
func contains(err error, parts ...string) bool {
	if err == nil {
		return false
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			return false
		}
	}
	return true
}
