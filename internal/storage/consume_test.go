package storage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/storage"
)

// checkFor polls cond until it holds, failing the test after 10 seconds.
func checkFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder collects the events a consumer delivered.
type recorder struct {
	mu  sync.Mutex
	evs []storage.Event
	// fail, when set, makes the handler fail an event.
	fail func(ev storage.Event, attempt int) error
	// tries counts deliveries per revision.
	tries map[uint64]int
}

func newRecorder() *recorder { return &recorder{tries: map[uint64]int{}} }

func (r *recorder) handle(_ context.Context, ev storage.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries[ev.Revision]++
	if r.fail != nil {
		if err := r.fail(ev, r.tries[ev.Revision]); err != nil {
			return err
		}
	}
	r.evs = append(r.evs, ev)
	return nil
}

func (r *recorder) events() []storage.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]storage.Event(nil), r.evs...)
}

func (r *recorder) count() int { return len(r.events()) }

// summary renders events as "op key" lines.
func summary(evs []storage.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %s", e.Op, e.Key)
		if e.Kind == storage.KindKV && e.Op == storage.OpPut {
			fmt.Fprintf(&b, "=%s", e.Value)
		}
		b.WriteString("; ")
	}
	return b.String()
}

// consume runs Consume in the background after creating its consumer;
// stop cancels it and returns what Consume returned.
func consume(t *testing.T, s *storage.Store, kind, bucket, prefix, durable string, h func(context.Context, storage.Event) error) (stop func() error) {
	t.Helper()
	if err := s.CreateConsumer(context.Background(), kind, bucket, prefix, durable); err != nil {
		t.Fatalf("CreateConsumer = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Consume(ctx, kind, bucket, prefix, durable, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("Consume did not return after its context was cancelled")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestConsumeKV(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	// History keeps every revision for consumers that lag behind.
	mustCreate(t, s, storage.KindKV, "cfg", storage.BucketOptions{History: 10})
	put := func(k, v string) uint64 {
		t.Helper()
		rev, err := s.KVPut(ctx, "cfg", k, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	put("a", "before") // before the consumer: not delivered

	all, pre := newRecorder(), newRecorder()
	stopAll := consume(t, s, storage.KindKV, "cfg", "", "all", all.handle)
	stopPre := consume(t, s, storage.KindKV, "cfg", "a", "pre", pre.handle)
	start := time.Now().Add(-time.Second)
	r1 := put("a", "1")
	put("b", "2")
	if err := s.KVDelete(ctx, "cfg", "a", 0); err != nil {
		t.Fatal(err)
	}
	put("ab", "3")
	put("a", "4")
	checkFor(t, "five kv events", func() bool { return all.count() >= 5 && pre.count() >= 4 })
	if got, want := summary(all.events()), "put a=1; put b=2; delete a; put ab=3; put a=4; "; got != want {
		t.Errorf("events = %s, want %s", got, want)
	}
	if got, want := summary(pre.events()), "put a=1; delete a; put ab=3; put a=4; "; got != want {
		t.Errorf("events with prefix a = %s, want %s", got, want)
	}
	evs := all.events()
	if e := evs[0]; e.Kind != storage.KindKV || e.Bucket != "cfg" || e.Revision != r1 || e.Size != 1 || e.Time.Before(start) {
		t.Errorf("first event = %+v", e)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Revision <= evs[i-1].Revision {
			t.Errorf("revisions out of order: %d after %d", evs[i].Revision, evs[i-1].Revision)
		}
	}
	if err := stopAll(); err != nil {
		t.Errorf("Consume returned %v after cancel, want nil", err)
	}
	stopPre()

	// Prefix filters that cut through a token.
	dotted := newRecorder()
	consume(t, s, storage.KindKV, "cfg", "x.y", "dotted", dotted.handle)
	for _, k := range []string{"x.z", "x.y", "x.yz", "x.y.1", "xy"} {
		put(k, "v")
	}
	checkFor(t, "three dotted events", func() bool { return dotted.count() >= 3 })
	if got, want := summary(dotted.events()), "put x.y=v; put x.yz=v; put x.y.1=v; "; got != want {
		t.Errorf("events with prefix x.y = %s, want %s", got, want)
	}

	err := s.CreateConsumer(ctx, storage.KindKV, "cfg", "", "bad.name")
	wantErr(t, "CreateConsumer(bad durable)", err, storage.ErrInvalid, `consumer name "bad.name"`)
	err = s.Consume(ctx, storage.KindKV, "missing", "", "d", all.handle)
	wantErr(t, "Consume(missing bucket)", err, storage.ErrNoBucket, `"missing"`)
	err = s.CreateConsumer(ctx, storage.KindKV, "cfg", "a b", "d")
	wantErr(t, "CreateConsumer(bad prefix)", err, storage.ErrInvalid, "prefix")
}

// TestConsumeResumes: a stopped consumer picks up the changes made while
// it was away, and not those it acknowledged.
func TestConsumeResumes(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustCreate(t, s, storage.KindKV, "q", storage.BucketOptions{})
	first := newRecorder()
	stop := consume(t, s, storage.KindKV, "q", "", "durable", first.handle)
	if _, err := s.KVPut(ctx, "q", "k1", []byte("1")); err != nil {
		t.Fatal(err)
	}
	checkFor(t, "k1", func() bool { return first.count() == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k2", "k3"} {
		if _, err := s.KVPut(ctx, "q", k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	// Another store (a restarted node) on the same JetStream resumes.
	second := newRecorder()
	consume(t, s, storage.KindKV, "q", "", "durable", second.handle)
	checkFor(t, "k2 and k3", func() bool { return second.count() >= 2 })
	if got, want := summary(second.events()), "put k2=k2; put k3=k3; "; got != want {
		t.Errorf("after resuming: %s, want %s", got, want)
	}

	// Deleting the consumer starts over: the next consumer of that name
	// sees only new changes.
	if err := s.DeleteConsumer(ctx, storage.KindKV, "q", "durable"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConsumer(ctx, storage.KindKV, "q", "durable"); err != nil {
		t.Errorf("DeleteConsumer(again) = %v, want nil", err)
	}
	if err := s.DeleteConsumer(ctx, storage.KindKV, "nobucket", "durable"); err != nil {
		t.Errorf("DeleteConsumer(no bucket) = %v, want nil", err)
	}
}

// TestConsumeCoalesces: a consumer that was away gets, of a key changed
// several times, the revisions the bucket still keeps (with history 1,
// the latest), in order.
func TestConsumeCoalesces(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustCreate(t, s, storage.KindKV, "h1", storage.BucketOptions{})
	if err := s.CreateConsumer(ctx, storage.KindKV, "h1", "", "late"); err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"k", "1"}, {"j", "1"}, {"k", "2"}} {
		if _, err := s.KVPut(ctx, "h1", kv[0], []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.KVDelete(ctx, "h1", "j", 0); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	consume(t, s, storage.KindKV, "h1", "", "late", rec.handle)
	checkFor(t, "two events", func() bool { return rec.count() >= 2 })
	if got, want := summary(rec.events()), "put k=2; delete j; "; got != want {
		t.Errorf("events = %s, want %s", got, want)
	}
}

// TestConsumeRedelivers: a failing handler gets the event again, and
// later events wait for it.
func TestConsumeRedelivers(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustCreate(t, s, storage.KindKV, "r", storage.BucketOptions{})
	rec := newRecorder()
	rec.fail = func(ev storage.Event, attempt int) error {
		if ev.Key == "flaky" && attempt < 3 {
			return errors.New("not yet")
		}
		return nil
	}
	consume(t, s, storage.KindKV, "r", "", "retry", rec.handle)
	rev, err := s.KVPut(ctx, "r", "flaky", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.KVPut(ctx, "r", "next", []byte("y")); err != nil {
		t.Fatal(err)
	}
	checkFor(t, "both events", func() bool { return rec.count() >= 2 })
	if got, want := summary(rec.events()), "put flaky=x; put next=y; "; got != want {
		t.Errorf("events = %s, want %s", got, want)
	}
	rec.mu.Lock()
	tries := rec.tries[rev]
	rec.mu.Unlock()
	if tries != 3 {
		t.Errorf("the failing event was delivered %d times, want 3", tries)
	}
}

// TestConsumeStopsWhenBucketDeleted: Consume reports a deleted bucket.
func TestConsumeStopsWhenBucketDeleted(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustCreate(t, s, storage.KindKV, "doomed", storage.BucketOptions{})
	if err := s.CreateConsumer(ctx, storage.KindKV, "doomed", "", "d"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Consume(cctx, storage.KindKV, "doomed", "", "d", newRecorder().handle) }()
	if err := s.DeleteBucket(ctx, storage.KindKV, "doomed"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || cctx.Err() != nil {
			t.Errorf("Consume of a deleted bucket = %v (ctx %v), want an error", err, cctx.Err())
		}
	case <-cctx.Done():
		t.Fatal("Consume did not return after its bucket was deleted")
	}
}

func TestConsumeObjects(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustCreate(t, s, storage.KindObjects, "media", storage.BucketOptions{})
	all, img := newRecorder(), newRecorder()
	consume(t, s, storage.KindObjects, "media", "", "all", all.handle)
	consume(t, s, storage.KindObjects, "media", "img/", "img", img.handle)
	put := func(name, body string) storage.ObjectInfo {
		t.Helper()
		info, err := s.ObjectPut(ctx, "media", name, strings.NewReader(body), storage.PutObjectOptions{ContentType: "image/png"})
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	cat := put("img/cat.png", "meow")
	put("doc.txt", "text")
	// An object's metadata keeps its latest state only: let the put be
	// delivered before the delete replaces it.
	checkFor(t, "the first put", func() bool { return all.count() >= 1 && img.count() >= 1 })
	if err := s.ObjectDelete(ctx, "media", "img/cat.png"); err != nil {
		t.Fatal(err)
	}
	big := put("img/big.png", strings.Repeat("x", 300<<10))
	checkFor(t, "object events", func() bool { return all.count() >= 4 && img.count() >= 3 })
	if got, want := summary(all.events()), "put img/cat.png; put doc.txt; delete img/cat.png; put img/big.png; "; got != want {
		t.Errorf("events = %s, want %s", got, want)
	}
	if got, want := summary(img.events()), "put img/cat.png; delete img/cat.png; put img/big.png; "; got != want {
		t.Errorf("events under img/ = %s, want %s", got, want)
	}
	evs := all.events()
	if e := evs[0]; e.Kind != storage.KindObjects || e.Bucket != "media" || e.Size != 4 || e.Digest != cat.Digest || e.ContentType != "image/png" || e.Revision == 0 {
		t.Errorf("put event = %+v", e)
	}
	if e := evs[2]; e.Op != storage.OpDelete || e.Size != 0 || e.Digest != "" {
		t.Errorf("delete event = %+v", e)
	}
	if e := evs[3]; e.Size != big.Size || e.Digest != big.Digest {
		t.Errorf("large object's event = %+v, want size %d digest %s", e, big.Size, big.Digest)
	}
}

func TestS3Event(t *testing.T) {
	when := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	put := storage.Event{Kind: storage.KindObjects, Bucket: "media", Key: "img/a b+c.png", Op: storage.OpPut, Revision: 42,
		Time: when, Size: 1234, Digest: "ab12", ContentType: "image/png"}
	b, err := storage.S3Event(put, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.S3Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("events.S3Event does not decode %s: %v", b, err)
	}
	if len(ev.Records) != 1 {
		t.Fatalf("records = %d, want 1", len(ev.Records))
	}
	r := ev.Records[0]
	checks := []struct{ what, got, want string }{
		{"eventVersion", r.EventVersion, "2.1"},
		{"eventSource", r.EventSource, "aws:s3"},
		{"awsRegion", r.AWSRegion, "eu-west-1"},
		{"eventName", r.EventName, "ObjectCreated:Put"},
		{"eventTime", r.EventTime.Format(time.RFC3339Nano), "2026-03-04T05:06:07.89Z"},
		{"bucket", r.S3.Bucket.Name, "media"},
		{"arn", r.S3.Bucket.Arn, "arn:aws:s3:::media"},
		{"key", r.S3.Object.Key, "img/a+b%2Bc.png"},
		{"urlDecodedKey", r.S3.Object.URLDecodedKey, "img/a b+c.png"},
		{"size", fmt.Sprint(r.S3.Object.Size), "1234"},
		{"eTag", r.S3.Object.ETag, "ab12"},
		{"sequencer", r.S3.Object.Sequencer, "000000000000002A"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}

	del := put
	del.Op, del.Size, del.Digest, del.Revision = storage.OpDelete, 0, "", 43
	b, err = storage.S3Event(del, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	ev = events.S3Event{}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if r := ev.Records[0]; r.EventName != "ObjectRemoved:Delete" || r.S3.Object.Size != 0 || r.S3.Object.Sequencer <= "000000000000002A" {
		t.Errorf("delete record = %+v", r)
	}
	if _, err := storage.S3Event(storage.Event{Kind: storage.KindKV}, "us-east-1"); err == nil {
		t.Error("S3Event of a kv change succeeded")
	}
}

func TestKVEvent(t *testing.T) {
	when := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	big := bytes.Repeat([]byte("v"), api.MaxKVEventValue+1)
	cases := []struct {
		name string
		in   storage.Event
		want api.KVEvent
	}{
		{"put", storage.Event{Kind: storage.KindKV, Bucket: "b", Key: "k", Op: storage.OpPut, Revision: 7, Time: when, Size: 5, Value: []byte("hello")},
			api.KVEvent{Source: "gust:kv", Bucket: "b", Key: "k", Op: "put", Revision: 7, Time: when, Size: 5, Value: []byte("hello")}},
		{"large put", storage.Event{Kind: storage.KindKV, Bucket: "b", Key: "k", Op: storage.OpPut, Revision: 8, Time: when, Size: int64(len(big)), Value: big},
			api.KVEvent{Source: "gust:kv", Bucket: "b", Key: "k", Op: "put", Revision: 8, Time: when, Size: int64(len(big))}},
		{"delete", storage.Event{Kind: storage.KindKV, Bucket: "b", Key: "k", Op: storage.OpDelete, Revision: 9, Time: when},
			api.KVEvent{Source: "gust:kv", Bucket: "b", Key: "k", Op: "delete", Revision: 9, Time: when}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := storage.KVEvent(c.in)
			if err != nil {
				t.Fatal(err)
			}
			var got api.KVEvent
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.Source != c.want.Source || got.Bucket != c.want.Bucket || got.Key != c.want.Key || got.Op != c.want.Op ||
				got.Revision != c.want.Revision || !got.Time.Equal(c.want.Time) || got.Size != c.want.Size || !bytes.Equal(got.Value, c.want.Value) {
				t.Errorf("KVEvent = %s, want %+v", b, c.want)
			}
		})
	}
	if b, _ := storage.KVEvent(cases[0].in); !strings.Contains(string(b), `"value":"aGVsbG8="`) {
		t.Errorf("KVEvent = %s, want the value in base64", b)
	}
	if _, err := storage.KVEvent(storage.Event{Kind: storage.KindObjects}); err == nil {
		t.Error("KVEvent of an object change succeeded")
	}
}
