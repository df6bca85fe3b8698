package main

// The projectdeploy scenario: `gust deploy` of the example project
// (examples/project) run in-process against the benchmark's node, timed
// from the command's start to the first invocation of the new version
// through the function's alias, with one function changed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/cli"
)

// projectRuns is how many times each change is deployed.
const projectRuns = 5

func (b *bench) projectDeploy(ctx context.Context) ([]row, error) {
	proj, err := copyExampleProject()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(proj)
	file := filepath.Join(proj, "gust.yaml")
	names := []string{"greet", "slugify", "wordcount"}
	defer func() {
		for _, n := range names {
			b.c.DeleteFunction(context.Background(), n)
		}
	}()

	// deploy runs `gust deploy` and returns how long it took and the
	// version each function's alias now routes to.
	deploy := func() (time.Duration, map[string]string, error) {
		var out, errb bytes.Buffer
		t0 := time.Now()
		code := cli.Run(ctx, []string{"--server", b.n.URL(), "--data", b.dir, "deploy", "-f", file, "-o", "json"},
			cli.Env{Stdout: &out, Stderr: &errb})
		d := time.Since(t0)
		if code != cli.ExitOK {
			return d, nil, fmt.Errorf("gust deploy = %d: %s", code, errb.String())
		}
		var res struct {
			Functions []struct{ FunctionName, Version string }
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			return d, nil, fmt.Errorf("gust deploy -o json: %w", err)
		}
		versions := map[string]string{}
		for _, f := range res.Functions {
			versions[f.FunctionName] = f.Version
		}
		return d, versions, nil
	}

	first, _, err := deploy()
	if err != nil {
		return nil, err
	}
	var noop []time.Duration
	for range projectRuns {
		d, _, err := deploy()
		if err != nil {
			return nil, err
		}
		noop = append(noop, d)
	}
	rows := []row{
		{"projectdeploy", "first deploy of examples/project (3 functions, Go build included)", round(first.Seconds() * 1000), "ms", "", ""},
		{"projectdeploy", "redeploy with nothing changed, median", round2(percentile(sortedCopy(noop), .5).Seconds() * 1000), "ms", "", fmt.Sprintf("%d runs", projectRuns)},
	}

	for _, tc := range []struct {
		label, name, file, payload string
		re                         *regexp.Regexp
	}{
		{"Python function (wordcount) changed", "wordcount", "wordcount/app.py", `{"text":"a b"}`, regexp.MustCompile(`"words": len\(words\),[^\n]*`)},
		{"Go function (greet, wasm) changed", "greet", "greet/main.go", `{"name":"Ada"}`, regexp.MustCompile(`greeting \+ "[^"]*"`)},
	} {
		var commands, total []time.Duration
		for i := range projectRuns {
			path := filepath.Join(proj, tc.file)
			src, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			repl := fmt.Sprintf(`"words": len(words), "run": %d,`, i)
			if tc.name == "greet" {
				repl = fmt.Sprintf(`greeting + "%d, "`, i)
			}
			if err := os.WriteFile(path, tc.re.ReplaceAll(src, []byte(repl)), 0o644); err != nil {
				return nil, err
			}
			t0 := time.Now()
			cmd, versions, err := deploy()
			if err != nil {
				return nil, err
			}
			for {
				res, err := b.c.Invoke(ctx, tc.name, []byte(tc.payload), client.InvokeOptions{Qualifier: "live"})
				if err != nil {
					return nil, err
				}
				if res.ExecutedVersion == versions[tc.name] && res.FunctionError == "" {
					break
				}
				if time.Since(t0) > time.Minute {
					return nil, fmt.Errorf("%s:live never ran version %s", tc.name, versions[tc.name])
				}
			}
			commands, total = append(commands, cmd), append(total, time.Since(t0))
		}
		sortD(commands)
		sortD(total)
		rows = append(rows, row{"projectdeploy", tc.label + ": command start → first invocation of the new version, median",
			round2(percentile(total, .5).Seconds() * 1000), "ms", "< 1000 ms",
			fmt.Sprintf("%d runs, max %.0f ms; the command alone %.0f ms median", projectRuns,
				percentile(total, 1).Seconds()*1000, percentile(commands, .5).Seconds()*1000)})
	}
	return rows, nil
}

func sortedCopy(d []time.Duration) []time.Duration {
	c := append([]time.Duration(nil), d...)
	sortD(c)
	return c
}

// copyExampleProject copies examples/project (the benchmark runs from the
// repository root) to a temporary directory that is a Go module of its
// own, using this repository's SDK, so its functions can be changed.
func copyExampleProject() (string, error) {
	root, err := filepath.Abs(".")
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "examples", "project")
	dst, err := os.MkdirTemp("", "gust-bench-project-")
	if err != nil {
		return "", err
	}
	err = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
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
		os.RemoveAll(dst)
		return "", fmt.Errorf("copy examples/project (run from the repository root): %w", err)
	}
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		os.RemoveAll(dst)
		return "", err
	}
	goLine := regexp.MustCompile(`(?m)^go [0-9.]+$`).Find(goMod)
	mod := "module example.com/project\n\n" + string(goLine) + "\n\nrequire github.com/gustfaas/gust v0.0.0\n\nreplace github.com/gustfaas/gust => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err == nil {
		err = os.WriteFile(filepath.Join(dst, "go.mod"), []byte(mod), 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dst, "go.sum"), sum, 0o644)
	}
	if err != nil {
		os.RemoveAll(dst)
		return "", err
	}
	return dst, nil
}
