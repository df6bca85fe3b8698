package node_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/gustfaas/gust/internal/node"
)

// cacheState lists the files under dir with their sizes and mtimes.
func cacheState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		out[p] = fmt.Sprint(info.ModTime(), "/", info.Size())
		return nil
	})
	return out
}

// TestRestart: a node restarted on the same data directory serves every
// function it had, with no redeploy and no recompilation.
func TestRestart(t *testing.T) {
	buildGuests(t)
	dir := t.TempDir()
	ctx := context.Background()

	n1, err := node.Start(ctx, node.Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := lambdaClient(t, n1)
	deploy(t, c, "hello", guests.hello)
	deploy(t, c, "guest", guests.guest)
	for _, fn := range []string{"hello", "guest"} {
		if out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"echo":1}`)}); err != nil || out.FunctionError != nil {
			t.Fatalf("Invoke(%s) before restart: %v %s", fn, err, out.Payload)
		}
	}
	id1, _ := n1.AdminKey()
	if err := n1.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	cacheDir := filepath.Join(dir, "cache")
	before := cacheState(t, cacheDir)
	if len(before) == 0 {
		t.Fatalf("no compiled code cached under %s", cacheDir)
	}

	n2 := startNode(t, dir)
	if id2, _ := n2.AdminKey(); id2 != id1 {
		t.Errorf("admin key changed across restart: %s -> %s", id1, id2)
	}
	c2 := lambdaClient(t, n2)
	out, err := c2.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello"), Payload: []byte(`{"name":"again"}`)})
	if err != nil || !strings.Contains(string(out.Payload), "Hello, again!") {
		t.Fatalf("Invoke(hello) after restart = %s, %v", out.Payload, err)
	}
	out, err = c2.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest"), Payload: []byte(`{"echo":"x"}`)})
	if err != nil || !strings.Contains(string(out.Payload), `"echo":"x"`) {
		t.Fatalf("Invoke(guest) after restart = %s, %v", out.Payload, err)
	}
	after := cacheState(t, cacheDir)
	for p, st := range after {
		if before[p] != st {
			t.Errorf("compiled-code cache changed after restart (a recompile): %s", p)
		}
	}
}

// TestGracefulShutdown: an invocation in flight when shutdown starts
// finishes and answers.
func TestGracefulShutdown(t *testing.T) {
	buildGuests(t)
	dir := t.TempDir()
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{Listen: "127.0.0.1:0", DataDir: dir, GraceTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := lambdaClient(t, n)
	deploy(t, c, "guest", guests.guest)
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("guest"), Timeout: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	started := make(chan struct{})
	var payload string
	var invokeErr error
	go func() {
		defer wg.Done()
		close(started)
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest"), Payload: []byte(`{"sleepMs":1500,"echo":"done"}`)})
		invokeErr = err
		if out != nil {
			payload = string(out.Payload)
		}
	}()
	<-started
	// Wait until the invocation is running in the engine.
	deadline := time.Now().Add(10 * time.Second)
	for n.ActiveInvocations() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n.ActiveInvocations() == 0 {
		t.Fatal("the invocation never started")
	}
	if err := n.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	wg.Wait()
	if invokeErr != nil || !strings.Contains(payload, `"echo":"done"`) {
		t.Errorf("in-flight invocation = %q, %v; want it to finish", payload, invokeErr)
	}
}

func TestCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	info, err := os.Stat(n.CredentialsPath())
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("credentials mode = %v, want 0600", info.Mode().Perm())
	}
	b, _ := os.ReadFile(n.CredentialsPath())
	id, _ := n.AdminKey()
	if !strings.Contains(string(b), "[default]") || !strings.Contains(string(b), id) {
		t.Errorf("credentials file = %q, want profile default with key %s", b, id)
	}
}
