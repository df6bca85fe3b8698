package node_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/async"
	"github.com/gustfaas/gust/internal/creds"
	"github.com/gustfaas/gust/internal/node"
)

// startAsyncNode starts a node whose async retry waits and backoff are
// short.
func startAsyncNode(t *testing.T) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), GraceTimeout: 10 * time.Second, CacheDir: sharedCache,
		AsyncRetryDelays: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}, AsyncBackoffMax: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// deployGuest creates the test guest under name.
func deployGuest(t *testing.T, c *client.Client, name string, timeoutSec int32) {
	t.Helper()
	buildGuests(t)
	if _, err := c.CreateFunction(context.Background(), api.CreateFunctionRequest{FunctionName: name, Runtime: "wasm",
		Timeout: &timeoutSec, Code: &api.FunctionCode{ZipFile: guests.guest}}); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

// finalRecord polls id's record until it is final.
func finalRecord(t *testing.T, c *client.Client, id string, within time.Duration) api.InvocationRecord {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rec, err := c.Invocation(context.Background(), id)
		if err == nil && (rec.Status == async.StatusSucceeded || rec.Status == async.StatusFailed || rec.Status == async.StatusDeadLettered) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("invocation %s not final after %s: %+v, %v", id, within, rec, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAsyncInvokeEndToEnd(t *testing.T) {
	n := startAsyncNode(t)
	c := adminClient(n)
	deployGuest(t, c, "guest", 10)
	ctx := context.Background()
	sdk := lambdaClient(t, n)

	// The AWS SDK: 202, the request id in the response metadata.
	out, err := sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest"), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(`{"echo":"hi"}`)})
	if err != nil || out.StatusCode != http.StatusAccepted || len(out.Payload) != 0 {
		t.Fatalf("Invoke(Event) = %+v, %v; want 202 without a body", out, err)
	}
	rid, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if rid == "" {
		t.Fatal("Invoke(Event) returned no request id")
	}
	rec := finalRecord(t, c, rid, 20*time.Second)
	if rec.Status != async.StatusSucceeded || rec.Attempts != 1 || rec.Version != "$LATEST" || rec.Source != "lambda" || rec.Function != "guest" {
		t.Errorf("record = %+v, want succeeded once on $LATEST from lambda", rec)
	}

	tests := []struct {
		name     string
		send     func(t *testing.T) string // returns the request id
		status   string
		attempts int
		reason   string
	}{
		{"function error retried twice", func(t *testing.T) string {
			acc, err := c.InvokeAsync(ctx, "guest", []byte(`{"exit":3}`), client.AsyncOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return acc.RequestID
		}, async.StatusFailed, 3, async.ReasonRetriesExhausted},
		{"qualified", func(t *testing.T) string {
			acc, err := c.InvokeAsync(ctx, "guest", nil, client.AsyncOptions{Qualifier: "$LATEST"})
			if err != nil {
				t.Fatal(err)
			}
			return acc.RequestID
		}, async.StatusSucceeded, 1, ""},
		{"function URL", func(t *testing.T) string {
			req, _ := http.NewRequest(http.MethodPost, n.URL()+"/fn/guest/orders", strings.NewReader(`{"id":1}`))
			req.Header.Set("X-Gust-Invocation-Type", "Event")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted || len(body) != 0 {
				t.Fatalf("function URL Event = %d %s, want 202 without a body", resp.StatusCode, body)
			}
			return resp.Header.Get(api.HeaderRequestID)
		}, async.StatusSucceeded, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.send(t)
			rec := finalRecord(t, c, id, 20*time.Second)
			status := rec.Status
			if status == async.StatusDeadLettered {
				status = async.StatusFailed // the node's dead-letter queue took it
			}
			if status != tt.status || rec.Attempts != tt.attempts || rec.Reason != tt.reason {
				t.Errorf("record = %+v; want %s after %d attempts, reason %q", rec, tt.status, tt.attempts, tt.reason)
			}
			if tt.status == async.StatusFailed && (rec.Error == nil || rec.Error.Type == "") {
				t.Errorf("failed record has no error: %+v", rec)
			}
		})
	}

	t.Run("idempotency key", func(t *testing.T) {
		var wg sync.WaitGroup
		accs := make([]client.Accepted, 2)
		for i := range accs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if accs[i], err = c.InvokeAsync(ctx, "guest", []byte(`{"echo":1}`), client.AsyncOptions{IdempotencyKey: "order 42"}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if accs[0].RequestID != accs[1].RequestID || accs[0].Duplicate == accs[1].Duplicate {
			t.Fatalf("two sends of one key = %+v, %+v; want one id, one duplicate", accs[0], accs[1])
		}
		finalRecord(t, c, accs[0].RequestID, 20*time.Second)
		if _, err := c.InvokeAsync(ctx, "guest", nil, client.AsyncOptions{IdempotencyKey: strings.Repeat("k", 300)}); !isAPIError(err, api.ErrInvalidParameterValue) {
			t.Errorf("InvokeAsync(300-byte key) = %v, want InvalidParameterValueException", err)
		}
	})

	t.Run("limits and unknown ids", func(t *testing.T) {
		big := []byte(`"` + strings.Repeat("x", async.MaxPayload) + `"`)
		if _, err := c.InvokeAsync(ctx, "guest", big, client.AsyncOptions{}); !isAPIError(err, api.ErrRequestTooLarge) {
			t.Errorf("InvokeAsync(1 MB + 2) = %v, want %s", err, api.ErrRequestTooLarge)
		}
		if _, err := c.InvokeAsync(ctx, "nope", nil, client.AsyncOptions{}); !isAPIError(err, api.ErrResourceNotFound) {
			t.Errorf("InvokeAsync(unknown function) = %v, want %s", err, api.ErrResourceNotFound)
		}
		if _, err := c.Invocation(ctx, "00000000-0000-0000-0000-000000000000"); !isAPIError(err, api.ErrResourceNotFound) {
			t.Errorf("Invocation(unknown) = %v, want %s", err, api.ErrResourceNotFound)
		}
	})
}

func isAPIError(err error, code string) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == code
}

// A function with reserved concurrency 1 and a slow handler: queued
// invocations are throttled, wait, and all complete.
func TestAsyncThrottledFunction(t *testing.T) {
	n := startAsyncNode(t)
	c := adminClient(n)
	deployGuest(t, c, "slow", 10)
	ctx := context.Background()
	if err := c.PutFunctionConcurrency(ctx, "slow", 1); err != nil {
		t.Fatal(err)
	}
	const count = 6
	ids := make([]string, count)
	for i := range ids {
		acc, err := c.InvokeAsync(ctx, "slow", []byte(`{"sleepMs":200}`), client.AsyncOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = acc.RequestID
	}
	throttled := 0
	for _, id := range ids {
		rec := finalRecord(t, c, id, 60*time.Second)
		if rec.Status != async.StatusSucceeded || rec.Attempts != 1 {
			t.Errorf("record = %+v, want succeeded after 1 attempt", rec)
		}
		if rec.Throttles > 0 {
			throttled++
		}
	}
	if throttled == 0 {
		t.Errorf("no invocation was throttled; the test did not exercise the wait")
	}
}

// TestAsyncKillNode kills a node (SIGKILL) while invocations are queued
// and running, starts it again on the same data directory, and checks
// that every invocation that got a 202 succeeds exactly once on record.
func TestAsyncKillNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gust binary")
	}
	buildGuests(t)
	bin := buildGust(t)
	data := filepath.Join(t.TempDir(), "data")

	cmd, url := startGust(t, bin, data)
	c := gustClient(t, url, data)
	deployGuest(t, c, "work", 10)
	ctx := context.Background()
	const count = 40
	ids := make([]string, count)
	for i := range ids {
		acc, err := c.InvokeAsync(ctx, "work", []byte(`{"sleepMs":300}`), client.AsyncOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = acc.RequestID
	}
	// Kill it once some have finished and others run.
	deadline := time.Now().Add(30 * time.Second)
	for {
		done, running, queued := 0, 0, 0
		for _, id := range ids {
			rec, _ := c.Invocation(ctx, id)
			switch rec.Status {
			case async.StatusSucceeded:
				done++
			case async.StatusRunning:
				running++
			case async.StatusQueued:
				queued++
			}
		}
		if done > 0 && running > 0 && queued > 0 || time.Now().After(deadline) {
			t.Logf("killing the node with %d succeeded, %d running and %d queued of %d", done, running, queued, count)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	cmd, url = startGust(t, bin, data)
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	c = gustClient(t, url, data)
	t0 := time.Now()
	for _, id := range ids {
		rec := finalRecord(t, c, id, 60*time.Second)
		if rec.Status != async.StatusSucceeded || rec.Attempts != 1 || rec.Version != "$LATEST" || rec.Started.IsZero() {
			t.Errorf("after the restart %s = %+v, want succeeded once (a run lost with the node does not count)", id, rec)
		}
	}
	t.Logf("all %d succeeded %s after the restart", count, time.Since(t0).Round(time.Millisecond))
}

var upURL = regexp.MustCompile(`gust is up on (http://\S+)`)

// startGust runs `gust up` on a free port and returns its URL.
// buildGust builds the gust binary into a temporary directory.
func buildGust(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gust")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gust")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// gustClient is a client of the gust process serving url from data, with
// the admin key it wrote there.
func gustClient(t *testing.T, url, data string) *client.Client {
	t.Helper()
	key, err := creds.ReadFile(filepath.Join(data, node.CredentialsFile), "default")
	if err != nil {
		t.Fatal(err)
	}
	return client.New(url, client.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey})
}

func startGust(t *testing.T, bin, data string) (*exec.Cmd, string) {
	t.Helper()
	// 1 GB for instances: at most 4 async invocations run at once, so
	// some wait in the queue.
	cmd := exec.Command(bin, "up", "--listen", "127.0.0.1:0", "--data", data, "--memory", "1024")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := upURL.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case url, ok := <-found:
		if !ok {
			cmd.Wait()
			t.Fatalf("gust up exited: %s", stderr.String())
		}
		return cmd, url
	case <-time.After(60 * time.Second):
		t.Fatalf("gust up did not start: %s", stderr.String())
	}
	return nil, ""
}
