//go:build linux

package process

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupRoot is the directory (one per hierarchy) under which a Runtime
// makes one cgroup per instance. It lies under the node's own cgroup, so
// the node's limits still hold for its functions.
type cgroupRoot struct {
	v2     bool
	memory string // cgroup v2: both controllers live here
	pids   string
}

// cgroup is one instance's cgroup.
type cgroup struct {
	v2     bool
	memory string
	pids   string
	// peak stays open: a warm invocation reads it with one pread.
	peak *os.File
}

// findCgroups locates the memory and pids controllers and makes the
// Runtime's directories. It returns what it could set up and why the rest
// is off.
func findCgroups(name string) (*cgroupRoot, error) {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("reading /proc/self/cgroup: %w", err)
	}
	var v2Mount string
	v1Mount := map[string]string{} // controller -> mount point
	sc := bufio.NewScanner(bytes.NewReader(mounts))
	for sc.Scan() {
		// id parent major:minor root mountpoint options - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || pf[3] != "/" {
			continue
		}
		switch qf[0] {
		case "cgroup2":
			if v2Mount == "" {
				v2Mount = pf[4]
			}
		case "cgroup":
			for _, o := range strings.Split(qf[2], ",") {
				if o == "memory" || o == "pids" {
					v1Mount[o] = pf[4]
				}
			}
		}
	}
	ownPath := map[string]string{} // controller ("" for v2) -> path
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" {
			ownPath[""] = f[2]
		}
		for _, c := range strings.Split(f[1], ",") {
			ownPath[c] = f[2]
		}
	}
	var v2err error
	if v2Mount != "" {
		dir := filepath.Join(v2Mount, ownPath[""])
		ctrl, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		have := strings.Fields(string(ctrl))
		if contains(have, "memory") && contains(have, "pids") {
			root := &cgroupRoot{v2: true, memory: filepath.Join(dir, name), pids: filepath.Join(dir, name)}
			if v2err = root.makeV2(dir); v2err == nil {
				return root, nil
			}
		} else {
			v2err = fmt.Errorf("cgroup v2 at %s offers %q, not memory and pids", v2Mount, strings.Join(have, " "))
		}
	}
	if v1Mount["memory"] == "" || v1Mount["pids"] == "" {
		if v2err != nil {
			return nil, v2err
		}
		return nil, errors.New("no cgroup v2 with memory and pids and no cgroup v1 memory and pids hierarchies are mounted")
	}
	root := &cgroupRoot{
		memory: filepath.Join(v1Mount["memory"], ownPath["memory"], name),
		pids:   filepath.Join(v1Mount["pids"], ownPath["pids"], name),
	}
	for _, d := range []string{root.memory, root.pids} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			root.remove()
			return nil, fmt.Errorf("cgroup v1: %w", err)
		}
	}
	return root, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// makeV2 creates the runtime's cgroup v2 directory under parent and
// enables the controllers for its children.
func (r *cgroupRoot) makeV2(parent string) error {
	sub, _ := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
	if !strings.Contains(string(sub), "memory") || !strings.Contains(string(sub), "pids") {
		if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
			return fmt.Errorf("cgroup v2: enabling memory and pids in %s: %w", parent, err)
		}
	}
	if err := os.Mkdir(r.memory, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cgroup v2: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.memory, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
		os.Remove(r.memory)
		return fmt.Errorf("cgroup v2: enabling memory and pids in %s: %w", r.memory, err)
	}
	return nil
}

func (r *cgroupRoot) describe() string {
	if r.v2 {
		return "cgroup v2 " + r.memory
	}
	return "cgroup v1 " + r.memory + " and " + r.pids
}

// remove deletes the runtime's directories (they must be empty).
func (r *cgroupRoot) remove() error {
	var errs []error
	for _, d := range []string{r.memory, r.pids} {
		if err := rmdirRetry(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// create makes an instance's cgroup with its limits.
func (r *cgroupRoot) create(id string, memoryBytes int64, pids int) (*cgroup, error) {
	g := &cgroup{v2: r.v2, memory: filepath.Join(r.memory, id), pids: filepath.Join(r.pids, id)}
	if err := os.Mkdir(g.memory, 0o755); err != nil {
		return nil, fmt.Errorf("process: cgroup: %w", err)
	}
	if !r.v2 {
		if err := os.Mkdir(g.pids, 0o755); err != nil {
			os.Remove(g.memory)
			return nil, fmt.Errorf("process: cgroup: %w", err)
		}
	}
	mem := strconv.FormatInt(memoryBytes, 10)
	var err error
	if r.v2 {
		err = errors.Join(
			writeFile(g.memory, "memory.max", mem),
			writeFile(g.memory, "pids.max", strconv.Itoa(pids)))
		_ = writeFile(g.memory, "memory.swap.max", "0") // absent without swap accounting
	} else {
		err = errors.Join(
			writeFile(g.memory, "memory.limit_in_bytes", mem),
			writeFile(g.pids, "pids.max", strconv.Itoa(pids)))
		_ = writeFile(g.memory, "memory.memsw.limit_in_bytes", mem) // absent without swap accounting
	}
	if err != nil {
		g.remove()
		return nil, fmt.Errorf("process: cgroup limits: %w", err)
	}
	name := "memory.max_usage_in_bytes"
	if g.v2 {
		name = "memory.peak"
	}
	g.peak, _ = os.Open(filepath.Join(g.memory, name)) // absent on old kernels: no peak
	return g, nil
}

func writeFile(dir, name, value string) error {
	return os.WriteFile(filepath.Join(dir, name), []byte(value), 0)
}

// dirs are the directories a process joins (cgroup.procs in each).
func (g *cgroup) dirs() []string {
	if g.v2 {
		return []string{g.memory}
	}
	return []string{g.memory, g.pids}
}

// oomKills is how many processes the cgroup's OOM killer has killed.
func (g *cgroup) oomKills() int {
	name := "memory.oom_control"
	if g.v2 {
		name = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(g.memory, name))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// peakMemory is the cgroup's memory high-water mark in bytes.
func (g *cgroup) peakMemory() uint64 {
	if g.peak == nil {
		return 0
	}
	var buf [32]byte
	n, _ := g.peak.ReadAt(buf[:], 0)
	v, _ := strconv.ParseUint(strings.TrimSpace(string(buf[:n])), 10, 64)
	return v
}

// kill sends SIGKILL to every process of the cgroup until it is empty (or
// a second has passed).
func (g *cgroup) kill() {
	if g.v2 {
		if writeFile(g.memory, "cgroup.kill", "1") == nil {
			return
		}
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(g.pids, "cgroup.procs"))
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			return
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// remove deletes the cgroup; its processes must be gone.
func (g *cgroup) remove() error {
	if g.peak != nil {
		g.peak.Close()
		g.peak = nil
	}
	var errs []error
	for _, d := range g.dirs() {
		if err := rmdirRetry(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rmdirRetry removes a cgroup directory, waiting briefly for exiting
// processes to leave it.
func rmdirRetry(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %s: %w", dir, err)
}
