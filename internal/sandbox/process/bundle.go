//go:build linux

package process

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/gustfaas/gust/internal/sandbox"
)

// unpack extracts a zip bundle into codeDir/<digest> once, and counts a
// reference to it. Entries are checked: no absolute paths, no "..", at most
// maxFiles entries and MaxCodeBytes unzipped. Regular files keep their
// execute bits and are made readable by the function's user; symbolic
// links are created after every file, so extraction never writes through
// one.
func (rt *Runtime) unpack(digest string, code []byte) (string, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return "", ErrClosed
	}
	dir := filepath.Join(rt.codeDir, digest)
	if rt.code[digest] > 0 {
		rt.code[digest]++
		return dir, nil
	}
	zr, err := zip.NewReader(bytes.NewReader(code), int64(len(code)))
	if err != nil {
		return "", &sandbox.InvalidCodeError{Reason: "code is not a valid zip file: " + err.Error()}
	}
	if len(zr.File) > maxFiles {
		return "", &sandbox.InvalidCodeError{Reason: fmt.Sprintf("zip has %d entries; at most %d are allowed", len(zr.File), maxFiles)}
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	tmp := dir + ".tmp-" + hex.EncodeToString(suffix[:])
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("process: unpacking: %w", err)
	}
	if err := extract(zr, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	os.RemoveAll(dir) // a leftover of a crashed node
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("process: unpacking: %w", err)
	}
	rt.code[digest] = 1
	return dir, nil
}

// release drops a reference to unpacked code, removing it after the last.
func (rt *Runtime) release(digest string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.code[digest]--; rt.code[digest] > 0 {
		return
	}
	delete(rt.code, digest)
	os.RemoveAll(filepath.Join(rt.codeDir, digest))
}

func extract(zr *zip.Reader, root string) error {
	invalid := func(format string, args ...any) error {
		return &sandbox.InvalidCodeError{Reason: fmt.Sprintf(format, args...)}
	}
	var total int64
	var links []*zip.File
	for _, f := range zr.File {
		name := strings.TrimPrefix(f.Name, "./")
		if name == "" || name == "." {
			continue
		}
		if strings.Contains(name, "\\") || path.IsAbs(name) || strings.ContainsRune(name, 0) {
			return invalid("zip entry %q has an invalid path", f.Name)
		}
		clean := path.Clean(name)
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return invalid("zip entry %q points outside the bundle", f.Name)
		}
		dst := filepath.Join(root, filepath.FromSlash(clean))
		mode := f.Mode()
		switch {
		case mode&fs.ModeSymlink != 0:
			links = append(links, f)
			continue
		case mode.IsDir() || strings.HasSuffix(name, "/"):
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return fmt.Errorf("process: unpacking %s: %w", f.Name, err)
			}
			continue
		case !mode.IsRegular():
			return invalid("zip entry %q is not a regular file, directory or symbolic link", f.Name)
		}
		if total += int64(f.UncompressedSize64); f.UncompressedSize64 > MaxCodeBytes || total > MaxCodeBytes {
			return invalid("unzipped code is larger than %d MB", MaxCodeBytes>>20)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("process: unpacking %s: %w", f.Name, err)
		}
		perm := fs.FileMode(0o644)
		if mode.Perm()&0o111 != 0 {
			perm = 0o755
		}
		n, err := writeEntry(f, dst, perm, MaxCodeBytes-(total-int64(f.UncompressedSize64)))
		if err != nil {
			if errors.Is(err, errTooLarge) {
				return invalid("unzipped code is larger than %d MB", MaxCodeBytes>>20)
			}
			var ice *sandbox.InvalidCodeError
			if errors.As(err, &ice) {
				return err
			}
			return fmt.Errorf("process: unpacking %s: %w", f.Name, err)
		}
		total += n - int64(f.UncompressedSize64) // trust what was written, not the header
	}
	for _, f := range links {
		rc, err := f.Open()
		if err != nil {
			return invalid("zip entry %q: %v", f.Name, err)
		}
		target, err := io.ReadAll(io.LimitReader(rc, 4096))
		rc.Close()
		if err != nil {
			return invalid("zip entry %q: %v", f.Name, err)
		}
		dst := filepath.Join(root, filepath.FromSlash(path.Clean(strings.TrimPrefix(f.Name, "./"))))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("process: unpacking %s: %w", f.Name, err)
		}
		if err := os.Symlink(string(target), dst); err != nil {
			return invalid("zip entry %q: %v", f.Name, err)
		}
	}
	return nil
}

var errTooLarge = errors.New("entry too large")

func writeEntry(f *zip.File, dst string, perm fs.FileMode, room int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, &sandbox.InvalidCodeError{Reason: fmt.Sprintf("zip entry %q: %v", f.Name, err)}
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, &sandbox.InvalidCodeError{Reason: fmt.Sprintf("zip entry %q appears twice", f.Name)}
		}
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(rc, room+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, &sandbox.InvalidCodeError{Reason: fmt.Sprintf("zip entry %q: %v", f.Name, err)}
	}
	if n > room {
		return n, errTooLarge
	}
	// O_CREATE applied the umask: set the mode exactly.
	return n, os.Chmod(dst, perm)
}

// ELF machine numbers by GOARCH.
var elfMachine = map[string]uint16{"amd64": 62, "arm64": 183, "386": 3, "arm": 40, "riscv64": 243, "ppc64le": 21, "s390x": 22}

// verifyBootstrap checks the bundle's bootstrap: present, a regular
// executable file, and an ELF for this machine or a script with a #! line.
func verifyBootstrap(dir string) error {
	p := filepath.Join(dir, "bootstrap")
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &sandbox.InvalidCodeError{Reason: "the zip has no bootstrap file at its root: a provided runtime needs an executable named bootstrap"}
	case err != nil:
		return fmt.Errorf("process: %w", err)
	case !fi.Mode().IsRegular():
		return &sandbox.InvalidCodeError{Reason: "bootstrap is not a regular file"}
	case fi.Mode().Perm()&0o111 == 0:
		return &sandbox.InvalidCodeError{Reason: "bootstrap is not executable: set its execute permission (chmod 755 bootstrap) before zipping"}
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("process: %w", err)
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("#!")):
		line, _, _ := bytes.Cut(head[2:], []byte("\n"))
		fields := strings.Fields(string(line))
		if len(fields) == 0 {
			return &sandbox.InvalidCodeError{Reason: "bootstrap is a script with an empty #! line"}
		}
		if _, err := os.Stat(fields[0]); err != nil && !strings.HasPrefix(fields[0], "/var/task/") && !strings.HasPrefix(fields[0], "/opt/") {
			return &sandbox.InvalidCodeError{Reason: fmt.Sprintf("bootstrap script's interpreter %s does not exist on this node", fields[0])}
		}
		return nil
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		if len(head) < 20 {
			return &sandbox.InvalidCodeError{Reason: "bootstrap is a truncated ELF file"}
		}
		var order binary.ByteOrder = binary.LittleEndian
		if head[5] == 2 {
			order = binary.BigEndian
		}
		machine := order.Uint16(head[18:20])
		if want := elfMachine[runtime.GOARCH]; machine != want {
			return &sandbox.InvalidCodeError{Reason: fmt.Sprintf(
				"bootstrap is an executable for another machine (%s); this node runs linux/%s: build with GOOS=linux GOARCH=%s",
				machineName(machine), runtime.GOARCH, runtime.GOARCH)}
		}
		if head[4] != 2 && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
			return &sandbox.InvalidCodeError{Reason: "bootstrap is a 32-bit executable; this node runs 64-bit ones"}
		}
		return nil
	}
	return &sandbox.InvalidCodeError{Reason: "bootstrap is neither a Linux executable (ELF) nor a script starting with #!"}
}

func machineName(m uint16) string {
	for arch, n := range elfMachine {
		if n == m {
			return "linux/" + arch
		}
	}
	return fmt.Sprintf("ELF machine %d", m)
}

// verifyHandler checks that the handler names a module file of the bundle.
func verifyHandler(dir, runtimeName, handler string) error {
	i := strings.LastIndex(handler, ".")
	if i <= 0 || i == len(handler)-1 {
		return &sandbox.InvalidCodeError{Reason: fmt.Sprintf("handler %q must be MODULE.FUNCTION, for example index.handler", handler)}
	}
	module := handler[:i]
	clean := path.Clean(module)
	if path.IsAbs(module) || clean == ".." || strings.HasPrefix(clean, "../") {
		return &sandbox.InvalidCodeError{Reason: fmt.Sprintf("handler %q names a module outside the bundle", handler)}
	}
	var candidates []string
	if strings.HasPrefix(runtimeName, "nodejs") {
		for _, ext := range []string{".js", ".mjs", ".cjs"} {
			candidates = append(candidates, clean+ext)
		}
	} else {
		mod := strings.ReplaceAll(clean, ".", "/")
		candidates = []string{mod + ".py", mod + "/__init__.py"}
	}
	for _, c := range candidates {
		if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(c))); err == nil && fi.Mode().IsRegular() {
			return nil
		}
	}
	return &sandbox.InvalidCodeError{Reason: fmt.Sprintf(
		"handler %q: module %s not found in the zip (looked for %s)", handler, module, strings.Join(candidates, ", "))}
}
