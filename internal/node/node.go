// Package node wires one Gust node together: substrate, registry, runtimes,
// engine, logs, keys and the HTTP gateway. It is the only package that
// imports all of them, and only cmd/gust and tests import it.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/async"
	"github.com/gustfaas/gust/internal/control"
	"github.com/gustfaas/gust/internal/creds"
	"github.com/gustfaas/gust/internal/destination"
	"github.com/gustfaas/gust/internal/engine"
	"github.com/gustfaas/gust/internal/gateway"
	"github.com/gustfaas/gust/internal/hostcall"
	"github.com/gustfaas/gust/internal/keyring"
	"github.com/gustfaas/gust/internal/logs"
	"github.com/gustfaas/gust/internal/meter"
	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/sandbox"
	"github.com/gustfaas/gust/internal/sandbox/process"
	"github.com/gustfaas/gust/internal/sandbox/wasm"
	"github.com/gustfaas/gust/internal/sigv4"
	"github.com/gustfaas/gust/internal/storage"
	"github.com/gustfaas/gust/internal/substrate"
	"github.com/gustfaas/gust/internal/trigger/manager"
	"github.com/gustfaas/gust/internal/trigger/queue"
	"github.com/gustfaas/gust/internal/trigger/schedule"
)

// Config configures a node. The zero value of each field means its default.
type Config struct {
	// Listen is the HTTP address (default 127.0.0.1:8080; port 0 picks one).
	Listen string
	// DataDir holds JetStream state, caches and the credentials file.
	DataDir string
	// Region appears in ARNs (default us-east-1).
	Region string
	// GraceTimeout bounds how long shutdown waits for in-flight
	// invocations (default 10s).
	GraceTimeout time.Duration
	// Logger receives operational logs (default: discarded).
	Logger *slog.Logger
	// MemoryMB is the memory budget for instances (default: half the
	// machine's memory).
	MemoryMB int
	// IdleTimeout is how long idle instances are kept (default 10m).
	IdleTimeout time.Duration
	// Prices cost metered usage (default: Lambda's list prices).
	Prices meter.Prices
	// CacheDir holds compiled code (default DataDir/cache/wasm). Tests
	// share one across nodes to compile each module once.
	CacheDir string
	// Observe, if set, also receives every invocation record (benchmarks
	// use it to read init durations); it must be fast.
	Observe func(*engine.Record)
	// AsyncRetryDelays are the waits before the retries of a failed
	// asynchronous invocation (default 1m, 2m, as Lambda); AsyncBackoffMax
	// caps the backoff after throttles (default 5m). Tests shorten both.
	AsyncRetryDelays []time.Duration
	AsyncBackoffMax  time.Duration
}

// CredentialsFile is the name of the credentials file in the data directory.
const CredentialsFile = "credentials"

// Node is a running node.
type Node struct {
	cfg        Config
	log        *slog.Logger
	sub        *substrate.Substrate
	reg        *registry.Registry
	rt         *wasm.Runtime
	prt        *process.Runtime // nil where the host cannot run processes
	eng        *engine.Engine
	logs       *logs.Log
	meter      *meter.Meter
	metrics    *meter.Metrics
	control    *control.Control
	srv        *http.Server
	ln         net.Listener
	served     chan error
	processErr error
	credPath   string
	key        keyring.Key
	keys       *keyring.Keyring
	async      *async.Queue
	sched      *schedule.Scheduler
	triggers   *manager.Manager
	storage    *storage.Store
	hosts      *hostcall.Service
}

// DefaultDataDir is $XDG_DATA_HOME/gust, else ~/.local/share/gust.
func DefaultDataDir(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "gust")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "gust")
	}
	return filepath.Join(os.TempDir(), "gust")
}

// Start brings a node up and serves until Shutdown.
func Start(ctx context.Context, cfg Config) (_ *Node, err error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8080"
	}
	if cfg.DataDir == "" {
		return nil, errors.New("node: a data directory is required")
	}
	if cfg.GraceTimeout == 0 {
		cfg.GraceTimeout = 10 * time.Second
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			n.closeAll(context.Background())
		}
	}()

	// Listen first: the address is known before any function loads
	// (process functions are given it); requests are served once all is
	// wired.
	if n.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if n.sub, err = substrate.Open(ctx, substrate.Config{DataDir: cfg.DataDir}); err != nil {
		return nil, err
	}
	if n.reg, err = registry.Open(ctx, n.sub); err != nil {
		return nil, err
	}
	// The keyring before any function loads: process functions are given
	// tokens derived from its master key.
	keys, err := keyring.Open(ctx, n.sub, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n.keys = keys
	if err := n.ensureCredentials(ctx, keys); err != nil {
		return nil, err
	}
	// KV and object buckets for functions and users; wasm functions
	// reach theirs through host calls, which also carry their outbound
	// HTTP, both checked against their grants at each call.
	if n.storage, err = storage.Open(ctx, n.sub, storage.Config{Logger: n.log}); err != nil {
		return nil, err
	}
	n.hosts = hostcall.New(hostcall.Config{Storage: n.storage, Functions: n.reg, Logger: n.log})
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(cfg.DataDir, "cache", "wasm")
	}
	if n.rt, err = wasm.New(ctx, wasm.Options{CacheDir: cfg.CacheDir, Host: n.hosts.Open}); err != nil {
		return nil, err
	}
	if n.logs, err = logs.Open(ctx, n.sub, n.log); err != nil {
		return nil, err
	}
	runtimes := map[string]sandbox.Runtime{"wasm": n.rt}
	unsupported := map[string]string{}
	if prt, perr := process.New(ctx, process.Options{WorkDir: filepath.Join(cfg.DataDir, "process"), Credentials: n.functionCredentials}); perr != nil {
		n.log.Warn("process runtime unavailable: Lambda runtimes (provided.*, nodejs*, python*) are refused", "err", perr)
		n.processErr = perr
	} else {
		n.prt = prt
		for _, name := range prt.Runtimes() {
			runtimes[name] = prt
		}
		unsupported = prt.Unsupported()
		// `gust up` prints these on its standard output.
		for _, l := range prt.Isolation() {
			n.log.Info("process isolation", "state", l)
		}
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = defaultMemoryMB()
	}
	n.cfg = cfg // with every default filled in
	n.eng = engine.New(engine.Config{
		Runtimes:    runtimes,
		Code:        n.reg,
		KindOf:      kindOf,
		MemoryMB:    cfg.MemoryMB,
		IdleTimeout: cfg.IdleTimeout,
		OnRecord: func(r *engine.Record) {
			if cfg.Observe != nil {
				cfg.Observe(r)
			}
			n.meter.Record(r)
			if r.Outcome != engine.Throttled {
				n.logs.Add(r, logs.Format(r))
			}
		},
		Logger: n.log,
		Latest: func(name string) (*registry.Function, bool) { return n.reg.Get(name) },
	})
	n.metrics = meter.NewMetrics(n.eng)
	if n.meter, err = meter.Open(ctx, n.sub, meter.Config{Prices: cfg.Prices, Metrics: n.metrics, Logger: n.log}); err != nil {
		return nil, err
	}
	n.reg.OnChange(func(ch registry.Change) {
		n.eng.Update(ch)
		if ch.New != nil {
			go n.warm(ch.New)
		}
		if ch.OldAlias != nil || ch.NewAlias != nil || ch.New == nil {
			n.provision(ch.Name())
		}
	})
	for _, f := range n.reg.List() {
		go n.warm(f)
		for _, a := range n.reg.Aliases(f.Name) {
			for _, v := range a.Versions() {
				if fv, ok := n.reg.Version(f.Name, v); ok {
					go n.warm(fv)
				}
			}
		}
		n.provision(f.Name)
	}
	n.control = control.New(n.reg, n.eng, func(rt string) error {
		if _, ok := runtimes[rt]; ok {
			return nil
		}
		if why, ok := unsupported[rt]; ok {
			return &registry.ValidationError{Field: "runtime", Message: fmt.Sprintf("runtime %s cannot run on this node: %s", rt, why)}
		}
		if n.processErr != nil && !registry.IsWasm(rt) {
			return &registry.ValidationError{Field: "runtime", Message: fmt.Sprintf("runtime %s cannot run on this node: the process runtime is unavailable: %v", rt, n.processErr)}
		}
		return &registry.ValidationError{Field: "runtime", Message: fmt.Sprintf("runtime %s is not available on this node", rt)}
	})

	// Results and failures of async invocations go where the functions'
	// event-invoke settings and dead-letter targets say.
	router := destination.New(destination.Config{Functions: n.reg, JetStream: n.sub.JetStream(), Region: cfg.Region, Logger: n.log})
	if n.async, err = async.Open(ctx, n.sub, async.Config{
		Invoker: n.eng, Functions: n.reg, Logger: n.log,
		Policy: router.Policy, OnSuccess: router.OnSuccess, OnFailure: router.OnFailure,
		// At most half the node's concurrency, so synchronous traffic
		// always keeps the rest.
		MaxInFlight: min(max(cfg.MemoryMB/registry.MinMemoryMB/2, 4), 256),
		RetryDelays: cfg.AsyncRetryDelays, BackoffMax: cfg.AsyncBackoffMax,
	}); err != nil {
		return nil, err
	}
	router.Attach(n.async)
	if err := n.async.Start(); err != nil {
		return nil, err
	}
	if n.sched, err = schedule.Open(ctx, n.sub, schedule.Config{Enqueuer: scheduleQueue{n.async}, Functions: n.reg,
		Region: cfg.Region, Logger: n.log}); err != nil {
		return nil, err
	}

	// Event sources: each trigger runs on every node, sharing its
	// source's work out (see package manager).
	tinv, tdl := triggerInvoker{n.reg, n.eng}, triggerDeadLetters{router}
	buckets := &manager.Buckets{Store: n.storage, Enqueuer: triggerQueue{n.async}, Region: cfg.Region}
	if n.triggers, err = manager.Open(ctx, n.sub, manager.Config{
		Sources: map[string]manager.Source{
			api.TriggerQueue:    &manager.Queue{Conn: n.sub.Conn(), Invoker: tinv, DeadLetters: tdl, Region: cfg.Region},
			api.TriggerPostgres: &manager.Postgres{Invoker: tinv, DeadLetters: tdl},
			api.TriggerKV:       buckets,
			api.TriggerObjects:  buckets,
		},
		Sealer: keys, Functions: triggerFunctions{n.reg}, Logger: n.log,
	}); err != nil {
		return nil, err
	}
	n.metrics.Registry().MustRegister(n.triggers.Collector())

	gw := gateway.New(gateway.Config{
		Functions: n.reg,
		Control:   n.control,
		Invoker:   n.eng,
		Logs:      n.logs,
		Pools:     n.eng,
		Usage:     n.meter.Handler(),
		Metrics:   n.metrics.Handler(),
		Isolation: n.Isolation,
		Limits: gateway.AccountLimits{
			ConcurrentExecutions: cfg.MemoryMB / registry.MinMemoryMB,
			TotalCodeSize:        freeBytes(cfg.DataDir),
		},
		Auth:      sigv4.NewVerifier("lambda", keys.Secret),
		AuthError: sigv4.Describe,
		Policy:    keys,
		Keys:      keys,
		Schedules: n.sched,
		Triggers:  n.triggers,
		Storage:   n.storage,
		// gust publish and the queue streams, on the node's NATS.
		Publisher: queue.NewPublisher(n.sub.JetStream()),
		// Functions reach their granted buckets with tokens.
		FunctionTokens: keys,
		Async:          n.async,
		Region:         cfg.Region,
		Logger:         n.log,

		DeadLetters: router,
	})
	n.srv = &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	go func() { n.served <- n.srv.Serve(n.ln) }()
	return n, nil
}

// scheduleQueue fires schedule ticks as asynchronous invocations.
type scheduleQueue struct{ q *async.Queue }

func (s scheduleQueue) Enqueue(ctx context.Context, function, qualifier string, payload []byte, dedupID string) (string, error) {
	a, err := s.q.Enqueue(ctx, async.Request{Function: function, Qualifier: qualifier, Payload: payload, DedupID: dedupID, Source: "schedule"})
	return a.RequestID, err
}

// warm loads a function's program in the background so its first
// invocation does not wait for it.
func (n *Node) warm(f *registry.Function) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := n.eng.Warm(ctx, f); err != nil && !errors.Is(err, engine.ErrClosed) {
		n.log.Warn("warm function", "function", f.Name, "err", err)
	}
}

// provision tells the engine how many instances of each of a function's
// versions its aliases keep warm: an alias's provisioned concurrency is
// split between its versions by weight, rounded up.
func (n *Node) provision(name string) {
	want := map[string]int{}
	for _, v := range n.reg.Versions(name) {
		want[v.Qualifier()] = 0
	}
	want[registry.Latest] = 0
	for _, a := range n.reg.Aliases(name) {
		if a.ProvisionedConcurrency == 0 {
			continue
		}
		for _, v := range a.Versions() {
			want[v] += int(math.Ceil(float64(a.ProvisionedConcurrency) * a.Share(v)))
		}
	}
	for v, k := range want {
		n.eng.SetProvisioned(name, v, k)
	}
}

// ensureCredentials makes sure an admin key exists and that the
// credentials file in the data directory holds it.
func (n *Node) ensureCredentials(ctx context.Context, keys *keyring.Keyring) error {
	key, created, err := keys.Admin(ctx, func() (string, string, error) {
		k, err := creds.Generate()
		return k.AccessKeyID, k.SecretAccessKey, err
	})
	if err != nil {
		return err
	}
	n.key = key
	n.credPath = filepath.Join(n.cfg.DataDir, CredentialsFile)
	have, rerr := creds.ReadFile(n.credPath, "default")
	if created || rerr != nil || have.AccessKeyID != key.AccessKeyID || have.SecretAccessKey != key.SecretAccessKey {
		if err := creds.WriteFile(n.credPath, "default", creds.Key{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey}); err != nil {
			return fmt.Errorf("write credentials: %w", err)
		}
	}
	return nil
}

// kindOf names what a loaded program holds.
func kindOf(p sandbox.Program) string {
	switch p := p.(type) {
	case *wasm.Program:
		return p.Kind().String()
	case *process.Program:
		return "lambda-runtime-api"
	}
	return ""
}

// Isolation says how instances of a runtime are isolated on this node
// (process runtimes only; nil for wasm, whose sandbox is the wasm VM).
func (n *Node) Isolation(runtime string) []string {
	if registry.IsWasm(runtime) {
		return nil
	}
	if n.prt == nil {
		if n.processErr != nil {
			return []string{"off: process runtime unavailable: " + n.processErr.Error()}
		}
		return nil
	}
	return n.prt.Isolation()
}

// freeBytes is the space left on the file system holding dir (0 when it
// cannot be read).
func freeBytes(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// defaultMemoryMB is half the machine's memory, or 4 GB when it cannot be
// read.
func defaultMemoryMB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return engine.DefaultMemoryMB
	}
	var kb int
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return max(kb/1024/2, 256)
		}
	}
	return engine.DefaultMemoryMB
}

// Engine exposes the engine (benchmarks and tests inspect its pools).
func (n *Node) Engine() *engine.Engine { return n.eng }

// Async exposes the asynchronous invocation queue (tests and benchmarks).
func (n *Node) Async() *async.Queue { return n.async }

// Meter exposes the meter (benchmarks and tests query usage).
func (n *Node) Meter() *meter.Meter { return n.meter }

// URL is the node's base URL.
func (n *Node) URL() string { return "http://" + n.ln.Addr().String() }

// Addr is the address the node listens on.
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// CredentialsPath is the credentials file the node wrote.
func (n *Node) CredentialsPath() string { return n.credPath }

// AdminKey returns the admin key pair.
func (n *Node) AdminKey() (id, secret string) { return n.key.AccessKeyID, n.key.SecretAccessKey }

// ActiveInvocations is the number of invocations in progress.
func (n *Node) ActiveInvocations() int { return n.eng.Active() }

// Control exposes the deploy path (used to deploy the bundled examples).
func (n *Node) Control() *control.Control { return n.control }

// Done yields the serve error if the HTTP server stops on its own.
func (n *Node) Done() <-chan error { return n.served }

// Shutdown stops accepting requests, lets in-flight invocations finish
// (up to the grace timeout or ctx), flushes logs and stops the substrate.
func (n *Node) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.GraceTimeout)
	defer cancel()
	var errs []error
	if n.srv != nil {
		if err := n.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	errs = append(errs, n.closeAll(ctx))
	return errors.Join(errs...)
}

func (n *Node) closeAll(ctx context.Context) error {
	var errs []error
	if n.sched != nil {
		n.sched.Close() // before the queue: a tick being fired completes
	}
	if n.triggers != nil {
		// Batches being delivered are cancelled: their source delivers
		// them again (unconfirmed), here or on another node.
		if err := n.triggers.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.async != nil {
		// Running async invocations finish within the grace time, or
		// run again after a restart.
		if err := n.async.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if n.eng != nil {
		if err := n.eng.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if n.logs != nil {
		n.logs.Close()
	}
	if n.meter != nil {
		n.meter.Close()
	}
	if n.keys != nil {
		if err := n.keys.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.reg != nil {
		if err := n.reg.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.rt != nil {
		if err := n.rt.Close(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	if n.prt != nil {
		if err := n.prt.Close(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	if n.hosts != nil {
		n.hosts.Close()
	}
	if n.sub != nil {
		if err := n.sub.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.ln != nil && n.srv == nil {
		n.ln.Close()
	}
	return errors.Join(errs...)
}

// FunctionToken returns the token a function version's code is given to
// reach its granted buckets (name:version); tests use it.
func (n *Node) FunctionToken(function string) string { return n.keys.FunctionToken(function) }
