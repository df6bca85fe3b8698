package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Defaults of Options.
const (
	DefaultRetryMin       = time.Second
	DefaultRetryMax       = 30 * time.Second
	DefaultStatusInterval = 10 * time.Second
)

const (
	// lagCacheFor is how long Lag reuses the byte lag it queried.
	lagCacheFor = time.Second
	// slotFreeWait is how long a new session waits for a slot still
	// held by the walsender of the previous one (which is exiting).
	slotFreeWait = 2 * time.Second
	// minStatusInterval bounds the status interval derived from a short
	// wal_sender_timeout.
	minStatusInterval = 50 * time.Millisecond
)

// Change is one row change.
type Change struct {
	// Op is "insert", "update" or "delete".
	Op     string `json:"op"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	// Old is the row before an update or a delete: the whole row for a
	// table with REPLICA IDENTITY FULL, otherwise its key columns (for an
	// update, only when the key changed). Values are decoded by type
	// (see the package documentation).
	Old map[string]any `json:"old,omitempty"`
	// New is the row after an insert or an update. A large (TOASTed)
	// value that an update left unchanged is taken from Old, or left out
	// when Old does not have it.
	New map[string]any `json:"new,omitempty"`
	// CommitTime is when the change's transaction committed.
	CommitTime time.Time `json:"commitTime"`
	// LSN is the position of the transaction's commit record, in
	// PostgreSQL's text form ("0/16B3748"): the same for every change of
	// a transaction, and increasing with commit order.
	LSN string `json:"lsn"`
	// XID is the transaction's id.
	XID uint32 `json:"xid"`
}

// Batch is one delivery: 1 to BatchSize changes, in commit order.
type Batch struct {
	Changes []Change
	// End is the position (text form) up to which the slot is confirmed
	// once the batch is delivered: the end of the last transaction the
	// batch completes. A transaction larger than BatchSize is split
	// across batches; a batch holding only a part of one transaction,
	// and completing none, has an empty End, and the batch completing
	// that transaction confirms it.
	End string
}

// Options tunes a Stream. The zero value of each field means its
// default.
type Options struct {
	// RetryMin and RetryMax bound the backoffs: before a failed batch is
	// delivered again, and before reconnecting after a lost connection.
	// A backoff starts at RetryMin (default 1 s) and doubles up to
	// RetryMax (default 30 s).
	RetryMin, RetryMax time.Duration
	// StatusInterval is how often Run reports its position to
	// PostgreSQL while nothing else prompts it (default 10 s). Run
	// shortens it to a third of the server's wal_sender_timeout when
	// that is shorter, so that a slow deliver never gets the connection
	// dropped.
	StatusInterval time.Duration
	// Logger receives what goes wrong (default: discarded).
	Logger *slog.Logger
}

// Status is a stream's state, for display.
type Status struct {
	// Connected reports whether Run is streaming from PostgreSQL.
	Connected bool
	// Err is the last error that broke or refused the stream (nil until
	// one happens; kept while reconnecting).
	Err error
	// Since is when Connected or Err last changed.
	Since time.Time
	// Confirmed is the position confirmed to the slot by the current or
	// last Run ("" before the first connection).
	Confirmed string
}

// Stream is one change stream. Run must not be called concurrently with
// itself; Lag and Status may be called at any time, from any goroutine.
type Stream struct {
	c Config
	o Options

	running atomic.Bool
	// confirmed is the LSN up to which every change was delivered, in
	// the current Run (0 before its first connection).
	confirmed atomic.Uint64
	// sessions counts connections that reached streaming (for tests).
	sessions atomic.Int64

	mu sync.Mutex
	// marks are the transactions received and not yet confirmed, in
	// commit order.
	marks  []mark
	status Status
	// lagAt, lagBytes: the last byte lag queried, and when.
	lagAt    time.Time
	lagBytes int64
}

// mark is a transaction received: its commit position and time.
type mark struct {
	lsn  pglogrepl.LSN
	time time.Time
}

// Open returns the stream of c (which must be valid) with options o. It
// reaches nothing: Run connects.
func Open(c Config, o Options) (*Stream, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.WithDefaults()
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	o.RetryMax = max(o.RetryMax, o.RetryMin)
	if o.StatusInterval <= 0 {
		o.StatusInterval = DefaultStatusInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = o.Logger.With("stream", c.Name)
	return &Stream{c: c, o: o}, nil
}

// Config returns the stream's configuration, defaults applied.
func (s *Stream) Config() Config { return s.c }

// Status returns the stream's state.
func (s *Stream) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	if pos := s.confirmed.Load(); pos != 0 {
		st.Confirmed = pglogrepl.LSN(pos).String()
	}
	return st
}

func (s *Stream) setStatus(connected bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.Connected == connected && err == nil {
		return
	}
	s.status.Connected = connected
	if err != nil {
		s.status.Err = err
	}
	s.status.Since = time.Now()
}

// Lag reports how far the slot is behind: bytes is the WAL between the
// server's current position and the slot's confirmed position (queried
// on a normal connection, at most once a second: calls in between reuse
// the last answer), and age is the time since the commit of the oldest
// change Run received and has not confirmed yet (0 when it has caught
// up, and as of the last Run when none runs).
func (s *Stream) Lag(ctx context.Context) (bytes int64, age time.Duration, err error) {
	s.mu.Lock()
	if len(s.marks) > 0 {
		age = max(time.Since(s.marks[0].time), time.Nanosecond)
	}
	if !s.lagAt.IsZero() && time.Since(s.lagAt) < lagCacheFor {
		bytes = s.lagBytes
		s.mu.Unlock()
		return bytes, age, nil
	}
	s.mu.Unlock()

	conn, err := connect(ctx, s.c.DSN)
	if err != nil {
		return 0, age, err
	}
	defer closeConn(conn)
	var lag *int64
	err = conn.QueryRow(ctx,
		"SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
		s.c.SlotName()).Scan(&lag)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, age, fmt.Errorf("replication slot %s does not exist: %w", s.c.SlotName(), ErrNotSetUp)
		}
		return 0, age, fmt.Errorf("query the lag of replication slot %s: %w", s.c.SlotName(), err)
	}
	if lag != nil {
		bytes = max(*lag, 0)
	}
	s.mu.Lock()
	s.lagAt, s.lagBytes = time.Now(), bytes
	s.mu.Unlock()
	return bytes, age, nil
}

// addMark records a transaction received.
func (s *Stream) addMark(lsn pglogrepl.LSN, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if uint64(lsn) < s.confirmed.Load() {
		return
	}
	if n := len(s.marks); n > 0 && s.marks[n-1].lsn >= lsn {
		return // received again after a reconnection
	}
	s.marks = append(s.marks, mark{lsn: lsn, time: at})
}

// confirm advances the confirmed position to pos, and reports whether it
// moved.
func (s *Stream) confirm(pos pglogrepl.LSN) bool {
	for {
		cur := s.confirmed.Load()
		if uint64(pos) <= cur {
			return false
		}
		if s.confirmed.CompareAndSwap(cur, uint64(pos)) {
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i < len(s.marks) && s.marks[i].lsn < pos {
		i++
	}
	s.marks = append(s.marks[:0], s.marks[i:]...)
	s.lagAt = time.Time{}
	return true
}

// fatalError is a problem reconnecting cannot fix: Run returns it.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// fatal reports whether err ends Run, and the error Run returns.
func fatal(err error) (error, bool) {
	var f *fatalError
	if errors.As(err, &f) {
		return f.err, true
	}
	switch pgCode(err) {
	case codeInvalidPassword, codeInvalidAuthorization, codeInvalidCatalogName, codeInsufficientPriv,
		codeUndefinedObject, codeNotInPrerequisite:
		return err, true
	}
	return err, false
}

// Run streams changes until ctx is done, and hands them to deliver in
// batches, in commit order, one batch at a time (never concurrently).
//
// When deliver returns nil the batch is done: the slot's confirmed
// position may move past it (and only ever past changes delivered
// successfully). When deliver returns an error, the same batch is
// delivered again after a backoff (Options.RetryMin doubling up to
// RetryMax), for as long as it fails: the caller decides when to give up
// on a batch (it sets the batch aside and returns nil).
//
// A lost connection (a PostgreSQL restart, the network) is retried with
// the same backoff: Run reconnects and resumes from the confirmed
// position, so changes delivered but not yet confirmed come again (at
// least once), possibly cut into batches differently. The slot admits
// one reader at a time: a Run elsewhere holding it (another node) makes
// this one wait and retry, which makes one of them the reader.
//
// deliver gets ctx; a call in progress when ctx is done is waited for.
// Run returns nil when ctx is done, or an error that reconnecting cannot
// fix: the slot or the publication is missing (ErrNotSetUp), the server
// refuses the user, wal_level is no longer logical.
func (s *Stream) Run(ctx context.Context, deliver func(ctx context.Context, b Batch) error) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("change stream %s is already running", s.c.Name)
	}
	defer s.running.Store(false)
	s.confirmed.Store(0)
	s.mu.Lock()
	s.marks = nil
	s.mu.Unlock()

	backoff := s.o.RetryMin
	for {
		streamed, err := s.session(ctx, deliver)
		if ctx.Err() != nil {
			s.setStatus(false, nil)
			return nil
		}
		if err == nil {
			err = errors.New("replication stream ended")
		}
		if ferr, ok := fatal(err); ok {
			s.setStatus(false, ferr)
			s.o.Logger.Error("change stream stopped", "err", ferr)
			return ferr
		}
		s.setStatus(false, err)
		if streamed {
			backoff = s.o.RetryMin
		}
		s.o.Logger.Warn("change stream interrupted; reconnecting", "err", err, "in", backoff)
		if sleep(ctx, backoff) != nil {
			return nil
		}
		backoff = min(2*backoff, s.o.RetryMax)
	}
}

// item is what the receiver hands the deliverer: a change, or a
// boundary: a position such that every change before it was handed over
// before it.
type item struct {
	change *Change
	pos    pglogrepl.LSN
}

// session is one replication connection.
type session struct {
	s        *Stream
	conn     *pgconn.PgConn
	interval time.Duration

	// recvDone is closed when the receiver has stopped.
	recvDone chan struct{}

	wakeMu     sync.Mutex
	wakeCancel context.CancelFunc
	// wakeCh holds a pending wake-up for the receiver.
	wakeCh chan struct{}

	// Receiver state.
	lastSent   pglogrepl.LSN
	nextStatus time.Time

	// releasedErr is why the deliverer let the connection go (see
	// releaseAfter).
	releasedErr error
}

// session connects, streams until ctx is done or the connection breaks,
// and reports whether streaming started.
func (s *Stream) session(ctx context.Context, deliver func(context.Context, Batch) error) (bool, error) {
	conn, err := replicationConnect(ctx, s.c)
	if err != nil {
		return false, err
	}
	defer closeReplication(conn)
	ss := &session{s: s, conn: conn, interval: s.o.StatusInterval, recvDone: make(chan struct{}), wakeCh: make(chan struct{}, 1)}
	start, err := ss.prepare(ctx)
	if err != nil {
		return false, err
	}
	s.confirm(start)
	pos := pglogrepl.LSN(s.confirmed.Load())
	err = pglogrepl.StartReplication(ctx, conn, s.c.SlotName(), pos, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{
			"proto_version '1'",
			"publication_names " + quoteLiteral(s.c.PublicationName()),
		},
	})
	if err != nil {
		return false, ss.classify(fmt.Errorf("start replication from slot %s at %s: %w", s.c.SlotName(), pos, err))
	}
	s.sessions.Add(1)
	s.setStatus(true, nil)
	s.o.Logger.Info("change stream connected", "from", pos)

	items := make(chan item, max(2*s.c.BatchSize, 64))
	recvCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var recvErr error
	go func() {
		defer close(ss.recvDone)
		recvErr = ss.receive(recvCtx, items)
	}()
	ss.deliverLoop(ctx, items, deliver)
	cancel()
	<-ss.recvDone
	if !conn.IsClosed() {
		// Report the final position before leaving, so that the next
		// session does not deliver again what this one confirmed.
		fctx, fcancel := context.WithTimeout(context.Background(), closeTimeout)
		_ = ss.sendStatus(fctx)
		fcancel()
	}
	if ctx.Err() != nil {
		return true, nil
	}
	if ss.releasedErr != nil {
		// Not reported as streamed, so that Run's backoff keeps growing
		// while the batch keeps failing.
		return false, ss.releasedErr
	}
	return true, ss.classify(recvErr)
}

// prepare verifies the slot and the publication on the replication
// connection, waits for the slot to be free, and returns its confirmed
// position. It also reads wal_sender_timeout to keep the status
// interval under it.
func (ss *session) prepare(ctx context.Context) (pglogrepl.LSN, error) {
	c := ss.s.c
	q := fmt.Sprintf(`SELECT current_database(),
  (SELECT count(*) FROM pg_publication WHERE pubname = %s),
  s.plugin, s.database, s.confirmed_flush_lsn::text, s.active_pid,
  current_setting('wal_sender_timeout')
FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = %s`,
		quoteLiteral(c.PublicationName()), quoteLiteral(c.SlotName()))
	deadline := time.Now().Add(slotFreeWait)
	for {
		results, err := ss.conn.Exec(ctx, q).ReadAll()
		if err != nil {
			return 0, fmt.Errorf("look up replication slot %s: %w", c.SlotName(), err)
		}
		if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 7 {
			return 0, fmt.Errorf("look up replication slot %s: unexpected result", c.SlotName())
		}
		row := results[0].Rows[0]
		db := string(row[0])
		switch {
		case string(row[1]) == "0":
			return 0, &fatalError{fmt.Errorf("publication %s does not exist in database %q (dropped from outside Gust?): %w",
				c.PublicationName(), db, ErrNotSetUp)}
		case row[2] == nil:
			return 0, &fatalError{fmt.Errorf("replication slot %s does not exist (dropped from outside Gust?): %w",
				c.SlotName(), ErrNotSetUp)}
		case string(row[2]) != "pgoutput" || string(row[3]) != db:
			return 0, &fatalError{fmt.Errorf("replication slot %s belongs to something else (database %q, plugin %q)",
				c.SlotName(), row[3], row[2])}
		}
		if d, ok := parseGUCDuration(string(row[6])); ok && d > 0 {
			ss.interval = max(min(ss.interval, d/3), minStatusInterval)
		}
		if row[5] == nil {
			pos, err := pglogrepl.ParseLSN(string(row[4]))
			if err != nil {
				return 0, fmt.Errorf("replication slot %s: confirmed position %q: %w", c.SlotName(), row[4], err)
			}
			return pos, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("replication slot %s is in use by process %s (another reader?)", c.SlotName(), row[5])
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return 0, err
		}
	}
}

// parseGUCDuration parses a time setting as SHOW prints it ("60s",
// "500ms", "1min", "0").
func parseGUCDuration(s string) (time.Duration, bool) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"ms", time.Millisecond}, {"us", time.Microsecond}, {"min", time.Minute}, {"s", time.Second}, {"h", time.Hour}, {"d", 24 * time.Hour}}
	unit := time.Millisecond // a bare number is in the setting's unit: ms
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, unit = n, u.unit
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// classify marks the errors of a session that reconnecting cannot fix.
func (ss *session) classify(err error) error {
	if err == nil {
		return nil
	}
	switch pgCode(err) {
	case codeUndefinedObject:
		// pgoutput's "publication ... does not exist", or the slot.
		return &fatalError{fmt.Errorf("%w (the slot or the publication was dropped from outside Gust?): %w", err, ErrNotSetUp)}
	case codeNotInPrerequisite, codeInsufficientPriv:
		return &fatalError{err}
	}
	return err
}

// wake makes the receiver report the confirmed position now.
func (ss *session) wake() {
	ss.wakeMu.Lock()
	defer ss.wakeMu.Unlock()
	select {
	case ss.wakeCh <- struct{}{}:
	default:
	}
	if ss.wakeCancel != nil {
		ss.wakeCancel()
		ss.wakeCancel = nil
	}
}

// arm registers cancel for wake to call; it returns false, consuming
// it, if a wake-up is already pending.
func (ss *session) arm(cancel context.CancelFunc) bool {
	ss.wakeMu.Lock()
	defer ss.wakeMu.Unlock()
	select {
	case <-ss.wakeCh:
		return false
	default:
	}
	ss.wakeCancel = cancel
	return true
}

func (ss *session) disarm() {
	ss.wakeMu.Lock()
	defer ss.wakeMu.Unlock()
	ss.wakeCancel = nil
}

// sendStatus reports the confirmed position to the server as written,
// flushed and applied.
func (ss *session) sendStatus(ctx context.Context) error {
	pos := pglogrepl.LSN(ss.s.confirmed.Load())
	err := pglogrepl.SendStandbyStatusUpdate(ctx, ss.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pos,
		WALFlushPosition: pos,
		WALApplyPosition: pos,
	})
	if err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	ss.lastSent = pos
	ss.nextStatus = time.Now().Add(ss.interval)
	return nil
}

// statusDue reports whether the receiver owes the server a status.
func (ss *session) statusDue() bool {
	return pglogrepl.LSN(ss.s.confirmed.Load()) != ss.lastSent || !time.Now().Before(ss.nextStatus)
}

// receive reads the replication stream into items, and keeps the server
// informed of the confirmed position, until ctx is done or the
// connection breaks. It closes items when it returns. It alone uses the
// connection while it runs.
func (ss *session) receive(ctx context.Context, items chan<- item) error {
	defer close(items)
	d := decoder{s: ss.s, rels: make(map[uint32]*pglogrepl.RelationMessage)}
	var lastBoundary pglogrepl.LSN
	for {
		if ss.statusDue() {
			if err := ss.sendStatus(ctx); err != nil {
				return err
			}
		}
		rctx, cancel := context.WithDeadline(ctx, ss.nextStatus)
		if !ss.arm(cancel) {
			cancel()
			continue
		}
		raw, err := ss.conn.ReceiveMessage(rctx)
		ss.disarm()
		woken := rctx.Err() != nil
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if woken && !ss.conn.IsClosed() {
				continue // status due, or a wake-up
			}
			return fmt.Errorf("receive from the replication stream: %w", err)
		}
		var msg *pgproto3.CopyData
		switch m := raw.(type) {
		case *pgproto3.CopyData:
			msg = m
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.CopyDone:
			return errors.New("the server ended the replication stream")
		default:
			continue // notices, parameter changes
		}
		if len(msg.Data) == 0 {
			continue
		}
		switch msg.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
			if err != nil {
				return fmt.Errorf("parse keepalive: %w", err)
			}
			if ka.ReplyRequested {
				if err := ss.sendStatus(ctx); err != nil {
					return err
				}
			}
			// Between transactions, everything up to the server's
			// position has been received: once it is delivered the
			// slot can move there, past WAL that holds no change for
			// this stream.
			if !d.inTx && ka.ServerWALEnd > lastBoundary && uint64(ka.ServerWALEnd) > ss.s.confirmed.Load() {
				lastBoundary = ka.ServerWALEnd
				if err := ss.push(ctx, items, item{pos: ka.ServerWALEnd}); err != nil {
					return err
				}
			}
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
			if err != nil {
				return fmt.Errorf("parse WAL data: %w", err)
			}
			it, ok, err := d.decode(xld.WALData)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if it.change == nil {
				lastBoundary = max(lastBoundary, it.pos)
			}
			if err := ss.push(ctx, items, it); err != nil {
				return err
			}
		}
	}
}

// push hands it to the deliverer, reporting the position to the server
// while the deliverer is busy.
func (ss *session) push(ctx context.Context, items chan<- item, it item) error {
	for {
		select {
		case items <- it:
			return nil
		default:
		}
		if ss.statusDue() {
			if err := ss.sendStatus(ctx); err != nil {
				return err
			}
		}
		t := time.NewTimer(time.Until(ss.nextStatus))
		select {
		case items <- it:
			t.Stop()
			return nil
		case <-ss.wakeCh:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// decoder turns pgoutput messages into items.
type decoder struct {
	s    *Stream
	rels map[uint32]*pglogrepl.RelationMessage
	inTx bool
	// The transaction being received.
	xid        uint32
	lsn        string
	commitTime time.Time
}

// decode decodes one pgoutput message; ok is false for a message that
// makes no item.
func (d *decoder) decode(data []byte) (it item, ok bool, err error) {
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return item{}, false, fmt.Errorf("parse pgoutput message: %w", err)
	}
	var ch *Change
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		d.rels[m.RelationID] = m
		return item{}, false, nil
	case *pglogrepl.BeginMessage:
		d.inTx = true
		d.xid, d.lsn, d.commitTime = m.Xid, m.FinalLSN.String(), m.CommitTime
		d.s.addMark(m.FinalLSN, m.CommitTime)
		return item{}, false, nil
	case *pglogrepl.CommitMessage:
		d.inTx = false
		return item{pos: m.TransactionEndLSN}, true, nil
	case *pglogrepl.InsertMessage:
		rel, err := d.rel(m.RelationID)
		if err != nil {
			return item{}, false, err
		}
		ch = d.change(Insert, rel)
		ch.New = decodeTuple(rel, m.Tuple, false, nil)
	case *pglogrepl.UpdateMessage:
		rel, err := d.rel(m.RelationID)
		if err != nil {
			return item{}, false, err
		}
		ch = d.change(Update, rel)
		ch.Old = decodeTuple(rel, m.OldTuple, m.OldTupleType == pglogrepl.UpdateMessageTupleTypeKey, nil)
		ch.New = decodeTuple(rel, m.NewTuple, false, ch.Old)
	case *pglogrepl.DeleteMessage:
		rel, err := d.rel(m.RelationID)
		if err != nil {
			return item{}, false, err
		}
		ch = d.change(Delete, rel)
		ch.Old = decodeTuple(rel, m.OldTuple, m.OldTupleType == pglogrepl.DeleteMessageTupleTypeKey, nil)
	default:
		// Truncate (not published), origin, type and logical decoding
		// messages carry nothing for the stream.
		return item{}, false, nil
	}
	return item{change: ch}, true, nil
}

func (d *decoder) rel(id uint32) (*pglogrepl.RelationMessage, error) {
	rel, ok := d.rels[id]
	if !ok {
		return nil, fmt.Errorf("pgoutput sent a change of relation %d before describing it", id)
	}
	return rel, nil
}

func (d *decoder) change(op string, rel *pglogrepl.RelationMessage) *Change {
	return &Change{Op: op, Schema: rel.Namespace, Table: rel.RelationName, CommitTime: d.commitTime, LSN: d.lsn, XID: d.xid}
}

// deliverLoop builds batches from items and delivers them, until ctx is
// done or the receiver stops (a batch being built or retried is then
// dropped: its changes come again on the next connection).
func (ss *session) deliverLoop(ctx context.Context, items <-chan item, deliver func(context.Context, Batch) error) {
	var held *item
	for {
		b, end, ok := ss.batch(ctx, items, &held)
		if !ok || !ss.deliver(ctx, b, deliver) {
			return
		}
		if end != 0 && ss.s.confirm(end) {
			ss.wake()
		}
	}
}

// batch builds the next batch and returns it with the position it
// confirms (0 for none). held is a change read ahead for the next batch.
// ok is false when ctx is done or the receiver stopped.
func (ss *session) batch(ctx context.Context, items <-chan item, held **item) (b Batch, end pglogrepl.LSN, ok bool) {
	s := ss.s
	size, window := s.c.BatchSize, s.c.BatchWindow
	// The first change; boundaries before it confirm at once.
	for len(b.Changes) == 0 {
		var it item
		if *held != nil {
			it, *held = **held, nil
		} else {
			select {
			case it, ok = <-items:
				if !ok {
					return b, 0, false
				}
			case <-ctx.Done():
				return b, 0, false
			}
		}
		if it.change == nil {
			if s.confirm(it.pos) {
				ss.wake()
			}
			continue
		}
		b.Changes = append(b.Changes, *it.change)
	}
	// Fill it: with what is ready, or for up to the window.
	var timeout <-chan time.Time
	if window > 0 {
		t := time.NewTimer(window)
		defer t.Stop()
		timeout = t.C
	}
fill:
	for len(b.Changes) < size {
		var it item
		if window == 0 {
			select {
			case it, ok = <-items:
			default:
				break fill
			}
		} else {
			select {
			case it, ok = <-items:
			case <-timeout:
				break fill
			case <-ctx.Done():
				return b, 0, false
			}
		}
		if !ok {
			return b, 0, false
		}
		if it.change == nil {
			end = it.pos
			continue
		}
		b.Changes = append(b.Changes, *it.change)
	}
	// A full batch takes the boundaries right behind it.
behind:
	for len(b.Changes) == size && *held == nil {
		select {
		case it, ok := <-items:
			if !ok {
				return b, 0, false
			}
			if it.change != nil {
				*held = &it
			} else {
				end = it.pos
			}
		default:
			break behind
		}
	}
	if end != 0 {
		b.End = end.String()
	}
	return b, end, true
}

// releaseAfter is how many failed attempts at one batch a session makes
// before it lets its connection go. A fast shutdown of PostgreSQL waits
// until every replication client has confirmed what it was sent, so a
// session holding a batch it cannot deliver would hold the server's
// shutdown (and its slot) for as long as the failure lasts. The batch
// comes again on the next connection.
const releaseAfter = 3

// deliver calls deliver until it succeeds, with a backoff between
// failures, and reports whether it did; it gives up when ctx is done,
// the connection breaks, or after releaseAfter failures.
func (ss *session) deliver(ctx context.Context, b Batch, deliver func(context.Context, Batch) error) bool {
	s := ss.s
	backoff := s.o.RetryMin
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return false
		}
		err := deliver(ctx, b)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if attempt >= releaseAfter {
			s.o.Logger.Warn("change batch keeps failing; releasing the connection, to deliver it again on the next", "changes", len(b.Changes), "attempts", attempt, "err", err)
			ss.releasedErr = fmt.Errorf("a batch of %d changes failed %d times: %w", len(b.Changes), attempt, err)
			return false
		}
		s.o.Logger.Warn("change batch failed; retrying", "changes", len(b.Changes), "attempt", attempt, "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		case <-ss.recvDone:
			t.Stop()
			return false
		}
		backoff = min(2*backoff, s.o.RetryMax)
	}
}
