package queue_test

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/gustfaas/gust/internal/trigger/queue"
)

func TestEventDecodesAsSQSEvent(t *testing.T) {
	sent := time.Date(2026, 11, 27, 10, 30, 0, 123e6, time.UTC)
	batch := []queue.Message{
		{Subject: "orders.new", Data: []byte(`{"id":1}`), Stream: "ORDERS", Sequence: 7, Delivered: 2, Time: sent, ID: "ORDERS:7",
			Headers: map[string][]string{"Trace-Id": {"abc"}, "Tag": {"x", "y"}}},
		{Subject: "bin.data", Data: []byte{0xff, 0x00, 0xfe}, Delivered: 1, Time: sent, ID: "core-1"},
	}
	arn := queue.Config{Stream: "ORDERS"}.ARN("eu-west-1", "000000000000")
	if arn != "arn:gust:nats:eu-west-1:000000000000:ORDERS" {
		t.Errorf("ARN = %s", arn)
	}
	b, err := queue.Event(batch, arn)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("events.SQSEvent does not decode the event: %v\n%s", err, b)
	}
	if len(ev.Records) != 2 {
		t.Fatalf("%d records, want 2", len(ev.Records))
	}
	r := ev.Records[0]
	abc, x := "abc", "x"
	want := events.SQSMessage{
		MessageId: "ORDERS:7", ReceiptHandle: "ORDERS:7", Body: `{"id":1}`, Md5OfBody: md5Hex(`{"id":1}`),
		Attributes: map[string]string{"ApproximateReceiveCount": "2", "SentTimestamp": "1795775400123", "SequenceNumber": "7", "GustSubject": "orders.new"},
		MessageAttributes: map[string]events.SQSMessageAttribute{
			"Trace-Id": {StringValue: &abc, StringListValues: []string{"abc"}, BinaryListValues: [][]byte{}, DataType: "String"},
			"Tag":      {StringValue: &x, StringListValues: []string{"x", "y"}, BinaryListValues: [][]byte{}, DataType: "String"},
		},
		EventSource: "gust:nats", EventSourceARN: arn, AWSRegion: "eu-west-1",
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("record 0 (-want +got):\n%s", diff)
	}
	bin := ev.Records[1]
	if bin.Attributes[queue.AttrBodyEncoding] != "base64" {
		t.Errorf("binary body attributes = %v, want %s=base64", bin.Attributes, queue.AttrBodyEncoding)
	}
	if got, err := base64.StdEncoding.DecodeString(bin.Body); err != nil || string(got) != "\xff\x00\xfe" {
		t.Errorf("binary body = %q, want the data in base64", bin.Body)
	}
	if _, ok := bin.Attributes["SequenceNumber"]; ok || len(bin.MessageAttributes) != 0 {
		t.Errorf("core record = %+v, want no sequence and no message attributes", bin)
	}
	// Gust's own fields are there too.
	var raw struct {
		Records []struct {
			Subject  string `json:"subject"`
			Stream   string `json:"stream"`
			Sequence uint64 `json:"sequence"`
		}
	}
	if err := json.Unmarshal(b, &raw); err != nil || raw.Records[0].Subject != "orders.new" || raw.Records[0].Stream != "ORDERS" || raw.Records[0].Sequence != 7 {
		t.Errorf("Gust fields = %+v (%v)", raw.Records, err)
	}
	if _, err := queue.Event(nil, arn); err == nil {
		t.Error("Event(nil) = nil error, want one")
	}
}

func TestBatchItemFailures(t *testing.T) {
	batch := []queue.Message{{ID: "S:1"}, {ID: "S:2"}, {ID: "S:3"}}
	tests := []struct {
		name     string
		response string
		ids      []string // nil: no partial error
		whole    string   // the whole batch failed with this message
	}{
		{"none", `{"batchItemFailures":[]}`, nil, ""},
		{"not json", `hello`, nil, ""},
		{"other response", `{"statusCode":200}`, nil, ""},
		{"two", `{"batchItemFailures":[{"itemIdentifier":"S:1"},{"itemIdentifier":"S:3"}]}`, []string{"S:1", "S:3"}, ""},
		{"unknown", `{"batchItemFailures":[{"itemIdentifier":"S:9"}]}`, nil, `names "S:9", which is no message of the batch`},
		{"null", `{"batchItemFailures":[{"itemIdentifier":null}]}`, nil, "names null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := queue.BatchItemFailures([]byte(tt.response), batch)
			var pe *queue.PartialError
			switch {
			case tt.whole != "":
				if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), tt.whole) {
					t.Errorf("BatchItemFailures = %v, want a whole-batch error with %q", err, tt.whole)
				}
			case tt.ids == nil:
				if err != nil {
					t.Errorf("BatchItemFailures = %v, want nil", err)
				}
			default:
				if !errors.As(err, &pe) {
					t.Fatalf("BatchItemFailures = %v, want a *PartialError", err)
				}
				if diff := cmp.Diff(tt.ids, pe.IDs); diff != "" {
					t.Errorf("IDs (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
