package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/cli"
	"github.com/gustfaas/gust/internal/gobuild"
	"github.com/gustfaas/gust/internal/node"
)

// projectRun is the outcome of one in-process gust command.
type projectRun struct {
	code           int
	stdout, stderr string
}

// projectCLI runs gust commands against a node, counting the Go builds
// they make.
type projectCLI struct {
	t       *testing.T
	n       *node.Node
	dataDir string
	builds  atomic.Int32
	// env adds to the CLI's environment.
	env map[string]string
}

func (p *projectCLI) run(args ...string) projectRun {
	p.t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"GUST_SERVER": p.n.URL(), "HOME": p.t.TempDir()}
	for k, v := range p.env {
		env[k] = v
	}
	code := cli.Run(context.Background(), append([]string{"--data", p.dataDir}, args...), cli.Env{
		Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
		Build: func(ctx context.Context, dir string) ([]byte, error) {
			p.builds.Add(1)
			return gobuild.Build(ctx, dir)
		},
	})
	return projectRun{code, out.String(), errb.String()}
}

// projDeployOutput is `gust deploy -o json` output for a project.
type projDeployOutput struct {
	Functions []projDeployedFunction
	Failed    int
}

type projDeployedFunction struct {
	FunctionName, Action, Alias, Version, PreviousVersion, CanaryVersion, CodeSha256, Digest, Error string
	Changes                                                                                         []string
	CanaryWeight                                                                                    float64
}

// function returns the named function's line of a deploy.
func (o projDeployOutput) function(name string) projDeployedFunction {
	for _, f := range o.Functions {
		if f.FunctionName == name {
			return f
		}
	}
	return projDeployedFunction{}
}

// deploy runs `gust deploy -f file -o json` plus args and decodes the
// result, failing the test unless the exit status is want.
func (p *projectCLI) deploy(file string, want int, args ...string) projDeployOutput {
	p.t.Helper()
	r := p.run(append([]string{"deploy", "-f", file, "-o", "json"}, args...)...)
	if r.code != want {
		p.t.Fatalf("gust deploy %v = %d, want %d\n%s%s", args, r.code, want, r.stdout, r.stderr)
	}
	var out projDeployOutput
	if want != cli.ExitUsage {
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			p.t.Fatalf("gust deploy -o json: %v\n%s", err, r.stdout)
		}
	}
	return out
}

// actions summarizes a deploy as function -> action@version.
func projActions(o projDeployOutput) map[string]string {
	m := map[string]string{}
	for _, f := range o.Functions {
		m[f.FunctionName] = f.Action + "@" + f.Version
	}
	return m
}

// copyProject copies examples/project to a temporary directory that is a
// Go module of its own, using this repository's SDK, so its functions can
// be changed.
func projCopy(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	dst := t.TempDir()
	src := filepath.Join(root, "examples", "project")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go [0-9.]+$`).Find(goMod)
	mod := "module example.com/project\n\n" + string(goLine) + "\n\nrequire github.com/gustfaas/gust v0.0.0\n\nreplace github.com/gustfaas/gust => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dst, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// edit replaces old with new in the file at path, which must hold old.
func projEdit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// projNodeState is everything a deploy may change, for comparing before and
// after one that must change nothing.
type projNodeState struct {
	Functions map[string][]api.FunctionConfiguration
	Aliases   map[string][]api.AliasConfiguration
}

func projState(t *testing.T, c *client.Client, names ...string) projNodeState {
	t.Helper()
	ctx := context.Background()
	s := projNodeState{Functions: map[string][]api.FunctionConfiguration{}, Aliases: map[string][]api.AliasConfiguration{}}
	for _, name := range names {
		vs, err := c.ListVersions(ctx, name)
		if err != nil {
			t.Fatalf("ListVersions(%s) = %v", name, err)
		}
		as, err := c.ListAliases(ctx, name)
		if err != nil {
			t.Fatalf("ListAliases(%s) = %v", name, err)
		}
		s.Functions[name], s.Aliases[name] = vs, as
	}
	return s
}

func projClient(n *node.Node) *client.Client {
	id, secret := n.AdminKey()
	return client.New(n.URL(), client.Credentials{AccessKeyID: id, SecretAccessKey: secret})
}

// invokeAlias invokes NAME:alias and returns the version that ran and
// the payload, failing the test on an error.
func projInvoke(t *testing.T, c *client.Client, name, alias, payload string) (string, string) {
	t.Helper()
	res, err := c.Invoke(context.Background(), name, []byte(payload), client.InvokeOptions{Qualifier: alias})
	if err != nil || res.FunctionError != "" {
		t.Fatalf("invoke %s:%s = %v %s %s", name, alias, err, res.FunctionError, res.Payload)
	}
	return res.ExecutedVersion, string(res.Payload)
}

// TestProjectExampleAsShipped: the example project deploys as it is in
// the repository, with one command, and every function answers through
// its alias.
func TestProjectExampleAsShipped(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	p := &projectCLI{t: t, n: n, dataDir: dir}
	file := filepath.Join(repoRoot(t), "examples", "project", "gust.yaml")
	out := p.deploy(file, cli.ExitOK)
	want := map[string]string{"greet": "created@1", "slugify": "created@1", "wordcount": "created@1"}
	if diff := cmp.Diff(want, projActions(out)); diff != "" {
		t.Errorf("deploy (-want +got):\n%s", diff)
	}
	c := projClient(n)
	for name, tc := range map[string]struct{ in, want string }{
		"greet":     {`{"name":"Ada"}`, `"message":"Hello, Ada!"`},
		"wordcount": {`{"text":"to be or not to be"}`, `"words": 6`},
		"slugify":   {`{"title":"Hello, World!"}`, `"slug":"hello-world"`},
	} {
		if v, body := projInvoke(t, c, name, "live", tc.in); v != "1" || !strings.Contains(body, tc.want) {
			t.Errorf("invoke %s:live = version %s %s, want version 1 and %s", name, v, body, tc.want)
		}
	}
	// The table form, for people.
	r := p.run("deploy", "-f", file)
	if r.code != 0 || !strings.Contains(r.stdout, "FUNCTION") || strings.Count(r.stdout, "unchanged") != 3 {
		t.Errorf("gust deploy (table) = %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestProjectDeploy drives project deploys against a real node: only what
// changed is deployed, canaries split traffic, promote and rollback move
// the alias at once, and bad input changes nothing.
func TestProjectDeploy(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	c := projClient(n)
	ctx := context.Background()
	p := &projectCLI{t: t, n: n, dataDir: dir}
	proj := projCopy(t)
	file := filepath.Join(proj, "gust.yaml")
	names := []string{"greet", "slugify", "wordcount"}

	out := p.deploy(file, cli.ExitOK)
	if diff := cmp.Diff(map[string]string{"greet": "created@1", "slugify": "created@1", "wordcount": "created@1"}, projActions(out)); diff != "" {
		t.Fatalf("first deploy (-want +got):\n%s", diff)
	}
	got, err := c.GetFunction(ctx, "greet")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := got.Configuration; cfg.Timeout != 5 || cfg.MemorySize != 128 || cfg.GustIdleTimeout != 60 ||
		cfg.Environment == nil || cfg.Environment.Variables["GREETING"] != "Hello" || cfg.Environment.Variables["STAGE"] != "example" {
		t.Errorf("greet's configuration = %+v, want the project file's", cfg)
	}

	t.Run("nothing changed", func(t *testing.T) {
		before := projState(t, c, names...)
		builds := p.builds.Load()
		out := p.deploy(file, cli.ExitOK)
		if diff := cmp.Diff(map[string]string{"greet": "unchanged@1", "slugify": "unchanged@1", "wordcount": "unchanged@1"}, projActions(out)); diff != "" {
			t.Errorf("deploy (-want +got):\n%s", diff)
		}
		if b := p.builds.Load() - builds; b != 0 {
			t.Errorf("an unchanged deploy built %d Go function(s), want 0 (the build inputs are recorded)", b)
		}
		if diff := cmp.Diff(before, projState(t, c, names...)); diff != "" {
			t.Errorf("an unchanged deploy changed the node (-before +after):\n%s", diff)
		}
	})

	t.Run("one function changed", func(t *testing.T) {
		projEdit(t, filepath.Join(proj, "wordcount", "app.py"), `"words": len(words),`, `"words": len(words), "edition": 2,`)
		out := p.deploy(file, cli.ExitOK)
		if diff := cmp.Diff(map[string]string{"greet": "unchanged@1", "slugify": "unchanged@1", "wordcount": "updated@2"}, projActions(out)); diff != "" {
			t.Errorf("deploy (-want +got):\n%s", diff)
		}
		if f := out.function("wordcount"); f.PreviousVersion != "1" || !slices.Contains(f.Changes, "code") {
			t.Errorf("wordcount = %+v, want code changed, moved from version 1", f)
		}
		if v, body := projInvoke(t, c, "wordcount", "live", `{"text":"a b"}`); v != "2" || !strings.Contains(body, `"edition": 2`) {
			t.Errorf("invoke wordcount:live = %s %s, want version 2 with the new code", v, body)
		}
		// A configuration change is a change too.
		projEdit(t, file, "code: ./slugify", "code: ./slugify\n    memory: 256")
		out = p.deploy(file, cli.ExitOK)
		if diff := cmp.Diff(map[string]string{"greet": "unchanged@1", "slugify": "updated@2", "wordcount": "unchanged@2"}, projActions(out)); diff != "" {
			t.Errorf("deploy after a memory change (-want +got):\n%s", diff)
		}
		if cfg, err := c.GetFunctionConfigurationAt(ctx, "slugify", "live"); err != nil || cfg.MemorySize != 256 || cfg.Version != "2" {
			t.Errorf("slugify:live = %+v %v, want version 2 with 256 MB", cfg, err)
		}
	})

	t.Run("canary, promote, rollback", func(t *testing.T) {
		projEdit(t, filepath.Join(proj, "wordcount", "app.py"), `"edition": 2`, `"edition": 3`)
		out := p.deploy(file, cli.ExitOK, "--canary", "10")
		wc := out.function("wordcount")
		if wc.Action != "updated" || wc.Version != "2" || wc.CanaryVersion != "3" || wc.CanaryWeight != 0.1 {
			t.Fatalf("canary deploy of wordcount = %+v, want version 2 with 10%% to 3", wc)
		}
		al, err := c.GetAlias(ctx, "wordcount", "live")
		if err != nil || al.FunctionVersion != "2" || al.RoutingConfig == nil || al.RoutingConfig.AdditionalVersionWeights["3"] != 0.1 {
			t.Fatalf("alias live = %+v %v, want 2 with 10%% to 3", al, err)
		}

		// 1000 invocations: the canary's share is binomial(1000, 0.1),
		// mean 100 and standard deviation 9.5; allow five of them.
		const total, share = 1000, 0.1
		counts := map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range total / 4 {
					res, err := c.Invoke(ctx, "wordcount", []byte(`{"text":"x"}`), client.InvokeOptions{Qualifier: "live"})
					mu.Lock()
					if err != nil || res.FunctionError != "" {
						counts["error"]++
					} else {
						counts[res.ExecutedVersion]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		mean, sd := total*share, math.Sqrt(total*share*(1-share))
		if counts["error"] != 0 || counts["2"]+counts["3"] != total || math.Abs(float64(counts["3"])-mean) > 5*sd {
			t.Errorf("versions of %d invocations = %v, want about %.0f±%.0f on version 3, the rest on 2", total, counts, mean, 5*sd)
		}
		t.Logf("canary split over %d invocations: %v", total, counts)

		// A deploy with nothing changed leaves the canary as it is.
		out = p.deploy(file, cli.ExitOK, "--canary", "10")
		if a := projActions(out)["wordcount"]; a != "unchanged@2" {
			t.Errorf("redeploy during the canary: wordcount %s, want unchanged@2", a)
		}

		r := p.run("promote", "-f", file, "-o", "json")
		var promoted []struct{ FunctionName, Action, Version, PreviousVersion string }
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &promoted) != nil {
			t.Fatalf("gust promote = %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, f := range promoted {
			want := "unchanged"
			if f.FunctionName == "wordcount" {
				want = "promoted"
				if f.Version != "3" || f.PreviousVersion != "2" {
					t.Errorf("promote wordcount = %+v, want 2 -> 3", f)
				}
			}
			if f.Action != want {
				t.Errorf("promote %s = %s, want %s", f.FunctionName, f.Action, want)
			}
		}
		for range 20 {
			if v, _ := projInvoke(t, c, "wordcount", "live", `{}`); v != "3" {
				t.Fatalf("after promote, wordcount:live ran version %s, want 3", v)
			}
		}

		// Rollback moves the alias back at once: the next invocation runs
		// the previous version.
		if r := p.run("rollback", "wordcount", "-f", file); r.code != 0 || !strings.Contains(r.stdout, "rolled back") {
			t.Fatalf("gust rollback = %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if v, body := projInvoke(t, c, "wordcount", "live", `{"text":"a"}`); v != "2" || !strings.Contains(body, `"edition": 2`) {
			t.Errorf("right after rollback, wordcount:live = %s %s, want version 2", v, body)
		}
		// During a canary, rollback drops the canary.
		projEdit(t, filepath.Join(proj, "wordcount", "app.py"), `"edition": 3`, `"edition": 4`)
		out = p.deploy(file, cli.ExitOK, "--canary", "50")
		if a := projActions(out)["wordcount"]; a != "updated@2" {
			t.Errorf("canary deploy: wordcount %s, want updated@2 (with a canary)", a)
		}
		if r := p.run("rollback", "wordcount", "-o", "json"); r.code != 0 {
			t.Fatalf("gust rollback = %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		al, err = c.GetAlias(ctx, "wordcount", "live")
		if err != nil || al.FunctionVersion != "2" || al.RoutingConfig != nil {
			t.Errorf("after rolling back a canary, alias live = %+v %v, want version 2 without a split", al, err)
		}
		for range 20 {
			if v, _ := projInvoke(t, c, "wordcount", "live", `{}`); v != "2" {
				t.Fatalf("after rolling back the canary, wordcount:live ran version %s, want 2", v)
			}
		}
		// Nothing before version 1.
		if r := p.run("rollback", "greet"); r.code != cli.ExitFailure || !strings.Contains(r.stderr, "no version before") {
			t.Errorf("rollback of greet at version 1 = %d %s, want 1 and an explanation", r.code, r.stderr)
		}
		if r := p.run("rollback"); r.code != cli.ExitUsage {
			t.Errorf("rollback without names = %d, want %d", r.code, cli.ExitUsage)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		// Bring the project and the node in line first.
		p.deploy(file, cli.ExitOK)
		before := projState(t, c, names...)
		// A change that would deploy, next to the mistake.
		projEdit(t, filepath.Join(proj, "wordcount", "app.py"), `"edition": 4`, `"edition": 5`)
		good, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, old, new, want string }{
			{"memory", "memory: 256", "memory: lots", `gust.yaml:33: functions.slugify.memory: want a whole number of MB, got "lots"`},
			{"unknown field", "handler: app.handler", "handler: app.handler\n    memroy: 128", "gust.yaml:27: functions.wordcount.memroy: unknown field"},
			{"syntax", "code: ./greet", "code: ./greet\n   bad: indentation", "gust.yaml:16: not valid YAML"},
			{"missing code", "code: ./wordcount\n", "\n", "gust.yaml:22: functions.wordcount.code: missing"},
			{"canary", "idle_timeout: 60s", "idle_timeout: 60s\n    canary: 100", "gust.yaml:21: functions.greet.canary: 100 is out of range"},
		} {
			if err := os.WriteFile(file, bytes.Replace(good, []byte(tc.old), []byte(tc.new), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			r := p.run("deploy", "-f", file)
			if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "nothing was deployed") {
				t.Errorf("%s: gust deploy = %d\n%s, want %d and %q", tc.name, r.code, r.stderr, cli.ExitUsage, tc.want)
			}
		}
		os.WriteFile(file, good, 0o644)
		// A function that does not build: nothing is deployed, not even
		// the function that did change.
		greet := filepath.Join(proj, "greet", "main.go")
		projEdit(t, greet, "func main() {}", "func main() { undefined() }")
		r := p.run("deploy", "-f", file, "-o", "json")
		var failed projDeployOutput
		if r.code != cli.ExitFailure || json.Unmarshal([]byte(r.stdout), &failed) != nil || failed.Failed != 1 ||
			projActions(failed)["greet"] != "failed@" || projActions(failed)["wordcount"] != "skipped@" || !strings.Contains(r.stderr, "undefined") {
			t.Errorf("deploy with a build failure = %d\n%s%s, want 1, greet failed, wordcount skipped", r.code, r.stdout, r.stderr)
		}
		projEdit(t, greet, "func main() { undefined() }", "func main() {}")
		// Flags that do not apply.
		for _, args := range [][]string{{"deploy", "-f", file, "--memory", "256"}, {"deploy", "x", "y", "--canary", "5"},
			{"deploy", "-f", file, "--canary", "100"}, {"deploy", "x"}} {
			if r := p.run(args...); r.code != cli.ExitUsage {
				t.Errorf("gust %v = %d, want %d\n%s", args, r.code, cli.ExitUsage, r.stderr)
			}
		}
		if diff := cmp.Diff(before, projState(t, c, names...)); diff != "" {
			t.Errorf("refused deploys changed the node (-before +after):\n%s", diff)
		}
	})

	// Deploy time: from the command's start to the first invocation of the
	// new version through the alias, with one function changed. Logged,
	// never judged (this binary runs with the race detector when asked).
	t.Run("deploy time", func(t *testing.T) {
		p.deploy(file, cli.ExitOK)
		for _, tc := range []struct{ name, file, old, new, in string }{
			{"wordcount", "wordcount/app.py", `"edition": 5`, `"edition": 6`, `{"text":"a"}`},
			{"greet", "greet/main.go", `greeting + ", "`, `greeting + "; "`, `{"name":"Ada"}`},
		} {
			projEdit(t, filepath.Join(proj, tc.file), tc.old, tc.new)
			start := time.Now()
			out := p.deploy(file, cli.ExitOK)
			deployed := time.Since(start)
			var want string
			for _, f := range out.Functions {
				if f.FunctionName == tc.name {
					want = f.Version
				} else if f.Action != "unchanged" {
					t.Errorf("%s changed when only %s did: %+v", f.FunctionName, tc.name, f)
				}
			}
			for {
				if v, _ := projInvoke(t, c, tc.name, "live", tc.in); v == want {
					break
				}
				if time.Since(start) > time.Minute {
					t.Fatalf("%s:live never ran version %s", tc.name, want)
				}
			}
			t.Logf("deploy of the example project with %s changed: command %v, first invocation of version %s %v after the command started",
				tc.name, deployed.Round(time.Millisecond), want, time.Since(start).Round(time.Millisecond))
		}
	})
}
