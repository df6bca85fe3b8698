// Package schedule owns schedules: functions invoked asynchronously on a
// cron expression or at a rate. It stores them, validates them, and runs
// the Scheduler that fires their ticks.
//
// Storage, all in JetStream KV:
//
//   - gust_schedules: schedule name -> its definition (JSON).
//   - gust_schedule_state: schedule name -> the last tick fired and the
//     request id it enqueued, advanced with compare-and-set.
//   - gust_schedule_leases: NAME.SLOT (the tick's Unix second) -> the node
//     that fired it; keys expire after LeaseTTL.
//
// Every node runs a Scheduler. Each keeps the set of schedules current
// with a KV watch and runs one goroutine per active schedule, which sleeps
// until the next tick and fires it: it takes the tick's lease (a KV
// Create, which exactly one node wins; a second node, or a node restarted
// after firing, finds the key and skips), enqueues the asynchronous
// invocation with the dedupe id "sched:NAME:SLOT" (so the queue would
// drop a repeat too), and records the tick as the last fired. If the
// enqueue fails the lease is deleted, so a retry, here or on another node,
// can fire the tick.
//
// A tick fires late rather than not at all when it is at most MisfireGrace
// late (a restart or a failover loses no tick); ticks missed for longer,
// while every node was down, are skipped. A schedule with catch-up fires every missed tick instead,
// oldest first, at most MaxCatchUp of them. Pausing stops the ticks; the
// ticks of a pause are never caught up.
//
// Each tick sends EventBridge's scheduled event (version, id, detail-type
// "Scheduled Event", source "aws.events", account, time, region,
// resources, detail {}), whose id is derived from the schedule and the
// tick, so a retried invocation carries the same id. A schedule with a
// payload sends the payload instead, as an EventBridge target with a
// constant input does, with EventBridge Scheduler's placeholders replaced.
package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/kvwatch"
	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/trigger/cron"
)

// Bucket names.
const (
	Bucket      = "gust_schedules"
	StateBucket = "gust_schedule_state"
	LeaseBucket = "gust_schedule_leases"
)

const (
	// StaleLease is how long a tick's lease may stand without the tick
	// being recorded before another node (or this one, restarted) fires
	// the tick itself: a holder fires within milliseconds.
	StaleLease = 2 * time.Second
	// LeaseTTL is how long a tick's lease is kept: far longer than any
	// two nodes can disagree about which ticks are due.
	LeaseTTL = time.Hour
	// MisfireGrace is how late a tick may still fire; a later one is
	// skipped (unless the schedule catches up).
	MisfireGrace = 5 * time.Second
	// MaxCatchUp bounds the missed ticks a catch-up schedule fires.
	MaxCatchUp = 1000
	// MaxNameLen bounds a schedule name.
	MaxNameLen = 64
	// maxTimezoneLen bounds a time zone name.
	maxTimezoneLen = 64
	// fireTimeout bounds one attempt to fire a tick.
	fireTimeout = 10 * time.Second
	// fireAttempts is how many times a tick is tried before it is skipped.
	fireAttempts = 5
	// maxWalk bounds the ticks walked to find the due ones.
	maxWalk = 10_000_000
)

// Placeholders replaced in a payload (EventBridge Scheduler's context
// attributes).
const (
	PlaceholderTime        = "<aws.scheduler.scheduled-time>"
	PlaceholderArn         = "<aws.scheduler.schedule-arn>"
	PlaceholderExecutionID = "<aws.scheduler.execution-id>"
)

var (
	// ErrNotFound: no schedule of that name.
	ErrNotFound = errors.New("schedule not found")
	// ErrExists: a schedule of that name exists already.
	ErrExists = errors.New("schedule already exists")
)

// ValidationError names a field of a schedule that breaks a rule.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

// Store is what schedules need from the substrate.
type Store interface {
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

// Enqueuer enqueues an asynchronous invocation. dedupID names the event:
// enqueuing the same dedupID again must not run the function twice.
type Enqueuer interface {
	Enqueue(ctx context.Context, function, qualifier string, payload []byte, dedupID string) (requestID string, err error)
}

// Functions resolves a function and qualifier (the registry's view); a
// missing one is an error wrapping registry.ErrNotFound.
type Functions interface {
	Resolve(name, qualifier string, rnd float64) (*registry.Function, *registry.Alias, error)
}

// Firing is one tick this node fired.
type Firing struct {
	Schedule  string
	Slot      time.Time // the tick
	At        time.Time // when the enqueue returned
	RequestID string
}

// Config wires a Scheduler.
type Config struct {
	// Enqueuer receives the ticks; without one the Scheduler only
	// stores schedules and fires nothing.
	Enqueuer Enqueuer
	// Functions checks that a schedule's function exists (optional).
	Functions Functions
	// Region and Account appear in events and ARNs (defaults us-east-1
	// and 000000000000).
	Region, Account string
	// NodeID names this node in leases (default: a random id).
	NodeID string
	Logger *slog.Logger
	// OnFire, if set, is called after each tick this node fires (tests
	// and benchmarks); it must be fast.
	OnFire func(Firing)
}

// record is a schedule as stored.
type record struct {
	Function   string          `json:"function"`
	Qualifier  string          `json:"qualifier,omitempty"`
	Expression string          `json:"expression"`
	Timezone   string          `json:"timezone,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	Paused     bool            `json:"paused,omitempty"`
	CatchUp    bool            `json:"catchUp,omitempty"`
	Created    time.Time       `json:"created"`
	Updated    time.Time       `json:"updated"`
	// ActiveSince is when the schedule last started ticking as it is
	// (created, resumed, or its expression or time zone changed): no
	// earlier tick is ever fired or caught up.
	ActiveSince time.Time `json:"activeSince"`
}

// state is a schedule's last fired tick.
type state struct {
	Slot      int64     `json:"slot"` // Unix seconds
	RequestID string    `json:"requestId,omitempty"`
	FiredAt   time.Time `json:"firedAt"`
	Node      string    `json:"node,omitempty"`
}

// Scheduler stores schedules and fires their ticks. Its methods are safe
// for concurrent use; Close stops it.
type Scheduler struct {
	cfg    Config
	log    *slog.Logger
	defs   jetstream.KeyValue
	states jetstream.KeyValue
	leases jetstream.KeyValue

	watch   *kvwatch.Watch // nil for a scheduler that fires nothing
	mu      sync.Mutex
	runners map[string]*runner
	closed  bool
}

// runner fires one active schedule's ticks.
type runner struct {
	name string
	rev  uint64
	rec  record
	sch  cron.Schedule
	loc  *time.Location
	stop chan struct{}
	done chan struct{}
}

// Open creates or opens the buckets and, when cfg has an Enqueuer,
// starts firing ticks. It returns once every stored schedule is running.
func Open(ctx context.Context, st Store, cfg Config) (*Scheduler, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.NodeID == "" {
		cfg.NodeID = uuid.NewString()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{cfg: cfg, log: cfg.Logger, runners: map[string]*runner{}}
	var err error
	if s.defs, err = st.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, Description: "Gust schedules", History: 1}); err != nil {
		return nil, err
	}
	if s.states, err = st.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: StateBucket, Description: "Gust schedules: last tick fired", History: 1}); err != nil {
		return nil, err
	}
	if s.leases, err = st.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: LeaseBucket, Description: "Gust schedules: one lease per tick", History: 1, TTL: LeaseTTL}); err != nil {
		return nil, err
	}
	if cfg.Enqueuer == nil {
		return s, nil
	}
	if s.watch, err = kvwatch.Follow(ctx, s.defs, "schedules", func(e jetstream.KeyValueEntry) error {
		s.apply(e)
		return nil
	}); err != nil {
		s.stopAll()
		return nil, err
	}
	return s, nil
}

// apply starts, restarts or stops the runner of a changed schedule.
func (s *Scheduler) apply(e jetstream.KeyValueEntry) {
	name := e.Key()
	var rec record
	active := e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &rec) == nil && !rec.Paused
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	old := s.runners[name]
	if old != nil && old.rev >= e.Revision() {
		return
	}
	if old != nil {
		close(old.stop)
		<-old.done // a tick in flight completes first
		delete(s.runners, name)
	}
	if !active {
		return
	}
	sch, err := cron.Parse(rec.Expression)
	if err != nil {
		s.log.Warn("schedule not run: bad expression", "schedule", name, "err", err)
		return
	}
	loc, err := loadLocation(rec.Timezone)
	if err != nil {
		s.log.Warn("schedule not run: bad time zone", "schedule", name, "err", err)
		return
	}
	r := &runner{name: name, rev: e.Revision(), rec: rec, sch: sch, loc: loc, stop: make(chan struct{}), done: make(chan struct{})}
	s.runners[name] = r
	go s.run(r)
}

// Close stops firing ticks; a tick being fired completes first.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.watch != nil {
		_ = s.watch.Stop()
	}
	s.stopAll()
	return nil
}

func (s *Scheduler) stopAll() {
	s.mu.Lock()
	rs := make([]*runner, 0, len(s.runners))
	for _, r := range s.runners {
		rs = append(rs, r)
	}
	s.runners = map[string]*runner{}
	s.mu.Unlock()
	for _, r := range rs {
		close(r.stop)
	}
	for _, r := range rs {
		<-r.done
	}
}

// run fires r's ticks until it is stopped.
func (s *Scheduler) run(r *runner) {
	defer close(r.done)
	cursor, ok := s.startCursor(r)
	if !ok {
		return
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		next := r.sch.Next(cursor, r.loc)
		if next.IsZero() {
			s.log.Warn("schedule has no further tick", "schedule", r.name)
			return
		}
		now := time.Now()
		if wait := next.Sub(now); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-r.stop:
				return
			case <-timer.C:
			}
			continue
		}
		if !r.rec.CatchUp && now.Sub(next) > MisfireGrace {
			// Too late: skip to the ticks that are not.
			cursor = now.Add(-MisfireGrace)
			s.log.Warn("schedule ticks skipped", "schedule", r.name, "from", next, "to", cursor)
			continue
		}
		s.fire(r, next)
		cursor = next
		select {
		case <-r.stop:
			return
		default:
		}
	}
}

// startCursor returns the time after which r's first tick to fire lies:
// its last fired tick, never before it became active; without catch-up,
// never earlier than MisfireGrace ago; with catch-up, leaving at most
// MaxCatchUp due ticks.
func (s *Scheduler) startCursor(r *runner) (time.Time, bool) {
	now := time.Now()
	base := r.rec.ActiveSince
	if base.IsZero() {
		base = now
	}
	for attempt := 0; ; attempt++ {
		st, _, err := s.readState(r.name)
		if err == nil {
			if last := time.Unix(st.Slot, 0); st.Slot != 0 && last.After(base) {
				base = last
			}
			break
		}
		s.log.Warn("read schedule state", "schedule", r.name, "err", err)
		select {
		case <-r.stop:
			return time.Time{}, false
		case <-time.After(backoff(attempt)):
		}
	}
	if !r.rec.CatchUp {
		if g := now.Add(-MisfireGrace); g.After(base) {
			base = g
		}
		return base, true
	}
	// Keep the last MaxCatchUp due ticks: ring holds the last
	// MaxCatchUp+1 walked, the oldest being the cursor.
	ring := make([]time.Time, 0, MaxCatchUp+1)
	count := 0
	for t := r.sch.Next(base, r.loc); !t.IsZero() && !t.After(now); t = r.sch.Next(t, r.loc) {
		if count++; count > maxWalk {
			s.log.Warn("schedule down too long to catch up; skipping to now", "schedule", r.name)
			return now.Add(-MisfireGrace), true
		}
		if len(ring) == MaxCatchUp+1 {
			ring = append(ring[:0], ring[1:]...)
		}
		ring = append(ring, t)
	}
	if count > MaxCatchUp {
		s.log.Warn("schedule catch-up bounded", "schedule", r.name, "missed", count, "firing", MaxCatchUp)
		return ring[0], true
	}
	return base, true
}

func backoff(attempt int) time.Duration {
	return min(200*time.Millisecond<<attempt, 2*time.Second)
}

// fire fires one tick: lease, enqueue, record. It gives up after
// fireAttempts or when the runner is stopped.
func (s *Scheduler) fire(r *runner, slot time.Time) {
	unix := slot.Unix()
	key := r.name + "." + strconv.FormatInt(unix, 10)
	dedup := "sched:" + r.name + ":" + strconv.FormatInt(unix, 10)
	payload := s.event(r.name, &r.rec, slot)
	for attempt := 0; attempt < fireAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-r.stop:
				return
			case <-time.After(backoff(attempt - 1)):
			}
		}
		if s.cfg.Functions != nil {
			if _, _, err := s.cfg.Functions.Resolve(r.rec.Function, r.rec.Qualifier, 0); errors.Is(err, registry.ErrNotFound) {
				s.log.Warn("schedule tick skipped: function not found", "schedule", r.name, "function", r.rec.Function, "qualifier", r.rec.Qualifier, "tick", slot)
				return
			}
		}
		done, err := s.tryFire(r, key, dedup, slot, payload)
		if done {
			return
		}
		if errors.Is(err, errLeaseHeld) {
			s.log.Debug("schedule tick held by another run; looking again", "schedule", r.name, "tick", slot)
			continue
		}
		s.log.Warn("schedule tick not fired; retrying", "schedule", r.name, "tick", slot, "attempt", attempt+1, "err", err)
	}
	s.log.Error("schedule tick not confirmed after retries", "schedule", r.name, "tick", slot)
}

// tryFire makes one attempt; done is true when the tick is fired (here or
// by another node).
func (s *Scheduler) tryFire(r *runner, key, dedup string, slot time.Time, payload []byte) (done bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), fireTimeout)
	defer cancel()
	lease, _ := json.Marshal(struct {
		Node string    `json:"node"`
		At   time.Time `json:"at"`
	}{s.cfg.NodeID, time.Now().UTC()})
	if _, err := s.leases.Create(ctx, key, lease); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return false, fmt.Errorf("take lease: %w", err)
		}
		// Another node, or an earlier run of this one, has the lease. If
		// it took it a while ago and the tick is still not recorded, it
		// may have died between the lease and the enqueue: fire anyway.
		// The dedupe id makes the queue drop the tick if it was in fact
		// enqueued, so a tick never runs twice either way.
		fired, stale := s.leaseHolder(ctx, r.name, key, slot)
		switch {
		case fired:
			return true, nil
		case !stale:
			// The holder is at work: look again shortly (fire retries).
			return false, errLeaseHeld
		}
		s.log.Info("schedule tick: taking over a stale lease", "schedule", r.name, "tick", slot)
	}
	rid, err := s.cfg.Enqueuer.Enqueue(ctx, r.rec.Function, r.rec.Qualifier, payload, dedup)
	if err != nil {
		if derr := s.leases.Delete(ctx, key); derr != nil {
			s.log.Warn("release schedule lease", "schedule", r.name, "err", derr)
		}
		return false, fmt.Errorf("enqueue: %w", err)
	}
	at := time.Now()
	if err := s.recordFired(ctx, r.name, state{Slot: slot.Unix(), RequestID: rid, FiredAt: at.UTC(), Node: s.cfg.NodeID}); err != nil {
		s.log.Warn("record schedule tick", "schedule", r.name, "tick", slot, "err", err)
	}
	if s.cfg.OnFire != nil {
		s.cfg.OnFire(Firing{Schedule: r.name, Slot: slot, At: at, RequestID: rid})
	}
	return true, nil
}

// errLeaseHeld: another holder has the tick's lease and has not recorded
// the tick yet.
var errLeaseHeld = errors.New("the tick's lease is held and the tick is not recorded yet")

// leaseHolder looks at a tick whose lease another run holds: fired when
// the schedule's state has reached the tick; stale when the lease was
// taken more than StaleLease ago and the tick is still not recorded (its
// holder may have died between the lease and the enqueue). Read errors
// count as neither: look again later.
func (s *Scheduler) leaseHolder(ctx context.Context, name, key string, slot time.Time) (fired, stale bool) {
	st, err := s.states.Get(ctx, name)
	switch {
	case err == nil:
		var cur state
		if json.Unmarshal(st.Value(), &cur) == nil && cur.Slot >= slot.Unix() {
			return true, false
		}
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return false, false
	}
	e, err := s.leases.Get(ctx, key)
	if err != nil {
		return false, false
	}
	var l struct {
		At time.Time `json:"at"`
	}
	if json.Unmarshal(e.Value(), &l) != nil {
		return false, true
	}
	return false, time.Since(l.At) >= StaleLease
}

// recordFired advances the schedule's state to st unless it is already
// at a later tick.
func (s *Scheduler) recordFired(ctx context.Context, name string, st state) error {
	b, _ := json.Marshal(st)
	for range 5 {
		e, err := s.states.Get(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err = s.states.Create(ctx, name, b); err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
				return err
			}
		case err != nil:
			return err
		default:
			var old state
			if json.Unmarshal(e.Value(), &old) == nil && old.Slot >= st.Slot {
				return nil
			}
			if _, err = s.states.Update(ctx, name, b, e.Revision()); err == nil {
				return nil
			}
		}
	}
	return errors.New("state changed concurrently too often")
}

// readState returns a schedule's state (zero when it never fired).
func (s *Scheduler) readState(name string) (state, uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fireTimeout)
	defer cancel()
	var st state
	e, err := s.states.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, err
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return state{}, e.Revision(), nil
	}
	return st, e.Revision(), nil
}

// RuleArn is the ARN a schedule's events name as their EventBridge rule.
func (s *Scheduler) RuleArn(name string) string {
	return fmt.Sprintf("arn:aws:events:%s:%s:rule/%s", s.cfg.Region, s.cfg.Account, name)
}

// scheduleArn is the ARN <aws.scheduler.schedule-arn> stands for.
func (s *Scheduler) scheduleArn(name string) string {
	return fmt.Sprintf("arn:aws:scheduler:%s:%s:schedule/default/%s", s.cfg.Region, s.cfg.Account, name)
}

// eventNamespace derives event ids.
var eventNamespace = uuid.MustParse("5b0f5d5e-8f0c-4b8e-9d59-6a1f3c2e4b70")

// EventID is the id of the event of a schedule's tick: the same for
// every attempt to fire it.
func EventID(name string, created, slot time.Time) string {
	return uuid.NewSHA1(eventNamespace, []byte(name+"\x00"+strconv.FormatInt(created.UnixNano(), 10)+"\x00"+strconv.FormatInt(slot.Unix(), 10))).String()
}

var htmlEscaper = strings.NewReplacer("<", `\u003c`, ">", `\u003e`)

// scheduledEvent is EventBridge's scheduled event.
type scheduledEvent struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// event is the payload of a tick.
func (s *Scheduler) event(name string, rec *record, slot time.Time) []byte {
	id := EventID(name, rec.Created, slot)
	ts := slot.UTC().Format(time.RFC3339)
	if len(rec.Payload) > 0 {
		// JSON encoders may have written < and > as \u003c and \u003e.
		pairs := []string{PlaceholderTime, ts, PlaceholderArn, s.scheduleArn(name), PlaceholderExecutionID, id}
		for i := 0; i < 6; i += 2 {
			pairs = append(pairs, htmlEscaper.Replace(pairs[i]), pairs[i+1])
		}
		return []byte(strings.NewReplacer(pairs...).Replace(string(rec.Payload)))
	}
	b, _ := json.Marshal(scheduledEvent{Version: "0", ID: id, DetailType: "Scheduled Event", Source: "aws.events",
		Account: s.cfg.Account, Time: ts, Region: s.cfg.Region, Resources: []string{s.RuleArn(name)}, Detail: json.RawMessage("{}")})
	return b
}

// nameRE is a valid schedule name.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ValidateName checks a schedule name.
func ValidateName(name string) error {
	switch {
	case name == "":
		return &ValidationError{Field: "name", Message: "a schedule needs a name"}
	case len(name) > MaxNameLen:
		return &ValidationError{Field: "name", Message: fmt.Sprintf("schedule name %q is %d characters long; at most %d are allowed", name, len(name), MaxNameLen)}
	case !nameRE.MatchString(name):
		return &ValidationError{Field: "name", Message: fmt.Sprintf("schedule name %q may contain only letters, digits, '-' and '_'", name)}
	}
	return nil
}

// loadLocation loads an IANA time zone ("" is UTC).
func loadLocation(tz string) (*time.Location, error) {
	switch {
	case tz == "":
		return time.UTC, nil
	case len(tz) > maxTimezoneLen:
		return nil, &ValidationError{Field: "timezone", Message: fmt.Sprintf("time zone is %d characters long; at most %d are allowed", len(tz), maxTimezoneLen)}
	case tz == "Local" || strings.HasPrefix(tz, "/"):
		return nil, &ValidationError{Field: "timezone", Message: fmt.Sprintf("time zone %q is not allowed: name an IANA time zone such as Europe/Paris", tz)}
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, &ValidationError{Field: "timezone", Message: fmt.Sprintf("unknown time zone %q: want an IANA name such as Europe/Paris or America/New_York", tz)}
	}
	return loc, nil
}

// validate checks a record and fills its defaults.
func (s *Scheduler) validate(rec *record) error {
	if err := registry.ValidateName(rec.Function); err != nil {
		msg := "function: " + err.Error()
		if rec.Function == "" {
			msg = "a schedule needs a function to invoke"
		}
		return &ValidationError{Field: "function", Message: msg}
	}
	if rec.Qualifier != "" {
		if err := registry.ValidateQualifier(rec.Qualifier); err != nil {
			return &ValidationError{Field: "qualifier", Message: "qualifier: " + err.Error()}
		}
	}
	if strings.TrimSpace(rec.Expression) == "" {
		return &ValidationError{Field: "expression", Message: "a schedule needs a cron expression (\"0 3 * * *\") or a rate (\"5 minutes\")"}
	}
	sch, err := cron.Parse(rec.Expression)
	if err != nil {
		return &ValidationError{Field: "expression", Message: err.Error()}
	}
	rec.Expression = sch.String()
	if _, err := loadLocation(rec.Timezone); err != nil {
		return err
	}
	if len(rec.Payload) > 0 {
		switch {
		case len(rec.Payload) > api.MaxSchedulePayload:
			return &ValidationError{Field: "payload", Message: fmt.Sprintf("payload is %d bytes; at most %d are allowed", len(rec.Payload), api.MaxSchedulePayload)}
		case !json.Valid(rec.Payload):
			return &ValidationError{Field: "payload", Message: "payload is not valid JSON"}
		}
	}
	if s.cfg.Functions != nil {
		if _, _, err := s.cfg.Functions.Resolve(rec.Function, rec.Qualifier, 0); err != nil {
			if !errors.Is(err, registry.ErrNotFound) {
				return err
			}
			if rec.Qualifier != "" {
				return &ValidationError{Field: "function", Message: fmt.Sprintf("function %s has no version or alias %s", rec.Function, rec.Qualifier)}
			}
			return &ValidationError{Field: "function", Message: fmt.Sprintf("function %s not found", rec.Function)}
		}
	}
	return nil
}

// Create stores a new schedule.
func (s *Scheduler) Create(ctx context.Context, in api.CreateScheduleRequest) (api.Schedule, error) {
	if err := ValidateName(in.Name); err != nil {
		return api.Schedule{}, err
	}
	now := time.Now().UTC()
	rec := record{Function: in.Function, Qualifier: in.Qualifier, Expression: in.Expression, Timezone: in.Timezone,
		Payload: compact(in.Payload), Paused: in.Paused, CatchUp: in.CatchUp, Created: now, Updated: now, ActiveSince: now}
	if err := s.validate(&rec); err != nil {
		return api.Schedule{}, err
	}
	b, _ := json.Marshal(rec)
	if _, err := s.defs.Create(ctx, in.Name, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return api.Schedule{}, fmt.Errorf("%w: %s", ErrExists, in.Name)
		}
		return api.Schedule{}, fmt.Errorf("store schedule: %w", err)
	}
	// A schedule of the same name deleted earlier left its state.
	_ = s.states.Delete(ctx, in.Name)
	return s.view(in.Name, rec, state{}), nil
}

// compact drops a JSON null payload.
func compact(p json.RawMessage) json.RawMessage {
	if len(p) == 0 || strings.TrimSpace(string(p)) == "null" {
		return nil
	}
	return p
}

// Get returns a schedule.
func (s *Scheduler) Get(ctx context.Context, name string) (api.Schedule, error) {
	rec, _, err := s.get(ctx, name)
	if err != nil {
		return api.Schedule{}, err
	}
	st, _, _ := s.readState(name)
	return s.view(name, rec, st), nil
}

func (s *Scheduler) get(ctx context.Context, name string) (record, uint64, error) {
	if err := ValidateName(name); err != nil {
		return record{}, 0, err
	}
	e, err := s.defs.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("read schedule: %w", err)
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return record{}, 0, fmt.Errorf("schedule %s is unreadable: %w", name, err)
	}
	return rec, e.Revision(), nil
}

// List returns every schedule, sorted by name.
func (s *Scheduler) List(ctx context.Context) ([]api.Schedule, error) {
	kl, err := s.defs.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var names []string
	for k := range kl.Keys() {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]api.Schedule, 0, len(names))
	for _, n := range names {
		sch, err := s.Get(ctx, n)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sch)
	}
	return out, nil
}

// Update changes the fields in sets and keeps the others.
func (s *Scheduler) Update(ctx context.Context, name string, in api.UpdateScheduleRequest) (api.Schedule, error) {
	for range 5 {
		rec, rev, err := s.get(ctx, name)
		if err != nil {
			return api.Schedule{}, err
		}
		now := time.Now().UTC()
		was := rec
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&rec.Function, in.Function)
		set(&rec.Qualifier, in.Qualifier)
		set(&rec.Expression, in.Expression)
		set(&rec.Timezone, in.Timezone)
		if in.Payload != nil {
			rec.Payload = compact(in.Payload)
		}
		if in.CatchUp != nil {
			rec.CatchUp = *in.CatchUp
		}
		if in.Paused != nil {
			rec.Paused = *in.Paused
		}
		if err := s.validate(&rec); err != nil {
			return api.Schedule{}, err
		}
		if was.Paused && !rec.Paused || was.Expression != rec.Expression || was.Timezone != rec.Timezone {
			rec.ActiveSince = now
		}
		rec.Updated = now
		b, _ := json.Marshal(rec)
		if _, err := s.defs.Update(ctx, name, b, rev); err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // changed concurrently: apply to the new one
			}
			return api.Schedule{}, fmt.Errorf("store schedule: %w", err)
		}
		st, _, _ := s.readState(name)
		return s.view(name, rec, st), nil
	}
	return api.Schedule{}, fmt.Errorf("schedule %s changed concurrently too often; try again", name)
}

// Delete removes a schedule; its ticks stop.
func (s *Scheduler) Delete(ctx context.Context, name string) error {
	if _, _, err := s.get(ctx, name); err != nil {
		return err
	}
	if err := s.defs.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete schedule: %w", err)
	}
	_ = s.states.Delete(ctx, name)
	return nil
}

// view renders a schedule for the API.
func (s *Scheduler) view(name string, rec record, st state) api.Schedule {
	v := api.Schedule{Name: name, Arn: s.RuleArn(name), Function: rec.Function, Qualifier: rec.Qualifier,
		Expression: rec.Expression, Timezone: rec.Timezone, Payload: rec.Payload, CatchUp: rec.CatchUp, Paused: rec.Paused,
		Created: rec.Created, Updated: rec.Updated}
	if v.Timezone == "" {
		v.Timezone = "UTC"
	}
	if st.Slot != 0 && !time.Unix(st.Slot, 0).Before(rec.Created.Truncate(time.Second)) {
		t := time.Unix(st.Slot, 0).UTC()
		v.LastFired, v.LastRequestID = &t, st.RequestID
	}
	if !rec.Paused {
		sch, err1 := cron.Parse(rec.Expression)
		loc, err2 := loadLocation(rec.Timezone)
		if err1 == nil && err2 == nil {
			if n := sch.Next(time.Now(), loc); !n.IsZero() {
				n = n.UTC()
				v.NextFire = &n
			}
		}
	}
	return v
}
