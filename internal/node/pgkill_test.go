package node_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
)

// pgRecorder is a Python function that records each batch of row
// changes it gets in the KV bucket "deliveries": one entry per call,
// keyed "n<changes>.<random>", whose value lists the changes' table, id
// and commit position. The entries' revisions give the order in which the
// calls stored them.
const pgRecorder = `import json
import os
import urllib.request
import uuid


def handler(event, context):
    rows = [{"table": c["table"], "id": c["new"]["id"], "lsn": c["lsn"]} for c in event["changes"]]
    key = "n%d.%s" % (len(rows), uuid.uuid4().hex)
    req = urllib.request.Request("%s/gust/v1/kv/deliveries/%s" % (os.environ["GUST_API_URL"], key),
                                 data=json.dumps(rows).encode(), method="PUT")
    req.add_header("Authorization", "Bearer " + os.environ["GUST_TOKEN"])
    with urllib.request.urlopen(req, timeout=5):
        pass
    return {"recorded": len(rows)}
`

// TestPostgresTriggerKillNode streams 1,000 row changes of two tables
// through a PostgreSQL trigger to a function while the node is killed
// (SIGKILL) and started again on the same data directory: every change
// is delivered at least once, and per table the first delivery of each
// comes in commit order (changes delivered again after the crash are
// allowed).
func TestPostgresTriggerKillNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gust binary, and needs PostgreSQL")
	}
	const (
		rows   = 1000
		perTx  = 5
		killAt = rows / 2      // changes recorded when the node is killed
		phase1 = 6 * rows / 10 // the most rows inserted before the kill
		phase2 = 8 * rows / 10 // the most rows inserted before the restart
	)
	ctx := context.Background()
	db := fmt.Sprintf("gust_pgkill_%d", time.Now().UnixNano())
	dsn := "postgres://postgres@127.0.0.1:5432/" + db + "?sslmode=disable"
	admin, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		t.Fatalf("PostgreSQL on 127.0.0.1:5432 (CI starts it with .ci/postgres.sh): %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTestDatabase(t, db) })
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Odd ids go to table a, even ones to b.
	tables := []string{"public.a", "public.b"}
	tableOf := func(id int) string { return tables[(id+1)%2] }
	for _, tb := range tables {
		if _, err := conn.Exec(ctx, "CREATE TABLE "+tb+" (id bigint PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
	}

	buildGuests(t)
	bin := buildGust(t)
	data := filepath.Join(t.TempDir(), "data")
	cmd, url := startGust(t, bin, data)
	c := gustClient(t, url, data)
	if _, err := c.CreateBucket(ctx, api.BucketKV, "deliveries", api.CreateBucketRequest{}); err != nil {
		t.Fatal(err)
	}
	timeout := int32(10)
	if _, err := c.CreateFunction(ctx, api.CreateFunctionRequest{FunctionName: "recorder", Runtime: "python3.11", Handler: "app.handler",
		Timeout: &timeout, Code: &api.FunctionCode{ZipFile: zipOf(t, map[string][]byte{"app.py": []byte(pgRecorder)})},
		GustGrants: &api.Grants{KV: []string{"deliveries"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTrigger(ctx, api.Trigger{Name: "rows", Function: "recorder", Postgres: &api.PostgresSource{
		DSN: dsn, Tables: tables, Events: []string{"insert"}, BatchSize: 20, MaxAttempts: 10,
	}}); err != nil {
		t.Fatal(err)
	}

	// The inserter: ids in order, so that per table ids increase with
	// commit order; the rows up to phase1 while the first node runs, up
	// to phase2 once it is killed, the rest once the second one is up.
	killed, restarted, stop := make(chan struct{}), make(chan struct{}), make(chan struct{})
	defer close(stop)
	var inserted atomic.Int64
	insertDone := make(chan error, 1)
	go func() {
		insertDone <- func() error {
			for first := 1; first <= rows; first += perTx {
				var gate chan struct{}
				switch first {
				case phase1 + 1:
					gate = killed
				case phase2 + 1:
					gate = restarted
				}
				if gate != nil {
					select {
					case <-gate:
					case <-stop:
						return nil
					}
				}
				var b pgx.Batch
				for id := first; id < first+perTx; id++ {
					b.Queue("INSERT INTO "+tableOf(id)+" VALUES ($1)", id)
				}
				if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return tx.SendBatch(ctx, &b).Close() }); err != nil {
					return fmt.Errorf("insert rows %d to %d: %w", first, first+perTx-1, err)
				}
				inserted.Store(int64(first + perTx - 1))
			}
			return nil
		}()
	}()

	rec := &pgRecords{c: c, got: map[string]pgBatch{}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := rec.count(ctx)
		if err == nil && n >= killAt {
			t.Logf("killing the node with %d changes recorded and %d rows inserted", n, inserted.Load())
			break
		}
		if time.Now().After(deadline) {
			st, serr := c.GetTrigger(ctx, "rows")
			t.Fatalf("%d changes recorded after 60 s (%v); %d rows inserted; trigger %+v, %v", n, err, inserted.Load(), st, serr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	close(killed)

	cmd, url = startGust(t, bin, data)
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	close(restarted)
	c = gustClient(t, url, data)
	rec.c = c
	if err := <-insertDone; err != nil {
		t.Fatal(err)
	}

	// Every id at least once.
	var batches []pgBatch
	deadline = time.Now().Add(60 * time.Second)
	for {
		batches, err = rec.all(ctx)
		seen := map[int64]bool{}
		for _, b := range batches {
			for _, r := range b.rows {
				seen[r.ID] = true
			}
		}
		if err == nil && len(seen) == rows {
			break
		}
		if time.Now().After(deadline) {
			var missing []int64
			for id := int64(1); id <= rows && len(missing) < 20; id++ {
				if !seen[id] {
					missing = append(missing, id)
				}
			}
			st, serr := c.GetTrigger(ctx, "rows")
			t.Fatalf("%d of %d ids recorded after 60 s (%v); missing %v...; trigger %+v, %v", len(seen), rows, err, missing, st, serr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Per table, in the order the calls were recorded, each id is first
	// delivered after the ones committed before it.
	seen := map[int64]bool{}
	last := map[string]int64{}
	total := 0
	for _, b := range batches {
		for _, r := range b.rows {
			total++
			if seen[r.ID] {
				continue
			}
			if want := strings.TrimPrefix(tableOf(int(r.ID)), "public."); r.Table != want {
				t.Errorf("id %d recorded from table %s, want %s", r.ID, r.Table, want)
			}
			if r.ID < last[r.Table] {
				t.Errorf("table %s: id %d first delivered after id %d (record revision %d): not in commit order", r.Table, r.ID, last[r.Table], b.revision)
			}
			seen[r.ID], last[r.Table] = true, r.ID
		}
	}
	t.Logf("%d changes in %d calls, %d of them delivered again after the kill", total, len(batches), total-rows)

	// Deleting the trigger drops its slot and publication.
	if err := c.DeleteTrigger(ctx, "rows"); err != nil {
		t.Fatal(err)
	}
	var slots, pubs int
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = $1), (SELECT count(*) FROM pg_publication)", db).
		Scan(&slots, &pubs); err != nil || slots != 0 || pubs != 0 {
		t.Errorf("after deleting the trigger, %s has %d replication slots and %d publications (%v), want none", db, slots, pubs, err)
	}
}

// pgBatch is one recorded call of the recorder function.
type pgBatch struct {
	revision uint64
	rows     []struct {
		Table string `json:"table"`
		ID    int64  `json:"id"`
		LSN   string `json:"lsn"`
	}
}

// pgRecords reads what the recorder function stored.
type pgRecords struct {
	c   *client.Client
	got map[string]pgBatch // by key, read once
}

// count returns how many changes the recorded calls hold, from the keys.
func (r *pgRecords) count(ctx context.Context) (int, error) {
	keys, err := r.c.KVKeys(ctx, "deliveries", "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		size, _, _ := strings.Cut(strings.TrimPrefix(k.Key, "n"), ".")
		i, err := strconv.Atoi(size)
		if err != nil {
			return 0, fmt.Errorf("unexpected key %q in the deliveries bucket", k.Key)
		}
		n += i
	}
	return n, nil
}

// all returns every recorded call, in the order they were stored.
func (r *pgRecords) all(ctx context.Context) ([]pgBatch, error) {
	keys, err := r.c.KVKeys(ctx, "deliveries", "")
	if err != nil {
		return nil, err
	}
	var out []pgBatch
	for _, k := range keys {
		b, ok := r.got[k.Key]
		if !ok {
			e, err := r.c.KVGet(ctx, "deliveries", k.Key)
			if err != nil {
				return nil, err
			}
			b.revision = e.Revision
			if err := json.Unmarshal(e.Value, &b.rows); err != nil {
				return nil, fmt.Errorf("entry %s: %w", k.Key, err)
			}
			r.got[k.Key] = b
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b pgBatch) int { return cmp.Compare(a.revision, b.revision) })
	return out, nil
}

// dropTestDatabase drops db after dropping its replication slots, which
// would otherwise keep WAL on the shared server (and block the drop).
func dropTestDatabase(t *testing.T, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		t.Errorf("drop database %s: %v", db, err)
		return
	}
	defer admin.Close(ctx)
	for {
		// A walsender of a node that was killed may hold a slot for a
		// moment: end it, then drop the slot.
		_, err := admin.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, db)
		if err == nil {
			_, err = admin.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, db)
		}
		var left int
		if err == nil {
			err = admin.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE database = $1", db).Scan(&left)
		}
		if err == nil && left == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Errorf("drop the replication slots of %s: %d left, %v", db, left, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
		t.Errorf("drop database %s: %v", db, err)
	}
}
