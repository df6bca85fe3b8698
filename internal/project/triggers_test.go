package project

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
)

// testEnv is the environment ${NAME} references are read from in tests.
func testEnv(k string) string {
	return map[string]string{
		"ORDERS_DSN": "postgres://gust:s3cret@127.0.0.1:5432/shop?sslmode=disable",
		"NATS_HOST":  "nats.internal",
	}[k]
}

func TestParseBucketsGrantsTriggers(t *testing.T) {
	dir := testDir(t)
	yml := `functions:
  api:
    code: ./greet
    alias: prod
    grants:
      kv: [items, items, cache]
      objects: [photos]
      hosts: [API.GitHub.com, "*.example.com", "127.0.0.1:9000"]
  thumbnail:
    code: ./greet
    grants: {}
buckets:
  items: {kind: kv}
  photos: {kind: objects, max_object_size: 16MB}
  raw: {kind: objects, max_object_size: 1048576}
triggers:
  on-upload:
    function: thumbnail
    objects: {bucket: photos, prefix: "in/", events: [created]}
  on-item:
    function: api
    kv: {bucket: items, prefix: "", events: [delete, put]}
  orders:
    function: audit
    postgres:
      dsn: ${ORDERS_DSN}
      tables: [public.orders, items, public.orders]
      events: [insert]
      batch_size: 50
      batch_window: 100ms
      max_attempts: 5
  jobs:
    function: worker
    qualifier: "3"
    queue: {stream: JOBS, filter_subject: jobs.>, batch_size: 10, concurrency: 2, batch_window: 2, max_deliver: 4}
  events:
    function: api
    qualifier: $LATEST
    queue: {subject: "events.*.created", url: "nats://${NATS_HOST}:4222,tls://b:4222"}
`
	proj, err := ParseWith(filepath.Join(dir, "gust.yaml"), []byte(yml), Options{Getenv: testEnv})
	if err != nil {
		t.Fatal(err)
	}
	wantGrants := map[string]*registry.Grants{
		"api": {KV: []string{"cache", "items"}, Objects: []string{"photos"},
			Hosts: []string{"*.example.com", "127.0.0.1:9000", "api.github.com"}},
		"thumbnail": nil,
	}
	for name, want := range wantGrants {
		if diff := cmp.Diff(want, proj.Function(name).Grants); diff != "" {
			t.Errorf("function %s grants (-want +got):\n%s", name, diff)
		}
	}
	wantBuckets := []*Bucket{
		{Name: "items", Line: 13, Kind: BucketKV},
		{Name: "photos", Line: 14, Kind: BucketObjects, MaxObjectSize: 16 << 20},
		{Name: "raw", Line: 15, Kind: BucketObjects, MaxObjectSize: 1 << 20},
	}
	if diff := cmp.Diff(wantBuckets, proj.Buckets); diff != "" {
		t.Errorf("Buckets (-want +got):\n%s", diff)
	}
	wantTriggers := []*Trigger{
		{Line: 36, Trigger: api.Trigger{Name: "events", Function: "api", Qualifier: "$LATEST",
			Queue: &api.QueueSource{Subject: "events.*.created", URL: "nats://nats.internal:4222,tls://b:4222"}}},
		{Line: 32, Trigger: api.Trigger{Name: "jobs", Function: "worker", Qualifier: "3",
			Queue: &api.QueueSource{Stream: "JOBS", FilterSubject: "jobs.>", BatchSize: 10, Concurrency: 2, BatchWindowMs: 2000, MaxDeliver: 4}}},
		{Line: 20, Trigger: api.Trigger{Name: "on-item", Function: "api", Qualifier: "prod",
			KV: &api.KVSource{Bucket: "items", Events: []string{"put", "delete"}}}},
		{Line: 17, Trigger: api.Trigger{Name: "on-upload", Function: "thumbnail", Qualifier: "live",
			Objects: &api.ObjectsSource{Bucket: "photos", Prefix: "in/", Events: []string{"created"}}}},
		{Line: 23, Trigger: api.Trigger{Name: "orders", Function: "audit",
			Postgres: &api.PostgresSource{DSN: "postgres://gust:s3cret@127.0.0.1:5432/shop?sslmode=disable",
				Tables: []string{"public.orders", "items"}, Events: []string{"insert"}, BatchSize: 50, BatchWindowMs: 100, MaxAttempts: 5}}},
	}
	if diff := cmp.Diff(wantTriggers, proj.Triggers); diff != "" {
		t.Errorf("Triggers (-want +got):\n%s", diff)
	}
	for _, tr := range proj.Triggers {
		if tr.Kind() == "" {
			t.Errorf("trigger %s has no source", tr.Name)
		}
	}
}

func TestParseTriggerErrors(t *testing.T) {
	dir := testDir(t)
	head := "functions:\n  greet:\n    code: ./greet\n"
	tests := []struct {
		name, yaml string
		want       []string // each error line, without the "file:" prefix
	}{
		// Buckets.
		{"buckets a list", "buckets: [a]\n", []string{"4: buckets: want a mapping of bucket names to buckets, got a list"}},
		{"bucket bad name", "buckets:\n  a.b: {kind: kv}\n", []string{
			"5: buckets.a.b: bucket name \"a.b\" is invalid: use 1 to 64 letters, digits, '-' or '_'"}},
		{"bucket no kind", "buckets:\n  a: {}\n", []string{"5: buckets.a.kind: missing: say which kind of bucket, kv or objects"}},
		{"bucket not a mapping", "buckets:\n  a: kv\n", []string{
			"5: buckets.a: want a mapping of settings (at least kind: kv or kind: objects), got \"kv\""}},
		{"bucket bad kind", "buckets:\n  a: {kind: sql}\n", []string{"5: buckets.a.kind: unknown kind \"sql\": want kv or objects"}},
		{"bucket unknown field", "buckets:\n  a: {kind: kv, ttl: 1}\n", []string{
			"5: buckets.a.ttl: unknown field (known fields: kind, max_object_size)"}},
		{"max size on kv", "buckets:\n  a:\n    kind: kv\n    max_object_size: 1MB\n", []string{
			"7: buckets.a.max_object_size: applies to object buckets only (kind: objects)"}},
		{"max size bad unit", "buckets:\n  a: {kind: objects, max_object_size: 16 megs}\n", []string{
			"5: buckets.a.max_object_size: want a size in bytes (16777216) or with a unit (\"16MB\", \"512KB\"), got \"16 megs\""}},
		{"max size zero", "buckets:\n  a: {kind: objects, max_object_size: 0}\n", []string{
			"5: buckets.a.max_object_size: must be more than 0 (leave it out for the node's default)"}},
		{"max size huge", "buckets:\n  a: {kind: objects, max_object_size: 99999999999TB}\n", []string{
			"5: buckets.a.max_object_size: 99999999999TB is out of range"}},
		{"max size too large", "buckets:\n  a: {kind: objects, max_object_size: 6GB}\n", []string{
			"5: buckets.a.max_object_size: 6GB is more than the largest allowed, 5368709120 bytes (5GB)"}},

		// Grants.
		{"grants a list", "    grants: [a]\n", []string{"4: functions.greet.grants: want a mapping with kv:, objects: and hosts: lists, got a list"}},
		{"grants unknown field", "    grants: {queues: [a]}\n", []string{
			"4: functions.greet.grants.queues: unknown field (known fields: hosts, kv, objects)"}},
		{"grants kv not a list", "    grants: {kv: items}\n", []string{
			"4: functions.greet.grants.kv: want a list of KV buckets, got \"items\""}},
		{"grants bad bucket", "    grants:\n      kv:\n        - ok\n        - no/slash\n", []string{
			"7: functions.greet.grants.kv: bucket name \"no/slash\" is invalid: use 1 to 64 letters, digits, '-' or '_'"}},
		{"grants bad host", "    grants:\n      hosts:\n        - https://api.example.com/v1\n", []string{
			"6: functions.greet.grants.hosts: outbound host \"https://api.example.com/v1\" is invalid: give the host alone, without scheme, path or credentials (want a host such as api.example.com, host:port, *.example.com or an IP address)"}},
		{"grants wildcard inside", "    grants: {hosts: [\"api.*.com\"]}\n", []string{
			"4: functions.greet.grants.hosts: outbound host \"api.*.com\" is invalid: a wildcard may only be the first label (*.example.com) (want a host such as api.example.com, host:port, *.example.com or an IP address)"}},
		{"grants a number", "    grants: {objects: [1]}\n", []string{
			"4: functions.greet.grants.objects: want a list of object buckets (strings), got the number 1 in it"}},
		{"too many grants", "    grants: {kv: [" + strings.Repeat("b,", 51) + "]}\n", []string{
			"4: functions.greet.grants.kv: lists 51 KV buckets; at most 50 are allowed"}},
		{"grant of the other kind", "    grants: {objects: [items]}\nbuckets:\n  items: {kind: kv}\n", []string{
			"4: functions.greet.grants.objects: bucket items is declared kind: kv (line 6), not objects"}},

		// Triggers.
		{"triggers a list", "triggers: [a]\n", []string{"4: triggers: want a mapping of trigger names to triggers, got a list"}},
		{"trigger bad name", "triggers:\n  a.b:\n    function: greet\n    kv: {bucket: b}\n", []string{
			"5: triggers.a.b: invalid trigger name: 1 to 64 letters, digits, '-' and '_'"}},
		{"trigger no function", "triggers:\n  t:\n    kv: {bucket: b}\n", []string{
			"5: triggers.t.function: missing: name the function the trigger invokes"}},
		{"trigger bad function", "triggers:\n  t:\n    function: a b\n    kv: {bucket: b}\n", []string{
			"6: triggers.t.function: invalid function name: must satisfy regular expression pattern: [a-zA-Z0-9-_]+, got a b"}},
		{"trigger bad qualifier", "triggers:\n  t:\n    function: greet\n    qualifier: a.b\n    kv: {bucket: b}\n", []string{
			"7: triggers.t.qualifier: invalid qualifier: must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+), got a.b"}},
		{"trigger no source", "triggers:\n  t:\n    function: greet\n", []string{
			"5: triggers.t: missing: a source, one of kv:, objects:, queue: or postgres:"}},
		{"trigger two sources", "triggers:\n  t:\n    function: greet\n    kv: {bucket: b}\n    queue: {subject: a}\n", []string{
			"8: triggers.t.queue: kv: and queue: exclude each other: a trigger has one source"}},
		{"trigger unknown field", "triggers:\n  t:\n    function: greet\n    s3: {bucket: b}\n", []string{
			"5: triggers.t: missing: a source, one of kv:, objects:, queue: or postgres:",
			"7: triggers.t.s3: unknown field (known fields: function, kv, objects, postgres, qualifier, queue)"}},
		{"source not a mapping", "triggers:\n  t:\n    function: greet\n    kv: items\n", []string{
			"7: triggers.t.kv: want a mapping of the source's settings, got \"items\""}},
		{"kv no bucket", "triggers:\n  t:\n    function: greet\n    kv: {prefix: a}\n", []string{
			"7: triggers.t.kv.bucket: missing: name the kv bucket whose changes fire the trigger"}},
		{"kv bad bucket", "triggers:\n  t:\n    function: greet\n    kv: {bucket: \"a b\"}\n", []string{
			"7: triggers.t.kv.bucket: bucket name \"a b\" is invalid: use 1 to 64 letters, digits, '-' or '_'"}},
		{"kv bad event", "triggers:\n  t:\n    function: greet\n    kv:\n      bucket: b\n      events: [put, created]\n", []string{
			"9: triggers.t.kv.events: unknown event \"created\": want put, delete"}},
		{"objects bad event", "triggers:\n  t:\n    function: greet\n    objects: {bucket: b, events: [put]}\n", []string{
			"7: triggers.t.objects.events: unknown event \"put\": want created, deleted"}},
		{"objects unknown field", "triggers:\n  t:\n    function: greet\n    objects: {bucket: b, suffix: .jpg}\n", []string{
			"7: triggers.t.objects.suffix: unknown field (known fields: bucket, events, prefix)"}},
		{"trigger on a bucket of the other kind", "buckets:\n  photos: {kind: objects}\ntriggers:\n  t:\n    function: greet\n    kv: {bucket: photos}\n", []string{
			"9: triggers.t.kv.bucket: bucket photos is declared kind: objects (line 5), not kv"}},
		{"queue nothing to read", "triggers:\n  t:\n    function: greet\n    queue: {batch_size: 1}\n", []string{
			"7: triggers.t.queue: missing: what to read, subject: (a NATS subject) or stream: (a JetStream stream)"}},
		{"queue both", "triggers:\n  t:\n    function: greet\n    queue:\n      subject: a\n      stream: A\n", []string{
			"9: triggers.t.queue.stream: subject: and stream: exclude each other: read a NATS subject or a JetStream stream"}},
		{"queue bad subject", "triggers:\n  t:\n    function: greet\n    queue: {subject: \"jobs..a\"}\n", []string{
			"7: triggers.t.queue.subject: subject \"jobs..a\" has an empty token (two dots, or a dot at an end)"}},
		{"queue bad wildcard", "triggers:\n  t:\n    function: greet\n    queue: {subject: \"jobs.>.a\"}\n", []string{
			"7: triggers.t.queue.subject: subject \"jobs.>.a\": > may only be the last token"}},
		{"queue bad stream", "triggers:\n  t:\n    function: greet\n    queue: {stream: jobs.a}\n", []string{
			"7: triggers.t.queue.stream: stream name \"jobs.a\" is invalid: 1 to 255 characters without spaces, '.', '*', '>', '/' or '\\'"}},
		{"queue filter without stream", "triggers:\n  t:\n    function: greet\n    queue: {subject: a, filter_subject: b}\n", []string{
			"7: triggers.t.queue.filter_subject: applies to a stream: only (stream: NAME)"}},
		{"queue max_deliver without stream", "triggers:\n  t:\n    function: greet\n    queue: {subject: a, max_deliver: 2}\n", []string{
			"7: triggers.t.queue.max_deliver: applies to a stream: only (a subject's messages are delivered at most once)"}},
		{"queue batch size zero", "triggers:\n  t:\n    function: greet\n    queue: {subject: a, batch_size: 0}\n", []string{
			"7: triggers.t.queue.batch_size: 0 is out of range: want a number of messages from 1 to 1000"}},
		{"queue concurrency a string", "triggers:\n  t:\n    function: greet\n    queue: {subject: a, concurrency: many}\n", []string{
			"7: triggers.t.queue.concurrency: want a number of batches at once, got \"many\""}},
		{"queue bad window", "triggers:\n  t:\n    function: greet\n    queue: {subject: a, batch_window: 10m}\n", []string{
			"7: triggers.t.queue.batch_window: 10m is out of range: want 0 to 5m0s"}},
		{"queue window fraction", "triggers:\n  t:\n    function: greet\n    queue: {subject: a, batch_window: 1.5ms}\n", []string{
			"7: triggers.t.queue.batch_window: 1.5ms is not a whole number of milliseconds"}},
		{"queue url scheme", "triggers:\n  t:\n    function: greet\n    queue: {subject: a, url: \"http://u:pw@host:4222\"}\n", []string{
			"7: triggers.t.queue.url: want a nats://, tls://, ws:// or wss:// URL, got the scheme http://"}},
		{"postgres nothing", "triggers:\n  t:\n    function: greet\n    postgres: {events: [insert]}\n", []string{
			"7: triggers.t.postgres.dsn: missing: the database to read, a DSN such as ${ORDERS_DSN} (postgres://user:password@host/db)",
			"7: triggers.t.postgres.tables: missing: name the tables whose row changes fire the trigger ([public.orders])"}},
		{"postgres unset variable", "triggers:\n  t:\n    function: greet\n    postgres:\n      dsn: ${NOT_SET}\n      tables: [a]\n", []string{
			"8: triggers.t.postgres.dsn: environment variable NOT_SET is not set (or is empty): set it where gust deploy runs"}},
		{"postgres unclosed reference", "triggers:\n  t:\n    function: greet\n    postgres:\n      dsn: ${ORDERS_DSN\n      tables: [a]\n", []string{
			"8: triggers.t.postgres.dsn: ${ is not closed by }: write ${NAME}, or $$ for a literal $"}},
		{"postgres bad reference", "triggers:\n  t:\n    function: greet\n    postgres:\n      dsn: host=a password=${p-w}\n      tables: [a]\n", []string{
			"8: triggers.t.postgres.dsn: ${p-w} does not name an environment variable (letters, digits and _): write $$ for a literal $"}},
		{"postgres not a DSN", "triggers:\n  t:\n    function: greet\n    postgres:\n      dsn: ${NATS_HOST}\n      tables: [a]\n", []string{
			"8: triggers.t.postgres.dsn: the value of NATS_HOST: is neither a postgres:// URL nor key=value settings (host=... dbname=...)"}},
		{"postgres bad URL", "triggers:\n  t:\n    function: greet\n    postgres:\n      dsn: \"postgres://u:p%zz@h/db\"\n      tables: [a]\n", []string{
			"8: triggers.t.postgres.dsn: is not a valid postgres:// URL (special characters in the password must be %-escaped)"}},
		{"postgres no tables", "triggers:\n  t:\n    function: greet\n    postgres: {dsn: host=a, tables: []}\n", []string{
			"7: triggers.t.postgres.tables: empty: name at least one table"}},
		{"postgres bad table", "triggers:\n  t:\n    function: greet\n    postgres:\n      dsn: host=a\n      tables:\n        - public.orders\n        - a.b.c\n", []string{
			"11: triggers.t.postgres.tables: table \"a.b.c\" is invalid: want schema.table or table (letters, digits, _ and $)"}},
		{"postgres bad event", "triggers:\n  t:\n    function: greet\n    postgres: {dsn: host=a, tables: [a], events: [truncate]}\n", []string{
			"7: triggers.t.postgres.events: unknown event \"truncate\": want insert, update, delete"}},
		{"postgres max_deliver", "triggers:\n  t:\n    function: greet\n    postgres: {dsn: host=a, tables: [a], max_deliver: 1}\n", []string{
			"7: triggers.t.postgres.max_deliver: unknown field (known fields: batch_size, batch_window, dsn, events, max_attempts, tables)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + tt.yaml
			file := filepath.Join(dir, "gust.yaml")
			_, err := ParseWith(file, []byte(src), Options{Getenv: testEnv})
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Parse = %v, want Errors", err)
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = file + ":" + w
			}
			if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("Parse error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDSNNeverInErrors: a DSN that is wrong is not quoted in errors, as
// it may hold a password.
func TestDSNNeverInErrors(t *testing.T) {
	dir := testDir(t)
	for _, dsn := range []string{"postgres://u:hunter2%zz@h/db", "hunter2"} {
		yml := "functions:\n  greet: {code: greet}\ntriggers:\n  t:\n    function: greet\n    postgres: {dsn: \"" + dsn + "\", tables: [a]}\n"
		_, err := Parse(filepath.Join(dir, "gust.yaml"), []byte(yml))
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(dsn %q) = %v, want an error without the DSN", dsn, err)
		}
	}
}

func TestExpand(t *testing.T) {
	dir := testDir(t)
	tests := []struct {
		dsn, want string
		keep      bool
	}{
		{dsn: "${ORDERS_DSN}", want: testEnv("ORDERS_DSN")},
		{dsn: "host=${NATS_HOST} password=pa$$word$ dbname=x", want: "host=nats.internal password=pa$word$ dbname=x"},
		{dsn: "host=$HOME dbname=x", want: "host=$HOME dbname=x"},
		{dsn: "${UNSET_BUT_KEPT}", want: "${UNSET_BUT_KEPT}", keep: true},
	}
	for _, tt := range tests {
		yml := "functions:\n  greet: {code: greet}\ntriggers:\n  t:\n    function: greet\n    postgres: {dsn: \"" + tt.dsn + "\", tables: [a]}\n"
		p, err := ParseWith(filepath.Join(dir, "gust.yaml"), []byte(yml), Options{Getenv: testEnv, KeepVariables: tt.keep})
		if err != nil {
			t.Errorf("Parse(dsn %q) = %v", tt.dsn, err)
			continue
		}
		if got := p.Triggers[0].Postgres.DSN; got != tt.want {
			t.Errorf("Parse(dsn %q): DSN = %q, want %q", tt.dsn, got, tt.want)
		}
	}
	// Without Getenv, the process's environment is read.
	t.Setenv("GUST_TEST_DSN", "host=from-env")
	yml := "functions:\n  greet: {code: greet}\ntriggers:\n  t:\n    function: greet\n    postgres: {dsn: \"${GUST_TEST_DSN}\", tables: [a]}\n"
	p, err := Parse(filepath.Join(dir, "gust.yaml"), []byte(yml))
	if err != nil || p.Triggers[0].Postgres.DSN != "host=from-env" {
		t.Errorf("Parse with the process environment = %v, %v, want host=from-env", p, err)
	}
}

func TestFunctionDigestGrants(t *testing.T) {
	base := Function{Name: "a", Runtime: "wasm", MemoryMB: 128, TimeoutSec: 3}
	d := base.Digest("abc")
	// A function without grants keeps the digest it had before grants
	// existed (this configuration's digest then).
	if want := "3880b4e60542c79bb3812716e71e92d903a66ae01f3647e1b5299d6ac6ed9bac"; d != want {
		t.Errorf("Digest without grants = %s, want %s", d, want)
	}
	empty := base
	empty.Grants = &registry.Grants{}
	if got := empty.Digest("abc"); got != d {
		t.Errorf("Digest with empty grants = %s, want %s (as with none)", got, d)
	}
	for name, g := range map[string]*registry.Grants{
		"kv":      {KV: []string{"items"}},
		"objects": {Objects: []string{"items"}},
		"hosts":   {Hosts: []string{"api.example.com"}},
	} {
		f := base
		f.Grants = g
		if f.Digest("abc") == d {
			t.Errorf("Digest ignores grants.%s", name)
		}
	}
}
