package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/gustfaas/gust/internal/trigger/postgres"
)

func TestChanges(t *testing.T) {
	admin := connect(t, sharedDSN)
	full := createTable(t, admin, "id bigint PRIMARY KEY, n int4, s text, b bool, j jsonb, ts timestamptz, f float8, num numeric, nul text")
	exec(t, admin, "ALTER TABLE "+full+" REPLICA IDENTITY FULL")
	keyed := createTable(t, admin, "id bigint PRIMARY KEY, s text")
	c := postgres.Config{DSN: sharedDSN, Tables: []string{full, keyed}, Name: uniqueName(t, "changes_")}
	setup(t, c)
	s := open(t, c, fastRetry)
	rec := &recorder{}
	run(t, s, rec.deliver)

	before := time.Now()
	exec(t, admin, "INSERT INTO "+full+` VALUES (1, 7, 'hello', true, '{"a": [1, 2]}', '2024-05-01 12:34:56.789+02', 1.5, 12.50, NULL)`)
	exec(t, admin, "UPDATE "+full+" SET s = 'bye', b = false WHERE id = 1")
	tx, err := admin.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO " + keyed + " VALUES (10, 'x')",
		"UPDATE " + keyed + " SET s = 'y' WHERE id = 10",
		"UPDATE " + keyed + " SET id = 11 WHERE id = 10",
		"DELETE FROM " + keyed + " WHERE id = 11",
	} {
		if _, err := tx.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	exec(t, admin, "DELETE FROM "+full+" WHERE id = 1")
	waitFor(t, 20*time.Second, "7 changes", func() bool { return rec.count() >= 7 })
	after := time.Now()

	row := map[string]any{
		"id": int64(1), "n": int64(7), "s": "hello", "b": true, "j": json.RawMessage(`{"a": [1, 2]}`),
		"ts": "2024-05-01T10:34:56.789Z", "f": 1.5, "num": json.Number("12.50"), "nul": nil,
	}
	updated := map[string]any{}
	for k, v := range row {
		updated[k] = v
	}
	updated["s"], updated["b"] = "bye", false
	want := []postgres.Change{
		{Op: "insert", Schema: "public", Table: full, New: row},
		{Op: "update", Schema: "public", Table: full, Old: row, New: updated},
		{Op: "insert", Schema: "public", Table: keyed, New: map[string]any{"id": int64(10), "s": "x"}},
		{Op: "update", Schema: "public", Table: keyed, New: map[string]any{"id": int64(10), "s": "y"}},
		{Op: "update", Schema: "public", Table: keyed, Old: map[string]any{"id": int64(10)}, New: map[string]any{"id": int64(11), "s": "y"}},
		{Op: "delete", Schema: "public", Table: keyed, Old: map[string]any{"id": int64(11)}},
		{Op: "delete", Schema: "public", Table: full, Old: updated},
	}
	got := rec.changes()
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(postgres.Change{}, "CommitTime", "LSN", "XID")); diff != "" {
		t.Errorf("changes mismatch (-want +got):\n%s", diff)
	}

	// One transaction shares LSN, XID and commit time; LSNs follow
	// commit order.
	txOf := []int{0, 1, 2, 2, 2, 2, 3}
	var prev pglogrepl.LSN
	for i, ch := range got {
		lsn, err := pglogrepl.ParseLSN(ch.LSN)
		if err != nil {
			t.Fatalf("change %d: LSN %q: %v", i, ch.LSN, err)
		}
		if ch.CommitTime.Before(before.Add(-5*time.Second)) || ch.CommitTime.After(after.Add(5*time.Second)) {
			t.Errorf("change %d: commit time %s, want between %s and %s", i, ch.CommitTime, before, after)
		}
		if ch.XID == 0 {
			t.Errorf("change %d: XID 0", i)
		}
		if i > 0 && txOf[i] == txOf[i-1] {
			if lsn != prev || ch.XID != got[i-1].XID || !ch.CommitTime.Equal(got[i-1].CommitTime) {
				t.Errorf("change %d (%s, %d) is in the transaction of change %d (%s, %d)", i, ch.LSN, ch.XID, i-1, got[i-1].LSN, got[i-1].XID)
			}
		} else if i > 0 && lsn <= prev {
			t.Errorf("change %d: LSN %s not after %s", i, lsn, prev)
		}
		prev = lsn
	}

	// The JSON form.
	b, err := json.Marshal(got[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	wantNew := `{"b":true,"f":1.5,"id":1,"j":{"a":[1,2]},"n":7,"nul":null,"num":12.50,"s":"hello","ts":"2024-05-01T10:34:56.789Z"}`
	if string(m["new"]) != wantNew || string(m["op"]) != `"insert"` || m["old"] != nil || string(m["lsn"]) != `"`+got[0].LSN+`"` {
		t.Errorf("JSON = %s, want op insert, no old, and new %s", b, wantNew)
	}
}

func TestBatches(t *testing.T) {
	admin := connect(t, sharedDSN)
	table := createTable(t, admin, "id bigint PRIMARY KEY")
	c := postgres.Config{DSN: sharedDSN, Tables: []string{table}, Name: uniqueName(t, "batch_"), BatchSize: 3, BatchWindow: time.Second}
	setup(t, c)
	s := open(t, c, fastRetry)
	rec := &recorder{}
	run(t, s, rec.deliver)

	// One transaction of 10 rows: split in batches of 3, and only the
	// last one confirms it.
	exec(t, admin, "INSERT INTO "+table+" SELECT generate_series(1, 10)")
	waitFor(t, 20*time.Second, "10 changes", func() bool { return rec.count() >= 10 })
	batches := rec.allBatches()
	var sizes []int
	var ends []bool
	for _, b := range batches {
		sizes = append(sizes, len(b.Changes))
		ends = append(ends, b.End != "")
	}
	if !slices.Equal(sizes, []int{3, 3, 3, 1}) || !slices.Equal(ends, []bool{false, false, false, true}) {
		t.Errorf("batch sizes %v, with End %v; want [3 3 3 1] with only the last End", sizes, ends)
	}

	// Single-row transactions: batches of at most 3, in commit order.
	for i := 11; i <= 20; i++ {
		exec(t, admin, "INSERT INTO "+table+" VALUES ($1)", i)
	}
	waitFor(t, 20*time.Second, "20 changes", func() bool { return rec.count() >= 20 })
	for i, b := range rec.allBatches() {
		if len(b.Changes) == 0 || len(b.Changes) > 3 {
			t.Errorf("batch %d has %d changes, want 1 to 3", i, len(b.Changes))
		}
	}
	want := make([]int64, 20)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if got := ids(rec.changes()); !slices.Equal(got, want) {
		t.Errorf("ids delivered %v, want %v", got, want)
	}
}

func TestRetrySameBatch(t *testing.T) {
	admin := connect(t, sharedDSN)
	table := createTable(t, admin, "id bigint PRIMARY KEY")
	c := postgres.Config{DSN: sharedDSN, Tables: []string{table}, Name: uniqueName(t, "retry_"), BatchWindow: 200 * time.Millisecond}
	setup(t, c)
	s := open(t, c, fastRetry)
	var calls atomic.Int32
	rec := &recorder{fail: func(b postgres.Batch) error {
		if calls.Add(1) <= 2 {
			return errors.New("function failed")
		}
		return nil
	}}
	run(t, s, rec.deliver)
	exec(t, admin, "INSERT INTO "+table+" SELECT generate_series(1, 3)")
	waitFor(t, 20*time.Second, "three deliveries", func() bool { return len(rec.allBatches()) >= 3 })
	exec(t, admin, "INSERT INTO "+table+" VALUES (4)")
	waitFor(t, 20*time.Second, "the next batch", func() bool { return len(rec.allBatches()) >= 4 })

	batches := rec.allBatches()
	if len(batches) != 4 {
		t.Fatalf("%d deliveries, want 4: %+v", len(batches), batches)
	}
	if got := ids(batches[0].Changes); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("first batch ids %v, want [1 2 3]", got)
	}
	for i := 1; i < 3; i++ {
		if diff := cmp.Diff(batches[0], batches[i]); diff != "" {
			t.Errorf("delivery %d is not the failed batch again (-first +got):\n%s", i+1, diff)
		}
	}
	if got := ids(batches[3].Changes); !slices.Equal(got, []int64{4}) {
		t.Errorf("batch after the retried one has ids %v, want [4]", got)
	}
}

// caughtUp waits until s has confirmed every change it received.
func caughtUp(t *testing.T, s *postgres.Stream) {
	t.Helper()
	waitFor(t, 20*time.Second, "the stream to confirm what it received", func() bool {
		_, age, err := s.Lag(context.Background())
		return err == nil && age == 0
	})
}

func TestResume(t *testing.T) {
	admin := connect(t, sharedDSN)
	table := createTable(t, admin, "id bigint PRIMARY KEY")
	c := postgres.Config{DSN: sharedDSN, Tables: []string{table}, Name: uniqueName(t, "resume_")}
	setup(t, c)
	s := open(t, c, fastRetry)

	rec1 := &recorder{}
	r1 := run(t, s, rec1.deliver)
	for i := 1; i <= 5; i++ {
		exec(t, admin, "INSERT INTO "+table+" VALUES ($1)", i)
	}
	waitFor(t, 20*time.Second, "5 changes", func() bool { return rec1.count() >= 5 })
	caughtUp(t, s)
	if err := r1.stop(); err != nil {
		t.Fatalf("Run = %v, want nil after its context ended", err)
	}

	// Changes made while no Run reads the slot wait in it; what was
	// delivered and confirmed does not come again.
	for i := 6; i <= 10; i++ {
		exec(t, admin, "INSERT INTO "+table+" VALUES ($1)", i)
	}
	rec2 := &recorder{}
	run(t, s, rec2.deliver)
	waitFor(t, 20*time.Second, "5 more changes", func() bool { return rec2.count() >= 5 })
	if got := ids(rec2.changes()); !slices.Equal(got, []int64{6, 7, 8, 9, 10}) {
		t.Errorf("after a restart, ids %v delivered, want [6 7 8 9 10]", got)
	}
}

func TestThousandChangesAcrossRestart(t *testing.T) {
	admin := connect(t, sharedDSN)
	a := createTable(t, admin, "id bigint PRIMARY KEY")
	b := createTable(t, admin, "id bigint PRIMARY KEY")
	c := postgres.Config{DSN: sharedDSN, Tables: []string{a, b}, Name: uniqueName(t, "thousand_"), BatchSize: 50}
	setup(t, c)

	// 100 transactions of 10 rows with ids 1..1000, odd ids in a, even
	// ones in b.
	insert := func(conn *pgx.Conn, from, to int) error {
		for tx := from; tx < to; tx++ {
			var batch pgx.Batch
			for j := 1; j <= 10; j++ {
				id := tx*10 + j
				table := a
				if id%2 == 0 {
					table = b
				}
				batch.Queue("INSERT INTO "+table+" VALUES ($1)", id)
			}
			err := pgx.BeginFunc(context.Background(), conn, func(tx pgx.Tx) error {
				return tx.SendBatch(context.Background(), &batch).Close()
			})
			if err != nil {
				return err
			}
		}
		return nil
	}

	// Run 1 is stopped after 300 changes, while transactions keep
	// coming: the inserter waits for that after 60 transactions, and
	// goes on while run 2 starts.
	s1 := open(t, c, fastRetry)
	rec1 := &recorder{}
	r1 := run(t, s1, rec1.deliver)
	waitConnected(t, s1)
	inserter := connect(t, sharedDSN)
	stopped := make(chan struct{})
	var wg sync.WaitGroup
	var insertErr error
	wg.Go(func() {
		if insertErr = insert(inserter, 0, 60); insertErr != nil {
			return
		}
		<-stopped
		insertErr = insert(inserter, 60, 100)
	})
	waitFor(t, 20*time.Second, "300 changes", func() bool { return rec1.count() >= 300 })
	if err := r1.stop(); err != nil {
		t.Fatalf("Run = %v, want nil after its context ended", err)
	}
	close(stopped)
	s2 := open(t, c, fastRetry)
	rec2 := &recorder{}
	run(t, s2, rec2.deliver)
	wg.Wait()
	if insertErr != nil {
		t.Fatal(insertErr)
	}

	seen := make(map[int64]bool)
	waitFor(t, 30*time.Second, "all 1000 changes", func() bool {
		clear(seen)
		for _, id := range ids(rec1.changes()) {
			seen[id] = true
		}
		for _, id := range ids(rec2.changes()) {
			seen[id] = true
		}
		return len(seen) == 1000
	})
	for id := int64(1); id <= 1000; id++ {
		if !seen[id] {
			t.Errorf("id %d never delivered", id)
		}
	}
	// Each run delivers in commit order: per table, ids increase, and
	// LSNs never go back.
	for i, rec := range []*recorder{rec1, rec2} {
		last := map[string]int64{}
		var prev pglogrepl.LSN
		for _, ch := range rec.changes() {
			id := ids([]postgres.Change{ch})[0]
			if id <= last[ch.Table] {
				t.Fatalf("run %d: id %d of %s after %d", i+1, id, ch.Table, last[ch.Table])
			}
			last[ch.Table] = id
			lsn, _ := pglogrepl.ParseLSN(ch.LSN)
			if lsn < prev {
				t.Fatalf("run %d: LSN %s after %s", i+1, lsn, prev)
			}
			prev = lsn
		}
	}
	if n1, n2 := s1.Sessions(), s2.Sessions(); n1 != 1 || n2 != 1 {
		t.Errorf("sessions = %d, %d, want one connection each", n1, n2)
	}
	t.Logf("run 1 delivered %d changes, run 2 %d", rec1.count(), rec2.count())
}

func TestLag(t *testing.T) {
	admin := connect(t, sharedDSN)
	table := createTable(t, admin, "id bigint PRIMARY KEY")
	c := postgres.Config{DSN: sharedDSN, Tables: []string{table}, Name: uniqueName(t, "lag_")}
	setup(t, c)
	s := open(t, c, fastRetry)
	release := make(chan struct{})
	var delivered atomic.Int32
	run(t, s, func(ctx context.Context, b postgres.Batch) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		delivered.Add(int32(len(b.Changes)))
		return nil
	})
	waitConnected(t, s)
	caughtUp(t, s)

	exec(t, admin, "INSERT INTO "+table+" SELECT generate_series(1, 5)")
	var bytes int64
	var age time.Duration
	waitFor(t, 20*time.Second, "Lag to report the blocked change", func() bool {
		var err error
		bytes, age, err = s.Lag(context.Background())
		return err == nil && bytes > 0 && age > 0
	})
	t.Logf("blocked: lag %d bytes, %s", bytes, age)
	close(release)
	waitFor(t, 20*time.Second, "Lag to fall to about 0", func() bool {
		var err error
		bytes, age, err = s.Lag(context.Background())
		return err == nil && age == 0 && bytes < 256<<10
	})
	t.Logf("caught up: lag %d bytes, %s", bytes, age)
	if n := delivered.Load(); n != 5 {
		t.Errorf("%d changes delivered, want 5", n)
	}
}

func TestSlowDeliverKeepsConnection(t *testing.T) {
	admin := connect(t, sharedDSN)
	table := createTable(t, admin, "id bigint PRIMARY KEY")
	// The walsender drops a connection silent for 1 s; the first batch
	// takes 3 s, while 200 changes wait (more than Run buffers).
	c := postgres.Config{DSN: sharedDSN + "&wal_sender_timeout=1000", Tables: []string{table}, Name: uniqueName(t, "slow_"), BatchSize: 10}
	setup(t, c)
	s := open(t, c, fastRetry)
	var calls atomic.Int32
	rec := &recorder{fail: func(postgres.Batch) error {
		if calls.Add(1) == 1 {
			time.Sleep(3 * time.Second) // a slow function
		}
		return nil
	}}
	run(t, s, rec.deliver)
	waitConnected(t, s)
	exec(t, admin, "INSERT INTO "+table+" SELECT generate_series(1, 200)")
	waitFor(t, 30*time.Second, "200 changes", func() bool { return rec.count() >= 200 })
	if n := s.Sessions(); n != 1 {
		t.Errorf("%d connections, want 1: the server dropped the stream during the slow batch (status %+v)", n, s.Status())
	}
	if got := ids(rec.changes()); len(got) != 200 || got[0] != 1 || got[199] != 200 {
		t.Errorf("delivered %d changes, %v..., want ids 1 to 200 once", len(got), got[:min(len(got), 5)])
	}
}

func TestRunTwice(t *testing.T) {
	admin := connect(t, sharedDSN)
	table := createTable(t, admin, "id bigint PRIMARY KEY")
	c := postgres.Config{DSN: sharedDSN, Tables: []string{table}, Name: uniqueName(t, "twice_")}
	setup(t, c)
	s := open(t, c, fastRetry)
	run(t, s, (&recorder{}).deliver)
	waitConnected(t, s)
	err := s.Run(context.Background(), (&recorder{}).deliver)
	if !contains(err, fmt.Sprintf("change stream %s is already running", c.Name)) {
		t.Errorf("second Run = %v, want an error saying it is running", err)
	}
}
