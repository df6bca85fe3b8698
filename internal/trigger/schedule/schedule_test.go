package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/substrate"
	"github.com/gustfaas/gust/internal/trigger/cron"
)

func openSubstrate(t *testing.T) *substrate.Substrate {
	t.Helper()
	sub, err := substrate.Open(context.Background(), substrate.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// fakeQueue records enqueues; fail, when set, decides whether one fails.
type fakeQueue struct {
	mu    sync.Mutex
	calls []enqueued
	fail  func(n int) bool
}

type enqueued struct {
	function, qualifier, dedupID string
	payload                      []byte
	slot                         int64
	at                           time.Time
}

func (q *fakeQueue) Enqueue(ctx context.Context, function, qualifier string, payload []byte, dedupID string) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil && q.fail(len(q.calls)) {
		q.calls = append(q.calls, enqueued{dedupID: "failed"})
		return "", errors.New("queue unavailable")
	}
	i := strings.LastIndexByte(dedupID, ':')
	slot, _ := strconv.ParseInt(dedupID[i+1:], 10, 64)
	q.calls = append(q.calls, enqueued{function, qualifier, dedupID, payload, slot, time.Now()})
	return "req-" + dedupID, nil
}

// slots returns the slots enqueued successfully, in order, and fails the
// test if one was enqueued twice.
func (q *fakeQueue) slots(t *testing.T) []int64 {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	seen := map[string]bool{}
	var out []int64
	for _, c := range q.calls {
		if c.dedupID == "failed" {
			continue
		}
		if seen[c.dedupID] {
			t.Errorf("%s enqueued twice", c.dedupID)
		}
		seen[c.dedupID] = true
		out = append(out, c.slot)
	}
	return out
}

type fakeFunctions map[string]bool

func (f fakeFunctions) Resolve(name, qualifier string, _ float64) (*registry.Function, *registry.Alias, error) {
	key := name
	if qualifier != "" {
		key += ":" + qualifier
	}
	if !f[key] {
		return nil, nil, fmt.Errorf("%w: %s", registry.ErrNotFound, key)
	}
	return &registry.Function{Name: name}, nil, nil
}

func open(t *testing.T, sub *substrate.Substrate, q Enqueuer, node string) *Scheduler {
	t.Helper()
	cfg := Config{Functions: fakeFunctions{"fn": true, "fn:live": true}, NodeID: node}
	if q != nil {
		cfg.Enqueuer = q
	}
	s, err := Open(context.Background(), sub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkFor polls cond until it holds or d passes.
func checkFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// consecutive checks that slots are increasing seconds without a gap.
func consecutive(t *testing.T, slots []int64) {
	t.Helper()
	for i := 1; i < len(slots); i++ {
		if slots[i] != slots[i-1]+1 {
			t.Errorf("slots %v: %d follows %d", slots, slots[i], slots[i-1])
			return
		}
	}
}

func TestScheduleFiresOncePerSlotAcrossNodes(t *testing.T) {
	t.Parallel()
	sub := openSubstrate(t)
	q := &fakeQueue{}
	a := open(t, sub, q, "a")
	open(t, sub, q, "b")
	if _, err := a.Create(context.Background(), api.CreateScheduleRequest{Name: "tick", Function: "fn", Expression: "rate(1 second)"}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, "5 ticks fired", func() bool { return len(q.slots(t)) >= 5 })
	time.Sleep(300 * time.Millisecond) // let a duplicate, if any, land
	slots := q.slots(t)
	consecutive(t, slots)
	got, err := a.Get(context.Background(), "tick")
	if err != nil {
		t.Fatal(err)
	}
	if got.LastFired == nil || got.LastFired.Unix() < slots[len(slots)-1] || got.LastRequestID == "" {
		t.Errorf("Get: LastFired %v, LastRequestID %q; want at least slot %d", got.LastFired, got.LastRequestID, slots[len(slots)-1])
	}
}

func TestScheduleRestartFiresNoSlotTwice(t *testing.T) {
	t.Parallel()
	sub := openSubstrate(t)
	q := &fakeQueue{}
	a := open(t, sub, q, "a")
	if _, err := a.Create(context.Background(), api.CreateScheduleRequest{Name: "tick", Function: "fn", Expression: "@every 1s"}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, "2 ticks", func() bool { return len(q.slots(t)) >= 2 })
	a.Close()
	open(t, sub, q, "a")
	n := len(q.slots(t))
	checkFor(t, 10*time.Second, "2 more ticks", func() bool { return len(q.slots(t)) >= n+2 })
	consecutive(t, q.slots(t))
}

// downtime stores a schedule active since long ago that last fired
// missed seconds ago, as if every node had been down since.
func downtime(t *testing.T, sub *substrate.Substrate, catchUp bool, missed int) int64 {
	t.Helper()
	s := open(t, sub, nil, "setup")
	now := time.Now()
	rec := record{Function: "fn", Expression: "1 second", CatchUp: catchUp, Created: now.Add(-time.Hour), Updated: now.Add(-time.Hour), ActiveSince: now.Add(-time.Hour)}
	b, _ := json.Marshal(rec)
	if _, err := s.defs.Put(context.Background(), "tick", b); err != nil {
		t.Fatal(err)
	}
	last := now.Unix() - int64(missed)
	if err := s.recordFired(context.Background(), "tick", state{Slot: last}); err != nil {
		t.Fatal(err)
	}
	return last
}

func TestScheduleMissedTicksSkipped(t *testing.T) {
	t.Parallel()
	sub := openSubstrate(t)
	downtime(t, sub, false, 30)
	q := &fakeQueue{}
	start := time.Now()
	open(t, sub, q, "a")
	checkFor(t, 5*time.Second, "3 ticks", func() bool { return len(q.slots(t)) >= 3 })
	slots := q.slots(t)
	consecutive(t, slots)
	if first := time.Unix(slots[0], 0); start.Sub(first) > MisfireGrace {
		t.Errorf("first tick fired is %s, %s before the start: missed ticks were fired", first, start.Sub(first))
	}
}

func TestScheduleMissedTicksCaughtUp(t *testing.T) {
	t.Parallel()
	sub := openSubstrate(t)
	last := downtime(t, sub, true, 20)
	q := &fakeQueue{}
	open(t, sub, q, "a")
	checkFor(t, 10*time.Second, "the missed ticks and 2 more", func() bool { return len(q.slots(t)) >= 22 })
	slots := q.slots(t)
	if slots[0] != last+1 {
		t.Errorf("first tick fired %d, want %d (the first missed)", slots[0], last+1)
	}
	consecutive(t, slots)
}

func TestScheduleCatchUpBounded(t *testing.T) {
	t.Parallel()
	sub := openSubstrate(t)
	last := downtime(t, sub, true, 5000)
	s := open(t, sub, nil, "a")
	rec, rev, err := s.get(context.Background(), "tick")
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{name: "tick", rev: rev, rec: rec, loc: time.UTC, stop: make(chan struct{})}
	r.sch = mustParse(t, rec.Expression)
	before := time.Now()
	cursor, ok := s.startCursor(r)
	if !ok {
		t.Fatal("startCursor gave up")
	}
	due := 0
	for t := r.sch.Next(cursor, r.loc); !t.After(before); t = r.sch.Next(t, r.loc) {
		due++
	}
	if due < MaxCatchUp-2 || due > MaxCatchUp {
		t.Errorf("startCursor after %d missed ticks leaves %d due, want %d", time.Now().Unix()-last, due, MaxCatchUp)
	}
}

func TestSchedulePauseResume(t *testing.T) {
	t.Parallel()
	sub := openSubstrate(t)
	q := &fakeQueue{}
	s := open(t, sub, q, "a")
	ctx := context.Background()
	if _, err := s.Create(ctx, api.CreateScheduleRequest{Name: "tick", Function: "fn", Expression: "1 second", CatchUp: true}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 5*time.Second, "a tick", func() bool { return len(q.slots(t)) >= 1 })
	yes, no := true, false
	got, err := s.Update(ctx, "tick", api.UpdateScheduleRequest{Paused: &yes})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Paused || got.NextFire != nil {
		t.Errorf("paused schedule: Paused %v NextFire %v", got.Paused, got.NextFire)
	}
	paused := time.Now()
	time.Sleep(200 * time.Millisecond) // the watch applies the pause
	n := len(q.slots(t))
	time.Sleep(2 * time.Second)
	if m := len(q.slots(t)); m != n {
		t.Fatalf("%d ticks fired while paused", m-n)
	}
	if _, err := s.Update(ctx, "tick", api.UpdateScheduleRequest{Paused: &no}); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	checkFor(t, 5*time.Second, "ticks after resume", func() bool { return len(q.slots(t)) >= n+2 })
	for _, sl := range q.slots(t)[n:] {
		if at := time.Unix(sl, 0); at.After(paused.Add(time.Second)) && at.Before(resumed.Truncate(time.Second)) {
			t.Errorf("tick %s of the pause (%s to %s) was fired", at, paused, resumed)
		}
	}
}

func TestScheduleEnqueueFailureReleasesLease(t *testing.T) {
	t.Parallel()
	sub := openSubstrate(t)
	q := &fakeQueue{fail: func(n int) bool { return n < 2 }}
	s := open(t, sub, q, "a")
	if _, err := s.Create(context.Background(), api.CreateScheduleRequest{Name: "tick", Function: "fn", Expression: "1 second"}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, "2 ticks", func() bool { return len(q.slots(t)) >= 2 })
	consecutive(t, q.slots(t))
	first := q.slots(t)[0]
	if time.Unix(first, 0).After(time.Now()) {
		t.Fatal("impossible")
	}
	if _, err := s.leases.Get(context.Background(), "tick."+strconv.FormatInt(first, 10)); err != nil {
		t.Errorf("lease of the fired tick: %v", err)
	}
}

func TestScheduleFunctionMissingSkipsTicks(t *testing.T) {
	t.Parallel()
	sub := openSubstrate(t)
	q := &fakeQueue{}
	s, err := Open(context.Background(), sub, Config{Enqueuer: q, Functions: fakeFunctions{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, _ := json.Marshal(record{Function: "gone", Expression: "1 second", ActiveSince: time.Now()})
	if _, err := s.defs.Put(context.Background(), "tick", b); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := len(q.slots(t)); n != 0 {
		t.Errorf("%d ticks enqueued for a missing function", n)
	}
}

func TestScheduleCRUD(t *testing.T) {
	t.Parallel()
	sub := openSubstrate(t)
	s := open(t, sub, nil, "a")
	ctx := context.Background()
	created, err := s.Create(ctx, api.CreateScheduleRequest{Name: "nightly", Function: "fn", Qualifier: "live", Expression: " 0 3 * * * ",
		Timezone: "Europe/Paris", Payload: json.RawMessage(`{"job":"backup"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if created.Expression != "0 3 * * *" || created.Timezone != "Europe/Paris" || created.NextFire == nil || created.Arn != "arn:aws:events:us-east-1:000000000000:rule/nightly" {
		t.Errorf("Create = %+v", created)
	}
	if _, err := s.Create(ctx, api.CreateScheduleRequest{Name: "nightly", Function: "fn", Expression: "@daily"}); !errors.Is(err, ErrExists) {
		t.Errorf("Create twice = %v, want ErrExists", err)
	}
	rate := "rate(5 minutes)"
	got, err := s.Update(ctx, "nightly", api.UpdateScheduleRequest{Expression: &rate, Payload: json.RawMessage("null")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Expression != rate || got.Payload != nil || got.Qualifier != "live" {
		t.Errorf("Update = %+v", got)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "nightly" {
		t.Errorf("List = %v, %v", list, err)
	}
	if err := s.Delete(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "nightly"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "nightly"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete twice = %v, want ErrNotFound", err)
	}
	if _, err := s.Update(ctx, "nightly", api.UpdateScheduleRequest{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update missing = %v, want ErrNotFound", err)
	}
}

func TestScheduleBadInput(t *testing.T) {
	t.Parallel()
	sub := openSubstrate(t)
	s := open(t, sub, nil, "a")
	ok := api.CreateScheduleRequest{Name: "n", Function: "fn", Expression: "@hourly"}
	tests := []struct {
		name      string
		edit      func(*api.CreateScheduleRequest)
		field     string
		substring string
	}{
		{"no name", func(r *api.CreateScheduleRequest) { r.Name = "" }, "name", "needs a name"},
		{"bad name", func(r *api.CreateScheduleRequest) { r.Name = "a.b" }, "name", "only letters"},
		{"long name", func(r *api.CreateScheduleRequest) { r.Name = strings.Repeat("a", 65) }, "name", "at most 64"},
		{"no function", func(r *api.CreateScheduleRequest) { r.Function = "" }, "function", "needs a function"},
		{"unknown function", func(r *api.CreateScheduleRequest) { r.Function = "nope" }, "function", "function nope not found"},
		{"unknown alias", func(r *api.CreateScheduleRequest) { r.Qualifier = "prod" }, "function", "no version or alias prod"},
		{"bad qualifier", func(r *api.CreateScheduleRequest) { r.Qualifier = "a b" }, "qualifier", "qualifier"},
		{"no expression", func(r *api.CreateScheduleRequest) { r.Expression = " " }, "expression", "needs a cron expression"},
		{"bad hour", func(r *api.CreateScheduleRequest) { r.Expression = "0 25 * * *" }, "expression", "cron: field 'hour': 25 is outside 0-23"},
		{"bad rate", func(r *api.CreateScheduleRequest) { r.Expression = "rate(5 weeks)" }, "expression", `unknown unit "weeks"`},
		{"bad zone", func(r *api.CreateScheduleRequest) { r.Timezone = "Europe/Atlantis" }, "timezone", `unknown time zone "Europe/Atlantis"`},
		{"local zone", func(r *api.CreateScheduleRequest) { r.Timezone = "Local" }, "timezone", "not allowed"},
		{"path zone", func(r *api.CreateScheduleRequest) { r.Timezone = "../../etc/passwd" }, "timezone", "unknown time zone"},
		{"payload not json", func(r *api.CreateScheduleRequest) { r.Payload = json.RawMessage("{") }, "payload", "not valid JSON"},
		{"payload too large", func(r *api.CreateScheduleRequest) {
			r.Payload = json.RawMessage(`"` + strings.Repeat("x", api.MaxSchedulePayload) + `"`)
		}, "payload", "at most 262144"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			tt.edit(&in)
			_, err := s.Create(context.Background(), in)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(ve.Message, tt.substring) {
				t.Errorf("Create(%s) = %v, want a ValidationError of field %s containing %q", tt.name, err, tt.field, tt.substring)
			}
		})
	}
	if _, err := s.Create(context.Background(), ok); err != nil {
		t.Errorf("Create(valid) = %v", err)
	}
	bad := "0 0 30 2 *"
	if _, err := s.Update(context.Background(), "n", api.UpdateScheduleRequest{Expression: &bad}); err == nil || !strings.Contains(err.Error(), "never occurs") {
		t.Errorf("Update(bad expression) = %v", err)
	}
}

func TestScheduleEvent(t *testing.T) {
	s := &Scheduler{cfg: Config{Region: "eu-west-3", Account: "123456789012"}}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	slot := time.Date(2026, 3, 1, 3, 0, 0, 0, time.FixedZone("CET", 3600))
	var ev map[string]any
	if err := json.Unmarshal(s.event("nightly", &record{Created: created}, slot), &ev); err != nil {
		t.Fatal(err)
	}
	id := EventID("nightly", created, slot)
	want := map[string]any{"version": "0", "id": id, "detail-type": "Scheduled Event", "source": "aws.events",
		"account": "123456789012", "time": "2026-03-01T02:00:00Z", "region": "eu-west-3",
		"resources": []any{"arn:aws:events:eu-west-3:123456789012:rule/nightly"}, "detail": map[string]any{}}
	if fmt.Sprint(ev) != fmt.Sprint(want) {
		t.Errorf("event = %v\nwant    %v", ev, want)
	}
	if EventID("nightly", created, slot) != id || EventID("nightly", created, slot.Add(time.Second)) == id {
		t.Error("EventID is not a function of the schedule and the tick")
	}
	p := s.event("nightly", &record{Created: created, Payload: json.RawMessage(`{"at":"<aws.scheduler.scheduled-time>","arn":"<aws.scheduler.schedule-arn>","id":"<aws.scheduler.execution-id>"}`)}, slot)
	wantP := `{"at":"2026-03-01T02:00:00Z","arn":"arn:aws:scheduler:eu-west-3:123456789012:schedule/default/nightly","id":"` + id + `"}`
	if string(p) != wantP {
		t.Errorf("event with payload = %s\nwant %s", p, wantP)
	}
	// As stored: JSON encoders escape < and >.
	stored, _ := json.Marshal(record{Payload: json.RawMessage(`{"at":"<aws.scheduler.scheduled-time>"}`)})
	var rec record
	if err := json.Unmarshal(stored, &rec); err != nil {
		t.Fatal(err)
	}
	rec.Created = created
	if got := string(s.event("nightly", &rec, slot)); got != `{"at":"2026-03-01T02:00:00Z"}` {
		t.Errorf("event with a stored payload = %s", got)
	}
}

func mustParse(t *testing.T, expr string) cron.Schedule {
	t.Helper()
	s, err := cron.Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCloseStopsRunners is not parallel: it looks for runner goroutines
// among all of the test binary's.
func TestScheduleCloseStopsRunners(t *testing.T) {
	sub := openSubstrate(t)
	q := &fakeQueue{}
	s, err := Open(context.Background(), sub, Config{Enqueuer: q})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		if _, err := s.Create(context.Background(), api.CreateScheduleRequest{Name: name, Function: "fn", Expression: "1 second"}); err != nil {
			t.Fatal(err)
		}
	}
	checkFor(t, 5*time.Second, "3 runners", func() bool { return runners(s) == 3 })
	s.Close()
	if n := runners(s); n != 0 {
		t.Errorf("%d runners left after Close", n)
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "schedule.(*Scheduler).run(") {
		t.Errorf("a runner goroutine outlived Close:\n%s", stacks)
	}
}

func runners(s *Scheduler) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.runners)
}

// TestScheduleStaleLeaseTakenOver: a holder that died between taking a
// tick's lease and enqueuing it does not lose the tick: once the lease is
// StaleLease old and the tick still not recorded, it is fired anyway.
func TestScheduleStaleLeaseTakenOver(t *testing.T) {
	t.Parallel()
	sub := openSubstrate(t)
	q := &fakeQueue{}
	s := open(t, sub, q, "a")
	// A dead node took the leases of the next ticks and fired none.
	now := time.Now().Unix()
	dead, _ := json.Marshal(map[string]any{"node": "dead", "at": time.Now().UTC()})
	for slot := now + 1; slot <= now+4; slot++ {
		if _, err := s.leases.Create(context.Background(), "tick."+strconv.FormatInt(slot, 10), dead); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create(context.Background(), api.CreateScheduleRequest{Name: "tick", Function: "fn", Expression: "rate(1 second)"}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 15*time.Second, "the leased ticks fired", func() bool {
		slots := q.slots(t)
		return len(slots) > 0 && slots[len(slots)-1] >= now+5
	})
	slots := q.slots(t)
	consecutive(t, slots)
	for slot := now + 2; slot <= now+4; slot++ {
		if !slices.Contains(slots, slot) {
			t.Errorf("tick %d, leased by a dead node, never fired: %v", slot, slots)
		}
	}
}
