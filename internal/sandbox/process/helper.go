//go:build linux

package process

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
)

// helperArg0 is argv[0] of the sandbox helper: how the binary knows, before
// anything else, that it was started to set up an instance.
const helperArg0 = "gust-sandbox-helper"

// statusFD is the helper's pipe to the runtime: it carries a setup error;
// on a successful exec it closes (close-on-exec) without a word.
const statusFD = 3

// Linux constants the syscall package lacks.
const (
	rlimitNproc    = 6
	prSetNoNewPriv = 38
	prSetPdeathsig = 1
)

// helperConfig is everything the helper needs, passed as JSON in argv[1].
type helperConfig struct {
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Dir     string   `json:"dir"`
	Cgroups []string `json:"cgroups,omitempty"`
	// Confined: the helper runs in new namespaces and builds the root
	// file system below; then it drops to UID/GID.
	Confined bool   `json:"confined"`
	Root     string `json:"root,omitempty"`
	Binds    []bind `json:"binds,omitempty"`
	TmpMB    int    `json:"tmpMB,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	UID      int    `json:"uid"`
	GID      int    `json:"gid"`
	Nofile   uint64 `json:"nofile"`
	Nproc    uint64 `json:"nproc"`
}

// bind mounts Src (on the host) at Dst (in the sandbox), read-only.
type bind struct {
	Src string `json:"src"`
	Dst string `json:"dst"`
}

// RunHelperIfRequested turns the process into a sandbox helper when the
// process runtime started it as one, and otherwise returns at once. The
// helper joins the instance's cgroup, builds its root file system, sets
// limits, drops privileges and execs the function's bootstrap: it never
// returns. Call it first in main, and in TestMain of tests that start
// instances with the test binary as helper.
func RunHelperIfRequested() {
	if len(os.Args) != 2 || os.Args[0] != helperArg0 {
		return
	}
	// no_new_privs is a per-thread attribute and exec keeps only the
	// calling thread: everything from here runs on one thread.
	runtime.LockOSThread()
	err := runHelper(os.Args[1])
	status := os.NewFile(statusFD, "status")
	if _, werr := fmt.Fprintf(status, "%v", err); werr != nil {
		fmt.Fprintf(os.Stderr, "gust sandbox: %v\n", err)
	}
	os.Exit(127)
}

func runHelper(arg string) error {
	syscall.CloseOnExec(statusFD)
	var c helperConfig
	if err := json.Unmarshal([]byte(arg), &c); err != nil {
		return fmt.Errorf("reading configuration: %w", err)
	}
	for _, d := range c.Cgroups {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte("0"), 0); err != nil {
			return fmt.Errorf("joining cgroup: %w", err)
		}
	}
	if c.Confined {
		if err := buildRoot(&c); err != nil {
			return err
		}
		if err := syscall.Sethostname([]byte(c.Hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: c.Nofile, Max: c.Nofile}); err != nil {
		return fmt.Errorf("setrlimit NOFILE: %w", err)
	}
	if err := syscall.Setrlimit(rlimitNproc, &syscall.Rlimit{Cur: c.Nproc, Max: c.Nproc}); err != nil {
		return fmt.Errorf("setrlimit NPROC: %w", err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}); err != nil {
		return fmt.Errorf("setrlimit CORE: %w", err)
	}
	if c.Confined {
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(c.GID); err != nil {
			return fmt.Errorf("setgid: %w", err)
		}
		if err := syscall.Setuid(c.UID); err != nil {
			return fmt.Errorf("setuid: %w", err)
		}
		// A change of credentials clears the parent-death signal.
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGKILL), 0); errno != 0 {
			return fmt.Errorf("prctl PDEATHSIG: %w", errno)
		}
	}
	if err := syscall.Chdir(c.Dir); err != nil {
		return fmt.Errorf("chdir %s: %w", c.Dir, err)
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetNoNewPriv, 1, 0); errno != 0 {
		return fmt.Errorf("prctl NO_NEW_PRIVS: %w", errno)
	}
	if len(c.Argv) == 0 {
		return fmt.Errorf("nothing to run")
	}
	err := syscall.Exec(c.Argv[0], c.Argv, c.Env)
	return fmt.Errorf("starting %s: %w", c.Argv[0], err)
}

// buildRoot makes the instance's root file system on a tmpfs at c.Root and
// pivots into it. The helper is the init of a new pid and mount namespace.
func buildRoot(c *helperConfig) error {
	const (
		ro     = syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV
		bindRO = syscall.MS_BIND | syscall.MS_REMOUNT | ro
	)
	mount := func(src, dst, fstype string, flags uintptr, data string) error {
		if err := syscall.Mount(src, dst, fstype, flags, data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", src, dst, err)
		}
		return nil
	}
	bind := func(src, dst string) error {
		if err := mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return err
		}
		return mount("", dst, "", bindRO, "")
	}
	mkdir := func(p string) error {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
		return nil
	}
	root := c.Root
	if err := mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return err
	}
	if err := mount("tmpfs", root, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=1m,mode=755"); err != nil {
		return err
	}
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(d)
			if err == nil {
				err = os.Symlink(target, root+d)
			}
			if err != nil {
				return fmt.Errorf("symlink %s: %w", d, err)
			}
			continue
		}
		if err := mkdir(root + d); err != nil {
			return err
		}
		if err := bind(d, root+d); err != nil {
			return err
		}
	}
	for _, d := range []string{"/proc", "/dev", "/tmp", "/opt", "/var/task", "/var/runtime"} {
		if err := mkdir(root + d); err != nil {
			return err
		}
	}
	for _, b := range c.Binds {
		if err := mkdir(root + b.Dst); err != nil {
			return err
		}
		if err := bind(b.Src, root+b.Dst); err != nil {
			return err
		}
	}
	if err := mount("proc", root+"/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return err
	}
	if err := mount("tmpfs", root+"/tmp", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+strconv.Itoa(c.TmpMB)+"m,mode=1777"); err != nil {
		return err
	}
	if err := mount("tmpfs", root+"/dev", "tmpfs", syscall.MS_NOSUID|syscall.MS_NOEXEC, "size=64k,mode=755"); err != nil {
		return err
	}
	for _, dev := range []string{"null", "zero", "full", "random", "urandom"} {
		p := root + "/dev/" + dev
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return fmt.Errorf("/dev/%s: %w", dev, err)
		}
		if err := mount("/dev/"+dev, p, "", syscall.MS_BIND, ""); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, root+"/dev/"+name); err != nil {
			return fmt.Errorf("/dev/%s: %w", name, err)
		}
	}
	if err := mount("", root, "", syscall.MS_REMOUNT|ro, ""); err != nil {
		return err
	}
	if err := syscall.Chdir(root); err != nil {
		return fmt.Errorf("chdir: %w", err)
	}
	if err := syscall.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	if err := syscall.Chdir("/"); err != nil {
		return fmt.Errorf("chdir: %w", err)
	}
	return nil
}
