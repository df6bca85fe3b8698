package cli

// Packaging: what `gust deploy NAME PATH` uploads for each runtime.

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/gustfaas/gust/internal/gobuild"
)

// runtimeWasm is the runtime of Gust's own WebAssembly functions, and
// deploy's default.
const runtimeWasm = "wasm"

// packaging is how a runtime's code is laid out.
type packaging int

const (
	// packWasm: a wasm module, a zip holding one, or a Go SDK package
	// built for wasip1.
	packWasm packaging = iota
	// packBootstrap: a zip with an executable bootstrap at its root
	// (provided.al2023, provided.al2, provided).
	packBootstrap
	// packSource: a zip of source files run by the runtime's interpreter
	// (nodejs*, python*).
	packSource
)

// packagingOf returns how code for runtime rt is packaged. Runtimes are
// told apart by family, not by version: the node decides which versions
// it runs.
func packagingOf(rt string) (packaging, error) {
	switch {
	case rt == runtimeWasm:
		return packWasm, nil
	case rt == "provided" || strings.HasPrefix(rt, "provided."):
		return packBootstrap, nil
	case strings.HasPrefix(rt, "nodejs"), strings.HasPrefix(rt, "python"):
		return packSource, nil
	}
	return 0, usagef("--runtime %q: want wasm, provided.al2023, provided.al2, provided, nodejs20.x, nodejs22.x, "+
		"python3.11, python3.12 or python3.13", rt)
}

// defaultHandler is the handler a new function of runtime rt gets when
// --handler is absent: Lambda's conventional module names.
func defaultHandler(rt string) string {
	switch {
	case strings.HasPrefix(rt, "nodejs"):
		return "index.handler"
	case strings.HasPrefix(rt, "python"):
		return "app.handler"
	}
	return ""
}

// packager turns a deploy PATH into the bytes sent as Code.ZipFile.
type packager struct {
	// buildWasm builds a Go SDK package to a wasm module.
	buildWasm BuildFunc
	// buildBootstrap builds a Go main package to a Linux executable.
	buildBootstrap BuildFunc
	// progress reports a step to a user watching a terminal.
	progress func(format string, args ...any)
}

// pack returns the code to deploy from p for runtime rt.
func (pk packager) pack(ctx context.Context, rt, p string) ([]byte, error) {
	how, err := packagingOf(rt)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	switch how {
	case packBootstrap:
		return pk.packBootstrap(ctx, p, fi)
	case packSource:
		return pk.packSource(p, fi)
	}
	return pk.packWasm(ctx, p, fi)
}

// File signatures.
var (
	wasmMagic = []byte("\x00asm")
	zipMagic  = []byte("PK\x03\x04")
	elfMagic  = []byte("\x7fELF")
)

// packWasm returns a wasm module or zip as is, or builds a Go package
// directory to wasm.
func (pk packager) packWasm(ctx context.Context, p string, fi fs.FileInfo) ([]byte, error) {
	if fi.IsDir() {
		pk.progress("building %s...", p)
		code, err := pk.buildWasm(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", p, err)
		}
		return code, nil
	}
	code, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	switch ext := strings.ToLower(filepath.Ext(p)); {
	case ext == ".wasm" && !bytes.HasPrefix(code, wasmMagic):
		return nil, fmt.Errorf("%s is not a WebAssembly module (no \\0asm header)", p)
	case ext == ".zip" && !bytes.HasPrefix(code, zipMagic):
		return nil, fmt.Errorf("%s is not a zip file", p)
	case ext != ".wasm" && ext != ".zip" && !bytes.HasPrefix(code, wasmMagic) && !bytes.HasPrefix(code, zipMagic):
		return nil, usagef("%s: PATH must be a .wasm file, a .zip or a directory holding a Go package "+
			"(for a native function, pass --runtime)", p)
	}
	return code, nil
}

// packBootstrap returns a zip with a bootstrap at its root: p itself when
// it is one, p zipped as bootstrap when it is an executable, or the Go
// main package in directory p built for Linux.
func (pk packager) packBootstrap(ctx context.Context, p string, fi fs.FileInfo) ([]byte, error) {
	if fi.IsDir() {
		pk.progress("building %s for linux/%s...", p, runtime.GOARCH)
		exe, err := pk.buildBootstrap(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", p, err)
		}
		pk.progress("packaging bootstrap...")
		return zipBootstrap(exe)
	}
	code, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(code, zipMagic):
		if err := checkBootstrapZip(code); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return code, nil
	case strings.EqualFold(filepath.Ext(p), ".zip"):
		return nil, fmt.Errorf("%s is not a zip file", p)
	case fi.Mode()&0o111 != 0 || bytes.HasPrefix(code, elfMagic):
		pk.progress("packaging %s as bootstrap...", p)
		return zipBootstrap(code)
	}
	return nil, usagef("%s: PATH must be a .zip holding a bootstrap, an executable, or a directory holding a Go main package", p)
}

// zipBootstrap returns a zip holding exe as an executable bootstrap.
func zipBootstrap(exe []byte) ([]byte, error) {
	var z zipBuilder
	z.init()
	if err := z.add("bootstrap", 0o755, bytes.NewReader(exe)); err != nil {
		return nil, err
	}
	return z.finish()
}

// checkBootstrapZip reports an error unless code is a zip with a
// bootstrap file at its root.
func checkBootstrapZip(code []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(code), int64(len(code)))
	if err != nil {
		return fmt.Errorf("not a valid zip: %w", err)
	}
	for _, f := range zr.File {
		if f.Name == "bootstrap" && !f.Mode().IsDir() {
			return nil
		}
	}
	return errors.New("the zip holds no bootstrap at its root")
}

// buildBootstrap builds the Go main package in dir as a Linux executable
// for the host's architecture (a Lambda custom-runtime bootstrap, without
// aws-lambda-go's RPC mode) with the go tool on PATH.
func buildBootstrap(ctx context.Context, dir string) ([]byte, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", gobuild.ErrNoGo, err)
	}
	tmp, err := os.MkdirTemp("", "gust-bootstrap-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bootstrap")
	cmd := exec.CommandContext(ctx, goTool, "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if msg := strings.TrimSpace(output.String()); msg != "" {
			return nil, fmt.Errorf("%w\n%s", err, msg)
		}
		return nil, err
	}
	return os.ReadFile(out)
}

// packSource returns a zip of source code: p itself when it is a zip, a
// single file at the zip's root, or a directory's files at their relative
// paths.
func (pk packager) packSource(p string, fi fs.FileInfo) ([]byte, error) {
	var z zipBuilder
	z.init()
	if !fi.IsDir() {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		head := make([]byte, len(zipMagic))
		n, _ := io.ReadFull(f, head)
		if bytes.Equal(head[:n], zipMagic) {
			return os.ReadFile(p)
		}
		if strings.EqualFold(filepath.Ext(p), ".zip") {
			return nil, fmt.Errorf("%s is not a zip file", p)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		pk.progress("packaging %s...", p)
		if err := z.add(filepath.Base(p), fi.Mode().Perm(), f); err != nil {
			return nil, err
		}
		return z.finish()
	}
	pk.progress("packaging %s...", p)
	root, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, err
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	w := sourceWalker{root: root, z: &z, active: map[string]bool{}}
	if err := w.dir(root, ""); err != nil {
		return nil, err
	}
	if z.files == 0 {
		return nil, fmt.Errorf("%s holds no files to deploy", p)
	}
	return z.finish()
}

// skipped reports whether the directory at slash path rel is left out of a
// source zip: version control, and caches that are rebuilt at run time.
func skipped(rel string) bool {
	switch base := path.Base(rel); base {
	case ".git", "__pycache__":
		return true
	case ".cache":
		return path.Base(path.Dir(rel)) == "node_modules"
	}
	return false
}

// sourceWalker adds a directory tree to a zip. Symbolic links that stay
// inside root are followed (their targets are stored under the link's
// name); one that leads out of root, or into a cycle, is an error.
type sourceWalker struct {
	root   string // absolute, symlinks resolved
	z      *zipBuilder
	active map[string]bool // resolved directories being walked
}

// dir adds the directory at real path dir under the zip prefix rel.
func (w sourceWalker) dir(dir, rel string) error {
	if w.active[dir] {
		return fmt.Errorf("%s: symbolic link cycle", filepath.Join(w.root, filepath.FromSlash(rel)))
	}
	w.active[dir] = true
	defer delete(w.active, dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := path.Join(rel, e.Name())
		real := filepath.Join(dir, e.Name())
		if e.Type()&fs.ModeSymlink != 0 {
			if real, err = w.resolve(real, name); err != nil {
				return err
			}
		}
		fi, err := os.Stat(real)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			if skipped(name) {
				continue
			}
			if err := w.dir(real, name); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := w.file(real, name, fi.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: cannot package a %s", filepath.Join(w.root, filepath.FromSlash(name)), fi.Mode().Type())
		}
	}
	return nil
}

// resolve returns the target of the symbolic link at real path link
// (zip name rel), which must lie inside the root.
func (w sourceWalker) resolve(link, rel string) (string, error) {
	shown := filepath.Join(w.root, filepath.FromSlash(rel))
	target, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("%s: %w", shown, err)
	}
	if r, err := filepath.Rel(w.root, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s: symbolic link to %s leaves the directory", shown, target)
	}
	return target, nil
}

// file adds the regular file at real path p as name.
func (w sourceWalker) file(p, name string, mode fs.FileMode) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return w.z.add(name, mode, f)
}

// zipEpoch is the modification time of every packaged file, so that the
// same sources give the same zip (and the same CodeSha256).
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// zipBuilder writes a zip in memory.
type zipBuilder struct {
	buf   bytes.Buffer
	zw    *zip.Writer
	files int // added so far
}

func (z *zipBuilder) init() { z.zw = zip.NewWriter(&z.buf) }

// add stores r's contents as name with Unix permissions mode.
func (z *zipBuilder) add(name string, mode fs.FileMode, r io.Reader) error {
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: zipEpoch}
	h.SetMode(mode)
	w, err := z.zw.CreateHeader(h)
	if err != nil {
		return fmt.Errorf("zip %s: %w", name, err)
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("zip %s: %w", name, err)
	}
	z.files++
	return nil
}

// finish closes the zip and returns its bytes.
func (z *zipBuilder) finish() ([]byte, error) {
	if err := z.zw.Close(); err != nil {
		return nil, err
	}
	return z.buf.Bytes(), nil
}
