package postgres_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gustfaas/gust/internal/trigger/postgres"
)

func TestValidate(t *testing.T) {
	valid := func() postgres.Config {
		return postgres.Config{DSN: "postgres://app@db.example:5432/shop", Tables: []string{"public.orders"}, Name: "orders"}
	}
	tests := []struct {
		name   string
		change func(c *postgres.Config)
		field  string // "" means valid
		want   string // in the message
	}{
		{"minimal", func(c *postgres.Config) {}, "", ""},
		{"everything", func(c *postgres.Config) {
			c.DSN = "host=db.example port=5433 dbname=shop user=app"
			c.Tables = []string{"orders", "sales.items", "Mixed_Case$1"}
			c.Events = []string{"delete", "insert"}
			c.Name = "orders_2"
			c.BatchSize = postgres.MaxBatchSize
			c.BatchWindow = postgres.MaxBatchWindow
			c.ReplicaIdentityFull = true
		}, "", ""},
		{"empty dsn", func(c *postgres.Config) { c.DSN = " " }, "dsn", "needs a DSN"},
		{"url with a bad port", func(c *postgres.Config) { c.DSN = "postgres://db.example:notaport/shop" }, "dsn", "dsn:"},
		{"key=value with a bad port", func(c *postgres.Config) { c.DSN = "host=db.example port=abc" }, "dsn", "dsn:"},
		{"no tables", func(c *postgres.Config) { c.Tables = nil }, "tables", "at least one table"},
		{"empty table", func(c *postgres.Config) { c.Tables = []string{""} }, "tables", "empty"},
		{"three parts", func(c *postgres.Config) { c.Tables = []string{"a.b.c"} }, "tables", `"a.b.c" is not schema.table`},
		{"empty schema", func(c *postgres.Config) { c.Tables = []string{".orders"} }, "tables", "empty part"},
		{"empty table part", func(c *postgres.Config) { c.Tables = []string{"public."} }, "tables", "empty part"},
		{"space", func(c *postgres.Config) { c.Tables = []string{"my table"} }, "tables", "not a plain identifier"},
		{"quote", func(c *postgres.Config) { c.Tables = []string{`public."x"`} }, "tables", "not a plain identifier"},
		{"leading digit", func(c *postgres.Config) { c.Tables = []string{"1orders"} }, "tables", "not a plain identifier"},
		{"too long", func(c *postgres.Config) { c.Tables = []string{strings.Repeat("t", 64)} }, "tables", "63-byte"},
		{"listed twice", func(c *postgres.Config) { c.Tables = []string{"orders", "public.orders"} }, "tables", "public.orders is listed twice"},
		{"unknown event", func(c *postgres.Config) { c.Events = []string{"insert", "truncate"} }, "events", `unknown event "truncate"`},
		{"upper-case event", func(c *postgres.Config) { c.Events = []string{"INSERT"} }, "events", `unknown event "INSERT"`},
		{"event twice", func(c *postgres.Config) { c.Events = []string{"update", "update"} }, "events", `"update" is listed twice`},
		{"no name", func(c *postgres.Config) { c.Name = "" }, "name", "needs a name"},
		{"upper-case name", func(c *postgres.Config) { c.Name = "Orders" }, "name", `name "Orders" is not valid`},
		{"dash in name", func(c *postgres.Config) { c.Name = "my-orders" }, "name", "lowercase letters, digits and '_'"},
		{"name starting with a digit", func(c *postgres.Config) { c.Name = "1orders" }, "name", "not valid"},
		{"long name", func(c *postgres.Config) { c.Name = strings.Repeat("n", 51) }, "name", "at most 50"},
		{"negative batch size", func(c *postgres.Config) { c.BatchSize = -1 }, "batchSize", "out of range"},
		{"huge batch size", func(c *postgres.Config) { c.BatchSize = postgres.MaxBatchSize + 1 }, "batchSize", "out of range"},
		{"negative window", func(c *postgres.Config) { c.BatchWindow = -time.Second }, "batchWindow", "out of range"},
		{"tiny window", func(c *postgres.Config) { c.BatchWindow = time.Microsecond }, "batchWindow", "too short"},
		{"long window", func(c *postgres.Config) { c.BatchWindow = time.Hour }, "batchWindow", "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var v *postgres.ValidationError
			if !errors.As(err, &v) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if v.Field != tt.field || !strings.Contains(v.Message, tt.want) {
				t.Errorf("Validate() = field %q: %q, want field %q with %q", v.Field, v.Message, tt.field, tt.want)
			}
		})
	}
}

func TestValidateRedactsPassword(t *testing.T) {
	c := postgres.Config{DSN: "postgres://app:hunter2@db.example:notaport/shop", Tables: []string{"t"}, Name: "n"}
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate() = %v, want an error without the password", err)
	}
}

func TestParseTable(t *testing.T) {
	tests := []struct {
		in   string
		want postgres.Table
	}{
		{"orders", postgres.Table{Schema: "public", Name: "orders"}},
		{"sales.orders", postgres.Table{Schema: "sales", Name: "orders"}},
		{"_x.Y$1", postgres.Table{Schema: "_x", Name: "Y$1"}},
	}
	for _, tt := range tests {
		got, err := postgres.ParseTable(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseTable(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestNames(t *testing.T) {
	c := postgres.Config{Name: "orders"}
	if c.SlotName() != "gust_orders" || c.PublicationName() != "gust_orders" {
		t.Errorf("SlotName, PublicationName = %q, %q, want gust_orders twice", c.SlotName(), c.PublicationName())
	}
	d := postgres.Config{}.WithDefaults()
	want := postgres.Config{BatchSize: postgres.DefaultBatchSize, Events: []string{"insert", "update", "delete"}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("WithDefaults() mismatch (-want +got):\n%s", diff)
	}
}

func TestOpenRefusesInvalid(t *testing.T) {
	if _, err := postgres.Open(postgres.Config{}, postgres.Options{}); err == nil {
		t.Error("Open(zero Config) = nil error, want one")
	}
}

func TestParseGUCDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"60s", time.Minute, true},
		{"500ms", 500 * time.Millisecond, true},
		{"1min", time.Minute, true},
		{"2h", 2 * time.Hour, true},
		{"0", 0, true},
		{"1500", 1500 * time.Millisecond, true},
		{"", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := postgres.ParseGUCDuration(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseGUCDuration(%q) = %s, %t, want %s, %t", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestWalLevelMessage(t *testing.T) {
	err := postgres.WalLevelError("shop", "db.example:5432", "replica")
	want := `database "shop" at db.example:5432 has wal_level=replica; logical replication needs wal_level=logical`
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("walLevelError = %q, want it to start with %q", err, want)
	}
}
