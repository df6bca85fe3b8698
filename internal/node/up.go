package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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

// deployExamples builds and deploys every Go package directly under dir,
// skipping those whose code is already current.
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
		name := e.Name()
		if _, err := os.Stat(filepath.Join(dir, name, "main.go")); err != nil {
			continue
		}
		fmt.Fprintf(progress, "gust: building example %s...\n", name)
		code, err := gobuild.Build(ctx, filepath.Join(dir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("build %s: %w", name, err))
			continue
		}
		if cur, ok := n.reg.Get(name); ok {
			if cur.CodeDigest != registry.Digest(code) {
				if _, err := n.control.UpdateCode(ctx, name, "", code); err != nil {
					errs = append(errs, fmt.Errorf("update %s: %w", name, err))
					continue
				}
			}
		} else if _, err := n.control.Create(ctx, &registry.Function{Name: name, Runtime: "wasm", Description: "Gust example " + name}, code); err != nil {
			errs = append(errs, fmt.Errorf("deploy %s: %w", name, err))
			continue
		}
		deployed = append(deployed, name)
	}
	if len(deployed) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no Go packages found under %s", dir))
	}
	return deployed, errors.Join(errs...)
}
