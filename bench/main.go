// Command bench measures a Gust node: warm HTTP throughput against a bare
// net/http server running the same handler, platform overhead, cold
// starts, a burst from zero, resident memory per idle instance, and scale
// down. It starts a node in-process on loopback, deploys what it needs,
// prints a table and writes the figures as JSON.
//
//	go run ./bench                       # every scenario
//	go run ./bench -scenarios warm,cold  # some
//
// The load generator runs in a child process (this binary with -loadgen),
// the same one for the bare server and for Gust, so both pay the same
// client costs. Results are for comparing ratios within one run: this
// machine is shared and noisy.
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/engine"
	"github.com/gustfaas/gust/internal/gobuild"
	"github.com/gustfaas/gust/internal/node"
	"github.com/gustfaas/gust/internal/sandbox/process"
)

func main() {
	// Process-runtime instances start as this binary in helper mode.
	process.RunHelperIfRequested()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	scenarios string
	duration  time.Duration
	conns     int
	coldRuns  int
	burst     int
	jsonOut   string
	// loadgen mode (the child process)
	loadgen string
	maxReq  int
}

// row is one line of the results table.
type row struct {
	Scenario string  `json:"scenario"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Goal     string  `json:"goal,omitempty"`
	Note     string  `json:"note,omitempty"`
}

type results struct {
	Date    time.Time `json:"date"`
	Command string    `json:"command"`
	Machine string    `json:"machine"`
	Rows    []row     `json:"rows"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.scenarios, "scenarios", "deploy,warm,overhead,cold,burst,memory,scaledown,lambda", "comma-separated scenarios")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each throughput run")
	fs.IntVar(&o.conns, "conns", 64, "connections for the throughput runs")
	fs.IntVar(&o.coldRuns, "cold-runs", 300, "cold starts measured per module kind")
	fs.IntVar(&o.burst, "burst", 500, "concurrent requests in the burst from zero")
	fs.StringVar(&o.jsonOut, "json", filepath.Join("bench", "results", "latest.json"), "where to write the results as JSON")
	fs.StringVar(&o.loadgen, "loadgen", "", "internal: run as the load generator against this URL")
	fs.IntVar(&o.maxReq, "n", 0, "internal: stop the load generator after this many requests")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the node to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.loadgen != "" {
		r := closedLoop(ctx, o.loadgen, o.conns, o.duration, o.maxReq)
		json.NewEncoder(stdout).Encode(r)
		return 0
	}
	b, err := newBench(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	defer b.close()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	res := results{Date: time.Now().UTC(), Command: "go run ./bench " + strings.Join(args, " "), Machine: machine()}
	for _, sc := range strings.Split(o.scenarios, ",") {
		fmt.Fprintf(stderr, "bench: %s...\n", sc)
		var rows []row
		var err error
		switch strings.TrimSpace(sc) {
		case "deploy":
			rows, err = b.deploy(ctx)
		case "warm":
			rows, err = b.warm(ctx)
		case "overhead":
			rows, err = b.overhead(ctx)
		case "cold":
			rows, err = b.cold(ctx)
		case "burst":
			rows, err = b.burstFromZero(ctx)
		case "memory":
			rows, err = b.memory(ctx)
		case "scaledown":
			rows, err = b.scaleDown(ctx)
		case "lambda":
			rows, err = b.lambdaGo(ctx)
		case "projectdeploy":
			rows, err = b.projectDeploy(ctx)
		case "schedule":
			rows, err = b.schedule(ctx)
		case "async":
			rows, err = b.async(ctx)
		case "pgtrigger":
			rows, err = b.pgtrigger(ctx)
		default:
			err = fmt.Errorf("unknown scenario %q", sc)
		}
		if err != nil {
			fmt.Fprintf(stderr, "bench: %s: %v\n", sc, err)
			return 1
		}
		res.Rows = append(res.Rows, rows...)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tMETRIC\tVALUE\tUNIT\tGOAL\tNOTE")
	for _, r := range res.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Metric, strconv.FormatFloat(r.Value, 'f', -1, 64), r.Unit, r.Goal, r.Note)
	}
	tw.Flush()
	if o.jsonOut != "" {
		os.MkdirAll(filepath.Dir(o.jsonOut), 0o755)
		bj, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.jsonOut, bj, 0o644); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "bench: results written to %s\n", o.jsonOut)
	}
	return 0
}

func machine() string {
	cpu := "unknown cpu"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s", cpu, runtime.NumCPU(), runtime.Version())
}

type bench struct {
	o       options
	log     io.Writer
	dir     string
	n       *node.Node
	c       *client.Client
	bare    *http.Server
	bareURL string
	hello   []byte

	mu    sync.Mutex
	inits map[string][]time.Duration // function -> init durations of cold starts
	runs  map[string][]time.Duration // function -> run durations of cold starts
	// tap, when set by a scenario, sees every engine record.
	tap atomic.Pointer[func(*engine.Record)]
}

func newBench(ctx context.Context, o options, log io.Writer) (*bench, error) {
	dir, err := os.MkdirTemp("", "gust-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, log: log, dir: dir, inits: map[string][]time.Duration{}, runs: map[string][]time.Duration{}}
	b.n, err = node.Start(ctx, node.Config{
		Listen: "127.0.0.1:0", DataDir: dir, IdleTimeout: 3 * time.Second,
		Logger:  slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Observe: b.observe,
	})
	if err != nil {
		return nil, err
	}
	id, secret := b.n.AdminKey()
	b.c = client.New(b.n.URL(), client.Credentials{AccessKeyID: id, SecretAccessKey: secret})

	fmt.Fprintf(log, "bench: building and deploying hello (SDK) and echo (WASI command)...\n")
	hello, err := gobuild.Build(ctx, filepath.Join("examples", "hello"))
	b.hello = hello
	if err != nil {
		return nil, fmt.Errorf("build hello (run from the repository root): %w", err)
	}
	echo, err := gobuild.BuildCommand(ctx, filepath.Join("bench", "testdata", "echo"))
	if err != nil {
		return nil, fmt.Errorf("build echo: %w", err)
	}
	for name, code := range map[string][]byte{"hello": hello, "echo": echo} {
		if _, err := b.c.CreateFunction(ctx, api.CreateFunctionRequest{FunctionName: name, Runtime: "wasm", Code: &api.FunctionCode{ZipFile: code}}); err != nil {
			return nil, fmt.Errorf("deploy %s: %w", name, err)
		}
	}
	// The bare server: the same handler, compiled natively.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", nativeHello)
	mux.HandleFunc("/lambda", nativeLambdaGreeting)
	b.bare = &http.Server{Handler: mux}
	go b.bare.Serve(ln)
	b.bareURL = "http://" + ln.Addr().String()
	return b, nil
}

// nativeHello is examples/hello's logic behind plain net/http.
func nativeHello(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "world"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"message": "Hello, " + name + "!"})
}

// nativeLambdaGreeting is examples/lambda-go's answer to a function-URL
// request, behind plain net/http.
func nativeLambdaGreeting(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "world"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"message": "Hello, " + name + "!", "requestId": "x"})
}

// lambdaGo measures the process runtime with examples/lambda-go (an
// unmodified aws-lambda-go function): its cold start, and its warm
// overhead against the same answer from a bare server.
func (b *bench) lambdaGo(ctx context.Context) ([]row, error) {
	out, err := os.MkdirTemp("", "gust-bench-lambda-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	bin := filepath.Join(out, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", bin, "./examples/lambda-go")
	cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build examples/lambda-go: %v: %s", err, msg)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, _ := zw.CreateHeader(h)
	w.Write(exe)
	zw.Close()
	if _, err := b.c.CreateFunction(ctx, api.CreateFunctionRequest{FunctionName: "lambda-go", Runtime: "provided.al2023", Code: &api.FunctionCode{ZipFile: zbuf.Bytes()}}); err != nil {
		return nil, fmt.Errorf("deploy lambda-go: %w", err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	b.mu.Lock()
	b.inits["lambda-go"] = nil
	b.mu.Unlock()
	var e2e []time.Duration
	for i := 0; i < min(b.o.coldRuns, 100); i++ {
		b.reapAll()
		t0 := time.Now()
		resp, err := hc.Get(b.n.URL() + "/fn/lambda-go?name=cold")
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("lambda-go: status %d", resp.StatusCode)
		}
		e2e = append(e2e, time.Since(t0))
	}
	b.mu.Lock()
	inits := append([]time.Duration(nil), b.inits["lambda-go"]...)
	b.mu.Unlock()
	sortD(inits)
	sortD(e2e)
	const n = 3000
	b.load(ctx, b.n.URL()+"/fn/lambda-go?name=warm", 1, time.Minute, 300)
	rb, err := b.load(ctx, b.bareURL+"/lambda?name=warm", 1, time.Minute, n)
	if err != nil {
		return nil, err
	}
	rg, err := b.load(ctx, b.n.URL()+"/fn/lambda-go?name=warm", 1, time.Minute, n)
	if err != nil {
		return nil, err
	}
	return []row{
		{"lambda", "aws-lambda-go bootstrap instance start p50", round2(us(percentile(inits, .5)) / 1000), "ms", "≤ 10 ms", fmt.Sprintf("%d cold starts: sandbox, exec, first /next", len(inits))},
		{"lambda", "aws-lambda-go bootstrap instance start p99", round2(us(percentile(inits, .99)) / 1000), "ms", "", ""},
		{"lambda", "aws-lambda-go request, no instance → response p50", round2(us(percentile(e2e, .5)) / 1000), "ms", "", "end to end over HTTP"},
		{"lambda", "aws-lambda-go request, no instance → response p99", round2(us(percentile(e2e, .99)) / 1000), "ms", "", ""},
		{"lambda", "bare handler p50 (1 conn)", round(rb.P50us), "µs", "", fmt.Sprintf("%d sequential requests", n)},
		{"lambda", "gust /fn/lambda-go p50 (1 conn)", round(rg.P50us), "µs", "", ""},
		{"lambda", "warm overhead p50", round(rg.P50us - rb.P50us), "µs", "≤ 150 µs", "gust p50 − bare p50"},
	}, nil
}

func (b *bench) observe(r *engine.Record) {
	if tap := b.tap.Load(); tap != nil {
		(*tap)(r)
	}
	if !r.Cold {
		return
	}
	b.mu.Lock()
	b.inits[r.Function] = append(b.inits[r.Function], r.InitDuration)
	b.runs[r.Function] = append(b.runs[r.Function], r.Duration)
	b.mu.Unlock()
}

func (b *bench) close() {
	b.bare.Close()
	b.n.Shutdown(context.Background())
	os.RemoveAll(b.dir)
}

// load runs the child load generator against url.
func (b *bench) load(ctx context.Context, url string, conns int, d time.Duration, maxReq int) (loadResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return loadResult{}, err
	}
	cmd := exec.CommandContext(ctx, exe, "-loadgen", url, "-conns", strconv.Itoa(conns), "-duration", d.String(), "-n", strconv.Itoa(maxReq))
	cmd.Stderr = b.log
	out, err := cmd.Output()
	if err != nil {
		return loadResult{}, fmt.Errorf("load generator: %w", err)
	}
	var r loadResult
	if err := json.Unmarshal(out, &r); err != nil {
		return loadResult{}, fmt.Errorf("load generator output: %w", err)
	}
	return r, nil
}

// deploy times deploying the hello example (a module the node has never
// compiled: a distinct build each run), its first invocation, and warm
// invocations after it, through /fn.
func (b *bench) deploy(ctx context.Context) ([]row, error) {
	// Append a custom section so the digest (and the compile) is new.
	code := append(append([]byte(nil), b.hello...), 0x00, 0x09, 0x04, 'g', 'u', 's', 't', 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(code[len(code)-4:], uint32(time.Now().UnixNano()))
	t0 := time.Now()
	if _, err := b.c.CreateFunction(ctx, api.CreateFunctionRequest{FunctionName: "hello-deploy", Runtime: "wasm", Code: &api.FunctionCode{ZipFile: code}}); err != nil {
		return nil, err
	}
	deploy := time.Since(t0)
	hc := &http.Client{}
	get := func() (time.Duration, error) {
		t0 := time.Now()
		resp, err := hc.Get(b.n.URL() + "/fn/hello-deploy?name=x")
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		return time.Since(t0), nil
	}
	first, err := get()
	if err != nil {
		return nil, err
	}
	var warm []time.Duration
	for i := 0; i < 2000; i++ {
		d, err := get()
		if err != nil {
			return nil, err
		}
		warm = append(warm, d)
	}
	sortD(warm)
	if err := b.c.DeleteFunction(ctx, "hello-deploy"); err != nil {
		return nil, err
	}
	return []row{
		{"deploy", "deploy hello (CreateFunction, compile included)", round2(deploy.Seconds() * 1000), "ms", "", fmt.Sprintf("%.1f MB module", float64(len(code))/1e6)},
		{"deploy", "first request to /fn/hello after deploy", round2(us(first) / 1000), "ms", "", "includes the cold start"},
		{"deploy", "warm request to /fn/hello p50", round2(us(percentile(warm, .5)) / 1000), "ms", "", "2000 sequential requests, keep-alive"},
		{"deploy", "warm request to /fn/hello p99", round2(us(percentile(warm, .99)) / 1000), "ms", "", ""},
	}, nil
}

func (b *bench) warm(ctx context.Context) ([]row, error) {
	gust := b.n.URL() + "/fn/hello?name=bench"
	bare := b.bareURL + "/hello?name=bench"
	// Warm both up, then measure them alternately, twice each.
	if _, err := b.load(ctx, gust, b.o.conns, 2*time.Second, 0); err != nil {
		return nil, err
	}
	if _, err := b.load(ctx, bare, b.o.conns, 2*time.Second, 0); err != nil {
		return nil, err
	}
	var g, n []loadResult
	for i := 0; i < 2; i++ {
		r, err := b.load(ctx, bare, b.o.conns, b.o.duration, 0)
		if err != nil {
			return nil, err
		}
		n = append(n, r)
		r, err = b.load(ctx, gust, b.o.conns, b.o.duration, 0)
		if err != nil {
			return nil, err
		}
		g = append(g, r)
	}
	best := func(rs []loadResult) loadResult {
		sort.Slice(rs, func(i, j int) bool { return rs[i].RPS > rs[j].RPS })
		return rs[0]
	}
	gb, nb := best(g), best(n)
	c := fmt.Sprintf("%d conns, %s", b.o.conns, b.o.duration)
	return []row{
		{"warm", "bare net/http throughput", round(nb.RPS), "req/s", "", c},
		{"warm", "bare net/http p50", round(nb.P50us), "µs", "", ""},
		{"warm", "bare net/http p99", round(nb.P99us), "µs", "", ""},
		{"warm", "gust /fn/hello throughput", round(gb.RPS), "req/s", "", c + fmt.Sprintf(", %d errors", gb.Errors)},
		{"warm", "gust /fn/hello p50", round(gb.P50us), "µs", "", ""},
		{"warm", "gust /fn/hello p99", round(gb.P99us), "µs", "", ""},
		{"warm", "gust / bare throughput", round2(gb.RPS / nb.RPS * 100), "%", "≥ 85%", "best of 2 runs each, same load generator"},
	}, nil
}

func (b *bench) overhead(ctx context.Context) ([]row, error) {
	gust := b.n.URL() + "/fn/hello?name=bench"
	bare := b.bareURL + "/hello?name=bench"
	const n = 5000
	b.load(ctx, gust, 1, time.Minute, 500)
	rb, err := b.load(ctx, bare, 1, time.Minute, n)
	if err != nil {
		return nil, err
	}
	rg, err := b.load(ctx, gust, 1, time.Minute, n)
	if err != nil {
		return nil, err
	}
	return []row{
		{"overhead", "bare p50 (1 conn)", round(rb.P50us), "µs", "", fmt.Sprintf("%d sequential requests", n)},
		{"overhead", "gust p50 (1 conn)", round(rg.P50us), "µs", "", ""},
		{"overhead", "platform overhead p50", round(rg.P50us - rb.P50us), "µs", "≤ 50 µs", "gust p50 − bare p50"},
	}, nil
}

// reapAll takes every function to zero instances.
func (b *bench) reapAll() {
	b.n.Engine().Reap(time.Now().Add(365 * 24 * time.Hour))
}

func (b *bench) cold(ctx context.Context) ([]row, error) {
	var rows []row
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for _, fn := range []struct{ name, kind, goal, path string }{
		{"hello", "SDK module", "≤ 0.5 ms (reach 0.2 ms)", "/fn/hello?name=cold"},
		{"echo", "WASI command", "≤ 1 ms", "/fn/echo"},
	} {
		b.mu.Lock()
		b.inits[fn.name] = nil
		b.runs[fn.name] = nil
		b.mu.Unlock()
		var e2e []time.Duration
		for i := 0; i < b.o.coldRuns; i++ {
			b.reapAll()
			t0 := time.Now()
			resp, err := hc.Get(b.n.URL() + fn.path)
			if err != nil {
				return nil, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return nil, fmt.Errorf("%s: status %d", fn.name, resp.StatusCode)
			}
			e2e = append(e2e, time.Since(t0))
		}
		b.mu.Lock()
		inits := append([]time.Duration(nil), b.inits[fn.name]...)
		runs := append([]time.Duration(nil), b.runs[fn.name]...)
		b.mu.Unlock()
		sortD(e2e)
		sortD(inits)
		sortD(runs)
		note := fmt.Sprintf("%d cold starts", len(inits))
		if fn.name == "echo" {
			// A command is instantiated inside each invocation: its cold
			// start is the invocation's own duration.
			rows = append(rows,
				row{"cold", fn.kind + " instantiate + run p50", round2(us(percentile(runs, .5)) / 1000), "ms", fn.goal, note + "; a fresh instance per invocation"},
				row{"cold", fn.kind + " instantiate + run p99", round2(us(percentile(runs, .99)) / 1000), "ms", "", ""})
		} else {
			rows = append(rows,
				row{"cold", fn.kind + " instance start p50", round2(us(percentile(inits, .5)) / 1000), "ms", fn.goal, note},
				row{"cold", fn.kind + " instance start p99", round2(us(percentile(inits, .99)) / 1000), "ms", "", ""})
		}
		rows = append(rows,
			row{"cold", fn.kind + " request, no instance → response p50", round2(us(percentile(e2e, .5)) / 1000), "ms", "", "end to end over HTTP, keep-alive connection"},
			row{"cold", fn.kind + " request, no instance → response p99", round2(us(percentile(e2e, .99)) / 1000), "ms", "", ""},
		)
	}
	return rows, nil
}

// burst sends n requests to url at once, each on its own connection.
func burst(url string, n int) (lat []time.Duration, failed int, total time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	lat = make([]time.Duration, n)
	errs := make([]error, n)
	gate := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			t0 := time.Now()
			resp, err := hc.Get(url)
			if err != nil {
				errs[i] = err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs[i] = fmt.Errorf("status %d", resp.StatusCode)
			}
			lat[i] = time.Since(t0)
		}()
	}
	t0 := time.Now()
	close(gate)
	wg.Wait()
	total = time.Since(t0)
	for _, e := range errs {
		if e != nil {
			failed++
		}
	}
	sortD(lat)
	return lat, failed, total
}

func (b *bench) burstFromZero(ctx context.Context) ([]row, error) {
	n := b.o.burst
	blat, _, _ := burst(b.bareURL+"/hello?name=burst", n)
	b.reapAll()
	startsBefore := b.coldCount("hello")
	lat, failed, total := burst(b.n.URL()+"/fn/hello?name=burst", n)
	started := b.coldCount("hello") - startsBefore
	st := b.n.Engine().Stats()
	return []row{
		{"burst", "requests served", float64(n - failed), "", "all", fmt.Sprintf("%d concurrent from zero, one connection each", n)},
		{"burst", "errors", float64(failed), "", "0", ""},
		{"burst", "p50", round2(us(percentile(lat, .5)) / 1000), "ms", "", ""},
		{"burst", "p99", round2(us(percentile(lat, .99)) / 1000), "ms", "< 100 ms", fmt.Sprintf("the bare server under the same burst: p99 %.2f ms", us(percentile(blat, .99))/1000)},
		{"burst", "wall time", round2(total.Seconds() * 1000), "ms", "", ""},
		{"burst", "instances started", float64(started), "", "", fmt.Sprintf("never more than requests waiting; budget %d MB", st.BudgetMB)},
	}, nil
}

func (b *bench) coldCount(fn string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.inits[fn])
}

// rssMB is this process's resident set size.
func rssMB() float64 {
	bs, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(bs), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func (b *bench) memory(ctx context.Context) ([]row, error) {
	b.reapAll()
	runtime.GC()
	debug.FreeOSMemory()
	before := rssMB()
	budget := b.n.Engine().Stats().BudgetMB
	want := min(200, budget/128-1)
	if _, err := b.c.PutProvisionedConcurrency(ctx, "hello", int32(want)); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for idle("hello", b.n) < want {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d provisioned instances started", idle("hello", b.n), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	runtime.GC()
	debug.FreeOSMemory()
	after := rssMB()
	if err := b.c.DeleteProvisionedConcurrency(ctx, "hello"); err != nil {
		return nil, err
	}
	return []row{
		{"memory", "resident per idle warm SDK instance", round2((after - before) / float64(want)), "MB", "≤ 2 MB (reach 0.5)", fmt.Sprintf("RSS %.0f → %.0f MB with %d idle instances", before, after, want)},
	}, nil
}

func idle(fn string, n *node.Node) int {
	for _, p := range n.Engine().Stats().Pools {
		if p.Function == fn {
			return p.Idle
		}
	}
	return 0
}

func (b *bench) scaleDown(ctx context.Context) ([]row, error) {
	b.reapAll()
	runtime.GC()
	debug.FreeOSMemory()
	base := rssMB()
	// Scale up with a short burst, then stop and watch the reaper.
	if _, err := b.burstFromZero(ctx); err != nil {
		return nil, err
	}
	peakInstances := idle("hello", b.n)
	peak := rssMB()
	t0 := time.Now()
	deadline := t0.Add(time.Minute)
	for b.n.Engine().Stats().UsedMB > 0 {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("instances still reserve %d MB a minute after the burst", b.n.Engine().Stats().UsedMB)
		}
		time.Sleep(10 * time.Millisecond)
	}
	toZero := time.Since(t0)
	runtime.GC()
	debug.FreeOSMemory()
	after := rssMB()
	return []row{
		{"scaledown", "instances after the burst", float64(peakInstances), "", "", "keep-alive 3 s"},
		{"scaledown", "time to zero instances", round2(toZero.Seconds()), "s", "keep-alive + ≤ 1 s", ""},
		{"scaledown", "resident memory: baseline / peak / after", round(after), "MB", "back near baseline", fmt.Sprintf("%.0f / %.0f / %.0f MB", base, peak, after)},
	}, nil
}

func sortD(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }

func round(f float64) float64  { return float64(int64(f + 0.5)) }
func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
