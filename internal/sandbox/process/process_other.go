//go:build !linux

package process

import (
	"context"
	"errors"
	"runtime"

	"github.com/gustfaas/gust/internal/sandbox"
)

// ErrUnsupportedOS is returned by New on systems other than Linux.
var ErrUnsupportedOS = errors.New("process: the process runtime needs Linux (this is " + runtime.GOOS + ")")

// ErrClosed is returned by a Runtime used after Close.
var ErrClosed = errors.New("process: closed")

// HelperConfig says how instances are started (Linux only).
type HelperConfig struct {
	Path       string
	Unconfined bool
}

// Options configures a Runtime (Linux only).
type Options struct {
	WorkDir   string
	Helper    HelperConfig
	Region    string
	Account   string
	UIDBase   int
	UIDCount  int
	UID, GID  int
	PidsLimit int
	TmpMB     int
}

// Runtime is unavailable on this system.
type Runtime struct{}

// InitError reports an instance that failed to initialise.
type InitError struct {
	Func *sandbox.FunctionError
	Log  []byte
}

func (e *InitError) Error() string { return "process: init failed: " + e.Func.Error() }

// Unwrap lets errors.As find the *sandbox.FunctionError.
func (e *InitError) Unwrap() error { return e.Func }

// New fails: the process runtime needs Linux.
func New(ctx context.Context, opts Options) (*Runtime, error) { return nil, ErrUnsupportedOS }

// RunHelperIfRequested does nothing on this system.
func RunHelperIfRequested() {}

// Runtimes lists nothing.
func (rt *Runtime) Runtimes() []string { return nil }

// Unsupported lists nothing.
func (rt *Runtime) Unsupported() map[string]string { return nil }

// Isolation lists nothing.
func (rt *Runtime) Isolation() []string { return nil }

// Load fails.
func (rt *Runtime) Load(ctx context.Context, spec sandbox.Spec) (sandbox.Program, error) {
	return nil, ErrUnsupportedOS
}

// Close does nothing.
func (rt *Runtime) Close(ctx context.Context) error { return nil }
