// Package manager owns event-source triggers: a KV or object bucket's
// changes, a NATS subject or JetStream stream, or a PostgreSQL table's
// row changes, each wired to a function. It stores their definitions,
// validates them against their sources at configuration time, and runs
// every trigger on the node, restarting a failing one with backoff and
// reporting how each runs.
//
// Storage: the KV bucket gust_triggers maps a trigger's name to its
// definition (JSON); a PostgreSQL DSN, which holds a password, is sealed
// with the node's master key (keyring.Seal) and never stored in clear.
//
// Every node runs every trigger. That is safe because each source shares
// its work out: bucket changes and stream messages go through one durable
// JetStream consumer per trigger, which hands each message to one node;
// a core NATS subject is read in a queue group; and a PostgreSQL
// replication slot serves one connection at a time, so the other nodes'
// attempts fail until the holder goes away, and one of them takes over.
//
// How events reach the function (see the Source implementations):
// bucket changes become asynchronous invocations, with the function's
// retries and destinations; queue messages and row changes invoke the
// function synchronously in batches, and what keeps failing goes to the
// dead letters while the source moves on.
package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/kvwatch"
)

// Bucket is the KV bucket of trigger definitions.
const Bucket = "gust_triggers"

// MaxNameLen bounds a trigger's name.
const MaxNameLen = 64

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

var (
	// ErrNotFound: no trigger of that name.
	ErrNotFound = errors.New("trigger not found")
	// ErrExists: a trigger of that name exists already.
	ErrExists = errors.New("trigger already exists")
)

// ValidationError is a trigger that breaks a rule or whose source
// refuses it; Field names what is wrong ("postgres.tables", ...).
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Store is what the manager needs from the substrate.
type Store interface {
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

// Sealer encrypts secrets stored with a trigger (keyring.Keyring).
type Sealer interface {
	Seal(purpose string, data []byte) []byte
	Open(purpose string, sealed []byte) ([]byte, error)
}

// Functions tells whether a function (and qualifier) exists.
type Functions interface {
	Exists(name, qualifier string) bool
}

// Source runs one kind of trigger.
type Source interface {
	// Validate checks a trigger's source settings without reaching the
	// source, filling defaults.
	Validate(t *api.Trigger) error
	// Check reaches the source and verifies the trigger can run (the
	// database accepts logical replication, the table exists, the bucket
	// or stream exists); it names the problem when not.
	Check(ctx context.Context, t api.Trigger) error
	// Run runs the trigger until ctx is done, reporting through st. It
	// returns an error when the trigger cannot go on (the manager
	// restarts it after a backoff).
	Run(ctx context.Context, t api.Trigger, st *Status) error
	// Same reports whether b reads the same source as a from where a
	// left off (same slot, same consumer), so that replacing a with b
	// keeps the position.
	Same(a, b api.Trigger) bool
	// Remove deletes what the trigger made at its source (a slot, a
	// publication, a durable consumer).
	Remove(ctx context.Context, t api.Trigger) error
}

// Config wires a Manager.
type Config struct {
	// Sources by kind (api.TriggerKV, ...). A kind without a source is
	// refused.
	Sources   map[string]Source
	Sealer    Sealer
	Functions Functions
	Logger    *slog.Logger
	// RestartMin and RestartMax bound the backoff between runs of a
	// failing trigger (default 1s and 30s).
	RestartMin, RestartMax time.Duration
}

// Status is how a trigger runs on this node. Sources update it; its
// methods are safe for concurrent use.
type Status struct {
	mu           sync.Mutex
	state        string
	err          string
	delivered    atomic.Uint64
	deadLettered atomic.Uint64
	lag          func(context.Context) (int64, time.Duration, error)
}

// Running marks the trigger as running and clears the last error.
func (s *Status) Running() {
	s.mu.Lock()
	s.state, s.err = "running", ""
	s.mu.Unlock()
}

// Failed records a problem; the trigger keeps its state.
func (s *Status) Failed(err error) {
	s.mu.Lock()
	s.err = err.Error()
	s.mu.Unlock()
}

func (s *Status) set(state string, err error) {
	s.mu.Lock()
	s.state = state
	if err != nil {
		s.err = err.Error()
	}
	s.mu.Unlock()
}

// Delivered counts n events handed to the function.
func (s *Status) Delivered(n int) { s.delivered.Add(uint64(n)) }

// DeadLettered counts n events sent to the dead letters.
func (s *Status) DeadLettered(n int) { s.deadLettered.Add(uint64(n)) }

// SetLag registers how to read the source's lag (PostgreSQL).
func (s *Status) SetLag(f func(context.Context) (int64, time.Duration, error)) {
	s.mu.Lock()
	s.lag = f
	s.mu.Unlock()
}

// stored is a trigger as kept in the bucket.
type stored struct {
	api.Trigger
	// SealedDSN is the PostgreSQL DSN, sealed (Postgres.DSN is empty).
	SealedDSN []byte `json:"sealedDsn,omitempty"`
}

// Manager stores and runs triggers. Safe for concurrent use; Close
// stops every trigger.
type Manager struct {
	cfg Config
	log *slog.Logger
	kv  jetstream.KeyValue

	watch *kvwatch.Watch

	mu      sync.Mutex
	closed  bool
	running map[string]*run
	// ops serialises this node's changes, so a replace's removal of the
	// old source cannot interleave with another change of the trigger.
	ops sync.Mutex
}

// run is one trigger running on this node.
type run struct {
	t      api.Trigger
	rev    uint64
	st     *Status
	cancel context.CancelFunc
	done   chan struct{}
}

// StoreConfig is the configuration of the triggers bucket.
func StoreConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: Bucket, Description: "Gust triggers (event sources)", History: 1}
}

// Open creates or opens the bucket, loads every trigger and starts them.
func Open(ctx context.Context, st Store, cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RestartMin <= 0 {
		cfg.RestartMin = time.Second
	}
	if cfg.RestartMax <= 0 {
		cfg.RestartMax = 30 * time.Second
	}
	kv, err := st.KeyValue(ctx, StoreConfig())
	if err != nil {
		return nil, fmt.Errorf("triggers bucket: %w", err)
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, kv: kv, running: map[string]*run{}}
	if m.watch, err = kvwatch.Follow(ctx, kv, "triggers", func(e jetstream.KeyValueEntry) error {
		m.apply(e)
		return nil
	}); err != nil {
		m.Close() // the runs started while loading
		return nil, err
	}
	return m, nil
}

// Close stops every trigger and waits for them.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	runs := m.running
	m.running = map[string]*run{}
	m.mu.Unlock()
	var err error
	if m.watch != nil {
		err = m.watch.Stop()
	}
	for _, r := range runs {
		r.cancel()
	}
	for _, r := range runs {
		<-r.done
	}
	return err
}

// apply brings this node's runs in line with one bucket change.
func (m *Manager) apply(e jetstream.KeyValueEntry) {
	name := e.Key()
	var t *api.Trigger
	if e.Operation() == jetstream.KeyValuePut {
		var s stored
		if err := json.Unmarshal(e.Value(), &s); err != nil {
			m.log.Error("unreadable trigger; not running it", "trigger", name, "err", err)
		} else if tt, err := m.unseal(s); err != nil {
			m.log.Error("trigger cannot be unsealed; not running it", "trigger", name, "err", err)
		} else {
			t = &tt
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	old := m.running[name]
	if old != nil && t != nil && old.rev == e.Revision() {
		return
	}
	if old != nil {
		delete(m.running, name)
		old.cancel()
		// The next run may need what the old one holds (a slot): it
		// starts once the old one is gone.
	}
	if t == nil {
		return
	}
	m.running[name] = m.start(*t, e.Revision(), old)
}

// start runs t until cancelled, restarting it with backoff when it fails.
// It waits for prev (the run it replaces) to end first.
func (m *Manager) start(t api.Trigger, rev uint64, prev *run) *run {
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{t: t, rev: rev, st: &Status{state: "starting"}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if prev != nil {
			<-prev.done
		}
		src := m.cfg.Sources[t.Kind()]
		if src == nil {
			r.st.set("error", fmt.Errorf("this node cannot run %s triggers", t.Kind()))
			return
		}
		delay := m.cfg.RestartMin
		for ctx.Err() == nil {
			began := time.Now()
			err := src.Run(ctx, t, r.st)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			r.st.set("error", err)
			m.log.Warn("trigger failed; restarting", "trigger", t.Name, "in", delay, "err", err)
			if time.Since(began) > m.cfg.RestartMax {
				delay = m.cfg.RestartMin
			}
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			delay = min(delay*2, m.cfg.RestartMax)
		}
	}()
	return r
}

func dsnPurpose(name string) string { return "trigger-dsn:" + name }

// unseal returns the trigger with its DSN opened.
func (m *Manager) unseal(s stored) (api.Trigger, error) {
	t := s.Trigger
	if t.Postgres != nil {
		p := *t.Postgres
		if len(s.SealedDSN) > 0 {
			if m.cfg.Sealer == nil {
				return t, errors.New("no keyring to open the DSN")
			}
			dsn, err := m.cfg.Sealer.Open(dsnPurpose(t.Name), s.SealedDSN)
			if err != nil {
				return t, err
			}
			p.DSN = string(dsn)
		}
		t.Postgres = &p
	}
	return t, nil
}

// seal returns t as stored, its DSN sealed.
func (m *Manager) seal(t api.Trigger) (stored, error) {
	s := stored{Trigger: t}
	if t.Postgres != nil {
		if m.cfg.Sealer == nil {
			return s, errors.New("no keyring to seal the DSN with")
		}
		p := *t.Postgres
		s.SealedDSN = m.cfg.Sealer.Seal(dsnPurpose(t.Name), []byte(p.DSN))
		p.DSN = ""
		s.Postgres = &p
	}
	return s, nil
}

// validate checks a trigger's common fields and its source's settings.
func (m *Manager) validate(t *api.Trigger) error {
	if t.Name == "" || len(t.Name) > MaxNameLen || !nameRE.MatchString(t.Name) {
		return invalid("name", "trigger name %q is invalid: use 1 to %d letters, digits, '-' or '_'", t.Name, MaxNameLen)
	}
	if t.Function == "" {
		return invalid("function", "function is required: name the function the trigger invokes")
	}
	n := 0
	for _, set := range []bool{t.KV != nil, t.Objects != nil, t.Queue != nil, t.Postgres != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return invalid("source", "a trigger needs exactly one source (kv, objects, queue or postgres), got %d", n)
	}
	if m.cfg.Functions != nil && !m.cfg.Functions.Exists(t.Function, t.Qualifier) {
		what := t.Function
		if t.Qualifier != "" {
			what += ":" + t.Qualifier
		}
		return invalid("function", "function %s does not exist: deploy it before wiring a trigger to it", what)
	}
	src := m.cfg.Sources[t.Kind()]
	if src == nil {
		return invalid("source", "this node cannot run %s triggers", t.Kind())
	}
	return src.Validate(t)
}

// Create stores a new trigger after checking its source; it fails with
// ErrExists when the name is taken.
func (m *Manager) Create(ctx context.Context, t api.Trigger) (api.Trigger, error) {
	return m.put(ctx, t, false)
}

// Put creates or replaces a trigger. A replacement that reads the same
// source keeps its position; one that reads another source releases what
// the old one held there.
func (m *Manager) Put(ctx context.Context, t api.Trigger) (api.Trigger, error) {
	return m.put(ctx, t, true)
}

func (m *Manager) put(ctx context.Context, t api.Trigger, replace bool) (api.Trigger, error) {
	t.Created, t.Resource = time.Time{}, ""
	if err := m.validate(&t); err != nil {
		return api.Trigger{}, err
	}
	src := m.cfg.Sources[t.Kind()]
	m.ops.Lock()
	defer m.ops.Unlock()
	old, rev, err := m.load(ctx, t.Name)
	switch {
	case errors.Is(err, ErrNotFound):
		rev = 0
	case err != nil:
		return api.Trigger{}, err
	case !replace:
		return api.Trigger{}, fmt.Errorf("%w: %s", ErrExists, t.Name)
	}
	// What the trigger holds at its source (a slot, a consumer) is named
	// once: a replacement reading the same source keeps it, so it
	// resumes; one reading another source gets a new one, so releasing
	// the old cannot touch the new.
	release := false
	t.Created, t.Resource = time.Now().UTC(), newResource(t.Name)
	if rev != 0 {
		t.Created = old.Created
		if old.Kind() == t.Kind() && src.Same(old, t) {
			t.Resource = old.Resource
		} else {
			release = true
		}
	}
	if err := src.Check(ctx, t); err != nil {
		return api.Trigger{}, err
	}
	s, err := m.seal(t)
	if err != nil {
		return api.Trigger{}, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return api.Trigger{}, err
	}
	if rev == 0 {
		_, err = m.kv.Create(ctx, t.Name, b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return api.Trigger{}, fmt.Errorf("%w: %s", ErrExists, t.Name)
		}
	} else {
		_, err = m.kv.Update(ctx, t.Name, b, rev)
	}
	if err != nil {
		return api.Trigger{}, fmt.Errorf("store trigger %s: %w", t.Name, err)
	}
	if release {
		if osrc := m.cfg.Sources[old.Kind()]; osrc != nil {
			m.waitStopped(ctx, t.Name, old)
			if err := osrc.Remove(ctx, old); err != nil {
				m.log.Warn("replaced trigger: could not release its old source", "trigger", t.Name, "err", err)
			}
		}
	}
	return redact(t), nil
}

// newResource names what a trigger will hold at its source: lower-case
// letters, digits and '_' (what PostgreSQL slot names and JetStream
// consumer names both take), unique per creation.
func newResource(name string) string {
	b := make([]byte, 0, 48)
	for _, c := range strings.ToLower(name) {
		if len(b) == 36 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b = append(b, byte(c))
		} else {
			b = append(b, '_')
		}
	}
	return "gust_" + string(b) + "_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
}

// waitStopped waits (briefly) until this node no longer runs old.
func (m *Manager) waitStopped(ctx context.Context, name string, old api.Trigger) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		m.mu.Lock()
		r := m.running[name]
		m.mu.Unlock()
		if r == nil || !sameDefinition(r.t, old) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sameDefinition(a, b api.Trigger) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// load reads a stored trigger, DSN opened.
func (m *Manager) load(ctx context.Context, name string) (api.Trigger, uint64, error) {
	e, err := m.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return api.Trigger{}, 0, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return api.Trigger{}, 0, fmt.Errorf("read trigger %s: %w", name, err)
	}
	var s stored
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return api.Trigger{}, 0, fmt.Errorf("read trigger %s: %w", name, err)
	}
	t, err := m.unseal(s)
	return t, e.Revision(), err
}

// Delete removes a trigger: every node stops it, then what it made at
// its source is removed.
func (m *Manager) Delete(ctx context.Context, name string) error {
	m.ops.Lock()
	defer m.ops.Unlock()
	t, _, err := m.load(ctx, name)
	if err != nil {
		return err
	}
	if err := m.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete trigger %s: %w", name, err)
	}
	m.waitStopped(ctx, name, t)
	if src := m.cfg.Sources[t.Kind()]; src != nil {
		if err := src.Remove(ctx, t); err != nil {
			return fmt.Errorf("trigger %s deleted, but its source was not cleaned up: %w", name, err)
		}
	}
	return nil
}

// Get returns a trigger and how it runs here.
func (m *Manager) Get(ctx context.Context, name string) (api.TriggerStatus, error) {
	t, _, err := m.load(ctx, name)
	if err != nil {
		return api.TriggerStatus{}, err
	}
	return m.status(ctx, t), nil
}

// List returns every trigger, by name, with how each runs here.
func (m *Manager) List(ctx context.Context) ([]api.TriggerStatus, error) {
	keys, err := m.kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []api.TriggerStatus{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	slices.Sort(keys)
	out := make([]api.TriggerStatus, 0, len(keys))
	for _, k := range keys {
		t, _, err := m.load(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m.status(ctx, t))
	}
	return out, nil
}

func (m *Manager) status(ctx context.Context, t api.Trigger) api.TriggerStatus {
	s := api.TriggerStatus{Trigger: redact(t), State: "stopped"}
	m.mu.Lock()
	r := m.running[t.Name]
	m.mu.Unlock()
	if r == nil {
		return s
	}
	r.st.mu.Lock()
	var lag func(context.Context) (int64, time.Duration, error)
	s.State, s.Error, lag = r.st.state, r.st.err, r.st.lag
	r.st.mu.Unlock()
	s.Delivered, s.DeadLettered = r.st.delivered.Load(), r.st.deadLettered.Load()
	if lag != nil {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		b, age, err := lag(lctx)
		cancel()
		if err == nil {
			secs := age.Seconds()
			s.LagBytes, s.LagSeconds = &b, &secs
		}
	}
	return s
}

// redact hides a trigger's secrets for answers.
func redact(t api.Trigger) api.Trigger {
	if t.Postgres != nil {
		p := *t.Postgres
		p.DSNRedacted = RedactDSN(p.DSN)
		p.DSN = ""
		t.Postgres = &p
	}
	return t
}
