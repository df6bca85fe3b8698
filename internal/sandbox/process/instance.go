//go:build linux

package process

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gustfaas/gust/internal/sandbox"
)

// InitError reports an instance that failed to initialise: its bootstrap
// exited, posted /init/error, or did not ask for an invocation in time.
// Func is the error as Lambda reports it to the caller; Log is what the
// instance wrote.
type InitError struct {
	Func *sandbox.FunctionError
	Log  []byte
}

func (e *InitError) Error() string { return "process: init failed: " + e.Func.Error() }

// Unwrap lets errors.As find the *sandbox.FunctionError.
func (e *InitError) Unwrap() error { return e.Func }

// instance is one running execution environment.
type instance struct {
	rt   *Runtime
	p    *Program
	id   string
	arn  string
	cmd  *exec.Cmd
	cg   *cgroup
	ln   net.Listener
	logs *logSink
	// uid and gid run the instance's code; only connections from
	// sockets of uid reach its Runtime API. ownUID: uid came from
	// rt.ids and goes back at cleanup.
	uid, gid int
	ownUID   bool
	refused  atomic.Int64 // Runtime API connections refused (another uid)

	exited  chan struct{} // closed when the helper/bootstrap has exited
	waitErr error         // set before exited closes
	// setupErr is the helper's error setting up the sandbox ("" once it
	// exec'd the bootstrap); set before statusDone closes.
	setupErr   string
	statusDone chan struct{}

	ready     chan struct{} // closed at the first GET /next
	readyOnce sync.Once
	next      chan *invocation // handed to the waiting GET /next

	mu       sync.Mutex
	initErr  *sandbox.FunctionError
	initDone chan struct{} // closed when /init/error is posted
	cur      *invocation   // handed out, not yet answered
	lastID   string        // the last answered request id
	lost     bool
	closed   bool
}

// invocation is one request in flight inside an instance.
type invocation struct {
	req   sandbox.Request
	trace string
	done  chan result // buffered: the API handler never blocks
}

type result struct {
	payload []byte
	err     *sandbox.FunctionError
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start runs one instance and waits until its bootstrap asks for the first
// invocation. It fails with an *InitError when the bootstrap does not get
// there.
func (p *Program) Start(ctx context.Context) (sandbox.Instance, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	rt := p.rt
	in := &instance{
		rt:         rt,
		p:          p,
		id:         randomHex(16),
		arn:        fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", rt.opts.Region, rt.opts.Account, p.spec.Function),
		exited:     make(chan struct{}),
		statusDone: make(chan struct{}),
		ready:      make(chan struct{}),
		next:       make(chan *invocation),
		initDone:   make(chan struct{}),
	}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil, ErrClosed
	}
	rt.instances[in] = struct{}{}
	rt.mu.Unlock()
	if err := in.launch(); err != nil {
		in.cleanup()
		return nil, err
	}
	initTimeout := p.spec.Timeout
	if initTimeout <= 0 {
		initTimeout = DefaultInitTimeout
	}
	timer := time.NewTimer(initTimeout)
	defer timer.Stop()
	var fe *sandbox.FunctionError
	select {
	case <-in.ready:
		return in, nil
	case <-in.initDone:
		in.mu.Lock()
		fe = in.initErr
		in.mu.Unlock()
	case <-in.exited:
		fe = in.exitError("")
	case <-timer.C:
		fe = &sandbox.FunctionError{Type: "Sandbox.Timedout", Message: fmt.Sprintf("Init timed out after %.2f seconds: the bootstrap did not ask for an invocation (GET /2018-06-01/runtime/invocation/next)", initTimeout.Seconds())}
	case <-ctx.Done():
		in.kill()
		in.cleanup()
		return nil, fmt.Errorf("process: starting instance: %w", ctx.Err())
	}
	in.kill()
	<-in.exited
	in.logs.flush()
	log := in.logs.take()
	in.cleanup()
	return nil, &InitError{Func: fe, Log: log}
}

// launch starts the helper.
func (in *instance) launch() error {
	rt, p := in.rt, in.p
	var err error
	switch {
	case rt.confined && rt.ids != nil:
		if in.uid, err = rt.ids.take(); err != nil {
			return err
		}
		in.gid, in.ownUID = in.uid, true
	case rt.confined:
		in.uid, in.gid = rt.opts.UID, rt.opts.GID
	default:
		in.uid, in.gid = os.Geteuid(), os.Getegid()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("process: runtime API listener: %w", err)
	}
	in.ln = ln
	apiUID := -1
	if rt.peerCheck {
		apiUID = in.uid
	}
	go rt.srv.Serve(&instListener{Listener: ln, inst: in, uid: apiUID}) //nolint:errcheck // ends with the listener

	// RLIMIT_NPROC counts the processes of a uid: of this instance alone
	// when it has a uid of its own.
	nproc := uint64(rt.opts.PidsLimit)
	if rt.cg != nil {
		if !in.ownUID {
			// The pids cgroup limits each instance; RLIMIT_NPROC counts
			// all processes of the shared uid, so it is only a backstop.
			nproc *= 16
		}
		if in.cg, err = rt.cg.create(in.id, int64(p.memoryMB)<<20, rt.opts.PidsLimit); err != nil {
			return err
		}
	}
	now := time.Now().UTC()
	env := append(p.env[:len(p.env):len(p.env)],
		"AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(),
		"AWS_LAMBDA_LOG_STREAM_NAME="+now.Format("2006/01/02")+"/[$LATEST]"+in.id)
	cfg := helperConfig{
		Argv:   p.argv,
		Env:    env,
		Dir:    "/var/task",
		Nofile: rlimitNofile,
		Nproc:  nproc,
	}
	if in.cg != nil {
		cfg.Cgroups = in.cg.dirs()
	}
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if rt.confined {
		attr.Cloneflags = syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
		cfg.Confined = true
		cfg.Root = rt.rootDir
		cfg.Binds = []bind{{Src: p.dir, Dst: "/var/task"}, {Src: rt.runtimeDir, Dst: "/var/runtime"}}
		if p.interp != nil && p.interp.prefix != "" {
			cfg.Binds = append(cfg.Binds, bind{Src: p.interp.prefix, Dst: p.interp.prefix})
		}
		cfg.TmpMB = rt.opts.TmpMB
		cfg.Hostname = "gust-sandbox"
		cfg.UID, cfg.GID = in.uid, in.gid
	} else {
		attr.Setpgid = true
		cfg.Dir = p.dir
	}
	arg, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("process: %w", err)
	}

	logR, logW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("process: %w", err)
	}
	if in.logs, err = newLogSink(logR); err != nil {
		logR.Close()
		logW.Close()
		return fmt.Errorf("process: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		logW.Close()
		return fmt.Errorf("process: %w", err)
	}
	in.cmd = &exec.Cmd{
		Path:        rt.helper,
		Args:        []string{helperArg0, string(arg)},
		Env:         []string{},
		Stdout:      logW,
		Stderr:      logW,
		ExtraFiles:  []*os.File{statusW},
		SysProcAttr: attr,
	}
	err = in.cmd.Start()
	logW.Close()
	statusW.Close()
	if err != nil {
		statusR.Close()
		in.cmd = nil
		return fmt.Errorf("process: starting the sandbox helper %s: %w", rt.helper, err)
	}
	go in.logs.run()
	go func() {
		b, _ := io.ReadAll(io.LimitReader(statusR, 4096))
		statusR.Close()
		in.setupErr = string(b)
		close(in.statusDone)
	}()
	go func() {
		in.waitErr = in.cmd.Wait()
		close(in.exited)
	}()
	return nil
}

// exitError describes an instance that exited, as Lambda would.
func (in *instance) exitError(requestID string) *sandbox.FunctionError {
	<-in.exited
	prefix := ""
	if requestID != "" {
		prefix = "RequestId: " + requestID + " Error: "
	}
	<-in.statusDone
	if in.setupErr != "" {
		return &sandbox.FunctionError{Type: "Runtime.SandboxError", Message: prefix + "could not start the function: " + in.setupErr}
	}
	how := "exit status 0"
	if in.waitErr != nil {
		how = in.waitErr.Error()
	}
	if in.cg != nil && in.cg.oomKills() > 0 {
		return &sandbox.FunctionError{Type: "Runtime.OutOfMemory", Message: fmt.Sprintf("%sRuntime exited with error: %s (memory limit of %d MB exceeded)", prefix, how, in.p.memoryMB)}
	}
	return &sandbox.FunctionError{Type: "Runtime.ExitError", Message: prefix + "Runtime exited with error: " + how}
}

// kill stops every process of the instance.
func (in *instance) kill() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	pid := in.cmd.Process.Pid
	if in.rt.confined {
		// The init of a pid namespace: the kernel kills all the rest.
		_ = syscall.Kill(pid, syscall.SIGKILL)
	} else {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	if in.cg != nil {
		in.cg.kill()
	}
}

// cleanup releases what launch acquired; the processes must be gone.
func (in *instance) cleanup() {
	if in.ln != nil {
		in.ln.Close()
	}
	if in.cmd != nil {
		<-in.exited
	}
	if in.logs != nil {
		if in.cmd != nil {
			<-in.logs.done
		}
		in.logs.r.Close()
	}
	if in.cg != nil {
		in.cg.kill()
		_ = in.cg.remove()
	}
	if in.ownUID {
		// Every process of the instance is reaped: the helper was the
		// init of their pid namespace and has been waited for.
		in.rt.ids.put(in.uid)
		in.ownUID = false
	}
	in.rt.mu.Lock()
	delete(in.rt.instances, in)
	in.rt.mu.Unlock()
}

// markReady records the first GET /next.
func (in *instance) markReady() { in.readyOnce.Do(func() { close(in.ready) }) }

// Invoke hands one event to the instance and waits for its answer.
func (in *instance) Invoke(ctx context.Context, req sandbox.Request) (sandbox.Response, error) {
	in.mu.Lock()
	if in.closed || in.lost {
		in.mu.Unlock()
		return sandbox.Response{}, &sandbox.LostError{Kind: sandbox.Crashed, Err: errors.New("instance is no longer usable")}
	}
	in.mu.Unlock()

	deadline := req.Deadline
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(in.p.timeout)
	}
	req.Deadline = deadline
	if req.RequestID == "" {
		req.RequestID = randomHex(16)
	}
	in.logs.begin(req.LogLimit)
	inv := &invocation{req: req, done: make(chan result, 1),
		trace: fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), randomHex(12), randomHex(8))}

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()

	var res result
	select {
	case in.next <- inv:
		select {
		case res = <-inv.done:
			in.logs.flush()
			resp := sandbox.Response{Payload: res.payload, Err: res.err, Log: in.logs.take()}
			if in.cg != nil {
				resp.MaxMemoryBytes = in.cg.peakMemory()
			}
			return resp, nil
		case <-in.exited:
		case <-timer.C:
			return in.lose(req, sandbox.TimedOut, nil)
		case <-ctx.Done():
			return in.lose(req, sandbox.TimedOut, ctx.Err())
		}
	case <-in.exited:
	case <-timer.C:
		return in.lose(req, sandbox.TimedOut, nil)
	case <-ctx.Done():
		return in.lose(req, sandbox.TimedOut, ctx.Err())
	}
	return in.lose(req, sandbox.Crashed, nil)
}

// lose kills the instance and reports why it is gone.
func (in *instance) lose(req sandbox.Request, kind sandbox.Kind, ctxErr error) (sandbox.Response, error) {
	in.mu.Lock()
	in.lost = true
	in.mu.Unlock()
	in.kill()
	<-in.exited
	in.logs.flush()
	resp := sandbox.Response{Log: in.logs.take()}
	if in.cg != nil {
		resp.MaxMemoryBytes = in.cg.peakMemory()
	}
	var err error
	switch {
	case kind == sandbox.TimedOut && (ctxErr == nil || errors.Is(ctxErr, context.DeadlineExceeded)):
		secs := in.p.timeout.Seconds()
		resp.Err = &sandbox.FunctionError{Type: "Sandbox.Timedout", Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", req.RequestID, secs)}
		err = fmt.Errorf("task timed out after %.2f seconds", secs)
	case kind == sandbox.TimedOut:
		kind = sandbox.Crashed
		resp.Err = &sandbox.FunctionError{Type: "Runtime.Cancelled", Message: "RequestId: " + req.RequestID + " Error: invocation cancelled"}
		err = fmt.Errorf("invocation cancelled: %w", ctxErr)
	default:
		resp.Err = in.exitError(req.RequestID)
		if resp.Err.Type == "Runtime.OutOfMemory" {
			kind = sandbox.OutOfMemory
		}
		err = errors.New(strings.TrimPrefix(resp.Err.Message, "RequestId: "+req.RequestID+" Error: "))
	}
	return resp, &sandbox.LostError{Kind: kind, Err: err}
}

// Close kills the instance and frees its resources.
func (in *instance) Close(ctx context.Context) error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return nil
	}
	in.closed = true
	in.mu.Unlock()
	in.kill()
	in.cleanup()
	return nil
}
