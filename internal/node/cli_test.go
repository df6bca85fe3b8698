package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/cli"
)

// gust runs the CLI against n and returns its exit status and output.
func gust(t *testing.T, n interface{ URL() string }, dataDir string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"GUST_SERVER": n.URL(), "HOME": t.TempDir()}
	code := cli.Run(context.Background(), append([]string{"--data", dataDir}, args...), cli.Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errb.String()
}

// TestCLI drives a real node with the gust command line, as a user would.
func TestCLI(t *testing.T) {
	buildGuests(t)
	dir := t.TempDir()
	n := startNode(t, dir)
	root := repoRoot(t)
	wasmFile := filepath.Join(t.TempDir(), "guest.wasm")
	if err := os.WriteFile(wasmFile, guests.guest, 0o644); err != nil {
		t.Fatal(err)
	}

	// deploy: a Go package directory (built for wasip1), and a .wasm file.
	if code, out, errs := gust(t, n, dir, "", "deploy", "hello", filepath.Join(root, "examples", "hello")); code != 0 {
		t.Fatalf("deploy hello = %d\n%s%s", code, out, errs)
	}
	if code, out, errs := gust(t, n, dir, "", "deploy", "guest", wasmFile, "--memory", "256", "--env", "COLOR=red", "-o", "json"); code != 0 {
		t.Fatalf("deploy guest = %d\n%s%s", code, out, errs)
	} else if !json.Valid([]byte(out)) {
		t.Errorf("deploy -o json is not JSON: %s", out)
	}

	// invoke: literal, @file and stdin payloads.
	code, out, errs := gust(t, n, dir, "", "invoke", "hello", "--payload", `{"name":"Ada"}`)
	if code != 0 || !strings.Contains(out, "Hello, Ada!") {
		t.Errorf("invoke hello = %d %q %q", code, out, errs)
	}
	pf := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(pf, []byte(`{"env":"COLOR"}`), 0o644)
	if code, out, _ := gust(t, n, dir, "", "invoke", "guest", "--payload", "@"+pf); code != 0 || !strings.Contains(out, `"env":"red"`) {
		t.Errorf("invoke guest @file = %d %q", code, out)
	}
	if code, out, _ := gust(t, n, dir, `{"echo":"stdin"}`, "invoke", "guest", "--payload", "-"); code != 0 || !strings.Contains(out, `"echo":"stdin"`) {
		t.Errorf("invoke guest - = %d %q", code, out)
	}
	// A function error exits 1 and says so on stderr.
	if code, _, errs := gust(t, n, dir, "", "invoke", "guest", "--payload", `{"exit":4}`); code != 1 || !strings.Contains(errs, "exit") {
		t.Errorf("invoke failing guest = %d %q, want 1 and the error", code, errs)
	}

	// ls and get, for people and for scripts.
	code, out, _ = gust(t, n, dir, "", "ls")
	if code != 0 || !strings.Contains(out, "hello") || !strings.Contains(out, "guest") || !strings.Contains(out, "NAME") {
		t.Errorf("ls = %d\n%s", code, out)
	}
	code, out, _ = gust(t, n, dir, "", "ls", "-o", "json")
	var list []struct{ FunctionName string }
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Errorf("ls -o json = %d %s", code, out)
	}
	code, out, _ = gust(t, n, dir, "", "get", "guest", "-o", "json")
	var got struct{ Configuration struct{ MemorySize int } }
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Configuration.MemorySize != 256 {
		t.Errorf("get -o json = %d %s", code, out)
	}

	// logs: the framed log of the invocations above arrives.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, errs = gust(t, n, dir, "", "logs", "hello")
		if code == 0 && strings.Contains(out, "REPORT RequestId") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs hello = %d %q %q, want a REPORT line", code, out, errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out, "START RequestId") || !strings.Contains(out, "END RequestId") {
		t.Errorf("logs hello lacks START/END:\n%s", out)
	}

	// rm, then the function is gone; errors exit non-zero.
	if code, _, errs := gust(t, n, dir, "", "rm", "guest"); code != 0 {
		t.Errorf("rm guest = %d %s", code, errs)
	}
	if code, _, errs := gust(t, n, dir, "", "get", "guest"); code == 0 || !strings.Contains(errs, "ResourceNotFoundException") {
		t.Errorf("get removed = %d %q, want failure naming ResourceNotFoundException", code, errs)
	}
	if code, _, _ := gust(t, n, dir, "", "deploy", "bad", filepath.Join(t.TempDir(), "missing.wasm")); code == 0 {
		t.Errorf("deploy of a missing file exited 0")
	}
}

// TestCLIUsageAndScaling: usage, reserved and provisioned concurrency and
// the keep-alive through the CLI against a real node.
func TestCLIUsageAndScaling(t *testing.T) {
	buildGuests(t)
	dir := t.TempDir()
	n := startNode(t, dir)
	wasmFile := filepath.Join(t.TempDir(), "hello.wasm")
	os.WriteFile(wasmFile, guests.hello, 0o644)
	if code, out, errs := gust(t, n, dir, "", "deploy", "hello", wasmFile, "--idle-timeout", "30s", "--reserved-concurrency", "5", "--provisioned", "2"); code != 0 {
		t.Fatalf("deploy = %d\n%s%s", code, out, errs)
	}
	waitUntil(t, "two provisioned instances", func() bool { return idleOf(n, "hello") == 2 })
	code, out, _ := gust(t, n, dir, "", "get", "hello")
	for _, want := range []string{"30s", "5"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("get = %d, lacks %q:\n%s", code, want, out)
		}
	}
	for i := 0; i < 4; i++ {
		if code, _, errs := gust(t, n, dir, "", "invoke", "hello"); code != 0 {
			t.Fatalf("invoke = %d %s", code, errs)
		}
	}
	code, out, errs := gust(t, n, dir, "", "usage", "--since", "1h", "-o", "json")
	var rep struct {
		Total struct{ Requests int64 }
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Total.Requests != 4 {
		t.Errorf("usage -o json = %d %s %s, want 4 requests", code, out, errs)
	}
	code, out, _ = gust(t, n, dir, "", "usage")
	if code != 0 || !strings.Contains(out, "hello") || !strings.Contains(out, "TOTAL") {
		t.Errorf("usage = %d\n%s", code, out)
	}
}
