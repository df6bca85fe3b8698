// Package control is the control plane's write path: it turns a deploy
// (create, update code or configuration, delete) into validated, compiled,
// durably stored state. Code is compiled before it is stored, so a deploy
// that succeeds never leaves a function that cannot load, and no invocation
// pays for compilation.
package control

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/gustfaas/gust/internal/registry"
)

// Limits on uploaded code, as on Lambda.
const (
	MaxZipBytes      = 50 << 20  // a zip upload
	MaxUnzippedBytes = 250 << 20 // its unpacked contents
)

// CodeError is code that cannot be accepted; the message names the problem.
type CodeError struct{ Reason string }

func (e *CodeError) Error() string { return e.Reason }

var wasmMagic = []byte("\x00asm")

// ExtractCode turns Code.ZipFile into a wasm module: a raw module is taken
// as is; a zip must hold exactly one .wasm file at its root.
func ExtractCode(b []byte) ([]byte, error) {
	switch {
	case len(b) == 0:
		return nil, &CodeError{"Code.ZipFile is empty: send a zip holding one .wasm file, or a wasm module"}
	case len(b) > MaxZipBytes:
		return nil, &CodeError{fmt.Sprintf("Unzipped size must be smaller than %d bytes; Code.ZipFile is %d bytes", MaxZipBytes, len(b))}
	case bytes.HasPrefix(b, wasmMagic):
		return b, nil
	case !bytes.HasPrefix(b, []byte("PK")):
		return nil, &CodeError{"Could not unzip uploaded file. Code.ZipFile is neither a zip archive nor a WebAssembly module (no \\0asm or PK header)"}
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, &CodeError{fmt.Sprintf("Could not unzip uploaded file: %v", err)}
	}
	var found []*zip.File
	var total uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if f.FileInfo().IsDir() || !strings.HasSuffix(strings.ToLower(f.Name), ".wasm") {
			continue
		}
		if path.Dir(strings.TrimPrefix(f.Name, "./")) != "." {
			continue // only the root counts
		}
		found = append(found, f)
	}
	if total > MaxUnzippedBytes {
		return nil, &CodeError{fmt.Sprintf("Unzipped size must be smaller than %d bytes", MaxUnzippedBytes)}
	}
	switch len(found) {
	case 0:
		return nil, &CodeError{"the zip holds no .wasm file at its root: runtime wasm needs exactly one"}
	case 1:
	default:
		names := make([]string, len(found))
		for i, f := range found {
			names[i] = f.Name
		}
		return nil, &CodeError{fmt.Sprintf("the zip holds %d .wasm files at its root (%s): runtime wasm needs exactly one", len(found), strings.Join(names, ", "))}
	}
	rc, err := found[0].Open()
	if err != nil {
		return nil, &CodeError{fmt.Sprintf("Could not unzip %s: %v", found[0].Name, err)}
	}
	defer rc.Close()
	mod, err := io.ReadAll(io.LimitReader(rc, MaxUnzippedBytes+1))
	if err != nil {
		return nil, &CodeError{fmt.Sprintf("Could not unzip %s: %v", found[0].Name, err)}
	}
	if len(mod) > MaxUnzippedBytes {
		return nil, &CodeError{fmt.Sprintf("Unzipped size must be smaller than %d bytes", MaxUnzippedBytes)}
	}
	return mod, nil
}

// Compiler validates and compiles code ahead of storage.
type Compiler interface {
	Prepare(ctx context.Context, fn *registry.Function, code []byte) (kind string, err error)
}

// Store is the registry surface control writes through.
type Store interface {
	PutCode(ctx context.Context, code []byte) (string, error)
	Code(ctx context.Context, digest string) ([]byte, error)
	Create(ctx context.Context, f *registry.Function) (*registry.Function, error)
	Update(ctx context.Context, name, revisionID string, change func(*registry.Function) error) (*registry.Function, error)
	UpdateSettings(ctx context.Context, name string, change func(*registry.Function) error) (*registry.Function, error)
	Delete(ctx context.Context, name string) error
	Get(name string) (*registry.Function, bool)
	Publish(ctx context.Context, name, codeDigest, revisionID, description string) (*registry.Function, error)
	UpdateVersion(ctx context.Context, name, version string, change func(*registry.Function) error) (*registry.Function, error)
	DeleteVersion(ctx context.Context, name, version string) error
	CreateAlias(ctx context.Context, a *registry.Alias) (*registry.Alias, error)
	UpdateAlias(ctx context.Context, name, alias, revisionID string, change func(*registry.Alias) error) (*registry.Alias, error)
	UpdateAliasSettings(ctx context.Context, name, alias string, change func(*registry.Alias) error) (*registry.Alias, error)
	DeleteAlias(ctx context.Context, name, alias string) error
}

// Control performs deploys. Safe for concurrent use.
type Control struct {
	store     Store
	comp      Compiler
	supported func(runtime string) error
}

// New returns a Control writing to store and compiling with comp.
// supported, if not nil, says whether this node can run a runtime (an
// error names why not; it should be a *registry.ValidationError).
func New(store Store, comp Compiler, supported func(runtime string) error) *Control {
	return &Control{store: store, comp: comp, supported: supported}
}

// Supported says whether this node can run runtime (nil) or why not.
func (c *Control) Supported(runtime string) error {
	if c.supported == nil {
		return nil
	}
	return c.supported(runtime)
}

// code turns Code.ZipFile into what the function's runtime loads: a wasm
// module for wasm, the zip itself for process runtimes.
func (c *Control) code(runtime string, zipFile []byte) ([]byte, error) {
	if c.supported != nil {
		if err := c.supported(runtime); err != nil {
			return nil, err
		}
	}
	if registry.IsWasm(runtime) {
		return ExtractCode(zipFile)
	}
	switch {
	case len(zipFile) == 0:
		return nil, &CodeError{"Code.ZipFile is empty: send a zip of the function's code"}
	case len(zipFile) > MaxZipBytes:
		return nil, &CodeError{fmt.Sprintf("Code.ZipFile is %d bytes; it must be smaller than %d bytes", len(zipFile), MaxZipBytes)}
	case !bytes.HasPrefix(zipFile, []byte("PK")):
		return nil, &CodeError{fmt.Sprintf("Could not unzip uploaded file: runtime %s takes a zip archive", runtime)}
	}
	return zipFile, nil
}

// Create validates fn, compiles zipFile's module, stores the code and then
// the function.
func (c *Control) Create(ctx context.Context, fn *registry.Function, zipFile []byte) (*registry.Function, error) {
	fn = fn.Clone()
	if err := registry.Normalize(fn); err != nil {
		return nil, err
	}
	if _, exists := c.store.Get(fn.Name); exists {
		return nil, fmt.Errorf("%w: %s", registry.ErrConflict, fn.Name)
	}
	code, err := c.code(fn.Runtime, zipFile)
	if err != nil {
		return nil, err
	}
	fn.CodeDigest = registry.Digest(code)
	fn.CodeSize = int64(len(code))
	kind, err := c.comp.Prepare(ctx, fn, code)
	if err != nil {
		return nil, err
	}
	fn.Kind = kind
	if _, err := c.store.PutCode(ctx, code); err != nil {
		return nil, err
	}
	return c.store.Create(ctx, fn)
}

// UpdateCode replaces a function's code. With dryRun the code is checked
// and compiled but nothing is stored; the result is what would be.
func (c *Control) UpdateCode(ctx context.Context, name, revisionID string, zipFile []byte, dryRun bool) (*registry.Function, error) {
	cur, ok := c.store.Get(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s", registry.ErrNotFound, name)
	}
	code, err := c.code(cur.Runtime, zipFile)
	if err != nil {
		return nil, err
	}
	next := cur.Clone()
	next.CodeDigest = registry.Digest(code)
	next.CodeSize = int64(len(code))
	kind, err := c.comp.Prepare(ctx, next, code)
	if err != nil {
		return nil, err
	}
	if dryRun {
		if revisionID != "" && revisionID != cur.RevisionID {
			return nil, fmt.Errorf("%w: the revision id for %s is %s", registry.ErrRevisionMismatch, name, cur.RevisionID)
		}
		next.Kind = kind
		return next, nil
	}
	if _, err := c.store.PutCode(ctx, code); err != nil {
		return nil, err
	}
	return c.store.Update(ctx, name, revisionID, func(f *registry.Function) error {
		f.CodeDigest = next.CodeDigest
		f.CodeSize = next.CodeSize
		f.Kind = kind
		return nil
	})
}

// UpdateConfig changes a function's configuration. The new configuration
// is validated and its program prepared before it is stored.
func (c *Control) UpdateConfig(ctx context.Context, name, revisionID string, change func(*registry.Function) error) (*registry.Function, error) {
	cur, ok := c.store.Get(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s", registry.ErrNotFound, name)
	}
	next := cur.Clone()
	if err := change(next); err != nil {
		return nil, err
	}
	next.Name = cur.Name
	if err := registry.Normalize(next); err != nil {
		return nil, err
	}
	if next.Runtime != cur.Runtime {
		if c.supported != nil {
			if err := c.supported(next.Runtime); err != nil {
				return nil, err
			}
		}
		if registry.IsWasm(next.Runtime) != registry.IsWasm(cur.Runtime) {
			return nil, &registry.ValidationError{Field: "runtime", Message: fmt.Sprintf("cannot change runtime from %s to %s with the same code: update the code and the runtime together by deleting and creating the function", cur.Runtime, next.Runtime)}
		}
	}
	if programChanged(cur, next) {
		code, err := c.store.Code(ctx, next.CodeDigest)
		if err != nil {
			return nil, err
		}
		if _, err := c.comp.Prepare(ctx, next, code); err != nil {
			return nil, err
		}
	}
	return c.store.Update(ctx, name, revisionID, change)
}

// UpdateSettings changes function-level settings that belong to no
// version (tags, reserved and $LATEST's provisioned concurrency, the URL
// configuration); the function keeps its RevisionId.
func (c *Control) UpdateSettings(ctx context.Context, name string, change func(*registry.Function) error) (*registry.Function, error) {
	return c.store.UpdateSettings(ctx, name, change)
}

// programChanged reports whether a configuration change reaches the loaded
// program (scaling settings, descriptions, tags and URL settings do not,
// so they need no compilation).
func programChanged(a, b *registry.Function) bool { return !registry.SameProgram(a, b) }

// Delete removes a function with its versions and aliases.
func (c *Control) Delete(ctx context.Context, name string) error {
	return c.store.Delete(ctx, name)
}

// Publish publishes $LATEST as a new version (or returns the newest version
// when nothing changed since). codeDigest is hex; empty skips the check.
func (c *Control) Publish(ctx context.Context, name, codeDigest, revisionID, description string) (*registry.Function, error) {
	if len(description) > registry.MaxDescription {
		return nil, &registry.ValidationError{Field: "description", Message: fmt.Sprintf("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to %d", registry.MaxDescription)}
	}
	return c.store.Publish(ctx, name, codeDigest, revisionID, description)
}

// UpdateVersion changes a version's (or $LATEST's) scaling settings.
func (c *Control) UpdateVersion(ctx context.Context, name, version string, change func(*registry.Function) error) (*registry.Function, error) {
	if version == "" || version == registry.Latest {
		return c.UpdateSettings(ctx, name, change)
	}
	return c.store.UpdateVersion(ctx, name, version, change)
}

// DeleteVersion deletes a published version no alias uses, with its
// asynchronous invocation settings.
func (c *Control) DeleteVersion(ctx context.Context, name, version string) error {
	if err := c.store.DeleteVersion(ctx, name, version); err != nil {
		return err
	}
	return c.forgetQualifier(ctx, name, version)
}

// forgetQualifier drops the settings $LATEST keeps for a deleted version or
// alias, so that one created again under the same name starts clean.
func (c *Control) forgetQualifier(ctx context.Context, name, qualifier string) error {
	if f, ok := c.store.Get(name); !ok || f.EventInvoke[qualifier] == nil {
		return nil
	}
	_, err := c.store.UpdateSettings(ctx, name, func(f *registry.Function) error {
		delete(f.EventInvoke, qualifier)
		return nil
	})
	return err
}

// CreateAlias creates an alias.
func (c *Control) CreateAlias(ctx context.Context, a *registry.Alias) (*registry.Alias, error) {
	return c.store.CreateAlias(ctx, a)
}

// UpdateAlias moves or changes an alias. If revisionID is set it must be
// the alias's current one.
func (c *Control) UpdateAlias(ctx context.Context, name, alias, revisionID string, change func(*registry.Alias) error) (*registry.Alias, error) {
	return c.store.UpdateAlias(ctx, name, alias, revisionID, change)
}

// UpdateAliasSettings changes an alias's provisioned concurrency or URL
// configuration; the alias keeps its RevisionId.
func (c *Control) UpdateAliasSettings(ctx context.Context, name, alias string, change func(*registry.Alias) error) (*registry.Alias, error) {
	return c.store.UpdateAliasSettings(ctx, name, alias, change)
}

// DeleteAlias deletes an alias with its asynchronous invocation settings.
func (c *Control) DeleteAlias(ctx context.Context, name, alias string) error {
	if err := c.store.DeleteAlias(ctx, name, alias); err != nil {
		return err
	}
	return c.forgetQualifier(ctx, name, alias)
}

// IsClientError reports whether err is the caller's fault (bad input).
func IsClientError(err error) bool {
	var ce *CodeError
	var ve *registry.ValidationError
	return errors.As(err, &ce) || errors.As(err, &ve)
}
