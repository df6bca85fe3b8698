package project

// Digests: what tells a changed function from an unchanged one.
//
// Three digests are involved, all hex SHA-256:
//   - the code digest is the digest of the code as the node stores it
//     (StoredDigest), which a node reports as CodeSha256;
//   - the build-inputs digest (BuildInputs) covers everything a build of a
//     Go directory reads, so a function whose inputs match those of the
//     code the node holds need not be built again to know its code digest;
//   - the function digest (Function.Digest) covers the code digest and the
//     configuration, and names what a deploy asked for.

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/gustfaas/gust/internal/registry"
)

// StoredDigest returns the hex digest of code as a node stores it once
// deployed with runtime rt: for wasm, the module itself (the one .wasm
// file at the root of a zip); for other runtimes, the zip. It fails when
// the wasm code is neither a module nor such a zip.
func StoredDigest(rt string, code []byte) (string, error) {
	if registry.IsWasm(rt) && !bytes.HasPrefix(code, []byte("\x00asm")) {
		mod, err := wasmInZip(code)
		if err != nil {
			return "", err
		}
		code = mod
	}
	return registry.Digest(code), nil
}

// wasmInZip returns the one .wasm file at the root of the zip b, as a
// node extracts it.
func wasmInZip(b []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("neither a wasm module nor a zip: %w", err)
	}
	var found *zip.File
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !strings.HasSuffix(strings.ToLower(f.Name), ".wasm") ||
			path.Dir(strings.TrimPrefix(f.Name, "./")) != "." {
			continue
		}
		if found != nil {
			return nil, errors.New("the zip holds more than one .wasm file at its root")
		}
		found = f
	}
	if found == nil {
		return nil, errors.New("the zip holds no .wasm file at its root")
	}
	r, err := found.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Digest returns the function's digest: its configuration (every setting
// of the project file but the alias and canary, grants included) and
// codeDigest, the digest of its code as the node stores it. A function
// without grants has the digest it had before grants existed.
func (f *Function) Digest(codeDigest string) string {
	var grants *registry.Grants
	if !f.Grants.Empty() {
		grants = f.Grants
	}
	doc := struct {
		Runtime, Handler, Description, Code  string
		MemoryMB, TimeoutSec, IdleTimeoutSec int
		Provisioned                          int
		ReservedConcurrency                  *int
		Env                                  map[string]string
		Grants                               *registry.Grants `json:",omitempty"`
	}{f.Runtime, f.Handler, f.Description, codeDigest, f.MemoryMB, f.TimeoutSec, f.IdleTimeoutSec,
		f.Provisioned, f.ReservedConcurrency, f.Env, grants}
	b, _ := json.Marshal(doc) // map keys are sorted: the encoding is canonical
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// buildRecipe is how a function's directory is built, per runtime family;
// it is part of the build-inputs digest, so it must change when the build
// does (internal/gobuild for wasm, the CLI's bootstrap build for
// provided.*).
func buildRecipe(rt string) (goos, goarch, tags, recipe string) {
	if registry.IsWasm(rt) {
		return "wasip1", "wasm", "", "wasm reactor: -trimpath -buildmode=c-shared"
	}
	return "linux", runtime.GOARCH, "lambda.norpc", "bootstrap: -trimpath -ldflags=-s -w -tags lambda.norpc"
}

// listedPackage is the part of `go list -json` BuildInputs reads.
type listedPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	Module     *listedModule

	GoFiles, CgoFiles, SFiles, HFiles, CFiles, SysoFiles, EmbedFiles []string
}

type listedModule struct {
	Path    string
	Version string
	Main    bool
	GoMod   string
	Replace *listedModule
}

// BuildInputs returns a digest of everything building the function's
// directory reads: the Go toolchain's version and settings, the build's
// flags, the main module's go.mod, and every package the build compiles,
// by module version for modules from the module cache and by content for
// the others (the main module, local replacements). Two directories with
// the same build inputs build to the same code. It runs `go list`, so the
// go tool must be on PATH.
func BuildInputs(ctx context.Context, f *Function) (string, error) {
	if !f.Builds() {
		return "", fmt.Errorf("function %s: %s is not built", f.Name, f.Code)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go tool was not found on PATH: %w", err)
	}
	goos, goarch, tags, recipe := buildRecipe(f.Runtime)
	env := append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Dir, cmd.Env = f.Code, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			if msg := strings.TrimSpace(stderr.String()); msg != "" {
				return nil, fmt.Errorf("go %s: %w\n%s", args[0], err, msg)
			}
			return nil, fmt.Errorf("go %s: %w", args[0], err)
		}
		return out, nil
	}
	type result struct {
		out []byte
		err error
	}
	envc := make(chan result, 1)
	go func() {
		out, err := run("env", "GOVERSION", "GOFLAGS", "GOEXPERIMENT", "GOAMD64", "GOWASM", "GOWORK")
		envc <- result{out, err}
	}()
	args := []string{"list", "-deps", "-json=ImportPath,Dir,Standard,Module,GoFiles,CgoFiles,SFiles,HFiles,CFiles,SysoFiles,EmbedFiles"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	listed, err := run(append(args, ".")...)
	goEnv := <-envc
	if err != nil {
		return "", err
	}
	if goEnv.err != nil {
		return "", goEnv.err
	}

	h := sha256.New()
	field := func(parts ...string) {
		for _, p := range parts {
			fmt.Fprintf(h, "%d:%s", len(p), p)
		}
		h.Write([]byte{'\n'})
	}
	// Files outside packages are hashed by content only: the same
	// sources in another checkout have the same inputs.
	hashFile := func(kind, p string) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		field(kind, string(b))
		return nil
	}
	field("gust-build-inputs/1", recipe)
	// go env prints one value a line, in the order asked; GOWORK is a
	// path, so its file's content is hashed instead.
	vars := strings.Split(string(goEnv.out), "\n")
	if len(vars) < 6 {
		return "", fmt.Errorf("go env: unexpected output %q", goEnv.out)
	}
	field("go env", strings.Join(vars[:5], "\n"))
	if work := strings.TrimSpace(vars[5]); work != "" && work != "off" {
		if err := hashFile("go.work", work); err != nil {
			return "", err
		}
	}
	goMods := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(listed))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("go list: %w", err)
		}
		if p.Standard {
			field("std", p.ImportPath)
			continue
		}
		if m := p.Module; m != nil && !m.Main {
			src := m
			if m.Replace != nil {
				src = m.Replace
			}
			if src.Version != "" {
				// An immutable module version, checked against go.sum.
				field("module", p.ImportPath, src.Path, src.Version)
				continue
			}
		}
		field("package", p.ImportPath)
		if m := p.Module; m != nil {
			goMod := m.GoMod
			if m.Replace != nil {
				goMod = m.Replace.GoMod
			}
			if goMod != "" && !goMods[goMod] {
				goMods[goMod] = true
				if err := hashFile("go.mod", goMod); err != nil {
					return "", err
				}
			}
		}
		var files []string
		for _, list := range [][]string{p.GoFiles, p.CgoFiles, p.SFiles, p.HFiles, p.CFiles, p.SysoFiles, p.EmbedFiles} {
			files = append(files, list...)
		}
		slices.Sort(files)
		for _, name := range slices.Compact(files) {
			b, err := os.ReadFile(filepath.Join(p.Dir, name))
			if err != nil {
				return "", err
			}
			field("file", name, string(b))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
