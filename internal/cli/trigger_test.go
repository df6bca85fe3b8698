package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/project"
	"github.com/gustfaas/gust/internal/sigv4"
)

// fakeTriggers is the trigger API of a node, in memory, behind the real
// SigV4 verifier.
type fakeTriggers struct {
	srv *httptest.Server

	mu       sync.Mutex
	triggers map[string]api.TriggerStatus
	dsns     map[string]string // name -> DSN as sent
	calls    []string          // "METHOD /path"
	// fail, when set, answers every write with this error.
	fail *api.Error
}

func newFakeTriggers(t *testing.T) *fakeTriggers {
	t.Helper()
	f := &fakeTriggers{triggers: map[string]api.TriggerStatus{}, dsns: map[string]string{}}
	v := sigv4.NewVerifier("lambda", func(id string) (string, bool) {
		if id == testKey.AccessKeyID {
			return testKey.SecretAccessKey, true
		}
		return "", false
	})
	mux := http.NewServeMux()
	p := api.TriggersPath
	mux.HandleFunc("POST "+p, func(w http.ResponseWriter, r *http.Request) { f.put(w, r, false) })
	mux.HandleFunc("PUT "+p+"/{name}", func(w http.ResponseWriter, r *http.Request) { f.put(w, r, true) })
	mux.HandleFunc("GET "+p, f.list)
	mux.HandleFunc("GET "+p+"/{name}", f.get)
	mux.HandleFunc("DELETE "+p+"/{name}", f.delete)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		if _, err := v.Verify(r, body, time.Now()); err != nil {
			code, status, msg := sigv4.Describe(err)
			writeAPIError(w, status, code, msg)
			return
		}
		f.mu.Lock()
		f.calls = append(f.calls, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// redactDSN stands for the node's redaction: the password left out.
func redactDSN(dsn string) string { return dsnWithoutPassword(dsn) }

func (f *fakeTriggers) put(w http.ResponseWriter, r *http.Request, replace bool) {
	var t api.Trigger
	if err := json.NewDecoder(r.Body).Decode(&t); err != nil {
		writeAPIError(w, 400, api.ErrInvalidRequestContent, "bad body")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		writeAPIError(w, f.fail.Status, f.fail.Code, f.fail.Message)
		return
	}
	if replace && t.Name != r.PathValue("name") {
		writeAPIError(w, 400, api.ErrInvalidParameterValue, "name differs from the path")
		return
	}
	if _, ok := f.triggers[t.Name]; ok && !replace {
		writeAPIError(w, 409, api.ErrResourceConflict, "Trigger already exists: "+t.Name)
		return
	}
	if t.Kind() == "" {
		writeAPIError(w, 400, api.ErrInvalidParameterValue, "a trigger needs exactly one source")
		return
	}
	if t.Postgres != nil {
		pg := *t.Postgres
		f.dsns[t.Name] = pg.DSN
		pg.DSNRedacted, pg.DSN = redactDSN(pg.DSN), ""
		t.Postgres = &pg
	}
	t.Created, t.Resource = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), "gust_"+t.Name
	f.triggers[t.Name] = api.TriggerStatus{Trigger: t, State: "running"}
	status := http.StatusCreated
	if replace {
		status = http.StatusOK
	}
	writeJSONResponse(w, status, t)
}

func (f *fakeTriggers) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := api.TriggerList{Triggers: []api.TriggerStatus{}}
	for _, t := range f.triggers {
		out.Triggers = append(out.Triggers, t)
	}
	slices.SortFunc(out.Triggers, func(a, b api.TriggerStatus) int { return strings.Compare(a.Name, b.Name) })
	writeJSONResponse(w, 200, out)
}

func (f *fakeTriggers) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.triggers[r.PathValue("name")]
	if !ok {
		writeAPIError(w, 404, api.ErrResourceNotFound, "Trigger not found: "+r.PathValue("name"))
		return
	}
	writeJSONResponse(w, 200, t)
}

func (f *fakeTriggers) delete(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.triggers[r.PathValue("name")]; !ok {
		writeAPIError(w, 404, api.ErrResourceNotFound, "Trigger not found: "+r.PathValue("name"))
		return
	}
	delete(f.triggers, r.PathValue("name"))
	w.WriteHeader(http.StatusNoContent)
}

// takeCalls returns the calls so far and forgets them.
func (f *fakeTriggers) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeTriggers) run(t *testing.T, stdin string, args ...string) runResult {
	t.Helper()
	return run(t, nil, map[string]string{EnvServer: f.srv.URL}, stdin, args...)
}

func TestTriggerCreate(t *testing.T) {
	const dsn = "postgres://gust:s3cret@db.example:5432/shop"
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  api.Trigger // sent; Name "" when the command must fail with a usage error
		err   string      // in stderr, for usage errors
	}{
		{name: "the issue's example", args: []string{"orders", "--postgres", dsn, "--table", "public.orders", "--events", "insert,update,delete", "--function", "audit"},
			want: api.Trigger{Name: "orders", Function: "audit", Postgres: &api.PostgresSource{DSN: dsn, Tables: []string{"public.orders"},
				Events: []string{"insert", "update", "delete"}}}},
		{name: "postgres every flag, DSN on stdin", stdin: dsn + "\n",
			args: []string{"orders", "--postgres", "-", "--table", "public.orders,items", "--table", "x.y", "--batch-size", "50",
				"--batch-window", "100ms", "--max-attempts", "5", "--function", "audit", "--qualifier", "live"},
			want: api.Trigger{Name: "orders", Function: "audit", Qualifier: "live", Postgres: &api.PostgresSource{DSN: dsn,
				Tables: []string{"public.orders", "items", "x.y"}, BatchSize: 50, BatchWindowMs: 100, MaxAttempts: 5}}},
		{name: "kv", args: []string{"on-item", "--kv", "items", "--prefix", "user.", "--events", "put", "--function", "api"},
			want: api.Trigger{Name: "on-item", Function: "api", KV: &api.KVSource{Bucket: "items", Prefix: "user.", Events: []string{"put"}}}},
		{name: "objects", args: []string{"on-upload", "--objects", "photos", "--function", "thumb"},
			want: api.Trigger{Name: "on-upload", Function: "thumb", Objects: &api.ObjectsSource{Bucket: "photos"}}},
		{name: "subject", args: []string{"events", "--subject", "events.>", "--url", "nats://127.0.0.1:4222", "--concurrency", "4", "--function", "api"},
			want: api.Trigger{Name: "events", Function: "api", Queue: &api.QueueSource{Subject: "events.>", URL: "nats://127.0.0.1:4222", Concurrency: 4}}},
		{name: "stream", args: []string{"jobs", "--stream", "JOBS", "--filter-subject", "jobs.a", "--batch-size", "10", "--max-deliver", "5", "--function", "worker"},
			want: api.Trigger{Name: "jobs", Function: "worker", Queue: &api.QueueSource{Stream: "JOBS", FilterSubject: "jobs.a", BatchSize: 10, MaxDeliver: 5}}},

		{name: "no function", args: []string{"t", "--kv", "items"}, err: "--function is required"},
		{name: "bad function", args: []string{"t", "--kv", "items", "--function", "a b"}, err: `--function "a b" is not a valid function name`},
		{name: "bad qualifier", args: []string{"t", "--kv", "items", "--function", "f", "--qualifier", "a.b"}, err: `--qualifier "a.b" is not a version or alias name`},
		{name: "bad name", args: []string{"a.b", "--kv", "items", "--function", "f"}, err: `trigger name "a.b" is invalid`},
		{name: "no name", args: []string{"--kv", "items", "--function", "f"}, err: "takes 1 argument(s) (NAME), got 0"},
		{name: "no source", args: []string{"t", "--function", "f"}, err: "name the source: --postgres DSN --table T"},
		{name: "two sources", args: []string{"t", "--kv", "items", "--stream", "S", "--function", "f"}, err: "--kv and --stream exclude each other"},
		{name: "no table", args: []string{"t", "--postgres", dsn, "--function", "f"}, err: "--table is required with --postgres"},
		{name: "bad table", args: []string{"t", "--postgres", dsn, "--table", "a;drop", "--function", "f"}, err: `--table "a;drop": want schema.table`},
		{name: "empty DSN on stdin", args: []string{"t", "--postgres", "-", "--table", "a", "--function", "f"}, err: "--postgres: the DSN is empty"},
		{name: "bad event", args: []string{"t", "--postgres", dsn, "--table", "a", "--events", "insert,truncate", "--function", "f"},
			err: `--events: unknown event "truncate" for --postgres: want insert,update,delete`},
		{name: "kv event on objects", args: []string{"t", "--objects", "b", "--events", "put", "--function", "f"},
			err: `--events: unknown event "put" for --objects: want created,deleted`},
		{name: "events on a queue", args: []string{"t", "--subject", "a", "--events", "put", "--function", "f"},
			err: "--events does not apply to --subject (it applies to --postgres, --kv, --objects)"},
		{name: "prefix on postgres", args: []string{"t", "--postgres", dsn, "--table", "a", "--prefix", "x", "--function", "f"},
			err: "--prefix does not apply to --postgres (it applies to --kv, --objects)"},
		{name: "table on kv", args: []string{"t", "--kv", "b", "--table", "a", "--function", "f"}, err: "--table does not apply to --kv"},
		{name: "filter on subject", args: []string{"t", "--subject", "a", "--filter-subject", "a.b", "--function", "f"},
			err: "--filter-subject does not apply to --subject (it applies to --stream)"},
		{name: "url on kv", args: []string{"t", "--kv", "b", "--url", "nats://x", "--function", "f"}, err: "--url does not apply to --kv"},
		{name: "bad bucket", args: []string{"t", "--kv", "a/b", "--function", "f"}, err: `--kv: bucket name "a/b" is invalid`},
		{name: "batch size zero", args: []string{"t", "--subject", "a", "--batch-size", "0", "--function", "f"}, err: "--batch-size 0: want 1 to 1000"},
		{name: "concurrency", args: []string{"t", "--stream", "S", "--concurrency", "-1", "--function", "f"}, err: "--concurrency -1: want 1 to 100"},
		{name: "window", args: []string{"t", "--stream", "S", "--batch-window", "10m", "--function", "f"}, err: "--batch-window 10m0s: want whole milliseconds from 0 to 5m0s"},
		{name: "window not a duration", args: []string{"t", "--stream", "S", "--batch-window", "soon", "--function", "f"}, err: `invalid argument "soon" for "--batch-window"`},
		{name: "bad url", args: []string{"t", "--stream", "S", "--url", "::", "--function", "f"}, err: "--url: want a NATS server URL"},
		{name: "max deliver on postgres", args: []string{"t", "--postgres", dsn, "--table", "a", "--max-deliver", "2", "--function", "f"},
			err: "--max-deliver does not apply to --postgres (it applies to --stream)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTriggers(t)
			r := f.run(t, tt.stdin, append([]string{"trigger", "create"}, tt.args...)...)
			if tt.err != "" {
				if r.code != ExitUsage || !strings.Contains(r.stderr, tt.err) {
					t.Errorf("trigger create %v = %d, stderr %q, want %d and %q", tt.args, r.code, r.stderr, ExitUsage, tt.err)
				}
				if calls := f.takeCalls(); len(calls) != 0 {
					t.Errorf("trigger create %v called the node: %v", tt.args, calls)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("trigger create %v = %d: %s", tt.args, r.code, r.stderr)
			}
			got := f.triggers[tt.want.Name].Trigger
			if got.Postgres != nil {
				pg := *got.Postgres
				pg.DSN, pg.DSNRedacted = f.dsns[tt.want.Name], ""
				got.Postgres = &pg
			}
			got.Created, got.Resource = time.Time{}, ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("trigger sent (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(r.stdout, "created trigger "+tt.want.Name+": ") || strings.Contains(r.stdout, "s3cret") {
				t.Errorf("stdout = %q, want created trigger %s without the password", r.stdout, tt.want.Name)
			}
		})
	}
}

func TestTriggerCommands(t *testing.T) {
	f := newFakeTriggers(t)
	if r := f.run(t, "", "trigger", "create", "orders", "--postgres", "postgres://gust:s3cret@db:5432/shop", "--table", "public.orders",
		"--function", "audit", "--qualifier", "live"); r.code != 0 {
		t.Fatalf("trigger create = %d: %s", r.code, r.stderr)
	}
	// Taken: 409, exit 1; --replace puts it.
	if r := f.run(t, "", "trigger", "create", "orders", "--kv", "items", "--function", "audit"); r.code != ExitFailure || !strings.Contains(r.stderr, "Trigger already exists: orders") {
		t.Errorf("trigger create (taken) = %d, %q, want 1 and the node's error", r.code, r.stderr)
	}
	if r := f.run(t, "", "trigger", "create", "items", "--kv", "items", "--function", "api", "--replace"); r.code != 0 || !strings.HasPrefix(r.stdout, "put trigger items: kv items invokes api") {
		t.Errorf("trigger create --replace = %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if calls := f.takeCalls(); !slices.Contains(calls, "PUT "+api.TriggersPath+"/items") {
		t.Errorf("--replace calls = %v, want a PUT", calls)
	}
	lag, secs := int64(2048), 1.25
	f.mu.Lock()
	s := f.triggers["orders"]
	s.Delivered, s.DeadLettered, s.LagBytes, s.LagSeconds, s.State, s.Error = 12, 1, &lag, &secs, "error", "connect: connection refused"
	f.triggers["orders"] = s
	f.mu.Unlock()

	r := f.run(t, "", "trigger", "ls")
	want := []string{
		"NAME    KIND      FUNCTION    SOURCE                                               STATE    DELIVERED  DEAD  LAG",
		"items   kv        api         items                                                running  0          0     -",
		"orders  postgres  audit:live  public.orders on postgres://gust@db:5432/shop  error    12         1     2.0 KiB, 1.3s",
		"orders: error: connect: connection refused",
	}
	squeeze := func(lines []string) []string {
		out := make([]string, len(lines))
		for i, l := range lines {
			out[i] = strings.Join(strings.Fields(l), " ")
		}
		return out
	}
	if diff := cmp.Diff(squeeze(want), squeeze(strings.Split(strings.TrimSpace(r.stdout), "\n"))); r.code != 0 || diff != "" {
		t.Errorf("trigger ls = %d (-want +got):\n%s\n%s", r.code, diff, r.stderr)
	}
	r = f.run(t, "", "-o", "json", "trigger", "ls")
	var list api.TriggerList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Triggers) != 2 || list.Triggers[1].Delivered != 12 {
		t.Errorf("trigger ls -o json = %v, %s", err, r.stdout)
	}
	r = f.run(t, "", "trigger", "get", "orders")
	for _, s := range []string{"function:       audit:live", "state:          error", "error:          connect: connection refused",
		"lag:            2.0 KiB, 1.3s", "resource:       gust_orders"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("trigger get = %q, want it to contain %q", r.stdout, s)
		}
	}
	if strings.Contains(r.stdout, "s3cret") {
		t.Errorf("trigger get shows the password: %s", r.stdout)
	}
	if r := f.run(t, "", "trigger", "get", "nope"); r.code != ExitFailure || !strings.Contains(r.stderr, "Trigger not found: nope") {
		t.Errorf("trigger get nope = %d, %q", r.code, r.stderr)
	}
	if r := f.run(t, "", "trigger", "rm", "orders"); r.code != 0 || r.stdout != "removed trigger orders\n" {
		t.Errorf("trigger rm = %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	if r := f.run(t, "", "trigger", "rm", "orders"); r.code != ExitFailure {
		t.Errorf("trigger rm (again) = %d, want 1", r.code)
	}
	for _, args := range [][]string{{"trigger"}, {"trigger", "start"}, {"trigger", "get"}, {"trigger", "ls", "x"}} {
		if r := f.run(t, "", args...); r.code != ExitUsage {
			t.Errorf("%v = %d, want %d", args, r.code, ExitUsage)
		}
	}
}

func TestTriggerChanges(t *testing.T) {
	pg := func(mod func(*api.PostgresSource)) api.Trigger {
		s := &api.PostgresSource{DSN: "postgres://u:pw@db:5432/shop?sslmode=disable", Tables: []string{"public.orders"}}
		mod(s)
		return api.Trigger{Name: "t", Function: "f", Postgres: s}
	}
	asNode := func(t api.Trigger) api.Trigger { return redacted(t) }
	tests := []struct {
		name       string
		have, want api.Trigger
		changes    []string
	}{
		{"same postgres, defaults spelled out", asNode(pg(func(s *api.PostgresSource) {
			s.BatchSize, s.MaxAttempts, s.Events, s.Tables = 100, 3, []string{"delete", "insert", "update"}, []string{"orders"}
		})), pg(func(*api.PostgresSource) {}), nil},
		{"another password only", asNode(pg(func(s *api.PostgresSource) { s.DSN = "postgres://u:other@db:5432/shop?sslmode=disable" })),
			pg(func(*api.PostgresSource) {}), nil},
		{"key=value DSN, reordered", asNode(pg(func(s *api.PostgresSource) { s.DSN = "dbname=shop host=db password='a b' user=u" })),
			pg(func(s *api.PostgresSource) { s.DSN = "host=db user=u password=x dbname=shop" }), nil},
		// As internal/trigger/manager's RedactDSN answers them.
		{"the node's redacted URL", api.Trigger{Name: "t", Function: "f", Postgres: &api.PostgresSource{
			DSNRedacted: "postgres://app@db.example:5432/shop", Tables: []string{"public.orders"}}},
			pg(func(s *api.PostgresSource) { s.DSN = "postgres://app:hunter2@db.example:5432/shop" }), nil},
		{"the node's redacted settings", api.Trigger{Name: "t", Function: "f", Postgres: &api.PostgresSource{
			DSNRedacted: "host=db user=u dbname=shop", Tables: []string{"public.orders"}}},
			pg(func(s *api.PostgresSource) { s.DSN = "host=db password=y user=u dbname=shop" }), nil},
		{"another database", asNode(pg(func(*api.PostgresSource) {})), pg(func(s *api.PostgresSource) { s.DSN = "postgres://u:pw@db:5432/other" }), []string{"dsn"}},
		{"tables, events, batch", asNode(pg(func(*api.PostgresSource) {})), pg(func(s *api.PostgresSource) {
			s.Tables, s.Events, s.BatchSize, s.BatchWindowMs, s.MaxAttempts = []string{"orders", "items"}, []string{"insert"}, 5, 10, 1
		}), []string{"tables", "events", "batch_size", "batch_window", "max_attempts"}},
		{"function, qualifier, kind", api.Trigger{Function: "a", KV: &api.KVSource{Bucket: "b"}},
			api.Trigger{Function: "b", Qualifier: "live", Objects: &api.ObjectsSource{Bucket: "b"}}, []string{"function", "qualifier", "source"}},
		{"kv", api.Trigger{Function: "a", KV: &api.KVSource{Bucket: "b", Events: []string{"put", "delete"}}},
			api.Trigger{Function: "a", KV: &api.KVSource{Bucket: "c", Prefix: "p", Events: []string{"put"}}}, []string{"bucket", "prefix", "events"}},
		{"objects unchanged", api.Trigger{Function: "a", Objects: &api.ObjectsSource{Bucket: "b", Events: []string{"deleted", "created"}}},
			api.Trigger{Function: "a", Objects: &api.ObjectsSource{Bucket: "b"}}, nil},
		{"queue defaults", api.Trigger{Function: "a", Queue: &api.QueueSource{Stream: "S", BatchSize: 10, Concurrency: 1, MaxDeliver: 3}},
			api.Trigger{Function: "a", Queue: &api.QueueSource{Stream: "S"}}, nil},
		{"queue", api.Trigger{Function: "a", Queue: &api.QueueSource{Stream: "S"}},
			api.Trigger{Function: "a", Queue: &api.QueueSource{Subject: "s", URL: "nats://x:4222", BatchSize: 2, BatchWindowMs: 5, Concurrency: 3}},
			[]string{"url", "subject", "stream", "batch_size", "batch_window", "concurrency"}},
		{"stream filter and deliveries", api.Trigger{Function: "a", Queue: &api.QueueSource{Stream: "S"}},
			api.Trigger{Function: "a", Queue: &api.QueueSource{Stream: "S", FilterSubject: "x", MaxDeliver: 9}}, []string{"filter_subject", "max_deliver"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.changes, triggerChanges(tt.have, tt.want)); diff != "" {
				t.Errorf("triggerChanges (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDSNWithoutPassword(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@db:5432/shop?sslmode=disable&password=x": "postgres://u@db:5432/shop?sslmode=disable",
		"postgresql://u@db/shop":                                  "postgres://u@db/shop",
		"host=db password='it''s secret' user=u":                  "host=db user=u",
		"user=u   password=pw host=db":                            "host=db user=u",
		"postgres://u:p%zz@db/shop":                               "(unparsable DSN)",
	} {
		if got := dsnWithoutPassword(in); got != want {
			t.Errorf("dsnWithoutPassword(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDeployTriggers: a project deploy creates missing triggers, puts
// changed ones, leaves unchanged ones (and triggers the file does not
// name) alone, and reports a node's refusal per trigger.
func TestDeployTriggers(t *testing.T) {
	f := newFakeTriggers(t)
	ctx := context.Background()
	c := client.New(f.srv.URL, client.Credentials{AccessKeyID: testKey.AccessKeyID, SecretAccessKey: testKey.SecretAccessKey})
	a := &app{env: Env{Stdout: io.Discard, Stderr: io.Discard}, output: outputTable}
	if _, err := c.CreateTrigger(ctx, api.Trigger{Name: "other", Function: "x", KV: &api.KVSource{Bucket: "b"}}); err != nil {
		t.Fatal(err)
	}
	dsn := "postgres://u:pw@db/shop"
	file := []*project.Trigger{
		{Trigger: api.Trigger{Name: "jobs", Function: "worker", Queue: &api.QueueSource{Stream: "JOBS"}}},
		{Trigger: api.Trigger{Name: "orders", Function: "audit", Qualifier: "live",
			Postgres: &api.PostgresSource{DSN: dsn, Tables: []string{"public.orders"}}}},
	}
	actions := func(rs []projectTriggerResult) map[string]string {
		m := map[string]string{}
		for _, r := range rs {
			m[r.Name] = r.Action + " " + strings.Join(r.Changes, ",") + r.Error
		}
		return m
	}
	deploy := func(replace bool, want map[string]string, wantCalls ...string) {
		t.Helper()
		f.takeCalls()
		got := a.deployTriggers(ctx, c, file, false, replace)
		if diff := cmp.Diff(want, actions(got)); diff != "" {
			t.Errorf("deployTriggers (-want +got):\n%s", diff)
		}
		calls := f.takeCalls()
		slices.Sort(calls)
		if diff := cmp.Diff(wantCalls, calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	}
	p := api.TriggersPath
	deploy(false, map[string]string{"jobs": "created ", "orders": "created "},
		"GET "+p+"/jobs", "GET "+p+"/orders", "POST "+p, "POST "+p)
	deploy(false, map[string]string{"jobs": "unchanged ", "orders": "unchanged "}, "GET "+p+"/jobs", "GET "+p+"/orders")
	file[0].Queue.BatchSize = 50
	file[1].Postgres.DSN = "postgres://u:new@db/shop" // the password alone: not seen
	deploy(false, map[string]string{"jobs": "updated batch_size", "orders": "unchanged "},
		"GET "+p+"/jobs", "GET "+p+"/orders", "PUT "+p+"/jobs")
	deploy(true, map[string]string{"jobs": "replaced ", "orders": "replaced "},
		"GET "+p+"/jobs", "GET "+p+"/orders", "PUT "+p+"/jobs", "PUT "+p+"/orders")
	if f.dsns["orders"] != "postgres://u:new@db/shop" {
		t.Errorf("the replaced trigger's DSN = %q, want the new one", f.dsns["orders"])
	}
	if _, ok := f.triggers["other"]; !ok {
		t.Errorf("a trigger the file does not name was removed")
	}
	got := a.deployTriggers(ctx, c, file, true, false)
	if diff := cmp.Diff(map[string]string{"jobs": "skipped ", "orders": "skipped "}, actions(got)); diff != "" {
		t.Errorf("deployTriggers (skip) (-want +got):\n%s", diff)
	}
	if got[1].Source != "public.orders on postgres://u@db/shop" {
		t.Errorf("skipped trigger's source = %q, want it without the password", got[1].Source)
	}
	file[0].Queue.BatchSize = 60
	f.mu.Lock()
	f.fail = &api.Error{Status: 400, Code: api.ErrInvalidParameterValue, Message: "stream JOBS does not exist"}
	f.mu.Unlock()
	got = a.deployTriggers(ctx, c, file, false, false)
	if diff := cmp.Diff(map[string]string{"jobs": "failed batch_sizereplace: InvalidParameterValueException: stream JOBS does not exist", "orders": "unchanged "}, actions(got)); diff != "" {
		t.Errorf("deployTriggers (refused) (-want +got):\n%s", diff)
	}
}

// memBuckets is a bucketStore in memory.
type memBuckets struct {
	mu      sync.Mutex
	kinds   map[string]string
	created []string
	failOn  string
}

func (m *memBuckets) bucketKind(_ context.Context, name, _ string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if name == m.failOn {
		return "", errors.New("node unreachable")
	}
	return m.kinds[name], nil
}

func (m *memBuckets) createBucket(_ context.Context, b *project.Bucket) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b.Name == "refused" {
		return errors.New("no space left")
	}
	m.kinds[b.Name] = b.Kind
	m.created = append(m.created, b.Name)
	return nil
}

func TestPlanAndCreateBuckets(t *testing.T) {
	a := &app{env: Env{Stdout: io.Discard, Stderr: io.Discard}}
	ctx := context.Background()
	store := &memBuckets{kinds: map[string]string{"items": "kv", "photos": "kv"}, failOn: "broken"}
	buckets := []*project.Bucket{
		{Name: "items", Kind: "kv"}, {Name: "new", Kind: "objects", MaxObjectSize: 1 << 20},
		{Name: "photos", Kind: "objects"}, {Name: "broken", Kind: "kv"}, {Name: "refused", Kind: "kv"},
	}
	results, missing := a.planBuckets(ctx, store, buckets)
	a.createBuckets(ctx, store, missing, results)
	want := []projectBucketResult{
		{Name: "items", Kind: "kv", Action: actionUnchanged},
		{Name: "new", Kind: "objects", Action: actionCreated, MaxObjectSize: 1 << 20},
		{Name: "photos", Kind: "objects", Action: actionFailed,
			Error: "a bucket photos of kind kv exists; the file declares kind objects (a deploy never deletes a bucket: rename one of them)"},
		{Name: "broken", Kind: "kv", Action: actionFailed, Error: "read the bucket: node unreachable"},
		{Name: "refused", Kind: "kv", Action: actionFailed, Error: "create: no space left"},
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("bucket results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"new"}, store.created); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
}

func TestDeployGrantFlags(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.wasm")
	if err := os.WriteFile(p, wasmModule, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{[]string{"deploy", "fn", p, "--grant-kv", "no/slash"}, `--grant-kv: bucket name "no/slash" is invalid`},
		{[]string{"deploy", "fn", p, "--grant-objects", ""}, ""},
		{[]string{"deploy", "fn", p, "--allow-host", "https://api.example.com"}, `--allow-host: outbound host "https://api.example.com" is invalid`},
		{[]string{"deploy", "--grant-kv", "items"}, "--grant-kv applies to `gust deploy NAME PATH`"},
		{[]string{"deploy", "--allow-host", "x.com"}, "--allow-host applies to `gust deploy NAME PATH`"},
		{[]string{"deploy", "fn", p, "--replace-triggers"}, "--replace-triggers applies to project deploys"},
	} {
		node := newFakeNode(t)
		r := run(t, node, nil, "", tt.args...)
		if tt.err == "" {
			if r.code != 0 {
				t.Errorf("%v = %d: %s", tt.args, r.code, r.stderr)
			}
			continue
		}
		if r.code != ExitUsage || !strings.Contains(r.stderr, tt.err) {
			t.Errorf("%v = %d, %q, want %d and %q", tt.args, r.code, r.stderr, ExitUsage, tt.err)
		}
	}
}

func TestGrantFlags(t *testing.T) {
	g, err := grantFlags([]string{"items", "cache", "items"}, nil, []string{"API.example.com", "*.x.org", "10.0.0.1:9000"})
	want := &api.Grants{KV: []string{"items", "cache"}, Hosts: []string{"api.example.com", "*.x.org", "10.0.0.1:9000"}}
	if err != nil || !cmp.Equal(want, g) {
		t.Errorf("grantFlags = %+v, %v, want %+v", g, err, want)
	}
	if g, err := grantFlags([]string{""}, nil, nil); err != nil || !cmp.Equal(&api.Grants{}, g) {
		t.Errorf("grantFlags('') = %+v, %v, want an empty set", g, err)
	}
	many := make([]string, 51)
	for i := range many {
		many[i] = "b" + strings.Repeat("x", i)
	}
	if _, err := grantFlags(nil, many, nil); err == nil || !strings.Contains(err.Error(), "--grant-objects is given 51 times; at most 50") {
		t.Errorf("grantFlags(51 buckets) = %v", err)
	}
	if got := describeGrants(want); got != "kv items,cache; hosts api.example.com,*.x.org,10.0.0.1:9000" {
		t.Errorf("describeGrants = %q", got)
	}
	if got := describeGrants(&api.Grants{}); got != "none" {
		t.Errorf("describeGrants(empty) = %q", got)
	}
}
