package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/trigger/postgres"
)

func TestCheck(t *testing.T) {
	admin := connect(t, sharedDSN)
	withKey := createTable(t, admin, "id bigint PRIMARY KEY, v text")
	noKey := createTable(t, admin, "id bigint, v text")
	view := uniqueName(t, "gust_test_view_")
	exec(t, admin, fmt.Sprintf("CREATE VIEW public.%s AS SELECT * FROM public.%s", view, withKey))
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP VIEW IF EXISTS public."+view) })
	role := uniqueName(t, "gust_test_role_")
	exec(t, admin, "CREATE ROLE "+role+" LOGIN NOREPLICATION")
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	port := closedPort(t)

	tests := []struct {
		name   string
		change func(c *postgres.Config)
		field  string   // the ValidationError's field; "" for no error
		want   []string // in the message
	}{
		{"ok", func(c *postgres.Config) {}, "", nil},
		{"two tables, inserts only, one without key", func(c *postgres.Config) {
			c.Tables = append(c.Tables, noKey)
			c.Events = []string{"insert"}
		}, "", nil},
		{"no key but replica identity full asked", func(c *postgres.Config) {
			c.Tables = []string{noKey}
			c.ReplicaIdentityFull = true
		}, "", nil},
		{"unreachable", func(c *postgres.Config) {
			c.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/test?sslmode=disable&connect_timeout=5", port)
		}, "dsn", []string{"cannot reach PostgreSQL at", fmt.Sprintf("127.0.0.1:%d", port)}},
		{"unknown database", func(c *postgres.Config) {
			c.DSN = "postgres://postgres@127.0.0.1:5432/gust_no_such_db?sslmode=disable"
		}, "dsn", []string{`database "gust_no_such_db" does not exist at 127.0.0.1:5432`}},
		{"missing table", func(c *postgres.Config) { c.Tables = []string{withKey, "gust_no_such_table"} },
			"tables", []string{`table public.gust_no_such_table does not exist in database "test" at 127.0.0.1:5432`}},
		{"missing schema", func(c *postgres.Config) { c.Tables = []string{"gust_no_schema.t"} },
			"tables", []string{"table gust_no_schema.t does not exist"}},
		{"view", func(c *postgres.Config) { c.Tables = []string{view} },
			"tables", []string{"public." + view, "is a view"}},
		{"no primary key", func(c *postgres.Config) { c.Tables = []string{noKey} },
			"tables", []string{"table public." + noKey + " has no primary key", "replicaIdentityFull"}},
		{"no primary key, deletes", func(c *postgres.Config) {
			c.Tables = []string{noKey}
			c.Events = []string{"insert", "delete"}
		}, "tables", []string{"has no primary key"}},
		{"user may not replicate", func(c *postgres.Config) {
			c.DSN = "postgres://" + role + "@127.0.0.1:5432/test?sslmode=disable"
		}, "dsn", []string{fmt.Sprintf("user %q may not use replication", role), "ALTER ROLE"}},
		{"invalid config", func(c *postgres.Config) { c.Name = "Bad Name" }, "name", []string{"not valid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := postgres.Config{DSN: sharedDSN, Tables: []string{withKey}, Name: uniqueName(t, "check_")}
			tt.change(&c)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := postgres.Check(ctx, c)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			var v *postgres.ValidationError
			if !errors.As(err, &v) || v.Field != tt.field {
				t.Fatalf("Check() = %v, want a *ValidationError of field %q", err, tt.field)
			}
			if !contains(err, tt.want...) {
				t.Errorf("Check() = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCheckSlotOfSomethingElse(t *testing.T) {
	admin := connect(t, sharedDSN)
	table := createTable(t, admin, "id bigint PRIMARY KEY")
	c := postgres.Config{DSN: sharedDSN, Tables: []string{table}, Name: uniqueName(t, "other_")}
	exec(t, admin, "SELECT pg_create_logical_replication_slot($1, 'test_decoding')", c.SlotName())
	t.Cleanup(func() { admin.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", c.SlotName()) })
	err := postgres.Check(context.Background(), c)
	if !contains(err, "replication slot "+c.SlotName(), "belongs to something else", `plugin "test_decoding"`) {
		t.Errorf("Check() = %v, want it to name the foreign slot", err)
	}
}

func TestSetupTeardown(t *testing.T) {
	admin := connect(t, sharedDSN)
	a := createTable(t, admin, "id bigint PRIMARY KEY")
	b := createTable(t, admin, "id bigint")
	c := postgres.Config{DSN: sharedDSN, Tables: []string{a}, Name: uniqueName(t, "setup_")}
	ctx := context.Background()

	type publication struct {
		ins, upd, del bool
		tables        string
	}
	readPublication := func() (publication, bool) {
		var p publication
		err := admin.QueryRow(ctx, `SELECT pubinsert, pubupdate, pubdelete,
  (SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = $1)
FROM pg_publication WHERE pubname = $1`, c.PublicationName()).Scan(&p.ins, &p.upd, &p.del, &p.tables)
		return p, err == nil
	}
	slotExists := func() bool {
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND plugin = 'pgoutput'", c.SlotName()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	setup(t, c)
	if err := postgres.Setup(ctx, c); err != nil {
		t.Fatalf("Setup again: %v", err)
	}
	if p, ok := readPublication(); !ok || p != (publication{true, true, true, "public." + a}) {
		t.Errorf("publication = %+v, %t, want all events of public.%s", p, ok, a)
	}
	if !slotExists() {
		t.Errorf("no pgoutput slot %s after Setup", c.SlotName())
	}

	// Setup brings the publication in line with a changed config, and
	// sets replica identity full when asked.
	c2 := c
	c2.Tables = []string{a, b}
	c2.Events = []string{"insert"}
	if err := postgres.Setup(ctx, c2); err != nil {
		t.Fatalf("Setup with other tables and events: %v", err)
	}
	want := publication{true, false, false, strings.Join(sortedTables("public."+a, "public."+b), ",")}
	if p, ok := readPublication(); !ok || p != want {
		t.Errorf("publication = %+v, %t, want %+v", p, ok, want)
	}
	c3 := c2
	c3.Events = nil
	c3.ReplicaIdentityFull = true
	if err := postgres.Setup(ctx, c3); err != nil {
		t.Fatalf("Setup with replica identity full: %v", err)
	}
	var ident string
	if err := admin.QueryRow(ctx, "SELECT relreplident::text FROM pg_class WHERE oid = $1::regclass", "public."+b).Scan(&ident); err != nil || ident != "f" {
		t.Errorf("replica identity of %s = %q, %v, want f", b, ident, err)
	}

	// Teardown drops both, even while a Run holds the slot; that Run
	// then stops with ErrNotSetUp.
	s := open(t, c, fastRetry)
	r := run(t, s, (&recorder{}).deliver)
	waitConnected(t, s)
	if err := postgres.Teardown(ctx, c); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if _, ok := readPublication(); ok {
		t.Error("the publication survived Teardown")
	}
	if slotExists() {
		t.Error("the slot survived Teardown")
	}
	if err := r.wait(t, 20*time.Second); !errors.Is(err, postgres.ErrNotSetUp) {
		t.Errorf("Run after Teardown = %v, want ErrNotSetUp", err)
	}
	if err := postgres.Teardown(ctx, c); err != nil {
		t.Errorf("Teardown again: %v", err)
	}
	if _, _, err := s.Lag(ctx); !errors.Is(err, postgres.ErrNotSetUp) {
		t.Errorf("Lag after Teardown = %v, want ErrNotSetUp", err)
	}
}

func sortedTables(ts ...string) []string {
	out := append([]string(nil), ts...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if strings.SplitN(out[j], ".", 2)[1] < strings.SplitN(out[i], ".", 2)[1] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestRunNotSetUp(t *testing.T) {
	admin := connect(t, sharedDSN)
	table := createTable(t, admin, "id bigint PRIMARY KEY")
	c := postgres.Config{DSN: sharedDSN, Tables: []string{table}, Name: uniqueName(t, "notsetup_")}
	s := open(t, c, fastRetry)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := s.Run(ctx, (&recorder{}).deliver)
	if !errors.Is(err, postgres.ErrNotSetUp) || !contains(err, c.PublicationName()) {
		t.Errorf("Run without Setup = %v, want ErrNotSetUp naming the publication", err)
	}
}

func TestPublicationDroppedWhileRunning(t *testing.T) {
	admin := connect(t, sharedDSN)
	table := createTable(t, admin, "id bigint PRIMARY KEY")
	c := postgres.Config{DSN: sharedDSN, Tables: []string{table}, Name: uniqueName(t, "pubdrop_")}
	setup(t, c)
	s := open(t, c, fastRetry)
	rec := &recorder{}
	r := run(t, s, rec.deliver)
	exec(t, admin, "INSERT INTO "+table+" VALUES (1)")
	waitFor(t, 20*time.Second, "the first change", func() bool { return rec.count() == 1 })
	exec(t, admin, "DROP PUBLICATION "+c.PublicationName())
	exec(t, admin, "INSERT INTO "+table+" VALUES (2)")
	if err := r.wait(t, 20*time.Second); !errors.Is(err, postgres.ErrNotSetUp) {
		t.Errorf("Run after the publication was dropped = %v, want ErrNotSetUp", err)
	}
	if st := s.Status(); st.Connected || st.Err == nil {
		t.Errorf("Status() = %+v, want disconnected with an error", st)
	}
}
