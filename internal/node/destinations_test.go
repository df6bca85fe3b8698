package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-cmp/cmp"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/async"
	"github.com/gustfaas/gust/internal/node"
)

const (
	arnPrefix = "arn:aws:lambda:us-east-1:000000000000:function:"
	queueARN  = "arn:aws:sqs:us-east-1:000000000000:"
)

// createGuest deploys the test guest as name.
func createGuest(t *testing.T, c *lambda.Client, name string) *lambda.CreateFunctionOutput {
	t.Helper()
	out, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: types.Runtime("wasm"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: guests.guest}, Timeout: aws.Int32(10),
	})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return out
}

// eventInvokeView is what a test compares of a FunctionEventInvokeConfig.
type eventInvokeView struct {
	FunctionArn          string
	Retries, Age         *int32
	OnSuccess, OnFailure string
}

func viewOf(arn *string, retries, age *int32, d *types.DestinationConfig) eventInvokeView {
	v := eventInvokeView{FunctionArn: aws.ToString(arn), Retries: retries, Age: age}
	if d != nil && d.OnSuccess != nil {
		v.OnSuccess = aws.ToString(d.OnSuccess.Destination)
	}
	if d != nil && d.OnFailure != nil {
		v.OnFailure = aws.ToString(d.OnFailure.Destination)
	}
	return v
}

func TestEventInvokeConfigAPI(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()
	created := createGuest(t, c, "work")
	createGuest(t, c, "sink")
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("work")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("work"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}

	_, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("work")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.Contains(aws.ToString(nf.Message), "doesn't have an EventInvokeConfig") {
		t.Fatalf("Get before Put: %v, want ResourceNotFoundException", err)
	}

	put, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: aws.String("work"), MaximumRetryAttempts: aws.Int32(1), MaximumEventAgeInSeconds: aws.Int32(120),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(queueARN + "failures")}},
	})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	want := eventInvokeView{FunctionArn: arnPrefix + "work:$LATEST", Retries: aws.Int32(1), Age: aws.Int32(120), OnFailure: queueARN + "failures"}
	if diff := cmp.Diff(want, viewOf(put.FunctionArn, put.MaximumRetryAttempts, put.MaximumEventAgeInSeconds, put.DestinationConfig)); diff != "" {
		t.Errorf("Put mismatch (-want +got):\n%s", diff)
	}
	if put.LastModified == nil || put.LastModified.IsZero() {
		t.Errorf("Put LastModified = %v, want a time", put.LastModified)
	}
	got, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("work"), Qualifier: aws.String("$LATEST")})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(want, viewOf(got.FunctionArn, got.MaximumRetryAttempts, got.MaximumEventAgeInSeconds, got.DestinationConfig)); diff != "" {
		t.Errorf("Get mismatch (-want +got):\n%s", diff)
	}

	// Update merges: only the retries change.
	upd, err := c.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("work"), MaximumRetryAttempts: aws.Int32(0)})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want.Retries = aws.Int32(0)
	if diff := cmp.Diff(want, viewOf(upd.FunctionArn, upd.MaximumRetryAttempts, upd.MaximumEventAgeInSeconds, upd.DestinationConfig)); diff != "" {
		t.Errorf("Update mismatch (-want +got):\n%s", diff)
	}
	// Put replaces: what it leaves out is gone.
	put, err = c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(arnPrefix + "work"), MaximumEventAgeInSeconds: aws.Int32(3600)})
	if err != nil {
		t.Fatalf("Put again: %v", err)
	}
	want = eventInvokeView{FunctionArn: arnPrefix + "work:$LATEST", Age: aws.Int32(3600)}
	if diff := cmp.Diff(want, viewOf(put.FunctionArn, put.MaximumRetryAttempts, put.MaximumEventAgeInSeconds, put.DestinationConfig)); diff != "" {
		t.Errorf("Put again mismatch (-want +got):\n%s", diff)
	}
	// An alias has its own settings, here with a function destination.
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("work:live"),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(arnPrefix + "sink")}}}); err != nil {
		t.Fatalf("Put on alias: %v", err)
	}
	list, err := c.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("work")})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var arns []string
	for _, e := range list.FunctionEventInvokeConfigs {
		arns = append(arns, aws.ToString(e.FunctionArn))
	}
	if diff := cmp.Diff([]string{arnPrefix + "work:$LATEST", arnPrefix + "work:live"}, arns); diff != "" {
		t.Errorf("List mismatch (-want +got):\n%s", diff)
	}
	page, err := c.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("work"), MaxItems: aws.Int32(1)})
	if err != nil || len(page.FunctionEventInvokeConfigs) != 1 || page.NextMarker == nil {
		t.Errorf("List MaxItems 1 = %v, %v; want one and a marker", page, err)
	}

	// The settings are not the function's code or configuration: its
	// RevisionId stays.
	cfg, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("work")})
	if err != nil || aws.ToString(cfg.RevisionId) != aws.ToString(created.RevisionId) {
		t.Errorf("RevisionId after settings changes = %s (%v), want %s", aws.ToString(cfg.RevisionId), err, aws.ToString(created.RevisionId))
	}

	if _, err := c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("work"), Qualifier: aws.String("live")}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("work"), Qualifier: aws.String("live")})
	if !errors.As(err, &nf) {
		t.Errorf("Delete twice: %v, want ResourceNotFoundException", err)
	}
	_, err = c.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("work"), Qualifier: aws.String("live"), MaximumRetryAttempts: aws.Int32(1)})
	if !errors.As(err, &nf) {
		t.Errorf("Update without settings: %v, want ResourceNotFoundException", err)
	}

	// Bad input is refused with a message naming the problem.
	var bad *types.InvalidParameterValueException
	for _, tc := range []struct {
		name string
		in   lambda.PutFunctionEventInvokeConfigInput
		want string
	}{
		{"retries above 2", lambda.PutFunctionEventInvokeConfigInput{MaximumRetryAttempts: aws.Int32(3)}, "maximumRetryAttempts"},
		{"negative retries", lambda.PutFunctionEventInvokeConfigInput{MaximumRetryAttempts: aws.Int32(-1)}, "maximumRetryAttempts"},
		{"age below 60", lambda.PutFunctionEventInvokeConfigInput{MaximumEventAgeInSeconds: aws.Int32(59)}, "maximumEventAgeInSeconds"},
		{"age above 6h", lambda.PutFunctionEventInvokeConfigInput{MaximumEventAgeInSeconds: aws.Int32(21601)}, "maximumEventAgeInSeconds"},
		{"sns destination", lambda.PutFunctionEventInvokeConfigInput{DestinationConfig: &types.DestinationConfig{
			OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sns:us-east-1:000000000000:topic")}}}, "sns ARN"},
		{"missing function", lambda.PutFunctionEventInvokeConfigInput{DestinationConfig: &types.DestinationConfig{
			OnSuccess: &types.OnSuccess{Destination: aws.String(arnPrefix + "nobody")}}}, "nobody, which does not exist"},
		{"missing alias", lambda.PutFunctionEventInvokeConfigInput{DestinationConfig: &types.DestinationConfig{
			OnSuccess: &types.OnSuccess{Destination: aws.String(arnPrefix + "sink:prod")}}}, "sink:prod, which does not exist"},
		{"itself", lambda.PutFunctionEventInvokeConfigInput{DestinationConfig: &types.DestinationConfig{
			OnFailure: &types.OnFailure{Destination: aws.String(arnPrefix + "work:live")}}}, "its own destination"},
		{"bad queue name", lambda.PutFunctionEventInvokeConfigInput{DestinationConfig: &types.DestinationConfig{
			OnFailure: &types.OnFailure{Destination: aws.String(queueARN + "a.fifo")}}}, "queue name"},
		{"not an ARN", lambda.PutFunctionEventInvokeConfigInput{DestinationConfig: &types.DestinationConfig{
			OnFailure: &types.OnFailure{Destination: aws.String("sink")}}}, "not an ARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.FunctionName = aws.String("work")
			_, err := c.PutFunctionEventInvokeConfig(ctx, &in)
			if !errors.As(err, &bad) || !strings.Contains(aws.ToString(bad.Message), tc.want) {
				t.Errorf("Put %s: %v, want InvalidParameterValueException mentioning %q", tc.name, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ fn, qualifier string }{{"nobody", ""}, {"work", "9"}, {"work", "prod"}} {
		in := &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(tc.fn), MaximumRetryAttempts: aws.Int32(1)}
		if tc.qualifier != "" {
			in.Qualifier = aws.String(tc.qualifier)
		}
		if _, err := c.PutFunctionEventInvokeConfig(ctx, in); !errors.As(err, &nf) {
			t.Errorf("Put on %s:%s: %v, want ResourceNotFoundException", tc.fn, tc.qualifier, err)
		}
	}
	// Nothing bad was stored.
	got, err = c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("work")})
	if err != nil || aws.ToInt32(got.MaximumEventAgeInSeconds) != 3600 || got.MaximumRetryAttempts != nil {
		t.Errorf("settings after bad input = %+v, %v", got, err)
	}
}

func TestDeadLetterConfig(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()
	createGuest(t, c, "sink")
	out, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("work"), Runtime: types.Runtime("wasm"), Role: aws.String(role),
		Code:             &types.FunctionCode{ZipFile: guests.guest},
		DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String(queueARN + "dead")},
	})
	if err != nil {
		t.Fatalf("create with a dead-letter target: %v", err)
	}
	if out.DeadLetterConfig == nil || aws.ToString(out.DeadLetterConfig.TargetArn) != queueARN+"dead" {
		t.Errorf("CreateFunction DeadLetterConfig = %+v, want %s", out.DeadLetterConfig, queueARN+"dead")
	}
	upd, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("work"),
		DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String(arnPrefix + "sink")}})
	if err != nil || upd.DeadLetterConfig == nil || aws.ToString(upd.DeadLetterConfig.TargetArn) != arnPrefix+"sink" {
		t.Fatalf("UpdateFunctionConfiguration = %+v, %v", upd, err)
	}
	if aws.ToString(upd.RevisionId) == aws.ToString(out.RevisionId) {
		t.Errorf("the dead-letter target is configuration: RevisionId should change")
	}
	got, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("work")})
	if err != nil || got.DeadLetterConfig == nil || aws.ToString(got.DeadLetterConfig.TargetArn) != arnPrefix+"sink" {
		t.Errorf("GetFunctionConfiguration DeadLetterConfig = %+v, %v", got.DeadLetterConfig, err)
	}

	var bad *types.InvalidParameterValueException
	for _, tc := range []struct{ name, arn, want string }{
		{"sns", "arn:aws:sns:us-east-1:000000000000:topic", "DeadLetterConfig.TargetArn"},
		{"missing function", arnPrefix + "nobody", "does not exist"},
		{"itself", arnPrefix + "work", "its own"},
		{"garbage", "dead", "not an ARN"},
	} {
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("work"),
			DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String(tc.arn)}})
		if !errors.As(err, &bad) || !strings.Contains(aws.ToString(bad.Message), tc.want) {
			t.Errorf("%s: %v, want InvalidParameterValueException mentioning %q", tc.name, err, tc.want)
		}
	}
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("loop"), Runtime: types.Runtime("wasm"), Role: aws.String(role),
		Code:             &types.FunctionCode{ZipFile: guests.guest},
		DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String(arnPrefix + "loop")},
	})
	if !errors.As(err, &bad) || !strings.Contains(aws.ToString(bad.Message), "its own") {
		t.Errorf("create with itself as target: %v, want InvalidParameterValueException", err)
	}

	// An empty TargetArn removes it.
	upd, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("work"),
		DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String("")}})
	if err != nil || upd.DeadLetterConfig != nil {
		t.Errorf("remove the dead-letter target: %+v, %v", upd.DeadLetterConfig, err)
	}
}

// startQuickNode starts a node whose async retries and backoff are short.
func startQuickNode(t *testing.T, dataDir string) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Config{Listen: "127.0.0.1:0", DataDir: dataDir, GraceTimeout: 10 * time.Second, CacheDir: sharedCache,
		AsyncRetryDelays: []time.Duration{50 * time.Millisecond}, AsyncBackoffMax: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dlqList runs `gust dlq ls NAME -o json --payload`.
func dlqList(t *testing.T, n *node.Node, dataDir, name string) []api.DeadLetter {
	t.Helper()
	code, out, errOut := gust(t, n, dataDir, "", "dlq", "ls", name, "--payload", "-o", "json")
	if code != 0 {
		t.Fatalf("gust dlq ls %s: exit %d: %s", name, code, errOut)
	}
	var letters []api.DeadLetter
	if err := json.Unmarshal([]byte(out), &letters); err != nil {
		t.Fatalf("gust dlq ls output %q: %v", out, err)
	}
	return letters
}

// invokeEvent invokes name asynchronously.
func invokeEvent(t *testing.T, c *lambda.Client, name, payload string) {
	t.Helper()
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name),
		InvocationType: types.InvocationTypeEvent, Payload: []byte(payload)})
	if err != nil || out.StatusCode != 202 {
		t.Fatalf("invoke %s asynchronously: %v (status %d)", name, err, out.StatusCode)
	}
}

// recordIn finds, among a function's dead letters, the invocation record
// (delivered to it as its event) with condition cond.
func recordIn(letters []api.DeadLetter, cond string) (map[string]any, bool) {
	for _, d := range letters {
		var rec map[string]any
		if json.Unmarshal(d.Payload, &rec) != nil {
			continue
		}
		if rc, ok := rec["requestContext"].(map[string]any); ok && rc["condition"] == cond {
			return rec, true
		}
	}
	return nil, false
}

// TestDestinationsAndDeadLetters: a poison event runs 1 +
// MaximumRetryAttempts times, then is a dead letter that `gust dlq`
// lists and replays; a success's record reaches an on-success function;
// a throttled event past MaximumEventAgeInSeconds reaches the on-failure
// destination. The destination function here is a module that always
// traps, so each record it receives ends among its own dead letters,
// where the test reads it through the public API.
func TestDestinationsAndDeadLetters(t *testing.T) {
	buildGuests(t)
	dataDir := t.TempDir()
	n := startQuickNode(t, dataDir)
	c := lambdaClient(t, n)
	ctx := context.Background()

	for _, name := range []string{"poison", "ok", "aged"} {
		createGuest(t, c, name)
	}
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("trap"), Runtime: types.Runtime("wasm"),
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: trapWasm}}); err != nil {
		t.Fatal(err)
	}
	put := func(name string, in lambda.PutFunctionEventInvokeConfigInput) {
		in.FunctionName = aws.String(name)
		if _, err := c.PutFunctionEventInvokeConfig(ctx, &in); err != nil {
			t.Fatalf("put event-invoke settings of %s: %v", name, err)
		}
	}
	put("poison", lambda.PutFunctionEventInvokeConfigInput{MaximumRetryAttempts: aws.Int32(1)})
	put("trap", lambda.PutFunctionEventInvokeConfigInput{MaximumRetryAttempts: aws.Int32(0)})
	put("ok", lambda.PutFunctionEventInvokeConfigInput{DestinationConfig: &types.DestinationConfig{
		OnSuccess: &types.OnSuccess{Destination: aws.String(arnPrefix + "trap")}}})
	put("aged", lambda.PutFunctionEventInvokeConfigInput{MaximumEventAgeInSeconds: aws.Int32(60), DestinationConfig: &types.DestinationConfig{
		OnFailure: &types.OnFailure{Destination: aws.String(arnPrefix + "trap")}}})
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("aged"),
		ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}

	t.Run("poison event", func(t *testing.T) {
		t.Parallel()
		invokeEvent(t, c, "poison", `{"exit":1}`)
		var letters []api.DeadLetter
		waitFor(t, 30*time.Second, "the poison event is a dead letter", func() bool {
			letters = dlqList(t, n, dataDir, "poison")
			return len(letters) == 1
		})
		d := letters[0]
		if d.Attempts != 2 || d.Condition != "RetriesExhausted" || string(d.Payload) != `{"exit":1}` || !strings.Contains(d.Error, "exit") {
			t.Errorf("dead letter = %+v, want 2 attempts, RetriesExhausted, the event and its error", d)
		}
		rec, err := n.Async().Record(ctx, d.RequestID)
		if err != nil || rec.Attempts != 2 || rec.Status != async.StatusDeadLettered {
			t.Errorf("record of %s = %+v, %v; want 2 attempts, dead-lettered", d.RequestID, rec, err)
		}
		code, out, errOut := gust(t, n, dataDir, "", "dlq", "ls", "poison")
		if code != 0 || !strings.Contains(out, d.ID) || !strings.Contains(out, "RetriesExhausted") {
			t.Errorf("gust dlq ls poison = %d, %q, %q", code, out, errOut)
		}

		// Replay it: the same request runs twice more and is a dead
		// letter again.
		code, out, errOut = gust(t, n, dataDir, "", "dlq", "replay", "poison", "--id", d.ID)
		if code != 0 || !strings.Contains(out, "replayed "+d.ID+" as request "+d.RequestID) {
			t.Fatalf("gust dlq replay = %d, %q, %q", code, out, errOut)
		}
		waitFor(t, 30*time.Second, "the replayed event is a dead letter again", func() bool {
			letters = dlqList(t, n, dataDir, "poison")
			return len(letters) == 1 && letters[0].ID != d.ID
		})
		rec, err = n.Async().Record(ctx, d.RequestID)
		if err != nil || rec.Attempts != 2 || rec.Replay != 1 || rec.Status != async.StatusDeadLettered {
			t.Errorf("record after replay = %+v, %v; want replay 1 with 2 attempts", rec, err)
		}
		if code, _, errOut := gust(t, n, dataDir, "", "dlq", "replay", "poison", "--id", "999999"); code != 1 || !strings.Contains(errOut, "no dead letter 999999") {
			t.Errorf("replay of an unknown id: exit %d, %q", code, errOut)
		}
	})

	t.Run("on-success to a function", func(t *testing.T) {
		t.Parallel()
		invokeEvent(t, c, "ok", `{"echo":"hi"}`)
		var rec map[string]any
		waitFor(t, 30*time.Second, "ok's record reaches trap", func() bool {
			var found bool
			rec, found = recordIn(dlqList(t, n, dataDir, "trap"), "Success")
			return found
		})
		rc := rec["requestContext"].(map[string]any)
		if rc["functionArn"] != arnPrefix+"ok:$LATEST" || rc["approximateInvokeCount"] != 1.0 {
			t.Errorf("requestContext = %v", rc)
		}
		if got, _ := json.Marshal(rec["responsePayload"]); string(got) != `{"echo":"hi"}` {
			t.Errorf("responsePayload = %s, want {\"echo\":\"hi\"}", got)
		}
		if got, _ := json.Marshal(rec["requestPayload"]); string(got) != `{"echo":"hi"}` {
			t.Errorf("requestPayload = %s", got)
		}
	})

	t.Run("event age exceeded", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits out the shortest MaximumEventAgeInSeconds, 60 s")
		}
		t.Parallel()
		start := time.Now()
		invokeEvent(t, c, "aged", `{"echo":"late"}`)
		var rec map[string]any
		waitFor(t, 150*time.Second, "aged's record reaches trap", func() bool {
			var found bool
			rec, found = recordIn(dlqList(t, n, dataDir, "trap"), "EventAgeExceeded")
			return found
		})
		if waited := time.Since(start); waited < 60*time.Second {
			t.Errorf("the event expired after %s, before its maximum age of 60s", waited)
		}
		rc := rec["requestContext"].(map[string]any)
		if rc["functionArn"] != arnPrefix+"aged:$LATEST" || rc["approximateInvokeCount"] != 0.0 {
			t.Errorf("requestContext = %v", rc)
		}
		if got, _ := json.Marshal(rec["requestPayload"]); string(got) != `{"echo":"late"}` {
			t.Errorf("requestPayload = %s", got)
		}
		if letters := dlqList(t, n, dataDir, "aged"); len(letters) != 0 {
			t.Errorf("aged has dead letters %v: the on-failure destination took the failure", letters)
		}
	})
}
