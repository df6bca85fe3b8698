package node_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/gustfaas/gust/internal/gobuild"
	"github.com/gustfaas/gust/internal/node"
	"github.com/gustfaas/gust/internal/sandbox/process"
)

// repoRoot is the repository root, found from this file's location.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Guests are built once per test binary.
var guests struct {
	once                  sync.Once
	err                   error
	hello, httpapi, guest []byte
}

// Hand-written modules: a WASI-less command whose _start traps, and one
// whose _start loops forever.
var (
	trapWasm = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: func()
		0x03, 0x02, 0x01, 0x00, // func 0: type 0
		0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // export _start
		0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // code: unreachable
	}
	loopWasm = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
		0x03, 0x02, 0x01, 0x00,
		0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00,
		0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop { br 0 }
	}
)

func buildGuests(t testing.TB) {
	t.Helper()
	guests.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		root := repoRoot(t)
		if guests.hello, guests.err = gobuild.Build(ctx, filepath.Join(root, "examples", "hello")); guests.err != nil {
			return
		}
		if guests.httpapi, guests.err = gobuild.Build(ctx, filepath.Join(root, "examples", "httpapi")); guests.err != nil {
			return
		}
		guests.guest, guests.err = gobuild.BuildCommand(ctx, filepath.Join(root, "internal", "node", "testdata", "guest"))
	})
	if guests.err != nil {
		t.Fatalf("build test guests: %v", guests.err)
	}
}

// startNode starts a node on a random loopback port with dataDir.
func startNode(t testing.TB, dataDir string) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Config{Listen: "127.0.0.1:0", DataDir: dataDir, GraceTimeout: 10 * time.Second, CacheDir: sharedCache,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// lambdaClient is the official AWS SDK client pointed at n, with
// credentials read from the file the node wrote.
func lambdaClient(t testing.TB, n *node.Node) *lambda.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithSharedCredentialsFiles([]string{n.CredentialsPath()}),
		config.WithSharedConfigFiles([]string{filepath.Join(t.TempDir(), "none")}),
		config.WithSharedConfigProfile("default"),
	)
	if err != nil {
		t.Fatalf("load aws config: %v", err)
	}
	return lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(n.URL())
		o.RetryMaxAttempts = 1
	})
}

// zipOf returns a zip archive holding files (name -> content).
func zipOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, b := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sharedCache is one compiled-code cache for the nodes of this test binary,
// so each module is compiled once (TestRestart uses its own, to see that a
// restart does not recompile).
var sharedCache string

func TestMain(m *testing.M) {
	// Function instances of the process runtime start as this test binary
	// in helper mode.
	process.RunHelperIfRequested()
	dir, err := os.MkdirTemp("", "gust-test-cache-")
	if err != nil {
		panic(err)
	}
	sharedCache = dir
	// Keep the developer's own AWS settings out of the tests.
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		os.Unsetenv(k)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// role is the execution role passed on CreateFunction (the SDK requires
// one; Gust stores it and does not use it).
const role = "arn:aws:iam::000000000000:role/gust"

// mkTemp makes a data directory that outlives a single test (for the fuzz
// node, shared across iterations).
func mkTemp() (string, error) { return os.MkdirTemp("", "gust-fuzz-") }

// lambdaClientNoCleanup is lambdaClient for callers outside a test's
// lifetime (it registers nothing on tb).
func lambdaClientNoCleanup(tb testing.TB, n *node.Node) *lambda.Client {
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithSharedCredentialsFiles([]string{n.CredentialsPath()}),
	)
	if err != nil {
		tb.Fatalf("load aws config: %v", err)
	}
	return lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(n.URL())
		o.RetryMaxAttempts = 1
	})
}

// createHello deploys the hello example.
func createHello(c *lambda.Client) (*lambda.CreateFunctionOutput, error) {
	return c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String("hello"), Role: aws.String(role), Runtime: types.Runtime("wasm"),
		Code: &types.FunctionCode{ZipFile: guests.hello},
	})
}

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
