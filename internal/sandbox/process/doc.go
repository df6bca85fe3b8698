// Package process is Gust's second runtime: it runs native Lambda-style
// functions as Linux processes that speak the AWS Lambda Runtime API. It
// implements the sandbox contract (sandbox.Runtime, Program, Instance).
//
// # Runtimes
//
// provided.al2023, provided.al2 and provided take a zip holding an
// executable bootstrap at its root (Lambda's custom-runtime layout; a Go
// function built with github.com/aws/aws-lambda-go is one). nodejs20.x,
// nodejs22.x, python3.11, python3.12 and python3.13 run the handler named
// by Spec.Handler ("index.handler", "app.handler") with Gust's own small
// bootstraps (package files bootstrap/*, standard library only) on the
// host's interpreter. New probes the host once: a runtime whose interpreter
// is missing or of another version is listed by [Runtime.Unsupported] and
// refused by Load.
//
// # Instances
//
// Start runs one instance: a process tree started through the helper mode
// of Gust's own binary (see [RunHelperIfRequested]), which builds the
// sandbox and then execs the bootstrap. The instance reaches the Runtime
// API at AWS_LAMBDA_RUNTIME_API, a loopback listener of its own served by
// one HTTP server per Runtime. Start returns when the bootstrap asks for its
// first invocation (GET /next): initialisation is done. It fails with an
// *[InitError] if the bootstrap exits first, posts /init/error, or does not
// ask within the init timeout.
//
// Invoke hands the event to the waiting /next request and waits for the
// response or error the bootstrap posts. At the deadline the whole instance
// is killed (every process: it is the init of its pid namespace, and its
// cgroup is emptied) and Invoke returns a *sandbox.LostError of kind
// TimedOut; an instance that dies mid-invocation is lost as Crashed, or
// OutOfMemory when its cgroup's OOM killer struck. Everything the instance
// writes to stdout and stderr is its log, attributed to the invocation
// running at the time (output written during initialisation goes to the
// first invocation) and capped at Request.LogLimit.
//
// # Sandbox
//
// As root on Linux every instance gets: its own pid, mount, ipc and uts
// namespaces; a root file system of its own (the host's /usr, /etc and
// library directories read-only, the code read-only at /var/task, Gust's
// runtime files at /var/runtime, a fresh /proc, a minimal /dev and a
// private size-capped tmpfs at /tmp: no other function's code and no other
// process is visible); a cgroup with memory and pids limits (cgroup v2
// where its controllers are available, else cgroup v1's memory and pids
// hierarchies); rlimits; no_new_privs; and an unprivileged uid and gid of
// its own, drawn from Options.UIDBase to UIDBase+UIDCount-1 (200000 to
// 265535 by default) and reused only after the instance is closed, so
// RLIMIT_NPROC counts that instance alone. Options.UIDCount -1 runs every
// instance as Options.UID and GID instead (993, Lambda's uid), with the
// loss of isolation described below. What the host cannot provide is
// listed by [Runtime.Isolation], and the runtime keeps working with less.
//
// The network is shared with the host: instances reach what listens on
// the host and on each other's ports (loopback included) and abstract
// unix sockets. The Runtime API listens on loopback too, but each
// instance's listener takes only connections made by that instance's
// uid: it asks the kernel (sock_diag netlink, else /proc/net/tcp and
// tcp6) for the uid of the client's socket by its addresses and resets
// any other connection before reading a byte, once per (kept-alive)
// connection. So one instance cannot take another's events or answer for
// it. This holds only while instances have uids of their own: with a
// shared uid (UIDCount -1), or without root (every instance runs as the
// node's uid), the check keeps out other uids only and any instance can
// reach another's Runtime API; where neither lookup works there is no
// check at all. [Runtime.Isolation] says which holds.
package process
