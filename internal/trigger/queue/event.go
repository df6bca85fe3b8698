package queue

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// EventSource is the eventSource of every record of a queue event.
const EventSource = "gust:nats"

// Attributes Gust adds to a record's attributes.
const (
	// AttrBodyEncoding is "base64" when the message's data is not valid
	// UTF-8 and the body holds it in base64.
	AttrBodyEncoding = "GustBodyEncoding"
	// AttrSubject is the subject the message was published on.
	AttrSubject = "GustSubject"
)

// record is one message of an event, in the shape of an SQS record
// (events.SQSMessage) with Gust's own fields added.
type record struct {
	MessageID         string               `json:"messageId"`
	ReceiptHandle     string               `json:"receiptHandle"`
	Body              string               `json:"body"`
	MD5OfBody         string               `json:"md5OfBody"`
	Attributes        map[string]string    `json:"attributes"`
	MessageAttributes map[string]attribute `json:"messageAttributes"`
	EventSource       string               `json:"eventSource"`
	EventSourceARN    string               `json:"eventSourceARN"`
	AWSRegion         string               `json:"awsRegion,omitempty"`
	// Gust's fields.
	Subject  string `json:"subject"`
	Stream   string `json:"stream,omitempty"`
	Sequence uint64 `json:"sequence,omitempty"`
}

// attribute is an SQS message attribute (events.SQSMessageAttribute).
type attribute struct {
	StringValue      *string  `json:"stringValue,omitempty"`
	StringListValues []string `json:"stringListValues"`
	BinaryListValues [][]byte `json:"binaryListValues"`
	DataType         string   `json:"dataType"`
}

// Event builds the function's event for a batch, in the shape of an SQS
// event ({"Records":[...]}, which aws-lambda-go's events.SQSEvent
// decodes): per message its id (messageId, also the receiptHandle),
// body (the data as a string; base64 when it is not valid UTF-8, and
// then the attribute GustBodyEncoding is "base64"), md5OfBody,
// attributes (ApproximateReceiveCount, SentTimestamp in Unix ms,
// GustSubject, and for a stream message SequenceNumber), its headers as
// String message attributes (the first value in stringValue, all of
// them in stringListValues), eventSource "gust:nats" and eventSourceARN
// source (see Config.ARN). Each record also carries Gust's "subject",
// "stream" and "sequence".
func Event(batch []Message, source string) ([]byte, error) {
	if len(batch) == 0 {
		return nil, errors.New("queue: an event needs at least one message")
	}
	ev := struct {
		Records []record `json:"Records"`
	}{Records: make([]record, 0, len(batch))}
	for _, m := range batch {
		body, attrs := m.body()
		sum := md5.Sum([]byte(body))
		rec := record{
			MessageID:     m.ID,
			ReceiptHandle: m.ID,
			Body:          body,
			MD5OfBody:     hex.EncodeToString(sum[:]),
			Attributes:    attrs,
			EventSource:   EventSource,
			// SQS always sends the map, even empty.
			MessageAttributes: map[string]attribute{},
			EventSourceARN:    source,
			AWSRegion:         regionOf(source),
			Subject:           m.Subject,
			Stream:            m.Stream,
			Sequence:          m.Sequence,
		}
		for k, vs := range m.Headers {
			if len(vs) == 0 {
				continue
			}
			v := vs[0]
			rec.MessageAttributes[k] = attribute{StringValue: &v, StringListValues: append([]string(nil), vs...),
				BinaryListValues: [][]byte{}, DataType: "String"}
		}
		ev.Records = append(ev.Records, rec)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("queue: encode event: %w", err)
	}
	return b, nil
}

// body returns the record's body and attributes.
func (m Message) body() (string, map[string]string) {
	attrs := map[string]string{
		"ApproximateReceiveCount": strconv.Itoa(max(m.Delivered, 1)),
		"SentTimestamp":           strconv.FormatInt(m.Time.UnixMilli(), 10),
		AttrSubject:               m.Subject,
	}
	if m.Stream != "" {
		attrs["SequenceNumber"] = strconv.FormatUint(m.Sequence, 10)
	}
	if utf8.Valid(m.Data) {
		return string(m.Data), attrs
	}
	attrs[AttrBodyEncoding] = "base64"
	return base64.StdEncoding.EncodeToString(m.Data), attrs
}

// regionOf reads the region of arn:gust:nats:REGION:...
func regionOf(arn string) string {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

// PartialError is a batch of which only some messages failed: deliver
// returns it so that the others are acked. It is what an SQS
// partial-batch response says (see BatchItemFailures).
type PartialError struct {
	// IDs are the Message.ID of the failed messages.
	IDs []string
	// Err says why they failed.
	Err error
}

func (e *PartialError) Error() string {
	ids := slices.Sorted(slices.Values(e.IDs))
	msg := fmt.Sprintf("%d message(s) of the batch failed: %s", len(ids), strings.Join(ids, ", "))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns why the messages failed.
func (e *PartialError) Unwrap() error { return e.Err }

func (e *PartialError) failed(id string) bool { return slices.Contains(e.IDs, id) }

// BatchItemFailures reads a function's response to a batch as an SQS
// partial-batch response ({"batchItemFailures":[{"itemIdentifier":ID}]},
// events.SQSEventResponse). It returns nil when the response reports no
// failure (or is not such a response), and a *PartialError naming the
// failed messages otherwise. An identifier that names no message of the
// batch fails the whole batch, as Lambda does.
func BatchItemFailures(response []byte, batch []Message) error {
	var doc struct {
		BatchItemFailures []struct {
			ItemIdentifier *string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if json.Unmarshal(response, &doc) != nil || len(doc.BatchItemFailures) == 0 {
		return nil
	}
	known := make(map[string]bool, len(batch))
	for _, m := range batch {
		known[m.ID] = true
	}
	pe := &PartialError{Err: errors.New("the function reported them in batchItemFailures")}
	for _, f := range doc.BatchItemFailures {
		if f.ItemIdentifier == nil || !known[*f.ItemIdentifier] {
			id := "null"
			if f.ItemIdentifier != nil {
				id = strconv.Quote(*f.ItemIdentifier)
			}
			return fmt.Errorf("the function's batchItemFailures names %s, which is no message of the batch: the whole batch failed", id)
		}
		pe.IDs = append(pe.IDs, *f.ItemIdentifier)
	}
	return pe
}
