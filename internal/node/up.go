package node

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/gustfaas/gust/internal/gobuild"
	"github.com/gustfaas/gust/internal/meter"
	"github.com/gustfaas/gust/internal/registry"
)

// UpOptions are the `gust up` flags.
type UpOptions struct {
	Listen       string
	DataDir      string
	GraceTimeout time.Duration
	// ExamplesDir, when set, is a directory whose subdirectories are Go
	// SDK functions to build and deploy at start (the repository's
	// examples/). Each is deployed under its directory's name.
	ExamplesDir string
	// Verbose logs operational messages to stderr.
	Verbose bool
	// IdleTimeout and MemoryMB tune the engine (zero: defaults).
	IdleTimeout time.Duration
	MemoryMB    int
	// Prices cost metered usage (zero: Lambda's list prices).
	Prices meter.Prices
}

// Up runs a node until ctx ends, printing where it listens and where its
// credentials are; then it shuts down gracefully.
func Up(ctx context.Context, o UpOptions, stdout, stderr io.Writer) error {
	level := slog.LevelWarn
	if o.Verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	n, err := Start(ctx, Config{Listen: o.Listen, DataDir: o.DataDir, GraceTimeout: o.GraceTimeout, Logger: logger,
		MemoryMB: o.MemoryMB, IdleTimeout: o.IdleTimeout, Prices: o.Prices})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gust is up on %s\n", n.URL())
	fmt.Fprintf(stdout, "  data:        %s\n", o.DataDir)
	fmt.Fprintf(stdout, "  credentials: %s (AWS shared-credentials format, profile default)\n", n.CredentialsPath())
	fmt.Fprintf(stdout, "  instances:   memory budget %d MB, idle keep-alive %s\n", n.cfg.MemoryMB, n.eng.IdleTimeout())
	if n.prt != nil {
		fmt.Fprintf(stdout, "  runtimes:    wasm, %s\n", strings.Join(n.prt.Runtimes(), ", "))
		for rt, why := range n.prt.Unsupported() {
			fmt.Fprintf(stdout, "               %s unavailable: %s\n", rt, why)
		}
		fmt.Fprintf(stdout, "  isolation of process runtimes:\n")
		for _, l := range n.prt.Isolation() {
			fmt.Fprintf(stdout, "    %s\n", l)
		}
	} else {
		fmt.Fprintf(stdout, "  runtimes:    wasm only (process runtime unavailable: %v)\n", n.processErr)
	}
	var deployed []string
	if o.ExamplesDir != "" {
		if _, err := os.Stat(o.ExamplesDir); err != nil {
			return errors.Join(fmt.Errorf("--examples needs the examples directory of a Gust checkout (run from the repository root): %w", err), n.Shutdown(context.Background()))
		}
		deployed, err = deployExamples(ctx, n, o.ExamplesDir, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "gust: examples: %v\n", err)
		}
	}
	if len(deployed) > 0 {
		fmt.Fprintf(stdout, "\nexamples deployed:\n")
		for _, name := range deployed {
			fmt.Fprintf(stdout, "  %s\n", name)
		}
		fmt.Fprintf(stdout, "\ntry:\n")
		for _, name := range deployed {
			switch name {
			case "hello":
				fmt.Fprintf(stdout, "  curl -s '%s/fn/hello?name=Ada'\n", n.URL())
			case "lambda-go", "lambda-node", "lambda-python":
				fmt.Fprintf(stdout, "  curl -s '%s/fn/%s?name=Ada'\n", n.URL(), name)
			case "httpapi":
				fmt.Fprintf(stdout, "  curl -s -X POST %s/fn/httpapi/todos -d '{\"title\":\"try gust\"}'\n", n.URL())
				fmt.Fprintf(stdout, "  curl -s %s/fn/httpapi/todos\n", n.URL())
			default:
				fmt.Fprintf(stdout, "  curl -s %s/fn/%s\n", n.URL(), name)
			}
		}
	}
	fmt.Fprintf(stdout, "\nAWS SDKs and the aws CLI: AWS_SHARED_CREDENTIALS_FILE=%s aws lambda list-functions --endpoint-url %s --region us-east-1\n", n.CredentialsPath(), n.URL())
	fmt.Fprintf(stdout, "press Ctrl-C to stop\n")

	select {
	case <-ctx.Done():
	case err := <-n.Done():
		if err != nil {
			return fmt.Errorf("http server stopped: %w", err)
		}
	}
	fmt.Fprintf(stdout, "gust: shutting down (in-flight invocations get up to %s)\n", n.cfg.GraceTimeout)
	return n.Shutdown(context.Background())
}

// example is one deployable example: how to package it and for which
// runtime.
type example struct {
	name, runtime, handler string
	pack                   func(ctx context.Context, dir string) ([]byte, error)
}

// exampleOf tells what kind of function the directory holds: a Lambda
// handler (Go with aws-lambda-go, Node.js, Python) or a Gust SDK package.
func exampleOf(dir string) (example, bool) {
	name := filepath.Base(dir)
	has := func(f string) bool { _, err := os.Stat(filepath.Join(dir, f)); return err == nil }
	switch {
	case has("index.mjs") || has("index.js"):
		return example{name, "nodejs20.x", "index.handler", zipDir}, true
	case has("app.py"):
		return example{name, "python3.11", "app.handler", zipDir}, true
	case has("main.go"):
		src, _ := os.ReadFile(filepath.Join(dir, "main.go"))
		if strings.Contains(string(src), "github.com/aws/aws-lambda-go/lambda") {
			return example{name, "provided.al2023", "", buildBootstrap}, true
		}
		return example{name, "wasm", "", gobuild.Build}, true
	}
	return example{}, false
}

// buildBootstrap builds a Go Lambda function for Linux as bootstrap, zipped.
func buildBootstrap(ctx context.Context, dir string) ([]byte, error) {
	out, err := os.MkdirTemp("", "gust-example-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	bin := filepath.Join(out, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w: %s", err, msg)
	}
	return zipFiles(map[string]string{"bootstrap": bin})
}

// zipDir zips the regular files directly in dir (the examples are flat).
func zipDir(_ context.Context, dir string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".md") {
			files[e.Name()] = filepath.Join(dir, e.Name())
		}
	}
	return zipFiles(files)
}

func zipFiles(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		info, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(info.Mode().Perm())
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(b); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// deployExamples builds and deploys every example directly under dir,
// skipping those whose code is already current and those whose runtime
// this host cannot run.
func deployExamples(ctx context.Context, n *Node, dir string, progress io.Writer) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var deployed []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		ex, ok := exampleOf(filepath.Join(dir, e.Name()))
		if !ok {
			continue
		}
		if !registry.IsWasm(ex.runtime) {
			if err := n.control.Supported(ex.runtime); err != nil {
				fmt.Fprintf(progress, "gust: skipping example %s: %v\n", ex.name, err)
				continue
			}
		}
		fmt.Fprintf(progress, "gust: building example %s (%s)...\n", ex.name, ex.runtime)
		code, err := ex.pack(ctx, filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("build %s: %w", ex.name, err))
			continue
		}
		if cur, ok := n.reg.Get(ex.name); ok {
			if cur.CodeDigest != registry.Digest(code) {
				if _, err := n.control.UpdateCode(ctx, ex.name, "", code, false); err != nil {
					errs = append(errs, fmt.Errorf("update %s: %w", ex.name, err))
					continue
				}
			}
		} else if _, err := n.control.Create(ctx, &registry.Function{Name: ex.name, Runtime: ex.runtime, Handler: ex.handler, Description: "Gust example " + ex.name}, code); err != nil {
			errs = append(errs, fmt.Errorf("deploy %s: %w", ex.name, err))
			continue
		}
		deployed = append(deployed, ex.name)
	}
	if len(deployed) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no examples found under %s", dir))
	}
	return deployed, errors.Join(errs...)
}
