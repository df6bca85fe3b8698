package manager_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/keyring"
	"github.com/gustfaas/gust/internal/substrate"
	"github.com/gustfaas/gust/internal/trigger/manager"
)

// fakeSource records what the manager asks of it. Queue triggers stand
// for every kind.
type fakeSource struct {
	mu       sync.Mutex
	runs     map[string]int // starts by trigger name
	active   map[string]api.Trigger
	removed  []string
	checkErr error
	failRun  error
}

func newFake() *fakeSource {
	return &fakeSource{runs: map[string]int{}, active: map[string]api.Trigger{}}
}

func (f *fakeSource) Validate(t *api.Trigger) error {
	if t.Queue != nil && t.Queue.Subject == "" && t.Queue.Stream == "" {
		return &manager.ValidationError{Field: "queue", Message: "queue: subject or stream is required"}
	}
	return nil
}

func (f *fakeSource) Check(context.Context, api.Trigger) error { return f.checkErr }

func (f *fakeSource) Run(ctx context.Context, t api.Trigger, st *manager.Status) error {
	f.mu.Lock()
	f.runs[t.Name]++
	fail := f.failRun
	f.active[t.Name] = t
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.active, t.Name)
		f.mu.Unlock()
	}()
	if fail != nil {
		return fail
	}
	st.Running()
	st.Delivered(3)
	<-ctx.Done()
	return nil
}

func (f *fakeSource) Same(a, b api.Trigger) bool {
	return a.Queue == nil || b.Queue == nil || a.Queue.Stream == b.Queue.Stream
}

func (f *fakeSource) Remove(_ context.Context, t api.Trigger) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.Queue != nil {
		f.removed = append(f.removed, t.Name+"/"+t.Queue.Stream)
	}
	return nil
}

func (f *fakeSource) state() (map[string]int, map[string]api.Trigger, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	runs := map[string]int{}
	for k, v := range f.runs {
		runs[k] = v
	}
	active := map[string]api.Trigger{}
	for k, v := range f.active {
		active[k] = v
	}
	return runs, active, append([]string(nil), f.removed...)
}

type functions map[string]bool

func (f functions) Exists(name, _ string) bool { return f[name] }

func checkFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func open(t *testing.T, dir string, src manager.Source) (*manager.Manager, *substrate.Substrate) {
	t.Helper()
	sub, err := substrate.Open(context.Background(), substrate.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.Open(context.Background(), sub, dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.Open(context.Background(), sub, manager.Config{
		Sources: map[string]manager.Source{api.TriggerQueue: src, api.TriggerPostgres: src},
		Sealer:  keys, Functions: functions{"work": true},
		RestartMin: 10 * time.Millisecond, RestartMax: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, sub
}

func TestManagerLifecycle(t *testing.T) {
	dir := t.TempDir()
	src := newFake()
	m, sub := open(t, dir, src)
	ctx := context.Background()

	jobs := api.Trigger{Name: "jobs", Function: "work", Queue: &api.QueueSource{Stream: "JOBS"}}
	first, err := m.Create(ctx, jobs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.Resource, "gust_jobs_") {
		t.Errorf("Resource = %q, want gust_jobs_...", first.Resource)
	}
	if _, err := m.Create(ctx, jobs); !errors.Is(err, manager.ErrExists) {
		t.Errorf("Create(twice) = %v, want ErrExists", err)
	}
	checkFor(t, "jobs running", func() bool {
		s, err := m.Get(ctx, "jobs")
		return err == nil && s.State == "running" && s.Delivered == 3
	})

	// A replacement on the same stream keeps its position: no removal.
	jobs.Queue.BatchSize = 5
	if same, err := m.Put(ctx, jobs); err != nil || same.Resource != first.Resource {
		t.Fatalf("Put(same stream) = %q, %v; want the resource %q kept", same.Resource, err, first.Resource)
	}
	checkFor(t, "the replacement running", func() bool {
		_, active, _ := src.state()
		return active["jobs"].Queue != nil && active["jobs"].Queue.BatchSize == 5
	})
	if _, _, removed := src.state(); len(removed) != 0 {
		t.Errorf("a same-source replacement removed %v", removed)
	}
	// On another stream, the old source is released.
	jobs.Queue.Stream = "OTHER"
	if moved, err := m.Put(ctx, jobs); err != nil || moved.Resource == first.Resource {
		t.Fatalf("Put(other stream) = %q, %v; want a new resource", moved.Resource, err)
	}
	if _, _, removed := src.state(); strings.Join(removed, ",") != "jobs/JOBS" {
		t.Errorf("after moving to another stream, removed = %v, want jobs/JOBS", removed)
	}

	// Bad definitions are refused with the field named; nothing is stored.
	for name, bad := range map[string]api.Trigger{
		"bad name":       {Name: "a b", Function: "work", Queue: &api.QueueSource{Stream: "X"}},
		"no function":    {Name: "x", Queue: &api.QueueSource{Stream: "X"}},
		"no source":      {Name: "x", Function: "work"},
		"two sources":    {Name: "x", Function: "work", Queue: &api.QueueSource{Stream: "X"}, KV: &api.KVSource{Bucket: "b"}},
		"unknown fn":     {Name: "x", Function: "nope", Queue: &api.QueueSource{Stream: "X"}},
		"source refuses": {Name: "x", Function: "work", Queue: &api.QueueSource{}},
		"no kv source":   {Name: "x", Function: "work", KV: &api.KVSource{Bucket: "b"}},
	} {
		var ve *manager.ValidationError
		if _, err := m.Create(ctx, bad); !errors.As(err, &ve) {
			t.Errorf("Create(%s) = %v, want a ValidationError", name, err)
		}
	}
	src.checkErr = &manager.ValidationError{Field: "queue.stream", Message: `stream "X" does not exist`}
	if _, err := m.Create(ctx, api.Trigger{Name: "x", Function: "work", Queue: &api.QueueSource{Stream: "X"}}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Create(source check fails) = %v", err)
	}
	src.checkErr = nil
	if _, err := m.Get(ctx, "x"); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("a refused trigger was stored: %v", err)
	}

	// The DSN is sealed at rest and redacted in answers.
	pg := api.Trigger{Name: "orders", Function: "work", Postgres: &api.PostgresSource{
		DSN: "postgres://app:hunter2@db.example:5432/shop", Tables: []string{"public.orders"}}}
	out, err := m.Create(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	if out.Postgres.DSN != "" || out.Postgres.DSNRedacted != "postgres://app@db.example:5432/shop" {
		t.Errorf("Create answered postgres %+v, want the DSN redacted", out.Postgres)
	}
	kv, err := sub.KeyValue(ctx, manager.StoreConfig())
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "orders")
	if err != nil || strings.Contains(string(e.Value()), "hunter2") {
		t.Errorf("stored trigger holds the password in clear (or %v): %s", err, e.Value())
	}
	checkFor(t, "the DSN reaching the source opened", func() bool {
		_, active, _ := src.state()
		return active["orders"].Postgres != nil && active["orders"].Postgres.DSN == pg.Postgres.DSN
	})

	list, err := m.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "jobs" || list[1].Name != "orders" {
		t.Fatalf("List = %+v, %v", list, err)
	}

	// Delete stops it everywhere and releases its source.
	if err := m.Delete(ctx, "jobs"); err != nil {
		t.Fatal(err)
	}
	if _, active, removed := src.state(); active["jobs"].Name != "" || !strings.Contains(strings.Join(removed, ","), "jobs/OTHER") {
		t.Errorf("after Delete: active %v, removed %v", active["jobs"], removed)
	}
	if err := m.Delete(ctx, "jobs"); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("Delete(again) = %v, want ErrNotFound", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	sub.Close()

	// A restarted node runs what is stored.
	src2 := newFake()
	m2, sub2 := open(t, dir, src2)
	defer sub2.Close()
	defer m2.Close()
	checkFor(t, "orders running after a restart", func() bool {
		_, active, _ := src2.state()
		return active["orders"].Postgres != nil && active["orders"].Postgres.DSN == pg.Postgres.DSN
	})
}

func TestManagerRestartsFailingTrigger(t *testing.T) {
	src := newFake()
	src.failRun = errors.New("database unreachable")
	m, sub := open(t, t.TempDir(), src)
	defer sub.Close()
	defer m.Close()
	ctx := context.Background()
	if _, err := m.Create(ctx, api.Trigger{Name: "flaky", Function: "work", Queue: &api.QueueSource{Subject: "a"}}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, "several restarts with the error reported", func() bool {
		runs, _, _ := src.state()
		s, err := m.Get(ctx, "flaky")
		return runs["flaky"] >= 3 && err == nil && s.State == "error" && strings.Contains(s.Error, "database unreachable")
	})
	src.mu.Lock()
	src.failRun = nil
	src.mu.Unlock()
	checkFor(t, "running again, error cleared", func() bool {
		s, err := m.Get(ctx, "flaky")
		return err == nil && s.State == "running" && s.Error == ""
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var delivered float64 = -1
	for _, mf := range mfs {
		if mf.GetName() == "gust_trigger_delivered_total" && len(mf.GetMetric()) == 1 {
			delivered = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if delivered != 3 {
		t.Errorf("gust_trigger_delivered_total = %v, want 3", delivered)
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db?sslmode=disable": "postgres://u@h:5432/db?sslmode=disable",
		"postgresql://h/db?password=secret&user=u":      "postgresql://h/db?user=u",
		"host=h user=u password=secret dbname=d":        "host=h user=u dbname=d",
		"host=h password='se cret' dbname=d":            "host=h dbname=d",
		"":                                              "",
	} {
		if got := manager.RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}
