package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/engine"
	"github.com/gustfaas/gust/internal/node"
)

// tickRE finds the tick a scheduled invocation of the guest logged.
var tickRE = regexp.MustCompile(`tick (\S+)`)

// tickCounter counts the invocations of each tick, across nodes.
type tickCounter struct {
	mu    sync.Mutex
	ticks map[string]int
}

func (c *tickCounter) observe(r *engine.Record) {
	for _, m := range tickRE.FindAllSubmatch(r.Log, -1) {
		c.mu.Lock()
		c.ticks[string(m[1])]++
		c.mu.Unlock()
	}
}

func (c *tickCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.ticks))
	for k, v := range c.ticks {
		out[k] = v
	}
	return out
}

// startObservedNode is startNode with an observer of invocation records;
// unless cleanup, the caller shuts the node down (Shutdown runs once).
func startObservedNode(t *testing.T, dataDir string, observe func(*engine.Record), cleanup bool) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Config{Listen: "127.0.0.1:0", DataDir: dataDir, GraceTimeout: 10 * time.Second, CacheDir: sharedCache,
		Observe: observe, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	if cleanup {
		t.Cleanup(func() { n.Shutdown(context.Background()) })
	}
	return n
}

func scheduleClient(n *node.Node) *client.Client {
	id, secret := n.AdminKey()
	return client.New(n.URL(), client.Credentials{AccessKeyID: id, SecretAccessKey: secret})
}

// TestScheduleOneSecondAcrossRestart runs a one-second schedule for 60
// seconds with a node restart in the middle: it fires 60 times (+-1), no
// tick twice.
func TestScheduleOneSecondAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a minute")
	}
	buildGuests(t)
	dir := t.TempDir()
	counter := &tickCounter{ticks: map[string]int{}}
	n := startObservedNode(t, dir, counter.observe, false)
	ctx := context.Background()
	c := scheduleClient(n)
	if _, err := c.CreateFunction(ctx, api.CreateFunctionRequest{FunctionName: "ticker", Runtime: "wasm",
		Code: &api.FunctionCode{ZipFile: guests.guest}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.CreateSchedule(ctx, api.CreateScheduleRequest{Name: "every-second", Function: "ticker", Expression: "rate(1 second)",
		Payload: json.RawMessage(`{"log":"tick <aws.scheduler.scheduled-time>"}`)}); err != nil {
		t.Fatal(err)
	}

	time.Sleep(30*time.Second - time.Since(start))
	restart := time.Now()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	down := time.Since(restart)
	n = startObservedNode(t, dir, counter.observe, true)
	t.Logf("restarted in %s (shutdown %s)", time.Since(restart).Round(time.Millisecond), down.Round(time.Millisecond))
	c = scheduleClient(n)

	time.Sleep(60*time.Second - time.Since(start))
	got, err := c.PauseSchedule(ctx, "every-second")
	if err != nil {
		t.Fatal(err)
	}
	stop := time.Now()
	if got.LastFired == nil {
		t.Fatal("the schedule reports no tick fired")
	}
	// Ticks are due in (start, stop]; wait until the ones enqueued ran.
	want := int(stop.Unix() - start.Unix())
	deadline := time.Now().Add(10 * time.Second)
	for len(counter.snapshot()) < want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // a tick fired twice would show by now
	ticks := counter.snapshot()
	for tick, k := range ticks {
		if k != 1 {
			t.Errorf("tick %s ran %d times", tick, k)
		}
		at, err := time.Parse(time.RFC3339, tick)
		if err != nil {
			t.Errorf("tick %q: %v", tick, err)
			continue
		}
		if !at.After(start.Add(-time.Second)) || at.After(stop.Add(time.Second)) {
			t.Errorf("tick %s is outside the schedule's life (%s to %s)", tick, start, stop)
		}
	}
	if d := len(ticks) - want; d < -1 || d > 1 {
		t.Errorf("%d ticks ran over %s, want %d +-1", len(ticks), stop.Sub(start).Round(time.Millisecond), want)
	}
	t.Logf("%d ticks over %s (want %d +-1)", len(ticks), stop.Sub(start).Round(time.Millisecond), want)
}

// TestScheduleAPI covers the schedule endpoints and their errors.
func TestScheduleAPI(t *testing.T) {
	buildGuests(t)
	n := startObservedNode(t, t.TempDir(), nil, true)
	ctx := context.Background()
	c := scheduleClient(n)
	if _, err := c.CreateFunction(ctx, api.CreateFunctionRequest{FunctionName: "job", Runtime: "wasm",
		Code: &api.FunctionCode{ZipFile: guests.guest}}); err != nil {
		t.Fatal(err)
	}
	s, err := c.CreateSchedule(ctx, api.CreateScheduleRequest{Name: "nightly", Function: "job", Expression: "0 3 * * *", Timezone: "Europe/Paris"})
	if err != nil {
		t.Fatal(err)
	}
	if s.NextFire == nil || s.NextFire.In(mustLocation(t, "Europe/Paris")).Hour() != 3 {
		t.Errorf("NextFire = %v, want 03:00 in Paris", s.NextFire)
	}
	for _, tt := range []struct {
		name string
		in   api.CreateScheduleRequest
		code string
		msg  string
	}{
		{"exists", api.CreateScheduleRequest{Name: "nightly", Function: "job", Expression: "@daily"}, api.ErrResourceConflict, "already exists"},
		{"bad cron", api.CreateScheduleRequest{Name: "x", Function: "job", Expression: "0 25 * * *"}, api.ErrInvalidParameterValue, "cron: field 'hour': 25 is outside 0-23"},
		{"bad zone", api.CreateScheduleRequest{Name: "x", Function: "job", Expression: "@daily", Timezone: "Mars/Olympus"}, api.ErrInvalidParameterValue, `unknown time zone "Mars/Olympus"`},
		{"no function", api.CreateScheduleRequest{Name: "x", Function: "nope", Expression: "@daily"}, api.ErrInvalidParameterValue, "function nope not found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateSchedule(ctx, tt.in)
			var ae *api.Error
			if !errors.As(err, &ae) {
				t.Fatalf("CreateSchedule = %v, want an API error", err)
			}
			if ae.Code != tt.code || !regexp.MustCompile(regexp.QuoteMeta(tt.msg)).MatchString(ae.Message) {
				t.Errorf("CreateSchedule = %s: %s, want %s containing %q", ae.Code, ae.Message, tt.code, tt.msg)
			}
		})
	}
	if s, err = c.PauseSchedule(ctx, "nightly"); err != nil || !s.Paused {
		t.Errorf("PauseSchedule = %+v, %v", s, err)
	}
	if s, err = c.ResumeSchedule(ctx, "nightly"); err != nil || s.Paused {
		t.Errorf("ResumeSchedule = %+v, %v", s, err)
	}
	list, err := c.ListSchedules(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "nightly" {
		t.Errorf("ListSchedules = %+v, %v", list, err)
	}
	if err := c.DeleteSchedule(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	var ae *api.Error
	if _, err := c.GetSchedule(ctx, "nightly"); !errors.As(err, &ae) || ae.Code != api.ErrResourceNotFound {
		t.Errorf("GetSchedule after delete = %v, want ResourceNotFoundException", err)
	}
}

func mustLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skip(err)
	}
	return loc
}

// TestScheduleCLI drives schedules with the gust command line: the
// schedule commands and gust.yaml's schedules.
func TestScheduleCLI(t *testing.T) {
	buildGuests(t)
	dir := t.TempDir()
	n := startObservedNode(t, dir, nil, true)
	proj := t.TempDir()
	if err := os.WriteFile(filepath.Join(proj, "guest.wasm"), guests.guest, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := gust(t, n, dir, "", "deploy", "job", filepath.Join(proj, "guest.wasm")); code != 0 {
		t.Fatalf("deploy = %d\n%s%s", code, out, errs)
	}
	code, out, errs := gust(t, n, dir, "", "schedule", "create", "nightly", "--function", "job", "--cron", "0 3 * * *", "--timezone", "Europe/Paris")
	if code != 0 || !strings.Contains(out, "created schedule nightly: 0 3 * * * (Europe/Paris) invokes job") {
		t.Errorf("schedule create = %d %q %q", code, out, errs)
	}
	code, out, errs = gust(t, n, dir, "", "schedule", "create", "often", "--function", "job", "--rate", "5 minutes", "--payload", `{"a":1}`, "--catch-up", "-o", "json")
	var s api.Schedule
	var payload bytes.Buffer
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || json.Compact(&payload, s.Payload) != nil ||
		s.Expression != "rate(5 minutes)" || !s.CatchUp || payload.String() != `{"a":1}` {
		t.Errorf("schedule create -o json = %d %q %q", code, out, errs)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"schedule", "create", "x", "--function", "job", "--cron", "0 25 * * *"}, 1, "cron: field 'hour': 25 is outside 0-23"},
		{[]string{"schedule", "create", "x", "--function", "job", "--cron", "@daily", "--timezone", "Mars/Olympus"}, 1, `unknown time zone "Mars/Olympus"`},
		{[]string{"schedule", "create", "x", "--function", "job"}, 2, "say when"},
		{[]string{"schedule", "create", "x", "--function", "job", "--cron", "@daily", "--rate", "1 hour"}, 2, "exclude each other"},
		{[]string{"schedule", "create", "x", "--function", "job", "--rate", "1 hour", "--payload", "{"}, 2, "not valid JSON"},
		{[]string{"schedule", "pause", "missing"}, 1, "Schedule not found: missing"},
	} {
		if code, _, errs := gust(t, n, dir, "", tt.args...); code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("gust %s = %d %q, want %d and %q", strings.Join(tt.args, " "), code, errs, tt.code, tt.want)
		}
	}
	if code, out, _ := gust(t, n, dir, "", "schedule", "pause", "nightly"); code != 0 || !strings.Contains(out, "paused schedule nightly") {
		t.Errorf("schedule pause = %d %q", code, out)
	}
	code, out, _ = gust(t, n, dir, "", "schedule", "ls")
	if code != 0 || !regexp.MustCompile(`nightly\s+job\s+0 3 \* \* \*\s+Europe/Paris\s+paused`).MatchString(out) {
		t.Errorf("schedule ls = %d\n%s", code, out)
	}
	if code, out, _ := gust(t, n, dir, "", "schedule", "resume", "nightly"); code != 0 || !strings.Contains(out, "resumed schedule nightly, next at") {
		t.Errorf("schedule resume = %d %q", code, out)
	}
	if code, out, _ := gust(t, n, dir, "", "schedule", "rm", "often"); code != 0 || !strings.Contains(out, "removed schedule often") {
		t.Errorf("schedule rm = %d %q", code, out)
	}

	// gust.yaml: created after the functions, then unchanged, then updated;
	// nightly, which the file does not name, is left alone.
	file := filepath.Join(proj, "gust.yaml")
	yml := "functions:\n  job:\n    code: guest.wasm\nschedules:\n  report:\n    function: job\n    cron: \"30 6 * * MON-FRI\"\n    timezone: America/New_York\n    payload: {kind: report}\n"
	os.WriteFile(file, []byte(yml), 0o644)
	deploy := func(want string) {
		t.Helper()
		code, out, errs := gust(t, n, dir, "", "deploy", "-f", file, "-o", "json")
		var res struct {
			Schedules []struct{ Name, Action, Function string }
		}
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Schedules) != 1 || res.Schedules[0].Action != want || res.Schedules[0].Function != "job:live" {
			t.Fatalf("deploy = %d, want schedule report %s of job:live\n%s%s", code, want, out, errs)
		}
	}
	deploy("created")
	deploy("unchanged")
	os.WriteFile(file, []byte(strings.Replace(yml, "payload: {kind: report}\n", "", 1)), 0o644)
	deploy("updated")
	c := scheduleClient(n)
	got, err := c.GetSchedule(context.Background(), "report")
	if err != nil || got.Payload != nil || got.Qualifier != "live" || got.Timezone != "America/New_York" {
		t.Errorf("report after deploy = %+v, %v", got, err)
	}
	if _, err := c.GetSchedule(context.Background(), "nightly"); err != nil {
		t.Errorf("nightly after deploy: %v", err)
	}
}
