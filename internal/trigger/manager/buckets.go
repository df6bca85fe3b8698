package manager

import (
	"context"
	"fmt"
	"slices"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/storage"
)

// Buckets runs KV and object bucket triggers: each change is an
// asynchronous invocation (with the function's retries and destinations),
// deduplicated by the change's sequence in its bucket. KV changes are
// sent as storage.KVEvent, object changes as S3 event notifications.
type Buckets struct {
	Store    *storage.Store
	Enqueuer Enqueuer
	Region   string
}

var _ Source = (*Buckets)(nil)

// bucketSource is a bucket trigger's settings, whatever its kind.
func bucketSource(t api.Trigger) (kind, bucket, prefix string, ops []string) {
	if t.KV != nil {
		return storage.KindKV, t.KV.Bucket, t.KV.Prefix, t.KV.Events
	}
	for _, e := range t.Objects.Events {
		switch e {
		case "created":
			ops = append(ops, storage.OpPut)
		case "deleted":
			ops = append(ops, storage.OpDelete)
		}
	}
	return storage.KindObjects, t.Objects.Bucket, t.Objects.Prefix, ops
}

// Validate implements Source.
func (b *Buckets) Validate(t *api.Trigger) error {
	field, allowed := "kv", []string{"put", "delete"}
	bucket, events := "", []string(nil)
	if t.KV != nil {
		bucket, events = t.KV.Bucket, t.KV.Events
	} else {
		field, allowed = "objects", []string{"created", "deleted"}
		bucket, events = t.Objects.Bucket, t.Objects.Events
	}
	if err := storage.ValidateBucketName(bucket); err != nil {
		return invalid(field+".bucket", "%s.bucket: %v", field, err)
	}
	for _, e := range events {
		if !slices.Contains(allowed, e) {
			return invalid(field+".events", "%s.events: %q is not an event; want %v", field, e, allowed)
		}
	}
	return nil
}

// Check implements Source: the bucket must exist, and the trigger's
// durable consumer is made now, so that every change from now on reaches
// the function even before the trigger first runs.
func (b *Buckets) Check(ctx context.Context, t api.Trigger) error {
	kind, bucket, prefix, _ := bucketSource(t)
	if err := b.Store.CreateConsumer(ctx, kind, bucket, prefix, t.Resource); err != nil {
		return invalid(kind+".bucket", "%s.bucket: %v", kind, err)
	}
	return nil
}

// Run implements Source.
func (b *Buckets) Run(ctx context.Context, t api.Trigger, st *Status) error {
	kind, bucket, prefix, ops := bucketSource(t)
	st.Running()
	return b.Store.Consume(ctx, kind, bucket, prefix, t.Resource, func(ctx context.Context, ev storage.Event) error {
		if len(ops) > 0 && !slices.Contains(ops, ev.Op) {
			return nil
		}
		var payload []byte
		var err error
		if kind == storage.KindKV {
			payload, err = storage.KVEvent(ev)
		} else {
			payload, err = storage.S3Event(ev, b.Region)
		}
		if err != nil {
			return err
		}
		dedup := fmt.Sprintf("trigger:%s:%d", t.Resource, ev.Revision)
		if _, err := b.Enqueuer.Enqueue(ctx, t.Function, t.Qualifier, payload, dedup, "trigger:"+t.Name); err != nil {
			st.Failed(err)
			return err
		}
		st.Delivered(1)
		return nil
	})
}

// Same implements Source: the same bucket and prefix.
func (b *Buckets) Same(x, y api.Trigger) bool {
	k1, b1, p1, _ := bucketSource(x)
	k2, b2, p2, _ := bucketSource(y)
	return k1 == k2 && b1 == b2 && p1 == p2
}

// Remove implements Source: the durable consumer is deleted.
func (b *Buckets) Remove(ctx context.Context, t api.Trigger) error {
	kind, bucket, _, _ := bucketSource(t)
	return b.Store.DeleteConsumer(ctx, kind, bucket, t.Resource)
}
