package queue_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/trigger/queue"
)

func TestPublishToStream(t *testing.T) {
	sub := openSubstrate(t)
	js := sub.JetStream()
	p := queue.NewPublisher(js)
	ctx := context.Background()
	if _, err := p.PutStream(ctx, "orders", api.PutStreamRequest{Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	res, err := p.Publish(ctx, "orders.new", []byte("hello"), map[string][]string{"Trace-Id": {"abc"}, "lower-case": {"1", "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(api.PublishResult{Subject: "orders.new", Stream: "orders", Sequence: 1}, res); diff != "" {
		t.Errorf("Publish (-want +got):\n%s", diff)
	}
	st, err := js.Stream(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "hello" || m.Header.Get("Trace-Id") != "abc" || len(m.Header["lower-case"]) != 2 {
		t.Errorf("stored message = %q %v, want the data and the headers, names as given", m.Data, m.Header)
	}

	// Nats-Msg-Id makes a repeat a duplicate.
	for i, wantDup := range []bool{false, true} {
		res, err := p.Publish(ctx, "orders.new", []byte("once"), map[string][]string{"Nats-Msg-Id": {"order-42"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Duplicate != wantDup || res.Sequence != 2 {
			t.Errorf("publish %d with Nats-Msg-Id = %+v, want sequence 2, duplicate %v", i+1, res, wantDup)
		}
	}
}

func TestPublishCore(t *testing.T) {
	sub := openSubstrate(t)
	p := queue.NewPublisher(sub.JetStream())
	s, err := sub.Conn().SubscribeSync("plain.>")
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Publish(context.Background(), "plain.subject", []byte("hi"), map[string][]string{"K": {"v"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(api.PublishResult{Subject: "plain.subject"}, res); diff != "" {
		t.Errorf("Publish (-want +got):\n%s", diff)
	}
	m, err := s.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("the subscriber got nothing: %v", err)
	}
	if string(m.Data) != "hi" || m.Header.Get("K") != "v" {
		t.Errorf("received %q %v", m.Data, m.Header)
	}
}

// TestPublishGustQueue: a Gust queue's stream (GUST_QUEUE_*) takes
// publishes; Gust's other streams do not.
func TestPublishGustQueue(t *testing.T) {
	sub := openSubstrate(t)
	js := sub.JetStream()
	ctx := context.Background()
	makeStream(t, js, "GUST_QUEUE_jobs", "gust.queue.jobs")
	makeStream(t, js, "GUST_LOGS", "gust.logs.>")
	makeStream(t, js, "GUST_SECRET", "secret.>")
	p := queue.NewPublisher(js)
	res, err := p.Publish(ctx, "gust.queue.jobs", []byte("job"), nil)
	if err != nil || res.Stream != "GUST_QUEUE_jobs" {
		t.Errorf("Publish to a Gust queue = %+v, %v", res, err)
	}
	var ve *queue.ValidationError
	if _, err := p.Publish(ctx, "secret.x", nil, nil); !errors.As(err, &ve) || !strings.Contains(ve.Message, "Gust's own stream GUST_SECRET") {
		t.Errorf("Publish into a Gust stream = %v, want it refused and named", err)
	}
}

func TestPublishRefused(t *testing.T) {
	sub := openSubstrate(t)
	p := queue.NewPublisher(sub.JetStream())
	ctx := context.Background()
	tests := []struct {
		name    string
		subject string
		data    []byte
		headers map[string][]string
		want    string
	}{
		{"empty", "", nil, nil, "the subject is empty"},
		{"star", "orders.*", nil, nil, "has a wildcard"},
		{"gt", "orders.>", nil, nil, "has a wildcard"},
		{"empty token", "orders..new", nil, nil, "empty token"},
		{"leading dot", ".orders", nil, nil, "empty token"},
		{"trailing dot", "orders.", nil, nil, "empty token"},
		{"space", "orders new", nil, nil, "white space"},
		{"tab", "orders\tnew", nil, nil, "white space"},
		{"control", "orders\x01", nil, nil, "control character"},
		{"long", strings.Repeat("a", 600), nil, nil, "at most 512"},
		{"kv", "$KV.gust_keys.admin", nil, nil, "NATS's own"},
		{"js api", "$JS.API.STREAM.DELETE.X", nil, nil, "NATS's own"},
		{"inbox", "_INBOX.abc", nil, nil, "replies"},
		{"gust async", "gust.async.0.fn", nil, nil, "Gust keeps its own state"},
		{"gust queue root", "gust.queue", nil, nil, "only a Gust queue's gust.queue.NAME is open"},
		{"too big", "big", make([]byte, api.MaxPublishBytes+1), nil, "at most 1048576"},
		{"header colon", "ok", nil, map[string][]string{"a:b": {"1"}}, "without ':' or spaces"},
		{"header space", "ok", nil, map[string][]string{"a b": {"1"}}, "without ':' or spaces"},
		{"header empty", "ok", nil, map[string][]string{"": {"1"}}, "empty name"},
		{"header newline", "ok", nil, map[string][]string{"a": {"x\r\ny"}}, "line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Publish(ctx, tt.subject, tt.data, tt.headers)
			var ve *queue.ValidationError
			if !errors.As(err, &ve) || !strings.Contains(ve.Message, tt.want) {
				t.Errorf("Publish(%q) = %v, want a *ValidationError with %q", tt.subject, err, tt.want)
			}
		})
	}
}

func TestStreams(t *testing.T) {
	sub := openSubstrate(t)
	js := sub.JetStream()
	p := queue.NewPublisher(js)
	ctx := context.Background()
	makeStream(t, js, "other", "other.>")

	s, err := p.PutStream(ctx, "orders", api.PutStreamRequest{Subjects: []string{"orders.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "orders" || s.MaxAgeSeconds != int64(api.DefaultStreamMaxAge/time.Second) || s.Created.IsZero() {
		t.Errorf("PutStream = %+v, want the default max age of 7 days", s)
	}
	info, err := js.Stream(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if c := info.CachedInfo().Config; c.Storage != jetstream.FileStorage || c.Retention != jetstream.LimitsPolicy {
		t.Errorf("stream config = %v storage, %v retention; want file and limits", c.Storage, c.Retention)
	}
	// Updating changes the subjects and the age.
	s, err = p.PutStream(ctx, "orders", api.PutStreamRequest{Subjects: []string{"orders.>", "refunds.*"}, MaxAgeSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(s.Subjects, []string{"orders.>", "refunds.*"}) || s.MaxAgeSeconds != 3600 {
		t.Errorf("updated stream = %+v", s)
	}
	if _, err := p.Publish(ctx, "refunds.r1", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if s, err = p.Stream(ctx, "orders"); err != nil || s.Messages != 1 || s.LastSequence != 1 {
		t.Errorf("Stream = %+v, %v; want 1 message", s, err)
	}

	list, err := p.Streams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "orders" {
		t.Errorf("Streams = %+v, want only the queue stream (not other)", list)
	}

	var ve *queue.ValidationError
	refused := []struct {
		name string
		in   api.PutStreamRequest
		want string
	}{
		{"", api.PutStreamRequest{Subjects: []string{"a"}}, "the stream name is empty"},
		{"GUST_MINE", api.PutStreamRequest{Subjects: []string{"a"}}, "starting with GUST_ are Gust's own"},
		{"kv_x", api.PutStreamRequest{Subjects: []string{"a"}}, "starting with KV_ are Gust's own"},
		{"a.b", api.PutStreamRequest{Subjects: []string{"a"}}, "only letters, digits"},
		{strings.Repeat("n", 65), api.PutStreamRequest{Subjects: []string{"a"}}, "at most 64"},
		{"s", api.PutStreamRequest{}, "at least one subject"},
		{"s", api.PutStreamRequest{Subjects: []string{"a..b"}}, "empty token"},
		{"s", api.PutStreamRequest{Subjects: []string{"$JS.>"}}, "NATS's own"},
		{"s", api.PutStreamRequest{Subjects: []string{">"}}, "start it with a literal token"},
		{"s", api.PutStreamRequest{Subjects: []string{"*.x"}}, "start it with a literal token"},
		{"s", api.PutStreamRequest{Subjects: []string{"gust.queue.x"}}, "Gust keeps its own state"},
		{"s", api.PutStreamRequest{Subjects: []string{"a.>", "a.b"}}, `"a.>" and "a.b" overlap`},
		{"s", api.PutStreamRequest{Subjects: []string{"a"}, MaxAgeSeconds: 10}, "out of range"},
	}
	for _, tt := range refused {
		if _, err := p.PutStream(ctx, tt.name, tt.in); !errors.As(err, &ve) || !strings.Contains(ve.Message, tt.want) {
			t.Errorf("PutStream(%q, %+v) = %v, want a *ValidationError with %q", tt.name, tt.in, err, tt.want)
		}
	}
	if _, err := p.PutStream(ctx, "more", api.PutStreamRequest{Subjects: []string{"orders.new"}}); !errors.Is(err, queue.ErrSubjectsOverlap) ||
		!strings.Contains(err.Error(), `"orders.new" overlaps "orders.>" of stream orders`) {
		t.Errorf("PutStream overlapping = %v, want ErrSubjectsOverlap naming the stream", err)
	}
	if _, err := p.PutStream(ctx, "other", api.PutStreamRequest{Subjects: []string{"other.>"}}); !errors.Is(err, queue.ErrNotQueueStream) {
		t.Errorf("PutStream of a stream made elsewhere = %v, want ErrNotQueueStream", err)
	}
	if err := p.DeleteStream(ctx, "other"); !errors.Is(err, queue.ErrNotQueueStream) {
		t.Errorf("DeleteStream of a stream made elsewhere = %v, want ErrNotQueueStream", err)
	}
	if _, err := p.Stream(ctx, "missing"); !errors.Is(err, queue.ErrStreamNotFound) {
		t.Errorf("Stream(missing) = %v, want ErrStreamNotFound", err)
	}
	if err := p.DeleteStream(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteStream(ctx, "orders"); !errors.Is(err, queue.ErrStreamNotFound) {
		t.Errorf("DeleteStream twice = %v, want ErrStreamNotFound", err)
	}
	// Without its stream the subject is a core subject again.
	if res, err := p.Publish(ctx, "orders.new", nil, nil); err != nil || res.Stream != "" {
		t.Errorf("Publish after the delete = %+v, %v; want a core publish", res, err)
	}
}

// TestPublishThenConsume feeds a trigger through the publisher.
func TestPublishThenConsume(t *testing.T) {
	sub := openSubstrate(t)
	p := queue.NewPublisher(sub.JetStream())
	ctx := context.Background()
	if _, err := p.PutStream(ctx, "jobs", api.PutStreamRequest{Subjects: []string{"jobs.*"}}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	start(t, sub.Conn(), queue.Config{Stream: "jobs", FilterSubject: "jobs.email", Durable: "mailer"}, rec.deliver, nil)
	for _, s := range []string{"jobs.email", "jobs.sms", "jobs.email"} {
		if _, err := p.Publish(ctx, s, []byte(s), map[string][]string{"Kind": {s}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "2 email jobs", func() bool { return rec.count("jobs.email") == 2 })
	for _, m := range rec.messages() {
		if m.Subject != "jobs.email" || m.Headers["Kind"][0] != "jobs.email" {
			t.Errorf("delivered %+v, want only jobs.email with its header", m)
		}
	}
}

func FuzzSubjects(f *testing.F) {
	for _, s := range []string{"a", "a.b", "a.*", "a.>", "a..b", ".a", "a b", "$KV.x", "*.>", "a.*.c", "a.b*", ">.a", "é.ü", "\x00"} {
		f.Add(s, "a.>")
	}
	f.Fuzz(func(t *testing.T, s, other string) {
		subjectErr, patternErr := queue.ValidateSubject(s), queue.ValidatePattern(s)
		if subjectErr == nil && patternErr != nil {
			t.Errorf("ValidateSubject(%q) accepts what ValidatePattern refuses: %v", s, patternErr)
		}
		if patternErr != nil {
			return
		}
		for tok := range strings.SplitSeq(s, ".") {
			if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
				t.Fatalf("ValidatePattern(%q) accepted an empty or spaced token", s)
			}
		}
		if subjectErr == nil && strings.ContainsAny(s, "*>") {
			t.Fatalf("ValidateSubject(%q) accepted a wildcard", s)
		}
		if queue.ValidatePattern(other) == nil && queue.Overlap(s, other) != queue.Overlap(other, s) {
			t.Errorf("Overlap(%q, %q) is not symmetric", s, other)
		}
		if !queue.Overlap(s, s) {
			t.Errorf("Overlap(%q, %q) = false", s, s)
		}
	})
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a.b", "a", false},
		{"a.>", "a", false},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.*", "a.b", true},
		{"a.*", "a.b.c", false},
		{"*.b", "a.*", true},
		{"*.b", "a.c", false},
		{">", "x.y", true},
		{"a.*.c", "a.>", true},
		{"a.*.c", "a.b.d", false},
	}
	for _, tt := range tests {
		if got := queue.Overlap(tt.a, tt.b); got != tt.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
