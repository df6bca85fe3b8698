package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Event operations.
const (
	OpPut    = "put"
	OpDelete = "delete"
)

// Event is one change of a bucket.
type Event struct {
	// Kind is KindKV or KindObjects.
	Kind string
	// Bucket is the user-facing name.
	Bucket string
	// Key is the KV key or the object's name.
	Key string
	// Op is OpPut or OpDelete.
	Op string
	// Revision is the change's stream sequence: unique within the bucket,
	// increasing.
	Revision uint64
	Time     time.Time
	// Size is the object's size, or the value's length (KV puts).
	Size int64
	// Value is the value (KV puts).
	Value []byte
	// Digest is the object's hex SHA-256 and ContentType its content type
	// (object puts).
	Digest      string
	ContentType string
}

// MaxDurableLen bounds a consumer's durable name.
const MaxDurableLen = 128

var durableRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func validateDurable(d string) error {
	if d == "" || len(d) > MaxDurableLen || !durableRE.MatchString(d) {
		return invalidf("consumer name %q: use 1 to %d letters, digits, '-' or '_'", d, MaxDurableLen)
	}
	return nil
}

// filterFor returns the subject filter of a consumer of bucket's changes
// under prefix.
func filterFor(kind, bucket, prefix string) (string, error) {
	if kind == KindKV {
		if err := validatePrefix(prefix); err != nil {
			return "", err
		}
		return kvFilter(bucket, prefix), nil
	}
	if len(prefix) > 1024 {
		return "", invalidf("prefix: %d bytes is too long", len(prefix))
	}
	// Names are base64 in the subject: filter after decoding.
	return "$O." + objPrefix + bucket + ".M.>", nil
}

// CreateConsumer creates (or updates) the durable consumer Consume reads
// through, so that the changes made from now on are kept for it even
// before Consume runs. A new consumer starts with the next change.
func (s *Store) CreateConsumer(ctx context.Context, kind, bucket, prefix, durable string) error {
	_, err := s.consumer(ctx, kind, bucket, prefix, durable)
	return err
}

func (s *Store) consumer(ctx context.Context, kind, bucket, prefix, durable string) (jetstream.Consumer, error) {
	kind, err := kindOf(kind)
	if err != nil {
		return nil, err
	}
	if err := ValidateBucketName(bucket); err != nil {
		return nil, err
	}
	if err := validateDurable(durable); err != nil {
		return nil, err
	}
	filter, err := filterFor(kind, bucket, prefix)
	if err != nil {
		return nil, err
	}
	stream := streamName(kind, bucket)
	fail := func(err error) (jetstream.Consumer, error) {
		if gone(err) {
			return nil, noBucket(kind, bucket)
		}
		return nil, fmt.Errorf("consumer %s of %s %q: %w", durable, noun(kind), bucket, err)
	}
	// An existing consumer with the same filter is used as it is.
	c, err := s.js.Consumer(ctx, stream, durable)
	if err == nil && c.CachedInfo().Config.FilterSubject == filter {
		return c, nil
	}
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fail(err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "gust: changes of " + noun(kind) + " " + bucket,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		// One at a time, so that changes are handled in order even when
		// one is redelivered.
		MaxAckPending: 1,
		MaxDeliver:    -1,
		FilterSubject: filter,
	}
	if err == nil {
		// Another prefix: the same consumer, filtering anew.
		c, err = s.js.UpdateConsumer(ctx, stream, cfg)
	} else if c, err = s.js.CreateConsumer(ctx, stream, cfg); errors.Is(err, jetstream.ErrConsumerExists) {
		// Created meanwhile (by another node).
		c, err = s.js.Consumer(ctx, stream, durable)
	}
	if err != nil {
		return fail(err)
	}
	return c, nil
}

// DeleteConsumer deletes a durable consumer; one that does not exist (or
// whose bucket is gone) is no error.
func (s *Store) DeleteConsumer(ctx context.Context, kind, bucket, durable string) error {
	kind, err := kindOf(kind)
	if err != nil {
		return err
	}
	if err := ValidateBucketName(bucket); err != nil {
		return err
	}
	if err := validateDurable(durable); err != nil {
		return err
	}
	err = s.js.DeleteConsumer(ctx, streamName(kind, bucket), durable)
	if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) || gone(err) {
		return nil
	}
	return fmt.Errorf("delete consumer %s of %s %q: %w", durable, noun(kind), bucket, err)
}

// Consume delivers every change of bucket whose key (name) starts with
// prefix, in order, to handle, through the durable JetStream consumer
// named durable: a node restart resumes where the consumer left off, and
// changes made while nothing consumed are delivered later. The consumer
// is created when missing (see CreateConsumer) and starts with the next
// change. Nodes consuming through the same durable share its changes,
// one at a time.
//
// The consumer reads the bucket's own stream, which keeps only as many
// revisions of a key as the bucket's history (1 by default; an object's
// latest state): a consumer that falls behind a key changed several
// times meanwhile gets the revisions still kept, at least the latest
// one, in order. A key's final state is never missed, but a put undone
// by a later delete before it was delivered surfaces as the delete only.
//
// An event is acknowledged only after handle returns nil; an error
// delivers it again after a backoff (Config.RetryMin doubling up to
// RetryMax), before any later change. While handle runs, the event is
// kept from going to another consumer.
//
// Consume returns nil when ctx is done, and an error when it cannot go
// on (the bucket or the consumer was deleted).
func (s *Store) Consume(ctx context.Context, kind, bucket, prefix, durable string, handle func(ctx context.Context, ev Event) error) error {
	c, err := s.consumer(ctx, kind, bucket, prefix, durable)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	kind, _ = kindOf(kind)
	// Short pulls with heartbeats, so that a consumer deleted between two
	// pulls (its bucket deleted) is noticed within seconds.
	it, err := c.Messages(jetstream.PullExpiry(5*time.Second), jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return fmt.Errorf("consume %s %q: %w", noun(kind), bucket, err)
	}
	defer stopIterator(it)
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrNoHeartbeat) {
			if _, cerr := s.js.Consumer(ctx, streamName(kind, bucket), durable); cerr == nil || ctx.Err() != nil {
				continue // a pull lost on the way; the iterator pulls again
			} else {
				err = cerr
			}
		}
		if err != nil {
			if _, serr := s.js.Stream(ctx, streamName(kind, bucket)); gone(serr) {
				return fmt.Errorf("consume: %w", noBucket(kind, bucket))
			}
			return fmt.Errorf("consume %s %q: %w", noun(kind), bucket, err)
		}
		ev, ok, err := decodeEvent(kind, bucket, m)
		if err != nil {
			// Not a change this package wrote: nothing to deliver.
			s.log.Warn("storage: skipping an unreadable change", "bucket", bucket, "subject", m.Subject(), "err", err)
			m.Term()
			continue
		}
		if !ok || !strings.HasPrefix(ev.Key, prefix) {
			m.Ack()
			continue
		}
		if err := s.deliver(ctx, m, ev, handle); err != nil {
			if ctx.Err() != nil {
				m.Nak()
				return nil
			}
			n := uint64(1)
			if md, merr := m.Metadata(); merr == nil {
				n = md.NumDelivered
			}
			d := s.backoff(n)
			s.log.Warn("storage: change handler failed; delivering it again", "bucket", bucket, "key", ev.Key,
				"revision", ev.Revision, "attempt", n, "retry_in", d, "err", err)
			m.NakWithDelay(d)
			continue
		}
		if err := m.DoubleAck(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("storage: acknowledging a change failed; it may be delivered again", "bucket", bucket, "key", ev.Key, "err", err)
		}
	}
}

// stopIterator stops a consumer's iterator and returns once the server
// knows: its pulls then die with it instead of taking the next change to
// a reader that is gone (which would hold the change for AckWait).
// Changes that arrived meanwhile go back at once.
func stopIterator(it jetstream.MessagesContext) {
	it.Drain()
	for {
		m, err := it.Next(jetstream.NextMaxWait(5 * time.Second))
		if err != nil {
			return
		}
		m.Nak()
	}
}

// backoff is the wait before delivery attempt n+1.
func (s *Store) backoff(n uint64) time.Duration {
	d := s.cfg.RetryMin
	for i := uint64(1); i < n && d < s.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.RetryMax)
}

// deliver runs handle, telling the server every AckWait/3 that the event
// is still being worked on.
func (s *Store) deliver(ctx context.Context, m jetstream.Msg, ev Event, handle func(context.Context, Event) error) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(s.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				m.InProgress()
			}
		}
	}()
	return handle(ctx, ev)
}

// decodeEvent reads a change from its message; ok is false for messages
// that are no change (none so far).
func decodeEvent(kind, bucket string, m jetstream.Msg) (Event, bool, error) {
	md, err := m.Metadata()
	if err != nil {
		return Event{}, false, err
	}
	ev := Event{Kind: kind, Bucket: bucket, Revision: md.Sequence.Stream, Time: md.Timestamp, Op: OpPut}
	if kind == KindKV {
		ev.Key = strings.TrimPrefix(m.Subject(), "$KV."+kvPrefix+bucket+".")
		if op := m.Headers().Get(hdrKVOp); op == kvOpDelete || op == kvOpPurge {
			ev.Op = OpDelete
			return ev, true, nil
		}
		ev.Value = m.Data()
		ev.Size = int64(len(ev.Value))
		return ev, true, nil
	}
	var in jetstream.ObjectInfo
	if err := json.Unmarshal(m.Data(), &in); err != nil {
		return Event{}, false, fmt.Errorf("object metadata: %w", err)
	}
	ev.Key = in.Name
	if in.Deleted {
		ev.Op = OpDelete
		return ev, true, nil
	}
	ev.Size = int64(in.Size)
	ev.Digest = hexDigest(in.Digest)
	ev.ContentType = in.Headers.Get("Content-Type")
	return ev, true, nil
}
