//go:build linux

package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust/internal/sandbox"
)

// Interface guards.
var (
	_ sandbox.Runtime  = (*Runtime)(nil)
	_ sandbox.Program  = (*Program)(nil)
	_ sandbox.Instance = (*instance)(nil)
)

// Defaults of Options and Spec fields left zero.
const (
	DefaultMemoryMB    = 128
	DefaultTimeout     = 3 * time.Second
	DefaultInitTimeout = 10 * time.Second
	DefaultUID         = 993
	DefaultGID         = 993
	DefaultPidsLimit   = 1024
	DefaultTmpMB       = 512
	// DefaultLogLimit is the log kept per invocation when
	// Request.LogLimit is zero.
	DefaultLogLimit = 64 << 10
)

// Limits as on Lambda.
const (
	// MaxEnvBytes caps the function's own environment (keys plus values).
	MaxEnvBytes = 4 << 10
	// MaxPayloadBytes caps a response or error posted by the function.
	MaxPayloadBytes = 6 << 20
	// MaxCodeBytes caps the unzipped size of a bundle.
	MaxCodeBytes = 250 << 20
	// maxFiles caps the number of entries of a bundle.
	maxFiles = 20000
	// rlimitNofile is the open-files limit of every instance.
	rlimitNofile = 1024
)

// ErrClosed is returned by a Runtime, Program or Instance used after Close.
var ErrClosed = errors.New("process: closed")

// HelperConfig says how instances are started.
type HelperConfig struct {
	// Path is the executable run as the sandbox helper; its main (or a
	// test's TestMain) must call RunHelperIfRequested first. Empty: the
	// running executable (os.Executable).
	Path string
	// Unconfined skips the namespaces, the private root and the uid
	// change even when running as root (the cgroup, rlimits and
	// no_new_privs stay). For development hosts only.
	Unconfined bool
}

// Options configures a Runtime.
type Options struct {
	// WorkDir holds unpacked code (WorkDir/code/<digest>), Gust's
	// bootstraps and the instances' root mount point. Required.
	WorkDir string
	// Helper starts instances.
	Helper HelperConfig
	// Region and Account appear in ARNs and AWS_REGION
	// (default us-east-1 and 000000000000).
	Region  string
	Account string
	// UIDBase and UIDCount: as root, every instance runs as a uid of its
	// own and the gid of the same number, from UIDBase to
	// UIDBase+UIDCount-1 (default 200000 and 65536), taken in turn and
	// reused only after the instance that held it is closed; Start fails
	// with ErrNoUID when all are held. Pick a range no user or service
	// of the host owns. A uid of its own is what keeps an instance from
	// another's Runtime API (see Runtime.Isolation). UIDCount -1 turns
	// this off: every instance then runs as UID and GID.
	UIDBase, UIDCount int
	// UID and GID run the code of every instance when UIDCount is -1
	// (default 993, Lambda's sbx_user1051); then instances can reach
	// each other's Runtime API.
	UID, GID int
	// PidsLimit caps the processes and threads of one instance
	// (default 1024, as on Lambda).
	PidsLimit int
	// TmpMB caps the private /tmp of an instance (default 512, Lambda's
	// default ephemeral storage).
	TmpMB int
	// Credentials, if set, returns environment variables the node gives a
	// function version's instances beside its own (the node's API address
	// and a token scoped to the function's grants), as Lambda gives its
	// execution role's credentials. They override the function's own.
	Credentials func(function, version string) map[string]string
}

// Runtime runs Lambda-style bundles as sandboxed processes. It is safe for
// concurrent use.
type Runtime struct {
	opts       Options
	helper     string
	codeDir    string
	runtimeDir string // Gust's bootstraps, /var/runtime in a sandbox
	rootDir    string // empty mount point of instances' root file systems

	interps     map[string]*interpreter // supported node/python runtimes
	unsupported map[string]string
	isolation   []string
	confined    bool // namespaces, private root, uid change
	cg          *cgroupRoot
	// ids hands out the instances' uids; nil when they share opts.UID
	// (Options.UIDCount -1). Used only when confined.
	ids *idRange
	// peerCheck: Runtime API listeners take only connections from
	// their instance's uid (see peerUID).
	peerCheck bool

	srv *http.Server

	mu        sync.Mutex
	code      map[string]int // unpacked code directories by digest: references
	instances map[*instance]struct{}
	closed    bool
}

// New probes the host and returns a Runtime. Close it to stop every
// instance and remove what it unpacked.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.WorkDir == "" {
		return nil, errors.New("process: Options.WorkDir is required")
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Account == "" {
		opts.Account = "000000000000"
	}
	if opts.UID == 0 {
		opts.UID = DefaultUID
	}
	if opts.GID == 0 {
		opts.GID = DefaultGID
	}
	if opts.UIDBase == 0 {
		opts.UIDBase = DefaultUIDBase
	}
	if opts.UIDCount == 0 {
		opts.UIDCount = DefaultUIDCount
	}
	var ids *idRange
	if opts.UIDCount != -1 {
		var err error
		if ids, err = newIDRange(opts.UIDBase, opts.UIDCount); err != nil {
			return nil, err
		}
	}
	if opts.PidsLimit <= 0 {
		opts.PidsLimit = DefaultPidsLimit
	}
	if opts.TmpMB <= 0 {
		opts.TmpMB = DefaultTmpMB
	}
	helper := opts.Helper.Path
	if helper == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("process: finding the helper executable: %w", err)
		}
		helper = exe
	}
	work, err := filepath.Abs(opts.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	rt := &Runtime{
		opts:       opts,
		helper:     helper,
		codeDir:    filepath.Join(work, "code"),
		runtimeDir: filepath.Join(work, "runtime"),
		rootDir:    filepath.Join(work, "root"),
		ids:        ids,
		code:       map[string]int{},
		instances:  map[*instance]struct{}{},
	}
	for _, d := range []string{rt.codeDir, rt.rootDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("process: %w", err)
		}
	}
	if err := writeBootstraps(rt.runtimeDir); err != nil {
		return nil, err
	}
	rt.interps, rt.unsupported = probeInterpreters(ctx)
	rt.probeIsolation()
	rt.srv = &http.Server{
		Handler:           rt.apiHandler(),
		ConnContext:       connContext,
		ReadHeaderTimeout: 10 * time.Second,
	}
	return rt, nil
}

// Runtimes lists the runtime names this host can run, sorted.
func (rt *Runtime) Runtimes() []string {
	names := []string{"provided", "provided.al2", "provided.al2023"}
	for n := range rt.interps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Unsupported maps each runtime Gust knows but this host cannot run to the
// reason.
func (rt *Runtime) Unsupported() map[string]string {
	m := make(map[string]string, len(rt.unsupported))
	for k, v := range rt.unsupported {
		m[k] = v
	}
	return m
}

// Isolation describes, one line per mechanism, what isolates instances on
// this host and what is off and why. A node prints it at start-up.
func (rt *Runtime) Isolation() []string { return slices.Clone(rt.isolation) }

// Close kills every instance still running, stops serving the Runtime
// API, and removes the cgroups it made and the unpacked code.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	live := make([]*instance, 0, len(rt.instances))
	for in := range rt.instances {
		live = append(live, in)
	}
	rt.mu.Unlock()
	for _, in := range live {
		_ = in.Close(ctx)
	}
	// Each instance closed its own listener above; the server may not
	// have noticed yet and close it again, which is no failure.
	serr := rt.srv.Close()
	if errors.Is(serr, net.ErrClosed) {
		serr = nil
	}
	errs := []error{serr}
	if rt.cg != nil {
		errs = append(errs, rt.cg.remove())
	}
	errs = append(errs, os.RemoveAll(rt.codeDir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("process: closing runtime: %w", err)
	}
	return nil
}

// Program is an unpacked, verified bundle. Safe for concurrent use.
type Program struct {
	rt       *Runtime
	spec     sandbox.Spec // without Code
	digest   string
	dir      string // unpacked code on the host
	argv     []string
	env      []string // all but the per-instance variables
	memoryMB int
	timeout  time.Duration
	interp   *interpreter

	mu     sync.Mutex
	closed bool
}

// kinds of runtime names.
func isProvided(name string) bool {
	return name == "provided" || name == "provided.al2" || name == "provided.al2023"
}

// Load unpacks and verifies spec.Code, a zip bundle. Code the runtime
// cannot run is refused with a *sandbox.InvalidCodeError.
func (rt *Runtime) Load(ctx context.Context, spec sandbox.Spec) (sandbox.Program, error) {
	var interp *interpreter
	switch {
	case isProvided(spec.Runtime):
	case rt.interps[spec.Runtime] != nil:
		interp = rt.interps[spec.Runtime]
	case rt.unsupported[spec.Runtime] != "":
		return nil, &sandbox.InvalidCodeError{Reason: fmt.Sprintf("runtime %s is not available on this node: %s", spec.Runtime, rt.unsupported[spec.Runtime])}
	default:
		return nil, &sandbox.InvalidCodeError{Reason: fmt.Sprintf("unknown runtime %q: this node runs %s", spec.Runtime, strings.Join(rt.Runtimes(), ", "))}
	}
	memoryMB := spec.MemoryMB
	if memoryMB == 0 {
		memoryMB = DefaultMemoryMB
	}
	if memoryMB < 16 || memoryMB > 10240 {
		return nil, &sandbox.InvalidCodeError{Reason: fmt.Sprintf("memory size %d MB is outside 16 to 10240 MB", memoryMB)}
	}
	if err := checkEnv(spec.Env); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(spec.Code)
	digest := hex.EncodeToString(sum[:])
	if spec.Digest != "" && spec.Digest != digest {
		return nil, &sandbox.InvalidCodeError{Reason: "code does not match its digest"}
	}

	dir, err := rt.unpack(digest, spec.Code)
	if err != nil {
		return nil, err
	}
	p := &Program{rt: rt, digest: digest, dir: dir, memoryMB: memoryMB, interp: interp}
	p.spec = spec
	p.spec.Code = nil
	p.timeout = spec.Timeout
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	taskRoot, runtimeDir := "/var/task", "/var/runtime"
	if !rt.confined {
		taskRoot, runtimeDir = dir, rt.runtimeDir
	}
	if interp == nil {
		err = verifyBootstrap(dir)
		p.argv = []string{taskRoot + "/bootstrap"}
	} else {
		err = verifyHandler(dir, spec.Runtime, spec.Handler)
		p.argv = interp.argv(runtimeDir)
	}
	if err != nil {
		rt.release(digest)
		return nil, err
	}
	p.env = rt.baseEnv(spec, memoryMB, interp, taskRoot, runtimeDir)
	return p, nil
}

// Close releases the unpacked code. Instances must be closed first.
func (p *Program) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.rt.release(p.digest)
	return nil
}
