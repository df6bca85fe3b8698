package manager

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/trigger/postgres"
)

// PostgresEvent is what a PostgreSQL trigger's function receives: a batch
// of row changes in commit order.
type PostgresEvent struct {
	Source  string            `json:"source"` // "gust:postgres"
	Trigger string            `json:"trigger"`
	Changes []postgres.Change `json:"changes"`
}

// Postgres runs PostgreSQL triggers: the slot's position advances only
// once the function has taken every change up to it.
type Postgres struct {
	Invoker     Invoker
	DeadLetters DeadLetters
	// RetryFirst and RetryMax bound the waits between attempts of a
	// failing batch (default 200 ms and 2 s).
	RetryFirst, RetryMax time.Duration
}

var _ Source = (*Postgres)(nil)

func (p *Postgres) config(t api.Trigger) postgres.Config {
	s := t.Postgres
	return postgres.Config{DSN: s.DSN, Tables: s.Tables, Events: s.Events, Name: strings.TrimPrefix(t.Resource, postgres.Prefix),
		BatchSize: s.BatchSize, BatchWindow: time.Duration(s.BatchWindowMs) * time.Millisecond}
}

// Validate implements Source.
func (p *Postgres) Validate(t *api.Trigger) error {
	s := t.Postgres
	if s.DSN == "" {
		return invalid("postgres.dsn", "postgres.dsn is required: the database to stream changes from (postgres://user:password@host:5432/db)")
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = 3
	}
	if s.MaxAttempts < 1 || s.MaxAttempts > api.MaxPostgresAttempts {
		return invalid("postgres.maxAttempts", "postgres.maxAttempts %d is out of range: 1 to %d", s.MaxAttempts, api.MaxPostgresAttempts)
	}
	if s.BatchWindowMs < 0 || s.BatchWindowMs > 60_000 {
		return invalid("postgres.batchWindowMs", "postgres.batchWindowMs %d is out of range: 0 to 60000", s.BatchWindowMs)
	}
	cfg := p.config(*t)
	cfg.Name = "probe"
	if err := cfg.Validate(); err != nil {
		return pgInvalid(err)
	}
	return nil
}

func pgInvalid(err error) error {
	var ve *postgres.ValidationError
	if errors.As(err, &ve) {
		return invalid("postgres."+ve.Field, "postgres: %s", ve.Message)
	}
	return invalid("postgres", "postgres: %v", err)
}

// Check implements Source: it reaches the database and prepares the
// publication and slot, so that changes from now on are kept for the
// trigger even before it first runs.
func (p *Postgres) Check(ctx context.Context, t api.Trigger) error {
	cfg := p.config(t)
	if err := postgres.Check(ctx, cfg); err != nil {
		return pgInvalid(err)
	}
	if err := postgres.Setup(ctx, cfg); err != nil {
		return invalid("postgres", "postgres: prepare the replication slot: %v", err)
	}
	return nil
}

// Run implements Source.
func (p *Postgres) Run(ctx context.Context, t api.Trigger, st *Status) error {
	cfg := p.config(t)
	if err := postgres.Setup(ctx, cfg); err != nil {
		return err
	}
	s, err := postgres.Open(cfg, postgres.Options{RetryMin: p.RetryFirst, RetryMax: p.RetryMax})
	if err != nil {
		return err
	}
	st.SetLag(s.Lag)
	st.Running()
	r := retry{attempts: t.Postgres.MaxAttempts, first: p.RetryFirst, max: p.RetryMax}
	if r.first <= 0 {
		r.first = 200 * time.Millisecond
	}
	if r.max <= 0 {
		r.max = 2 * time.Second
	}
	return s.Run(ctx, func(ctx context.Context, b postgres.Batch) error {
		err := deliverInOrder(ctx, p.Invoker, p.DeadLetters, st, t, r, len(b.Changes), func(from, to int) ([]byte, error) {
			return json.Marshal(PostgresEvent{Source: "gust:postgres", Trigger: t.Name, Changes: b.Changes[from:to]})
		})
		if err != nil {
			st.Failed(err)
		}
		return err
	})
}

// Same implements Source: the same database, tables and events.
func (p *Postgres) Same(a, b api.Trigger) bool {
	x, y := a.Postgres, b.Postgres
	return x.DSN == y.DSN && slices.Equal(x.Tables, y.Tables) && slices.Equal(x.Events, y.Events)
}

// Remove implements Source: the slot and publication are dropped.
func (p *Postgres) Remove(ctx context.Context, t api.Trigger) error {
	return postgres.Teardown(ctx, p.config(t))
}
