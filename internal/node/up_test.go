package node_test

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/node"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUpWithExamples is the README's first command: a node comes up with
// every example deployed, the curl lines it prints answer, and it stops
// cleanly when its context ends.
func TestUpWithExamples(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- node.Up(ctx, node.UpOptions{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
			ExamplesDir: filepath.Join(repoRoot(t), "examples")}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(stdout.String(), "press Ctrl-C") {
		select {
		case err := <-done:
			t.Fatalf("Up returned early: %v\n%s%s", err, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Up did not finish starting:\n%s%s", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := stdout.String()
	for _, want := range []string{"hello", "httpapi", "lambda-go", "lambda-node", "lambda-python", "credentials:"} {
		if !strings.Contains(out, want) {
			t.Errorf("Up's output lacks %q:\n%s", want, out)
		}
	}
	if m := regexp.MustCompile(`memory budget (\d+) MB`).FindStringSubmatch(out); m == nil || m[1] == "0" {
		t.Errorf("Up does not report the memory budget it uses: %q", m)
	}
	// Every GET curl line it prints answers 200.
	urls := regexp.MustCompile(`curl -s '(http://[^']+)'`).FindAllStringSubmatch(out, -1)
	if len(urls) < 4 {
		t.Fatalf("Up printed %d curl lines, want one per GET example:\n%s", len(urls), out)
	}
	for _, u := range urls {
		resp, body := do(t, "GET", u[1], "", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, "Hello, Ada!") {
			t.Errorf("GET %s = %d %s", u[1], resp.StatusCode, body)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Up after cancel: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Up did not stop")
	}
	if !strings.Contains(stdout.String(), "shutting down") {
		t.Errorf("Up did not say it was shutting down")
	}
}
