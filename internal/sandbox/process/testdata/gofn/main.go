// Command gofn is a test function built with aws-lambda-go: a typed
// handler whose event says what to do.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Bytes int    `json:"bytes,omitempty"`
	Text  string `json:"text,omitempty"`
	// http: Method URL with Text as the body; the result's Count is the
	// status, Text the body, Err why there is none.
	Method string `json:"method,omitempty"`
	URL    string `json:"url,omitempty"`
}

type result struct {
	Op          string            `json:"op"`
	RequestID   string            `json:"requestId,omitempty"`
	ARN         string            `json:"arn,omitempty"`
	Function    string            `json:"function,omitempty"`
	Memory      int               `json:"memory,omitempty"`
	RemainingMs int64             `json:"remainingMs,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	UID         int               `json:"uid"`
	Hostname    string            `json:"hostname,omitempty"`
	Cwd         string            `json:"cwd,omitempty"`
	Pids        []string          `json:"pids,omitempty"`
	Err         string            `json:"err,omitempty"`
	Count       int               `json:"count,omitempty"`
	Text        string            `json:"text,omitempty"`
}

func handle(ctx context.Context, ev event) (*result, error) {
	r := &result{Op: ev.Op, UID: os.Getuid()}
	switch ev.Op {
	case "echo":
		lc, _ := lambdacontext.FromContext(ctx)
		r.RequestID = lc.AwsRequestID
		r.ARN = lc.InvokedFunctionArn
		r.Function = lambdacontext.FunctionName
		r.Memory = lambdacontext.MemoryLimitInMB
		if d, ok := ctx.Deadline(); ok {
			r.RemainingMs = time.Until(d).Milliseconds()
		}
		r.Env = map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			r.Env[k] = v
		}
		r.Hostname, _ = os.Hostname()
		r.Cwd, _ = os.Getwd()
		r.Text = ev.Text
		fmt.Println("echo log line")
	case "error":
		return nil, errors.New("boom: " + ev.Text)
	case "crash":
		fmt.Println("about to crash")
		os.Exit(3)
	case "sleep-child":
		cmd := exec.Command("/bin/sleep", "300")
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		fmt.Printf("child %d\n", cmd.Process.Pid)
		time.Sleep(time.Hour)
	case "hog":
		var keep [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	case "forkbomb":
		for i := 0; i < 10000; i++ {
			cmd := exec.Command("/bin/sleep", "300")
			if err := cmd.Start(); err != nil {
				r.Err = err.Error()
				break
			}
			r.Count++
		}
	case "flood":
		chunk := []byte(strings.Repeat("x", 1023) + "\n")
		for i := 0; i < ev.Bytes/len(chunk); i++ {
			os.Stdout.Write(chunk)
		}
	case "ps":
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Name()[0] >= '0' && e.Name()[0] <= '9' {
				r.Pids = append(r.Pids, e.Name())
			}
		}
	case "read":
		b, err := os.ReadFile(ev.Path)
		if err != nil {
			r.Err = err.Error()
		}
		r.Count = len(b)
	case "write":
		err := os.WriteFile(ev.Path, []byte(ev.Text), 0o644)
		if err != nil {
			r.Err = err.Error()
		}
	case "big":
		r.Text = strings.Repeat("y", ev.Bytes)
	case "http":
		req, err := http.NewRequestWithContext(ctx, ev.Method, ev.URL, strings.NewReader(ev.Text))
		if err != nil {
			return nil, err
		}
		client := &http.Client{Timeout: 2 * time.Second}
		res, err := client.Do(req)
		if err != nil {
			r.Err = err.Error()
			break
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		r.Count, r.Text = res.StatusCode, string(b)
	case "sleep":
		time.Sleep(time.Duration(ev.Bytes) * time.Millisecond)
	default:
		return nil, fmt.Errorf("unknown op %q", ev.Op)
	}
	return r, nil
}

func main() {
	lambda.Start(handle)
}
