//go:build linux

package process

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// interpreter is a host interpreter that runs one Lambda runtime.
type interpreter struct {
	runtime string // nodejs20.x, python3.11, ...
	python  bool
	exe     string // absolute, symbolic links resolved
	version string
	// prefix is the installation directory to make visible in a sandbox
	// (bound at the same path) when it lies outside the system
	// directories every sandbox sees; empty otherwise.
	prefix string
}

// argv runs Gust's bootstrap for the interpreter.
func (in *interpreter) argv(runtimeDir string) []string {
	if in.python {
		return []string{in.exe, "-u", "-s", runtimeDir + "/bootstrap.py"}
	}
	return []string{in.exe, runtimeDir + "/bootstrap.js"}
}

// env is the interpreter's part of the environment.
func (in *interpreter) env(taskRoot, runtimeDir string) map[string]string {
	path := filepath.Dir(in.exe) + ":/usr/local/bin:/usr/bin:/bin:/opt/bin"
	if in.python {
		return map[string]string{"PATH": path, "PYTHONPATH": runtimeDir, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
	}
	major := strings.TrimSuffix(strings.TrimPrefix(in.runtime, "nodejs"), ".x")
	return map[string]string{
		"PATH":      path,
		"NODE_PATH": "/opt/nodejs/node" + major + "/node_modules:/opt/nodejs/node_modules:" + runtimeDir + "/node_modules:" + runtimeDir + ":" + taskRoot,
	}
}

// systemDirs are visible in every sandbox (read-only).
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"}

func underSystemDirs(p string) bool {
	for _, d := range systemDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// interpreted lists the interpreted runtimes Gust knows.
var interpreted = []struct{ name, command, version string }{
	{"nodejs20.x", "node", "20"},
	{"nodejs22.x", "node", "22"},
	{"python3.11", "python3.11", "3.11"},
	{"python3.12", "python3.12", "3.12"},
	{"python3.13", "python3.13", "3.13"},
}

// probeInterpreters asks the host's node and python which runtimes they
// can serve. Each command runs once, concurrently.
func probeInterpreters(ctx context.Context) (map[string]*interpreter, map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	type probe struct {
		version, exe, prefix string
		err                  error
	}
	names := []string{"node", "python3"}
	for _, r := range interpreted {
		if !slices.Contains(names, r.command) {
			names = append(names, r.command)
		}
	}
	commands := make(map[string]*probe, len(names))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, cmd := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var args []string
			if cmd == "node" {
				args = []string{"-e", "console.log(process.versions.node, process.execPath, require('path').dirname(require('path').dirname(process.execPath)))"}
			} else {
				args = []string{"-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.executable, sys.base_prefix)"}
			}
			p := &probe{}
			out, err := runProbe(ctx, cmd, args...)
			if err == nil {
				f := strings.Fields(out)
				if len(f) != 3 {
					err = fmt.Errorf("unexpected answer %q", out)
				} else {
					p.version, p.exe, p.prefix = f[0], f[1], f[2]
				}
			}
			p.err = err
			mu.Lock()
			commands[cmd] = p
			mu.Unlock()
		}()
	}
	wg.Wait()

	ok := map[string]*interpreter{}
	bad := map[string]string{}
	for _, r := range interpreted {
		python := strings.HasPrefix(r.name, "python")
		cands := []string{r.command}
		if python {
			cands = append(cands, "python3")
		}
		var reasons []string
		for _, c := range cands {
			p := commands[c]
			if p.err != nil {
				reasons = append(reasons, fmt.Sprintf("%s: %v", c, p.err))
				continue
			}
			if p.version != r.version && !strings.HasPrefix(p.version, r.version+".") {
				reasons = append(reasons, fmt.Sprintf("%s is version %s", c, p.version))
				continue
			}
			exe, err := filepath.EvalSymlinks(p.exe)
			if err != nil {
				reasons = append(reasons, fmt.Sprintf("%s: %v", c, err))
				continue
			}
			in := &interpreter{runtime: r.name, python: python, exe: exe, version: p.version}
			if !underSystemDirs(exe) {
				prefix, err := filepath.EvalSymlinks(p.prefix)
				if err != nil || !strings.HasPrefix(exe, prefix+"/") || prefix == "/" {
					prefix = filepath.Dir(filepath.Dir(exe))
				}
				in.prefix = prefix
			}
			ok[r.name] = in
			break
		}
		if ok[r.name] == nil {
			lang := "Node.js " + r.version
			if python {
				lang = "Python " + r.version
			}
			bad[r.name] = fmt.Sprintf("needs %s on the node's PATH (%s)", lang, strings.Join(reasons, "; "))
		}
	}
	return ok, bad
}

func runProbe(ctx context.Context, name string, args ...string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("not found")
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = os.Environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if i := strings.IndexByte(msg, '\n'); i > 0 {
			msg = msg[:i]
		}
		if msg != "" {
			return "", fmt.Errorf("%w: %s", err, msg)
		}
		return "", err
	}
	return strings.TrimSpace(out.String()), nil
}
