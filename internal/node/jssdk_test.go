package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestJSSDK runs compat/js/scenario.mjs, a second and independent client:
// the AWS SDK for JavaScript v3 (@aws-sdk/client-lambda, pinned in
// compat/js/package-lock.json) on the host's Node.js. It creates, publishes,
// aliases, invokes (through a weighted alias too), checks a typed error and
// deletes. Node.js 20 or later and npm are required: without them the test
// fails, it does not skip.
func TestJSSDK(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "compat", "js")
	nodeBin := requireNode(t)
	ensureNodeModules(t, dir)

	buildGuests(t)
	wasm := filepath.Join(t.TempDir(), "hello.wasm")
	if err := os.WriteFile(wasm, guests.hello, 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, t.TempDir())
	id, secret := n.AdminKey()

	// The SDK reads no AWS settings of the developer's: only these.
	none := filepath.Join(t.TempDir(), "none")
	env := append(environWithout("AWS_"),
		"GUST_ENDPOINT="+n.URL(),
		"GUST_WASM="+wasm,
		"AWS_ACCESS_KEY_ID="+id,
		"AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_CONFIG_FILE="+none,
		"AWS_SHARED_CREDENTIALS_FILE="+none,
		"AWS_EC2_METADATA_DISABLED=true",
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(dir, "scenario.mjs"))
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node scenario.mjs: %v (context: %v)\nstderr:\n%s\nstdout:\n%s", err, ctx.Err(), stderr.Bytes(), stdout.Bytes())
	}
	var summary struct {
		OK    bool     `json:"ok"`
		Steps []string `json:"steps"`
	}
	line := bytes.TrimSpace(stdout.Bytes())
	if err := json.Unmarshal(line, &summary); err != nil || !summary.OK {
		t.Fatalf("scenario summary = %q (%v), want a JSON object with ok true\nstderr:\n%s", line, err, stderr.Bytes())
	}
	if len(summary.Steps) == 0 {
		t.Fatalf("scenario summary lists no steps: %s", line)
	}
	t.Logf("%s", line)
}

// requireNode finds Node.js 20 or later and npm, failing the test without them.
func requireNode(t *testing.T) string {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("Node.js 20 or later is required to run the AWS SDK for JavaScript scenario: %v", err)
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatalf("npm is required to install compat/js's dependencies: %v", err)
	}
	out, err := exec.Command(nodeBin, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if m, err := strconv.Atoi(major); err != nil || m < 20 {
		t.Fatalf("node --version = %s, want v20 or later (the AWS SDK for JavaScript v3 needs it)", v)
	}
	return nodeBin
}

// ensureNodeModules runs `npm ci` in dir unless node_modules already holds
// exactly what package-lock.json pins.
func ensureNodeModules(t *testing.T, dir string) {
	t.Helper()
	err := installedMatchesLock(dir)
	if err == nil {
		return
	}
	t.Logf("running npm ci in %s: %v", dir, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v (context: %v)\n%s", dir, err, ctx.Err(), out)
	}
	if err := installedMatchesLock(dir); err != nil {
		t.Fatalf("after npm ci in %s: %v", dir, err)
	}
}

// npmLock is the part of package-lock.json (and of the copy npm keeps in
// node_modules/.package-lock.json) that says what is installed.
type npmLock struct {
	Packages map[string]struct {
		Version      string            `json:"version"`
		Integrity    string            `json:"integrity"`
		Optional     bool              `json:"optional"`
		Dependencies map[string]string `json:"dependencies"`
	} `json:"packages"`
}

// installedMatchesLock reports why node_modules in dir does not hold what
// package-lock.json pins for package.json, or nil when it does. It compares
// the lockfile with the one npm writes into node_modules after an install.
func installedMatchesLock(dir string) error {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	var lock, installed npmLock
	for _, f := range []struct {
		path string
		v    any
	}{
		{filepath.Join(dir, "package.json"), &pkg},
		{filepath.Join(dir, "package-lock.json"), &lock},
		{filepath.Join(dir, "node_modules", ".package-lock.json"), &installed},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, f.v); err != nil {
			return fmt.Errorf("parse %s: %w", f.path, err)
		}
	}
	if root := lock.Packages[""].Dependencies; !maps.Equal(root, pkg.Dependencies) {
		return fmt.Errorf("package-lock.json pins %v but package.json asks for %v: run npm install in %s and commit the lockfile", root, pkg.Dependencies, dir)
	}
	for name, want := range lock.Packages {
		if name == "" {
			continue
		}
		got, ok := installed.Packages[name]
		switch {
		case !ok && want.Optional:
		case !ok:
			return fmt.Errorf("%s is not installed", name)
		case got.Version != want.Version || got.Integrity != want.Integrity:
			return fmt.Errorf("%s is %s installed, %s locked", name, got.Version, want.Version)
		}
	}
	for name := range installed.Packages {
		if _, ok := lock.Packages[name]; !ok {
			return fmt.Errorf("%s is installed but not locked", name)
		}
	}
	if len(installed.Packages) == 0 {
		return errors.New("node_modules is empty")
	}
	return nil
}

// environWithout is os.Environ without the variables starting with prefix.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}
