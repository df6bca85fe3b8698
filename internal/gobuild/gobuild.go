// Package gobuild compiles Go packages into WebAssembly modules that Gust's
// wasm runtime can run: reactor modules for functions written against the
// Go SDK (sdk/go), and plain WASI commands.
//
// It shells out to the go tool found on PATH with GOOS=wasip1 GOARCH=wasm.
// The CLI uses it for `gust deploy NAME ./dir`, tests use it to build guest
// programs, and a node uses it to deploy the bundled examples.
package gobuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoGo is returned (wrapped) when no go tool is found on PATH.
var ErrNoGo = errors.New("gobuild: the go tool was not found on PATH; install Go (https://go.dev/dl/) to build Go functions")

// Build builds the Go main package in dir as a wasip1 reactor module
// (-buildmode=c-shared) and returns the module's bytes. A reactor exports
// _initialize, which runs the Go runtime's initialisation and every
// package's init functions, plus each //go:wasmexport function; main.main
// is never run. Functions written with the Gust SDK register their handler
// from an init function for that reason.
//
// If the build fails the error carries go's output.
func Build(ctx context.Context, dir string) ([]byte, error) {
	return build(ctx, dir, "-buildmode=c-shared")
}

// BuildCommand builds the Go main package in dir as an ordinary wasip1
// command module (exporting _start) and returns the module's bytes.
func BuildCommand(ctx context.Context, dir string) ([]byte, error) {
	return build(ctx, dir)
}

func build(ctx context.Context, dir string, flags ...string) ([]byte, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoGo, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("gobuild: %w", err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("gobuild: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("gobuild: %s is not a directory", dir)
	}

	tmp, err := os.MkdirTemp("", "gust-gobuild-")
	if err != nil {
		return nil, fmt.Errorf("gobuild: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "main.wasm")

	args := append([]string{"build", "-trimpath", "-o", out}, flags...)
	args = append(args, ".")
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("gobuild: building %s: %w", dir, ctxErr)
		}
		msg := strings.TrimSpace(output.String())
		if msg == "" {
			return nil, fmt.Errorf("gobuild: building %s: %w", dir, err)
		}
		return nil, fmt.Errorf("gobuild: building %s: %w\n%s", dir, err, msg)
	}
	code, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("gobuild: reading build output: %w", err)
	}
	return code, nil
}
