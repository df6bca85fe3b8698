//go:build linux

package process

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// probeIsolation finds what the host offers and tries it once, end to end,
// with a helper that runs /bin/true in a full sandbox. Whatever fails is
// turned off and reported, never silently.
func (rt *Runtime) probeIsolation() {
	var lines []string
	on := func(format string, args ...any) { lines = append(lines, "on: "+fmt.Sprintf(format, args...)) }
	off := func(format string, args ...any) { lines = append(lines, "off: "+fmt.Sprintf(format, args...)) }

	root := os.Geteuid() == 0
	if cg, err := findCgroups(fmt.Sprintf("gust-%d-%s", os.Getpid(), randomHex(4))); err != nil {
		off("cgroup memory and pids limits per instance: %v", err)
	} else {
		rt.cg = cg
	}
	rt.confined = root && !rt.opts.Helper.Unconfined
	probeErr := rt.probeHelper()
	if probeErr != nil && rt.cg != nil {
		// Try without cgroups before giving up on the rest.
		cg := rt.cg
		rt.cg = nil
		if rt.probeHelper() == nil {
			_ = cg.remove()
			off("cgroup memory and pids limits per instance: joining one failed: %v", probeErr)
			probeErr = nil
		} else {
			rt.cg = cg
		}
	}
	if probeErr != nil && rt.confined {
		rt.confined = false
		lines = append(lines, "off: pid, mount, ipc and uts namespaces, private root, uid change: the sandbox helper failed: "+probeErr.Error())
		probeErr = rt.probeHelper()
	}
	if rt.cg != nil {
		on("cgroup memory limit (the function's memory size) and pids limit %d per instance (%s)", rt.opts.PidsLimit, rt.cg.describe())
	}
	ownUID := rt.confined && rt.ids != nil
	switch {
	case ownUID:
		on("pid, mount, ipc and uts namespaces per instance")
		on("private root file system: host /usr, /etc and libraries read-only, code read-only at /var/task, fresh /proc, minimal /dev, private /tmp tmpfs of %d MB", rt.opts.TmpMB)
		on("a uid and gid of its own per instance, from %d to %d (reused only after the instance is closed), no supplementary groups", rt.ids.base, rt.ids.base+rt.ids.count-1)
	case rt.confined:
		on("pid, mount, ipc and uts namespaces per instance")
		on("private root file system: host /usr, /etc and libraries read-only, code read-only at /var/task, fresh /proc, minimal /dev, private /tmp tmpfs of %d MB", rt.opts.TmpMB)
		off("a uid of its own per instance: Options.UIDCount is -1, every instance runs as uid %d and gid %d, no supplementary groups", rt.opts.UID, rt.opts.GID)
	case !root:
		off("namespaces, private root file system, uid change: the node does not run as root (functions run as uid %d and see the host's file system)", os.Geteuid())
	case rt.opts.Helper.Unconfined:
		off("namespaces, private root file system, uid change: Options.Helper.Unconfined is set")
	}
	if how, err := checkPeerUID(); err != nil {
		off("Runtime API private to its instance: cannot tell whose a connection is (%v): any local process can reach an instance's Runtime API (loopback)", err)
	} else {
		rt.peerCheck = true
		if ownUID {
			on("Runtime API private to its instance: its loopback listener resets every connection not made by the instance's uid (looked up by %s)", how)
		} else {
			off("Runtime API private to its instance: instances share a uid, so each can reach another's (loopback) Runtime API; connections from other uids are reset (looked up by %s)", how)
		}
	}
	off("network namespace: instances share the host network: they reach whatever listens on the host, each other's listening ports and abstract unix sockets")
	switch {
	case ownUID:
		on("rlimits: RLIMIT_NOFILE %d, RLIMIT_NPROC %d (per instance: its own uid), no core dumps", rlimitNofile, rt.opts.PidsLimit)
	case rt.cg != nil:
		on("rlimits: RLIMIT_NOFILE %d, RLIMIT_NPROC %d (per uid, a backstop to the pids cgroup), no core dumps", rlimitNofile, rt.opts.PidsLimit*16)
	default:
		on("rlimits: RLIMIT_NOFILE %d, RLIMIT_NPROC %d (per uid: shared by all instances), no core dumps", rlimitNofile, rt.opts.PidsLimit)
	}
	on("no_new_privs")
	on("environment at most %d bytes, reserved variables refused", MaxEnvBytes)
	if probeErr != nil {
		lines = append(lines, "off: the sandbox helper does not work, instances will fail to start: "+probeErr.Error())
	}
	rt.isolation = lines
}

// probeHelper runs the helper once as Start would, with /bin/true as the
// bootstrap.
func (rt *Runtime) probeHelper() error {
	truePath, err := exec.LookPath("true")
	if err != nil {
		truePath = "/bin/true"
	}
	cfg := helperConfig{Argv: []string{truePath}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/", Nofile: rlimitNofile, Nproc: uint64(rt.opts.PidsLimit) * 16}
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if rt.cg != nil {
		cg, err := rt.cg.create("probe-"+randomHex(4), 64<<20, 64)
		if err != nil {
			return err
		}
		defer func() { cg.kill(); _ = cg.remove() }()
		cfg.Cgroups = cg.dirs()
	}
	if rt.confined {
		attr.Cloneflags = syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
		cfg.Confined = true
		cfg.Root = rt.rootDir
		cfg.Binds = []bind{{Src: rt.runtimeDir, Dst: "/var/task"}, {Src: rt.runtimeDir, Dst: "/var/runtime"}}
		cfg.TmpMB = rt.opts.TmpMB
		cfg.Hostname = "gust-sandbox"
		cfg.UID, cfg.GID = rt.opts.UID, rt.opts.GID
		if rt.ids != nil {
			cfg.UID, cfg.GID = rt.ids.base, rt.ids.base
		}
		cfg.Dir = "/var/task"
	} else {
		attr.Setpgid = true
	}
	arg, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer statusR.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, rt.helper)
	cmd.Args = []string{helperArg0, string(arg)}
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.ExtraFiles = []*os.File{statusW}
	cmd.SysProcAttr = attr
	err = cmd.Start()
	statusW.Close()
	if err != nil {
		return fmt.Errorf("starting %s: %w", rt.helper, err)
	}
	status, _ := io.ReadAll(io.LimitReader(statusR, 4096))
	err = cmd.Wait()
	switch {
	case len(status) > 0:
		return fmt.Errorf("%s", status)
	case err != nil:
		msg := strings.TrimSpace(out.String())
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return fmt.Errorf("%s as helper: %w (did its main call process.RunHelperIfRequested first?) %s", rt.helper, err, msg)
	}
	return nil
}
