//go:build linux

package process

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/sandbox"
)

// testRT is shared by the tests: probing the host and the helper once.
var testRT *Runtime

func TestMain(m *testing.M) {
	RunHelperIfRequested()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	dir, err := os.MkdirTemp("", "gust-process-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	testRT, err = New(context.Background(), Options{WorkDir: filepath.Join(dir, "work")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testRT.Close(context.Background())
	if testing.Verbose() {
		for _, l := range testRT.Isolation() {
			fmt.Println("isolation:", l)
		}
	}
	return m.Run()
}

type goBuild struct {
	once sync.Once
	zip  []byte
	err  error
}

var goBuilds sync.Map // dir -> *goBuild

// goFunction builds testdata/<name> (or the package at name if it has a
// slash) as a Linux executable for this machine
// and returns a zip with it as bootstrap.
func goFunction(tb testing.TB, name string) []byte {
	tb.Helper()
	v, _ := goBuilds.LoadOrStore(name, &goBuild{})
	g := v.(*goBuild)
	g.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			g.err = err
			return
		}
		out, err := os.MkdirTemp("", "gust-gofn-")
		if err != nil {
			g.err = err
			return
		}
		defer os.RemoveAll(out)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		pkg := "./testdata/" + name
		if strings.Contains(name, "/") {
			pkg = name
		}
		cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(out, "bootstrap"), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if b, err := cmd.CombinedOutput(); err != nil {
			g.err = fmt.Errorf("go build %s: %w\n%s", name, err, b)
			return
		}
		bin, err := os.ReadFile(filepath.Join(out, "bootstrap"))
		if err != nil {
			g.err = err
			return
		}
		g.zip = zipOf(tb, map[string]zfile{"bootstrap": {mode: 0o755, data: string(bin)}})
	})
	if g.err != nil {
		tb.Fatal(g.err)
	}
	return g.zip
}

type zfile struct {
	mode os.FileMode
	data string
}

// zipOf builds a zip with the given files (mode 0644 when zero).
func zipOf(tb testing.TB, files map[string]zfile) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, f := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write([]byte(f.data)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// load loads a spec into rt (testRT when nil) and closes the program at
// the end of the test.
func load(tb testing.TB, rt *Runtime, spec sandbox.Spec) *Program {
	tb.Helper()
	if rt == nil {
		rt = testRT
	}
	if spec.Function == "" {
		spec.Function = "test-fn"
	}
	if spec.Runtime == "" {
		spec.Runtime = "provided.al2023"
	}
	p, err := rt.Load(context.Background(), spec)
	if err != nil {
		tb.Fatalf("Load(%s) = %v", spec.Function, err)
	}
	tb.Cleanup(func() { p.Close(context.Background()) })
	return p.(*Program)
}

// start starts an instance and closes it at the end of the test.
func start(tb testing.TB, p *Program) *instance {
	tb.Helper()
	in, err := p.Start(context.Background())
	if err != nil {
		var ie *InitError
		if ok := asInitError(err, &ie); ok {
			tb.Fatalf("Start() = %v\nlog:\n%s", err, ie.Log)
		}
		tb.Fatalf("Start() = %v", err)
	}
	tb.Cleanup(func() { in.Close(context.Background()) })
	return in.(*instance)
}

func asInitError(err error, target **InitError) bool {
	ie, ok := err.(*InitError)
	if ok {
		*target = ie
	}
	return ok
}

// invoke invokes with a JSON payload and a generous deadline, failing the
// test on a lost instance.
func invoke(tb testing.TB, in sandbox.Instance, payload any) sandbox.Response {
	tb.Helper()
	resp, err := invokeErr(in, payload, 30*time.Second)
	if err != nil {
		tb.Fatalf("Invoke(%v) = %v (response %+v, log %q)", payload, err, resp.Err, resp.Log)
	}
	return resp
}

func invokeErr(in sandbox.Instance, payload any, timeout time.Duration) (sandbox.Response, error) {
	b, ok := payload.([]byte)
	if !ok {
		b, _ = json.Marshal(payload)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d, _ := ctx.Deadline()
	return in.Invoke(ctx, sandbox.Request{RequestID: fmt.Sprintf("req-%d", time.Now().UnixNano()), Deadline: d, Payload: b})
}

// nsProcesses lists the host pids of processes in the pid namespace whose
// init has host pid initPid (including it).
func nsProcesses(tb testing.TB, initPid int) []int {
	tb.Helper()
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", initPid))
	if err != nil {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && ns == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie (state Z) is gone for our purposes only once reaped.
	return len(b) > 0
}
