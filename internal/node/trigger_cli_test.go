package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/cli"
	"github.com/gustfaas/gust/internal/node"
)

// trigCLI runs gust commands against a node with an environment of its
// own (for the ${NAME} references of a project file).
type trigCLI struct {
	t       *testing.T
	n       *node.Node
	dataDir string
	env     map[string]string
}

func (g *trigCLI) run(stdin string, args ...string) (int, string, string) {
	g.t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"GUST_SERVER": g.n.URL(), "HOME": g.t.TempDir()}
	for k, v := range g.env {
		env[k] = v
	}
	code := cli.Run(context.Background(), append([]string{"--data", g.dataDir}, args...), cli.Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errb.String()
}

// must runs a command that must exit with want and returns its stdout.
func (g *trigCLI) must(want int, args ...string) string {
	g.t.Helper()
	code, out, errs := g.run("", args...)
	if code != want {
		g.t.Fatalf("gust %s = %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errs)
	}
	return out
}

// trigDeployOutput is the part of `gust deploy -o json` these tests read.
type trigDeployOutput struct {
	Functions []struct {
		FunctionName, Action, Version string
		Changes                       []string
	}
	Buckets []struct {
		Name, Kind, Action, Error string
	}
	Triggers []struct {
		Name, Kind, Action, Error string
		Changes                   []string
	}
	Failed int
}

// actions summarizes a deploy: "kind/name" -> "action[ changes]".
func (o trigDeployOutput) actions() map[string]string {
	m := map[string]string{}
	with := func(action string, changes []string) string {
		if len(changes) == 0 {
			return action
		}
		return action + " " + strings.Join(changes, ",")
	}
	for _, f := range o.Functions {
		m["function/"+f.FunctionName] = with(f.Action, f.Changes)
	}
	for _, b := range o.Buckets {
		m["bucket/"+b.Name] = b.Action + b.Error
	}
	for _, t := range o.Triggers {
		m["trigger/"+t.Name] = with(t.Action, t.Changes) + t.Error
	}
	return m
}

func (g *trigCLI) deploy(file string, want int, args ...string) trigDeployOutput {
	g.t.Helper()
	out := g.must(want, append([]string{"deploy", "-f", file, "-o", "json"}, args...)...)
	var o trigDeployOutput
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		g.t.Fatalf("gust deploy -o json: %v\n%s", err, out)
	}
	return o
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTriggerCLI drives grants, `gust trigger` and a project file's
// grants, buckets and triggers against a real node.
func TestTriggerCLI(t *testing.T) {
	buildGuests(t)
	dataDir := t.TempDir()
	n := startNode(t, dataDir)
	c := projClient(n)
	ctx := context.Background()
	dir := t.TempDir()
	wasm := filepath.Join(dir, "worker.wasm")
	if err := os.WriteFile(wasm, guests.guest, 0o644); err != nil {
		t.Fatal(err)
	}
	grantsOf := func(t *testing.T, name, qualifier string) *api.Grants {
		t.Helper()
		cfg, err := c.GetFunctionConfigurationAt(ctx, name, qualifier)
		if err != nil {
			t.Fatalf("get %s:%s: %v", name, qualifier, err)
		}
		return cfg.GustGrants
	}

	t.Run("deploy grant flags", func(t *testing.T) {
		g := &trigCLI{t: t, n: n, dataDir: dataDir}
		g.must(0, "deploy", "worker", wasm, "--grant-kv", "items", "--grant-objects", "photos", "--allow-host", "API.example.com:8443")
		if diff := cmp.Diff(&api.Grants{KV: []string{"items"}, Objects: []string{"photos"}, Hosts: []string{"api.example.com:8443"}},
			grantsOf(t, "worker", "$LATEST")); diff != "" {
			t.Errorf("grants after deploy (-want +got):\n%s", diff)
		}
		// The grant flags together replace the grants.
		g.must(0, "deploy", "worker", wasm, "--allow-host", "*.example.com")
		if diff := cmp.Diff(&api.Grants{Hosts: []string{"*.example.com"}}, grantsOf(t, "worker", "$LATEST")); diff != "" {
			t.Errorf("grants after a second deploy (-want +got):\n%s", diff)
		}
		// A deploy without grant flags keeps them; --grant-kv '' removes them.
		g.must(0, "deploy", "worker", wasm)
		if got := grantsOf(t, "worker", "$LATEST"); got == nil {
			t.Errorf("a deploy without grant flags removed the grants")
		}
		g.must(0, "deploy", "worker", wasm, "--grant-kv", "")
		if got := grantsOf(t, "worker", "$LATEST"); got != nil && (len(got.KV)+len(got.Objects)+len(got.Hosts)) > 0 {
			t.Errorf("grants after --grant-kv '' = %+v, want none", got)
		}
		_, _, errs := g.run("", "deploy", "worker", wasm, "--allow-host", "http://x.com/")
		if !strings.Contains(errs, "--allow-host") {
			t.Errorf("a bad --allow-host: stderr %q does not name the flag", errs)
		}
	})

	t.Run("trigger commands", func(t *testing.T) {
		g := &trigCLI{t: t, n: n, dataDir: dataDir}
		g.must(0, "trigger", "create", "events", "--subject", "jobs.>", "--batch-size", "5", "--function", "worker")
		out := g.must(0, "trigger", "ls")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 2 || !slices.Equal(strings.Fields(lines[0]), []string{"NAME", "KIND", "FUNCTION", "SOURCE", "STATE", "DELIVERED", "DEAD", "LAG"}) ||
			!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "events queue worker subject jobs.> ") {
			t.Errorf("trigger ls =\n%s", out)
		}
		var list api.TriggerList
		if err := json.Unmarshal([]byte(g.must(0, "-o", "json", "trigger", "ls")), &list); err != nil || len(list.Triggers) != 1 ||
			list.Triggers[0].Queue == nil || list.Triggers[0].Queue.Subject != "jobs.>" || list.Triggers[0].Queue.BatchSize != 5 {
			t.Errorf("trigger ls -o json = %+v, %v", list, err)
		}
		if out := g.must(0, "trigger", "get", "events"); !strings.Contains(out, "function:") || !strings.Contains(out, "state:") {
			t.Errorf("trigger get =\n%s", out)
		}
		if _, _, errs := g.run("", "trigger", "create", "events", "--subject", "jobs.>", "--function", "worker"); !strings.Contains(errs, "already exists") {
			t.Errorf("trigger create (taken): stderr %q", errs)
		}
		g.must(0, "trigger", "create", "events", "--subject", "jobs.a", "--function", "worker", "--replace")
		if s, err := c.GetTrigger(ctx, "events"); err != nil || s.Queue == nil || s.Queue.Subject != "jobs.a" {
			t.Errorf("after --replace: %+v, %v", s, err)
		}
		if code, _, errs := g.run("", "trigger", "create", "lost", "--subject", "x", "--function", "nope"); code != cli.ExitFailure || !strings.Contains(errs, "nope") {
			t.Errorf("trigger create for a missing function = %d, %q", code, errs)
		}
		g.must(cli.ExitUsage, "trigger", "create", "bad", "--subject", "x", "--kv", "b", "--function", "worker")
		g.must(0, "trigger", "rm", "events")
		g.must(cli.ExitFailure, "trigger", "get", "events")
	})

	t.Run("project", func(t *testing.T) {
		g := &trigCLI{t: t, n: n, dataDir: dataDir}
		g.must(0, "trigger", "create", "not-in-file", "--subject", "other", "--function", "worker")
		file := filepath.Join(dir, "gust.yaml")
		writeFile(t, file, `functions:
  worker:
    code: ./worker.wasm
    grants:
      kv: [items]
      hosts: [api.example.com]
buckets:
  items: {kind: kv}
triggers:
  jobs:
    function: worker
    queue: {subject: "jobs.>"}
  on-item:
    function: worker
    kv: {bucket: items, prefix: "user."}
`)
		o := g.deploy(file, 0)
		want := map[string]string{"function/worker": "updated grants,alias", "bucket/items": "created",
			"trigger/jobs": "created", "trigger/on-item": "created"}
		if diff := cmp.Diff(want, o.actions()); diff != "" {
			t.Errorf("first deploy (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(&api.Grants{KV: []string{"items"}, Hosts: []string{"api.example.com"}}, grantsOf(t, "worker", "live")); diff != "" {
			t.Errorf("grants of worker:live (-want +got):\n%s", diff)
		}
		if s, err := c.GetTrigger(ctx, "jobs"); err != nil || s.Qualifier != "live" {
			t.Errorf("trigger jobs = %+v, %v, want qualifier live (the function's alias)", s, err)
		}

		o = g.deploy(file, 0)
		want = map[string]string{"function/worker": "unchanged", "bucket/items": "unchanged",
			"trigger/jobs": "unchanged", "trigger/on-item": "unchanged"}
		if diff := cmp.Diff(want, o.actions()); diff != "" {
			t.Errorf("second deploy (-want +got):\n%s", diff)
		}

		projEdit(t, file, "hosts: [api.example.com]", `hosts: [api.example.com, "*.example.org"]`)
		projEdit(t, file, `queue: {subject: "jobs.>"}`, `queue: {subject: "jobs.>", batch_size: 7}`)
		o = g.deploy(file, 0)
		want = map[string]string{"function/worker": "updated grants,alias", "bucket/items": "unchanged",
			"trigger/jobs": "updated batch_size", "trigger/on-item": "unchanged"}
		if diff := cmp.Diff(want, o.actions()); diff != "" {
			t.Errorf("deploy of changed grants and trigger (-want +got):\n%s", diff)
		}
		if got := grantsOf(t, "worker", "live"); got == nil || !slices.Contains(got.Hosts, "*.example.org") {
			t.Errorf("grants of worker:live = %+v, want *.example.org among the hosts", got)
		}
		if s, err := c.GetTrigger(ctx, "not-in-file"); err != nil || s.Name != "not-in-file" {
			t.Errorf("a trigger the file does not name: %v", err)
		}

		o = g.deploy(file, 0, "--replace-triggers")
		if got := o.actions(); got["trigger/jobs"] != "replaced" || got["trigger/on-item"] != "replaced" {
			t.Errorf("deploy --replace-triggers = %v", got)
		}
		out := g.must(0, "deploy", "-f", file)
		for _, s := range []string{"BUCKET", "TRIGGER", "on-item"} {
			if !strings.Contains(out, s) {
				t.Errorf("deploy table does not show %q:\n%s", s, out)
			}
		}

		// A file the parser refuses deploys nothing, and says where.
		bad := filepath.Join(dir, "bad.yaml")
		writeFile(t, bad, "functions:\n  worker: {code: ./worker.wasm}\ntriggers:\n  t:\n    function: worker\n    kv: {bucket: items}\n    queue: {subject: a}\n")
		if code, _, errs := g.run("", "deploy", "-f", bad); code != cli.ExitUsage || !strings.Contains(errs, "bad.yaml:7: triggers.t.queue:") {
			t.Errorf("deploy of a bad file = %d, %q", code, errs)
		}
	})
}
