package storage

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gustfaas/gust/api"
)

// S3 event names.
const (
	s3Created = "ObjectCreated:Put"
	s3Removed = "ObjectRemoved:Delete"
)

// s3Record is one record of an S3 event notification, in the shape
// events.S3EventRecord of aws-lambda-go decodes.
type s3Record struct {
	EventVersion      string            `json:"eventVersion"`
	EventSource       string            `json:"eventSource"`
	AWSRegion         string            `json:"awsRegion"`
	EventTime         string            `json:"eventTime"`
	EventName         string            `json:"eventName"`
	UserIdentity      s3Principal       `json:"userIdentity"`
	RequestParameters map[string]string `json:"requestParameters"`
	ResponseElements  map[string]string `json:"responseElements"`
	S3                s3Entity          `json:"s3"`
}

type s3Principal struct {
	PrincipalID string `json:"principalId"`
}

type s3Entity struct {
	SchemaVersion   string   `json:"s3SchemaVersion"`
	ConfigurationID string   `json:"configurationId"`
	Bucket          s3Bucket `json:"bucket"`
	Object          s3Object `json:"object"`
}

type s3Bucket struct {
	Name          string      `json:"name"`
	OwnerIdentity s3Principal `json:"ownerIdentity"`
	Arn           string      `json:"arn"`
}

type s3Object struct {
	Key       string `json:"key"`
	Size      int64  `json:"size,omitempty"`
	ETag      string `json:"eTag,omitempty"`
	Sequencer string `json:"sequencer"`
}

// S3Event renders an object bucket's change as an S3 event notification
// with one record: ObjectCreated:Put or ObjectRemoved:Delete, the bucket
// (ARN arn:aws:s3:::NAME), the key URL-encoded as S3 encodes it (spaces
// as '+', '/' kept), the size and the ETag (the hex SHA-256, where S3
// gives an MD5) of a created object, and the sequencer (the change's
// revision in hex, growing with every change).
func S3Event(ev Event, region string) ([]byte, error) {
	if ev.Kind != KindObjects {
		return nil, fmt.Errorf("storage: an S3 event is of an object bucket's change, not of a %s change", ev.Kind)
	}
	name := s3Created
	if ev.Op == OpDelete {
		name = s3Removed
	}
	rec := s3Record{
		EventVersion: "2.1", EventSource: "aws:s3", AWSRegion: region,
		EventTime: ev.Time.UTC().Format("2006-01-02T15:04:05.000Z"), EventName: name,
		UserIdentity:      s3Principal{PrincipalID: "gust"},
		RequestParameters: map[string]string{"sourceIPAddress": "127.0.0.1"},
		ResponseElements:  map[string]string{"x-amz-request-id": fmt.Sprintf("%016X", ev.Revision)},
		S3: s3Entity{
			SchemaVersion: "1.0", ConfigurationID: "gust",
			Bucket: s3Bucket{Name: ev.Bucket, OwnerIdentity: s3Principal{PrincipalID: "gust"}, Arn: "arn:aws:s3:::" + ev.Bucket},
			Object: s3Object{Key: s3Key(ev.Key), Sequencer: fmt.Sprintf("%016X", ev.Revision)},
		},
	}
	if ev.Op != OpDelete {
		rec.S3.Object.Size, rec.S3.Object.ETag = ev.Size, ev.Digest
	}
	return json.Marshal(struct {
		Records []s3Record `json:"Records"`
	}{[]s3Record{rec}})
}

// s3Key URL-encodes an object key as S3 event notifications do.
func s3Key(k string) string {
	return strings.ReplaceAll(url.QueryEscape(k), "%2F", "/")
}

// KVEvent renders a KV bucket's change as the event of KV triggers
// (api.KVEvent): the value is included for puts of at most
// api.MaxKVEventValue bytes.
func KVEvent(ev Event) ([]byte, error) {
	if ev.Kind != KindKV {
		return nil, fmt.Errorf("storage: a kv event is of a kv bucket's change, not of a %s change", ev.Kind)
	}
	out := api.KVEvent{Source: "gust:kv", Bucket: ev.Bucket, Key: ev.Key, Op: ev.Op, Revision: ev.Revision,
		Time: ev.Time.UTC().Truncate(time.Millisecond)}
	if ev.Op == OpPut {
		out.Size = ev.Size
		if len(ev.Value) <= api.MaxKVEventValue {
			out.Value = ev.Value
		}
	}
	return json.Marshal(out)
}
