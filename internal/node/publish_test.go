package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gustfaas/gust/api"
)

// TestPublish publishes through the CLI and the client, to a stream and
// to a plain subject, and has bad subjects refused.
func TestPublish(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	c := scheduleClient(n)
	ctx := context.Background()

	// A queue stream, made with the CLI.
	code, out, errs := gust(t, n, dir, "", "stream", "create", "orders", "--subjects", "orders.>,refunds.*")
	if code != 0 || !strings.Contains(out, "stream orders stores orders.>, refunds.* for 7d") {
		t.Fatalf("stream create = %d %q %q", code, out, errs)
	}

	// To the stream: the CLI prints where the message went.
	code, out, errs = gust(t, n, dir, "", "publish", "orders.new", `{"id":1}`, "--header", "Trace-Id=abc")
	if code != 0 || strings.TrimSpace(out) != "published to stream orders, sequence 1" {
		t.Errorf("publish to a stream = %d %q %q", code, out, errs)
	}
	code, out, errs = gust(t, n, dir, `{"id":2}`, "publish", "refunds.r1", "-", "-o", "json")
	var res api.PublishResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res != (api.PublishResult{Subject: "refunds.r1", Stream: "orders", Sequence: 2}) {
		t.Errorf("publish from stdin -o json = %d %q %q", code, out, errs)
	}
	// The client, with headers; a repeated Nats-Msg-Id is a duplicate.
	for i, wantDup := range []bool{false, true} {
		res, err := c.Publish(ctx, "orders.paid", []byte("paid"), map[string][]string{"Nats-Msg-Id": {"pay-1"}, "Trace-Id": {"x", "y"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stream != "orders" || res.Sequence != 3 || res.Duplicate != wantDup {
			t.Errorf("client publish %d = %+v, want orders/3, duplicate %v", i+1, res, wantDup)
		}
	}
	code, out, _ = gust(t, n, dir, "", "publish", "orders.paid", "paid", "--header", "Nats-Msg-Id=pay-1")
	if code != 0 || !strings.Contains(out, "duplicate: stream orders has it already, sequence 3") {
		t.Errorf("publish of a duplicate = %d %q", code, out)
	}
	st, err := c.GetStream(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 3 || st.LastSequence != 3 {
		t.Errorf("stream = %+v, want 3 messages", st)
	}

	// To a plain subject: core NATS.
	code, out, errs = gust(t, n, dir, "", "publish", "plain.subject", "hi")
	if code != 0 || strings.TrimSpace(out) != "published (no stream captured it)" {
		t.Errorf("publish to a plain subject = %d %q %q", code, out, errs)
	}
	if res, err := c.Publish(ctx, "plain.subject", nil, nil); err != nil || res != (api.PublishResult{Subject: "plain.subject"}) {
		t.Errorf("client publish to a plain subject = %+v, %v", res, err)
	}

	// Bad subjects are refused, naming the problem.
	for _, tt := range []struct{ subject, want string }{
		{"orders.*", "has a wildcard"},
		{"orders.>", "has a wildcard"},
		{"orders..new", "empty token"},
		{"orders new", "white space"},
		{"$KV.gust_keys.x", "NATS's own"},
		{"_INBOX.x", "replies"},
		{"gust.async.0.fn", "Gust keeps its own state"},
	} {
		code, _, errs := gust(t, n, dir, "", "publish", tt.subject, "x")
		if code != 1 || !strings.Contains(errs, "InvalidParameterValueException") || !strings.Contains(errs, tt.want) {
			t.Errorf("publish %q = %d %q, want 1 and %q", tt.subject, code, errs, tt.want)
		}
		_, err := c.Publish(ctx, tt.subject, []byte("x"), nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.ErrInvalidParameterValue || !strings.Contains(ae.Message, tt.want) {
			t.Errorf("client publish %q = %v, want InvalidParameterValueException with %q", tt.subject, err, tt.want)
		}
	}
	if code, _, errs := gust(t, n, dir, "", "publish", "a", "x", "--header", "novalue"); code != 2 || !strings.Contains(errs, "want NAME=VALUE") {
		t.Errorf("publish --header novalue = %d %q, want a usage error", code, errs)
	}
	if code, _, errs := gust(t, n, dir, "", "publish", "a"); code != 2 || !strings.Contains(errs, "SUBJECT DATA") {
		t.Errorf("publish without data = %d %q, want a usage error", code, errs)
	}
	big := strings.Repeat("x", api.MaxPublishBytes+1)
	if _, err := c.Publish(ctx, "big", []byte(big), nil); err == nil || !strings.Contains(err.Error(), "RequestTooLargeException") {
		t.Errorf("publish of %d bytes = %v, want RequestTooLargeException", len(big), err)
	}

	// Streams: ls shows only queue streams; Gust's own cannot be touched.
	code, out, _ = gust(t, n, dir, "", "stream", "ls")
	if code != 0 || !strings.Contains(out, "orders") || !strings.Contains(out, "orders.>,refunds.*") || strings.Contains(out, "GUST_") {
		t.Errorf("stream ls = %d\n%s", code, out)
	}
	code, out, _ = gust(t, n, dir, "", "stream", "ls", "-o", "json")
	var list []api.Stream
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Messages != 3 {
		t.Errorf("stream ls -o json = %d %s", code, out)
	}
	if code, _, errs := gust(t, n, dir, "", "stream", "rm", "GUST_LOGS"); code != 1 || !strings.Contains(errs, "ResourceConflictException") {
		t.Errorf("stream rm GUST_LOGS = %d %q, want a conflict", code, errs)
	}
	if code, _, errs := gust(t, n, dir, "", "stream", "create", "GUST_MINE", "--subjects", "mine"); code != 1 || !strings.Contains(errs, "Gust's own") {
		t.Errorf("stream create GUST_MINE = %d %q, want it refused", code, errs)
	}
	if code, _, errs := gust(t, n, dir, "", "stream", "create", "more", "--subjects", "orders.new"); code != 1 || !strings.Contains(errs, "overlaps") {
		t.Errorf("stream create overlapping = %d %q, want it refused", code, errs)
	}
	if code, _, errs := gust(t, n, dir, "", "stream", "create", "nosubjects"); code != 2 || !strings.Contains(errs, "--subjects is required") {
		t.Errorf("stream create without subjects = %d %q, want a usage error", code, errs)
	}
	if code, out, errs := gust(t, n, dir, "", "stream", "rm", "orders"); code != 0 || !strings.Contains(out, "removed stream orders") {
		t.Errorf("stream rm = %d %q %q", code, out, errs)
	}
	if _, err := c.GetStream(ctx, "orders"); !isCode(err, api.ErrResourceNotFound) {
		t.Errorf("GetStream after rm = %v, want ResourceNotFoundException", err)
	}
}

func isCode(err error, code string) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == code
}
