package node_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/node"
)

// TestMeteringIsExact: the usage the node reports equals the invocations
// made, outcome by outcome, and /metrics agrees.
func TestMeteringIsExact(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()
	deploy(t, c, "hello", guests.hello)
	deploy(t, c, "guest", guests.guest)
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("guest"), Timeout: aws.Int32(1), MemorySize: aws.Int32(256)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("closed"), Role: aws.String(role),
		Runtime: types.Runtime("wasm"), Code: &types.FunctionCode{ZipFile: guests.guest}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("closed"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatalf("PutFunctionConcurrency: %v", err)
	}
	since := time.Now()

	const okHello, okGuest, fails, timeouts, throttled = 37, 11, 5, 2, 3
	var wg sync.WaitGroup
	for i := 0; i < okHello; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello")}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := 0; i < okGuest; i++ {
		c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest"), Payload: []byte(`{"echo":1}`)})
	}
	for i := 0; i < fails; i++ {
		c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest"), Payload: []byte(`{"exit":1}`)})
	}
	for i := 0; i < timeouts; i++ {
		c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest"), Payload: []byte(`{"loop":true}`)})
	}
	for i := 0; i < throttled; i++ {
		_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("closed"), Payload: []byte(`{"log":"ran"}`)})
		var tm *types.TooManyRequestsException
		if !errors.As(err, &tm) {
			t.Fatalf("Invoke(closed) error = %v, want TooManyRequestsException", err)
		}
		if tm.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
			t.Errorf("throttle Reason = %q", tm.Reason)
		}
	}

	rep, err := n.Meter().Query(ctx, since, "")
	if err != nil {
		t.Fatalf("usage: %v", err)
	}
	got := map[string]api.UsageLine{}
	for _, l := range rep.Functions {
		got[l.Function] = l
	}
	checks := []struct {
		what      string
		got, want int64
	}{
		{"hello requests", got["hello"].Requests, okHello},
		{"hello errors", got["hello"].Errors, 0},
		{"hello cold starts ≥ 1", min(got["hello"].ColdStarts, 1), 1},
		{"guest requests", got["guest"].Requests, okGuest + fails + timeouts},
		{"guest errors", got["guest"].Errors, fails + timeouts},
		{"guest timeouts", got["guest"].Timeouts, timeouts},
		{"closed requests", got["closed"].Requests, throttled},
		{"closed throttles", got["closed"].Throttles, throttled},
		{"closed billed ms", got["closed"].BilledMs, 0},
		{"total requests", rep.Total.Requests, okHello + okGuest + fails + timeouts + throttled},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	// Billing arithmetic: GB-seconds from billed ms and memory, cost from
	// Lambda's list prices; a timed-out invocation bills its full second.
	g := got["guest"]
	if g.BilledMs < timeouts*1000 || g.MBMs != g.BilledMs*256 {
		t.Errorf("guest billed %d ms, %d MB-ms; want ≥ %d ms at 256 MB", g.BilledMs, g.MBMs, timeouts*1000)
	}
	wantCost := float64(g.Requests)*0.20/1e6 + float64(g.MBMs)/1024/1000*0.0000166667
	if d := g.Cost.Total - wantCost; d > 1e-12 || d < -1e-12 {
		t.Errorf("guest cost = %v, want %v", g.Cost.Total, wantCost)
	}

	// /metrics counts the same.
	resp, err := http.Get(n.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`gust_invocations_total{function="hello",outcome="success"} 37`,
		`gust_invocations_total{function="guest",outcome="timeout"} 2`,
		`gust_throttles_total{function="closed"} 3`,
		`gust_instances{function="hello",state="idle"}`,
		`gust_cold_start_seconds_count{function="hello"}`,
		`gust_queue_wait_seconds_bucket`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestThrottleOverHTTP: a refused request answers 429 with a Reason and a
// Retry-After, through the API and through the function URL, and the
// function never runs.
func TestThrottleOverHTTP(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()
	deploy(t, c, "guest", guests.guest)
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("guest"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	resp, _ := do(t, "POST", n.URL()+"/fn/guest", `{"log":"ran"}`, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("function URL = %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "TooManyRequestsException" {
		t.Errorf("Invoke error = %v, want TooManyRequestsException", err)
	}
	if s := n.Engine().Stats(); len(s.Pools) != 1 || s.Pools[0].Idle+s.Pools[0].Busy != 0 {
		t.Errorf("instances after throttles = %+v, want none started", s.Pools)
	}
	// Lifting the limit lets it run.
	if _, err := c.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("guest")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest"), Payload: []byte(`{"echo":2}`)})
	if err != nil || out.FunctionError != nil {
		t.Errorf("Invoke after DeleteFunctionConcurrency = %v %v", out, err)
	}
}

// TestRunawayDoesNotStopOthers: a guest in a loop is stopped at its
// timeout while another function keeps answering.
func TestRunawayDoesNotStopOthers(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()
	deploy(t, c, "hello", guests.hello)
	deploy(t, c, "loop", loopWasm)
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("loop"), Timeout: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	type res struct {
		out *lambda.InvokeOutput
		err error
	}
	done := make(chan res, 1)
	start := time.Now()
	go func() {
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("loop")})
		done <- res{out, err}
	}()
	served := 0
	for {
		select {
		case r := <-done:
			if r.err != nil || aws.ToString(r.out.FunctionError) != "Unhandled" || !strings.Contains(string(r.out.Payload), "Task timed out after 2.00 seconds") {
				t.Fatalf("runaway = %v %v, want a timeout error", r.out, r.err)
			}
			if el := time.Since(start); el > 20*time.Second {
				t.Errorf("runaway stopped after %v, want about its 2 s timeout", el)
			}
			if served < 10 {
				t.Errorf("hello answered %d times while the runaway ran, want many", served)
			}
			return
		default:
		}
		resp, body := do(t, "GET", n.URL()+"/fn/hello?name=x", "", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, "Hello, x!") {
			t.Fatalf("hello during the runaway = %d %s", resp.StatusCode, body)
		}
		served++
	}
}

// TestProvisionedAndIdleTimeout: provisioned instances start at deploy
// and outlive the keep-alive; others are reaped to zero.
func TestProvisionedAndIdleTimeout(t *testing.T) {
	buildGuests(t)
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), IdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(ctx)
	c := lambdaClient(t, n)
	deploy(t, c, "hello", guests.hello)
	deploy(t, c, "warm", guests.hello)
	if _, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("warm"), Qualifier: aws.String("$LATEST"), ProvisionedConcurrentExecutions: aws.Int32(2)}); err != nil {
		t.Fatalf("PutProvisionedConcurrencyConfig: %v", err)
	}
	waitUntil(t, "two provisioned instances", func() bool { return idleOf(n, "warm") == 2 })
	pc, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("warm"), Qualifier: aws.String("$LATEST")})
	if err != nil || pc.Status != types.ProvisionedConcurrencyStatusEnumReady || aws.ToInt32(pc.AvailableProvisionedConcurrentExecutions) != 2 {
		t.Errorf("GetProvisionedConcurrencyConfig = %+v, %v", pc, err)
	}
	for _, f := range []string{"hello", "warm"} {
		if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(f)}); err != nil {
			t.Fatal(err)
		}
	}
	if idleOf(n, "hello") != 1 {
		t.Fatalf("hello idle = %d, want 1", idleOf(n, "hello"))
	}
	n.Engine().Reap(time.Now().Add(2 * time.Hour))
	if idleOf(n, "hello") != 0 || idleOf(n, "warm") != 2 {
		t.Errorf("after the keep-alive: hello %d, warm %d idle; want 0 and 2", idleOf(n, "hello"), idleOf(n, "warm"))
	}
}

func idleOf(n *node.Node, fn string) int {
	for _, p := range n.Engine().Stats().Pools {
		if p.Function == fn {
			return p.Idle
		}
	}
	return 0
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
