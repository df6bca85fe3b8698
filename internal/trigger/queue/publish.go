package queue

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
)

// Bounds of what Publisher accepts.
const (
	// MaxHeaders bounds the headers of a published message.
	MaxHeaders = 64
	// MaxHeaderNameLen and MaxHeaderValueLen bound one header.
	MaxHeaderNameLen  = 256
	MaxHeaderValueLen = 4096
	// MaxStreamNameLen bounds a queue stream's name.
	MaxStreamNameLen = 64
	// MaxStreamSubjects bounds a queue stream's subjects.
	MaxStreamSubjects = 64
	// MinStreamMaxAge and MaxStreamMaxAge bound how long a queue stream
	// keeps messages.
	MinStreamMaxAge = time.Minute
	MaxStreamMaxAge = 365 * 24 * time.Hour
)

// publishTimeout bounds one publish (its stream's ack) or stream call.
const publishTimeout = 10 * time.Second

// metaKind marks the streams Publisher made: the metadata key and value.
const (
	metaKind      = "gust-kind"
	metaKindQueue = "queue-stream"
)

var (
	// ErrStreamNotFound: no queue stream of that name.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrNotQueueStream: the stream exists but is not a queue stream
	// (it is Gust's own), so it cannot be changed or deleted here.
	ErrNotQueueStream = errors.New("not a queue stream")
	// ErrSubjectsOverlap: another stream stores some of the subjects.
	ErrSubjectsOverlap = errors.New("subjects overlap another stream")
)

var streamNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Publisher publishes messages on the node's NATS and manages its queue
// streams. It is safe for concurrent use.
type Publisher struct {
	js jetstream.JetStream
	nc *nats.Conn
}

// NewPublisher returns a Publisher on the node's JetStream.
func NewPublisher(js jetstream.JetStream) *Publisher {
	return &Publisher{js: js, nc: js.Conn()}
}

// Publish publishes data on subject with headers. When a stream stores
// the subject, it publishes through JetStream and waits for the stream's
// ack; otherwise it publishes on core NATS and waits until the server
// has it. Bad subjects and headers, and subjects of Gust's own state,
// are refused with a *ValidationError naming the problem.
func (p *Publisher) Publish(ctx context.Context, subject string, data []byte, headers map[string][]string) (api.PublishResult, error) {
	res := api.PublishResult{Subject: subject}
	if err := ValidateSubject(subject); err != nil {
		return res, &ValidationError{Field: "subject", Message: err.Error()}
	}
	if err := systemSubject(subject); err != nil {
		return res, &ValidationError{Field: "subject", Message: err.Error()}
	}
	if err := gustSubject(subject, true); err != nil {
		return res, &ValidationError{Field: "subject", Message: err.Error()}
	}
	if len(data) > api.MaxPublishBytes {
		return res, invalid("data", "the message is %d bytes: at most %d", len(data), api.MaxPublishBytes)
	}
	if err := ValidateHeaders(headers); err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	msg := &nats.Msg{Subject: subject, Data: data}
	if len(headers) > 0 {
		msg.Header = nats.Header{}
		for k, vs := range headers {
			msg.Header[k] = append([]string(nil), vs...)
		}
	}
	stream, err := p.js.StreamNameBySubject(ctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if err := p.nc.PublishMsg(msg); err != nil {
			return res, fmt.Errorf("publish on %s: %w", subject, err)
		}
		if err := p.nc.FlushWithContext(ctx); err != nil {
			return res, fmt.Errorf("publish on %s: %w", subject, err)
		}
		return res, nil
	case err != nil:
		return res, fmt.Errorf("find the stream of %s: %w", subject, err)
	}
	if !publishable(stream) {
		return res, invalid("subject", "subject %q is stored by Gust's own stream %s: it cannot be published to", subject, stream)
	}
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		return res, fmt.Errorf("publish on %s to stream %s: %w", subject, stream, err)
	}
	res.Stream, res.Sequence, res.Duplicate = ack.Stream, ack.Sequence, ack.Duplicate
	return res, nil
}

// publishable reports whether messages may be published into a stream:
// not into Gust's own, but into its queues and streams made elsewhere.
func publishable(stream string) bool { return readableStream(stream) == nil }

// ValidateHeaders checks the headers of a message to publish: at most
// MaxHeaders, names of printable ASCII without ':' or spaces, values
// without line breaks. Its errors are *ValidationError.
func ValidateHeaders(h map[string][]string) error {
	if len(h) > MaxHeaders {
		return invalid("headers", "the message has %d headers: at most %d", len(h), MaxHeaders)
	}
	for k, vs := range h {
		switch {
		case k == "":
			return invalid("headers", "a header has an empty name")
		case len(k) > MaxHeaderNameLen:
			return invalid("headers", "header name %.40q... is %d bytes long: at most %d", k, len(k), MaxHeaderNameLen)
		}
		for _, r := range k {
			if r <= ' ' || r >= 0x7f || r == ':' {
				return invalid("headers", "header name %q has %q: names are printable ASCII without ':' or spaces", k, r)
			}
		}
		for _, v := range vs {
			if len(v) > MaxHeaderValueLen {
				return invalid("headers", "the value of header %s is %d bytes long: at most %d", k, len(v), MaxHeaderValueLen)
			}
			if strings.ContainsAny(v, "\r\n") {
				return invalid("headers", "the value of header %s has a line break", k)
			}
		}
	}
	return nil
}

// ValidateStreamName checks the name of a queue stream to create: 1 to
// 64 letters, digits, '-' and '_', not one of Gust's own (GUST_*, KV_*,
// OBJ_*). Its errors are *ValidationError.
func ValidateStreamName(name string) error {
	switch {
	case name == "":
		return invalid("name", "the stream name is empty")
	case len(name) > MaxStreamNameLen:
		return invalid("name", "stream name %.40q... is %d characters long: at most %d", name, len(name), MaxStreamNameLen)
	case !streamNameRE.MatchString(name):
		return invalid("name", "stream name %q may hold only letters, digits, '-' and '_'", name)
	}
	u := strings.ToUpper(name)
	for _, prefix := range []string{gustStreamPrefix, kvStreamPrefix, objectsStreamPrfx} {
		if strings.HasPrefix(u, prefix) {
			return invalid("name", "stream names starting with %s are Gust's own: choose another name", prefix)
		}
	}
	return nil
}

// validateStreamRequest checks a create or update.
func validateStreamRequest(in api.PutStreamRequest) error {
	if len(in.Subjects) == 0 {
		return invalid("subjects", "a stream needs at least one subject to store (\"orders.>\")")
	}
	if len(in.Subjects) > MaxStreamSubjects {
		return invalid("subjects", "the stream has %d subjects: at most %d", len(in.Subjects), MaxStreamSubjects)
	}
	for i, s := range in.Subjects {
		if err := ValidatePattern(s); err != nil {
			return invalid("subjects", "subject %d: %v", i+1, err)
		}
		if err := systemSubject(s); err != nil {
			return invalid("subjects", "%v", err)
		}
		if first, _, _ := strings.Cut(s, "."); first == "*" || first == ">" {
			return invalid("subjects", "subject %q would also store Gust's own messages: start it with a literal token", s)
		}
		if err := gustSubject(s, false); err != nil {
			return invalid("subjects", "%v", err)
		}
		for _, t := range in.Subjects[:i] {
			if overlap(s, t) {
				return invalid("subjects", "subjects %q and %q overlap: name each subject once", t, s)
			}
		}
	}
	age := time.Duration(in.MaxAgeSeconds) * time.Second
	if in.MaxAgeSeconds != 0 && (in.MaxAgeSeconds < 0 || age < MinStreamMaxAge || age > MaxStreamMaxAge) {
		return invalid("maxAgeSeconds", "max age %ds is out of range: %d to %d seconds (0 for the default, 7 days)",
			in.MaxAgeSeconds, int64(MinStreamMaxAge/time.Second), int64(MaxStreamMaxAge/time.Second))
	}
	return nil
}

// PutStream creates the queue stream name, or updates its subjects and
// max age: a file-backed stream with limits retention. A stream of that
// name that is not a queue stream is ErrNotQueueStream; subjects another
// stream stores are ErrSubjectsOverlap, with the stream named.
func (p *Publisher) PutStream(ctx context.Context, name string, in api.PutStreamRequest) (api.Stream, error) {
	if err := ValidateStreamName(name); err != nil {
		return api.Stream{}, err
	}
	if err := validateStreamRequest(in); err != nil {
		return api.Stream{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if st, err := p.js.Stream(ctx, name); err == nil {
		if !isQueueStream(st.CachedInfo()) {
			return api.Stream{}, fmt.Errorf("stream %s: %w: it is Gust's own or was made outside Gust", name, ErrNotQueueStream)
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return api.Stream{}, fmt.Errorf("stream %s: %w", name, err)
	}
	if err := p.checkOverlap(ctx, name, in.Subjects); err != nil {
		return api.Stream{}, err
	}
	age := time.Duration(in.MaxAgeSeconds) * time.Second
	if age == 0 {
		age = api.DefaultStreamMaxAge
	}
	st, err := p.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "Gust queue stream",
		Subjects:    slices.Clone(in.Subjects),
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      age,
		Metadata:    map[string]string{metaKind: metaKindQueue},
	})
	if err != nil {
		return api.Stream{}, fmt.Errorf("put stream %s: %w", name, err)
	}
	return streamOf(st.CachedInfo()), nil
}

// checkOverlap names the stream that already stores one of subjects.
func (p *Publisher) checkOverlap(ctx context.Context, name string, subjects []string) error {
	infos := p.js.ListStreams(ctx)
	for info := range infos.Info() {
		if info.Config.Name == name {
			continue
		}
		for _, s := range subjects {
			for _, t := range info.Config.Subjects {
				if overlap(s, t) {
					return fmt.Errorf("%w: subject %q overlaps %q of stream %s", ErrSubjectsOverlap, s, t, info.Config.Name)
				}
			}
		}
	}
	if err := infos.Err(); err != nil {
		return fmt.Errorf("list streams: %w", err)
	}
	return nil
}

// Stream returns a queue stream.
func (p *Publisher) Stream(ctx context.Context, name string) (api.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	st, err := p.queueStream(ctx, name)
	if err != nil {
		return api.Stream{}, err
	}
	return streamOf(st.CachedInfo()), nil
}

// Streams returns every queue stream, sorted by name.
func (p *Publisher) Streams(ctx context.Context) ([]api.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	out := []api.Stream{}
	infos := p.js.ListStreams(ctx)
	for info := range infos.Info() {
		if isQueueStream(info) {
			out = append(out, streamOf(info))
		}
	}
	if err := infos.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	slices.SortFunc(out, func(a, b api.Stream) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteStream deletes a queue stream and its messages (the triggers
// reading it fail until it is made again).
func (p *Publisher) DeleteStream(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if _, err := p.queueStream(ctx, name); err != nil {
		return err
	}
	if err := p.js.DeleteStream(ctx, name); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s: %w", name, ErrStreamNotFound)
		}
		return fmt.Errorf("delete stream %s: %w", name, err)
	}
	return nil
}

// queueStream looks up a queue stream.
func (p *Publisher) queueStream(ctx context.Context, name string) (jetstream.Stream, error) {
	if name == "" {
		return nil, invalid("name", "the stream name is empty")
	}
	if !streamNameRE.MatchString(name) || len(name) > MaxNameLen {
		// No such name can exist; say so without asking the server.
		return nil, fmt.Errorf("stream %q: %w", name, ErrStreamNotFound)
	}
	st, err := p.js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("stream %s: %w", name, ErrStreamNotFound)
	case err != nil:
		return nil, fmt.Errorf("stream %s: %w", name, err)
	case !isQueueStream(st.CachedInfo()):
		return nil, fmt.Errorf("stream %s: %w: it is Gust's own or was made outside Gust", name, ErrNotQueueStream)
	}
	return st, nil
}

func isQueueStream(info *jetstream.StreamInfo) bool {
	return info != nil && info.Config.Metadata[metaKind] == metaKindQueue
}

func streamOf(info *jetstream.StreamInfo) api.Stream {
	return api.Stream{
		Name:          info.Config.Name,
		Subjects:      slices.Clone(info.Config.Subjects),
		MaxAgeSeconds: int64(info.Config.MaxAge / time.Second),
		Messages:      info.State.Msgs,
		Bytes:         info.State.Bytes,
		FirstSequence: info.State.FirstSeq,
		LastSequence:  info.State.LastSeq,
		Consumers:     info.State.Consumers,
		Created:       info.Created.UTC(),
	}
}
