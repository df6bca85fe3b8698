package cli

// Project deploys: `gust deploy` with no arguments deploys the functions a
// project file (gust.yaml) declares, each published as a version behind an
// alias; `gust promote` completes a canary and `gust rollback` points an
// alias back.
//
// A project deploy runs in two phases. The first reads the node's state
// of every bucket and function and packages (builds) the functions whose
// code may have changed; if anything fails there, nothing is deployed.
// The second changes the node: missing buckets are created, then each
// function gets its code, configuration (grants included), a new version
// when the program changed, the alias, then the scaling settings; then
// the schedules and the triggers are created or updated.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/project"
	"github.com/gustfaas/gust/internal/registry"
)

// tagBuildInputs is the function tag that records which build inputs
// (project.BuildInputs) produced the code $LATEST holds, as
// "INPUTS:CODE" in hex, so an unchanged Go directory is not built again.
const tagBuildInputs = "gust:build-inputs"

// projectParallel bounds how many functions are read, built or deployed
// at once.
const projectParallel = 4

// Actions reported for each function.
const (
	actionCreated   = "created"
	actionUpdated   = "updated"
	actionUnchanged = "unchanged"
	actionFailed    = "failed"
	actionSkipped   = "skipped" // not deployed because another function failed first
	actionPromoted  = "promoted"
	actionRolledBck = "rolled back"
)

// projectOptions are the flags of a project deploy.
type projectOptions struct {
	file            string
	canary          int
	rebuild         bool
	replaceTriggers bool
}

// projectDeployHelp is deploy's help on project deploys.
const projectDeployHelp = "Without NAME PATH, deploy the project file (-f, default gust.yaml; its schema is in\n" +
	"docs/ci.md): every function whose code or configuration changed gets its code and\n" +
	"configuration updated, a new version published and its alias moved to it; the others\n" +
	"are left alone. Missing buckets are created; schedules and triggers are created, or\n" +
	"updated when they differ (--replace-triggers puts every trigger again, for a DSN whose\n" +
	"password alone changed: a node never shows a DSN's password back, so a deploy cannot\n" +
	"compare it). Buckets, schedules and triggers the file does not name are left alone.\n" +
	"${NAME} in a trigger's DSN or URL is read from the environment.\n" +
	"--canary N sends N% of an alias's traffic to the new version and the\n" +
	"rest to the old one until `gust promote`; `gust rollback` undoes. If reading the node\n" +
	"or building any function fails, nothing is deployed.\n" +
	"Exit status: 0 deployed (or nothing to do), 1 a function failed, 2 invalid project\n" +
	"file or flags."

// singleFunctionFlags are deploy's flags for `gust deploy NAME PATH`.
var singleFunctionFlags = []string{"memory", "timeout", "env", "description", "idle-timeout",
	"reserved-concurrency", "provisioned", "runtime", "handler", "grant-kv", "grant-objects", "allow-host"}

// projectFlags are deploy's flags for project deploys.
var projectFlags = []string{"file", "canary", "rebuild", "replace-triggers"}

// projectDeployFlags registers the flags of a project deploy on deploy.
func (a *app) projectDeployFlags(cmd *cobra.Command) *projectOptions {
	o := &projectOptions{}
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", project.DefaultFile, "project `file` (without NAME PATH)")
	f.IntVar(&o.canary, "canary", 0, "send this `percent` (1-99) of each alias's traffic to the new versions until gust promote; 0: move at once (default: the project file's canary)")
	f.BoolVar(&o.rebuild, "rebuild", false, "build every Go directory again instead of trusting its recorded build inputs")
	f.BoolVar(&o.replaceTriggers, "replace-triggers", false, "put every trigger of the project file again, even those that look unchanged (after changing only a DSN's password)")
	return o
}

// deployArgs checks deploy's arguments: none (deploy the project) or NAME
// PATH, each with its own flags.
func (a *app) deployArgs(cmd *cobra.Command, args []string) error {
	f := cmd.Flags()
	switch len(args) {
	case 0:
		for _, name := range singleFunctionFlags {
			if f.Changed(name) {
				return usagef("--%s applies to `gust deploy NAME PATH`; for a project, set it in the project file", name)
			}
		}
		return nil
	case 2:
		for _, name := range projectFlags {
			if f.Changed(name) {
				return usagef("--%s applies to project deploys (`gust deploy` without NAME PATH)", name)
			}
		}
		return nil
	}
	return usagef("%s takes 2 arguments (NAME PATH), or none to deploy the project file, got %d", cmd.CommandPath(), len(args))
}

// projectFunctionResult is one function's line of a project deploy, a
// promote or a rollback (-o json).
type projectFunctionResult struct {
	FunctionName string `json:"FunctionName"`
	// Action is created, updated, unchanged, failed or skipped (deploy),
	// promoted, rolled back, unchanged or failed (promote, rollback).
	Action string `json:"Action"`
	// Changes names what a deploy changed: code, runtime, handler, memory,
	// timeout, env, description, idle_timeout, grants, reserved_concurrency,
	// provisioned, alias (the alias routes to another version, published
	// by this deploy or before).
	Changes []string `json:"Changes,omitempty"`
	Alias   string   `json:"Alias"`
	// Version is the version the alias sends all traffic to, or during a
	// canary the rest of it.
	Version string `json:"Version,omitempty"`
	// PreviousVersion is Version before the command, when it changed.
	PreviousVersion string `json:"PreviousVersion,omitempty"`
	// CanaryVersion receives CanaryWeight (0 to 1) of the alias's traffic.
	CanaryVersion string  `json:"CanaryVersion,omitempty"`
	CanaryWeight  float64 `json:"CanaryWeight,omitempty"`
	// CodeSha256 is the hex digest of the deployed code; Digest covers it
	// and the configuration (project.Function.Digest).
	CodeSha256 string `json:"CodeSha256,omitempty"`
	Digest     string `json:"Digest,omitempty"`
	Error      string `json:"Error,omitempty"`
}

// projectDeployOutput is `gust deploy -o json` output for a project.
type projectDeployOutput struct {
	File      string                  `json:"File"`
	ElapsedMs int64                   `json:"ElapsedMs"`
	Functions []projectFunctionResult `json:"Functions"`
	// Buckets are the project file's buckets, created before the
	// functions when missing.
	Buckets []projectBucketResult `json:"Buckets,omitempty"`
	// Schedules are the project file's schedules, deployed after the
	// functions.
	Schedules []projectScheduleResult `json:"Schedules,omitempty"`
	// Triggers are the project file's triggers, deployed last.
	Triggers []projectTriggerResult `json:"Triggers,omitempty"`
	// Failed counts buckets, functions, schedules and triggers that
	// failed; the exit status is 1 when it is not zero.
	Failed int `json:"Failed"`
}

// projectBucketResult is one bucket's line of a project deploy.
type projectBucketResult struct {
	Name string `json:"Name"`
	Kind string `json:"Kind"`
	// Action is created, unchanged (it exists), failed, or skipped
	// (nothing was deployed).
	Action string `json:"Action"`
	// MaxObjectSize is the file's, in bytes (0: the node's default).
	MaxObjectSize int64  `json:"MaxObjectSize,omitempty"`
	Error         string `json:"Error,omitempty"`
}

// fnPlan is what the first phase learnt about one function.
type fnPlan struct {
	fn     *project.Function
	canary int // percent for this deploy

	exists      bool
	latest      api.FunctionConfiguration
	tags        map[string]string
	reserved    *int32
	alias       *api.AliasConfiguration
	aliasMain   *api.FunctionConfiguration // the alias's main version
	aliasCanary *api.FunctionConfiguration // its weighted version, if any
	provisioned int32                      // on the alias

	code       []byte // nil when $LATEST already holds it
	codeDigest string // hex, of the code as the node stores it
	inputs     string // build inputs (hex), when the code is built
}

// deployProject deploys the project file's buckets, functions, schedules
// and triggers.
func (a *app) deployProject(cmd *cobra.Command, o *projectOptions) error {
	ctx := cmd.Context()
	start := time.Now()
	canarySet := cmd.Flags().Changed("canary")
	if canarySet && (o.canary < 0 || o.canary > 99) {
		return usagef("--canary %d: want a percentage from 1 to 99 (0: no canary)", o.canary)
	}
	proj, err := project.LoadWith(o.file, project.Options{Getenv: a.env.Getenv})
	if err != nil {
		return usageError{fmt.Errorf("%s is not valid; nothing was deployed:\n%w", o.file, err)}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	bar := a.newProgressBar(2 * len(proj.Functions))
	defer bar.finish()

	out := projectDeployOutput{File: o.file, Functions: make([]projectFunctionResult, len(proj.Functions))}
	store := a.buckets(c)
	var bucketsMissing []*project.Bucket
	bucketsDone := make(chan struct{})
	go func() {
		defer close(bucketsDone)
		out.Buckets, bucketsMissing = a.planBuckets(ctx, store, proj.Buckets)
	}()
	plans := make([]*fnPlan, len(proj.Functions))
	errs := make([]error, len(proj.Functions))
	parallel(len(plans), func(i int) {
		fn := proj.Functions[i]
		p := &fnPlan{fn: fn, canary: fn.Canary}
		if canarySet {
			p.canary = o.canary
		}
		errs[i] = a.planFunction(ctx, c, p, o.rebuild, bar)
		plans[i] = p
		bar.step("checked " + fn.Name)
	})
	<-bucketsDone
	bucketFailed := slices.ContainsFunc(out.Buckets, func(r projectBucketResult) bool { return r.Action == actionFailed })
	if bucketFailed || slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
		bar.finish()
		for _, r := range out.Buckets {
			if r.Action == actionFailed {
				fmt.Fprintf(a.env.Stderr, "gust: bucket %s: %s\n", r.Name, r.Error)
				out.Failed++
			}
		}
		for i := range out.Buckets {
			if out.Buckets[i].Action != actionFailed {
				out.Buckets[i].Action = actionSkipped
			}
		}
		for i, p := range plans {
			r := projectFunctionResult{FunctionName: p.fn.Name, Alias: p.fn.Alias, Action: actionSkipped}
			if errs[i] != nil {
				r.Action, r.Error = actionFailed, errs[i].Error()
				fmt.Fprintf(a.env.Stderr, "gust: %s: %v\n", p.fn.Name, errs[i])
				out.Failed++
			}
			out.Functions[i] = r
		}
		fmt.Fprintf(a.env.Stderr, "gust: nothing was deployed\n")
		out.ElapsedMs = time.Since(start).Milliseconds()
		if a.output == outputJSON {
			if err := writeJSON(a.env.Stdout, out); err != nil {
				return err
			}
		}
		return exitError{ExitFailure}
	}

	a.createBuckets(ctx, store, bucketsMissing, out.Buckets)
	for _, r := range out.Buckets {
		if r.Action == actionFailed {
			out.Failed++
			fmt.Fprintf(a.env.Stderr, "gust: bucket %s: %s\n", r.Name, r.Error)
		}
	}
	bucketFailed = out.Failed > 0
	parallel(len(plans), func(i int) {
		r, err := a.applyPlan(ctx, c, plans[i], bar)
		if err != nil {
			r.Action, r.Error = actionFailed, err.Error()
		}
		out.Functions[i] = r
		bar.step("deployed " + plans[i].fn.Name)
	})
	bar.finish()
	fnFailed := false
	for _, r := range out.Functions {
		if r.Action == actionFailed {
			out.Failed++
			fnFailed = true
			fmt.Fprintf(a.env.Stderr, "gust: %s: %s\n", r.FunctionName, r.Error)
		}
	}
	out.Schedules = a.deploySchedules(ctx, c, proj.Schedules, fnFailed)
	for _, r := range out.Schedules {
		if r.Action == actionFailed {
			out.Failed++
			fmt.Fprintf(a.env.Stderr, "gust: schedule %s: %s\n", r.Name, r.Error)
		}
	}
	out.Triggers = a.deployTriggers(ctx, c, proj.Triggers, fnFailed || bucketFailed, o.replaceTriggers)
	for _, r := range out.Triggers {
		if r.Action == actionFailed {
			out.Failed++
			fmt.Fprintf(a.env.Stderr, "gust: trigger %s: %s\n", r.Name, r.Error)
		}
	}
	out.ElapsedMs = time.Since(start).Milliseconds()
	if err := a.writeProjectResults(out.Functions, out); err != nil {
		return err
	}
	if err := a.writeBucketResults(out.Buckets); err != nil {
		return err
	}
	if err := a.writeScheduleResults(out.Schedules); err != nil {
		return err
	}
	if err := a.writeTriggerResults(out.Triggers); err != nil {
		return err
	}
	if a.output == outputTable {
		fmt.Fprintf(a.env.Stdout, "%d function(s) in %s\n", len(out.Functions), time.Since(start).Round(time.Millisecond))
	}
	if out.Failed > 0 {
		return exitError{ExitFailure}
	}
	return nil
}

// planBuckets reads which of the project's buckets exist. It returns a
// result for each (unchanged when it exists as the file says, failed when
// it exists as the other kind or cannot be read) and those to create.
func (a *app) planBuckets(ctx context.Context, store bucketStore, buckets []*project.Bucket) ([]projectBucketResult, []*project.Bucket) {
	results := make([]projectBucketResult, len(buckets))
	missing := make([]bool, len(buckets))
	parallel(len(buckets), func(i int) {
		b := buckets[i]
		r := projectBucketResult{Name: b.Name, Kind: b.Kind, Action: actionUnchanged, MaxObjectSize: b.MaxObjectSize}
		kind, err := store.bucketKind(ctx, b.Name, b.Kind)
		switch {
		case err != nil:
			r.Action, r.Error = actionFailed, "read the bucket: "+err.Error()
		case kind == "":
			missing[i] = true
		case kind != b.Kind:
			r.Action, r.Error = actionFailed, fmt.Sprintf("a bucket %s of kind %s exists; the file declares kind %s (a deploy never deletes a bucket: rename one of them)", b.Name, kind, b.Kind)
		}
		results[i] = r
	})
	var create []*project.Bucket
	for i, b := range buckets {
		if missing[i] {
			create = append(create, b)
		}
	}
	return results, create
}

// createBuckets creates the missing buckets, updating their results.
func (a *app) createBuckets(ctx context.Context, store bucketStore, missing []*project.Bucket, results []projectBucketResult) {
	parallel(len(missing), func(i int) {
		b := missing[i]
		err := store.createBucket(ctx, b)
		for j := range results {
			if results[j].Name != b.Name {
				continue
			}
			if err != nil {
				results[j].Action, results[j].Error = actionFailed, "create: "+err.Error()
			} else {
				results[j].Action = actionCreated
			}
		}
	})
}

// writeBucketResults prints a project deploy's buckets as a table
// (nothing with -o json, where they are part of the document).
func (a *app) writeBucketResults(results []projectBucketResult) error {
	if a.output == outputJSON || len(results) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "BUCKET\tACTION\tKIND\tDETAILS")
	for _, r := range results {
		details := "-"
		switch {
		case r.Error != "":
			details = "error: " + firstLine(r.Error)
		case r.MaxObjectSize > 0:
			details = "max object size " + humanBytes(r.MaxObjectSize)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Name, r.Action, r.Kind, details)
	}
	return w.Flush()
}

// planFunction reads the node's state of p's function and packages its
// code unless $LATEST is known to hold it already. It changes nothing.
func (a *app) planFunction(ctx context.Context, c *client.Client, p *fnPlan, rebuild bool, bar *progressBar) error {
	fn := p.fn
	got, err := c.GetFunction(ctx, fn.Name)
	switch {
	case isAPIError(err, api.ErrResourceNotFound):
	case err != nil:
		return fmt.Errorf("read the function: %w", err)
	default:
		p.exists, p.latest, p.tags = true, got.Configuration, got.Tags
		if was := p.latest.Runtime; (was == runtimeWasm) != (fn.Runtime == runtimeWasm) {
			return fmt.Errorf("the runtime changes from %s to %s, which a function cannot do in place: "+
				"delete it first (gust rm %s), then deploy", was, fn.Runtime, fn.Name)
		}
		if got.Concurrency != nil {
			p.reserved = got.Concurrency.ReservedConcurrentExecutions
		}
		if err := p.readAlias(ctx, c); err != nil {
			return err
		}
	}
	if fn.Builds() {
		bar.status("checking the build inputs of " + fn.Name)
		if inputs, err := project.BuildInputs(ctx, fn); err == nil {
			p.inputs = inputs
			if p.exists && !rebuild && p.tags[tagBuildInputs] == inputs+":"+hexDigest(p.latest.CodeSha256) {
				p.codeDigest = hexDigest(p.latest.CodeSha256)
				return nil
			}
		}
		// Without the inputs the build decides, and reports what is wrong.
	}
	progress := func(format string, args ...any) { bar.status(fmt.Sprintf(format, args...)) }
	code, err := a.packager(progress).pack(ctx, fn.Runtime, fn.Code)
	if err != nil {
		return err
	}
	digest, err := project.StoredDigest(fn.Runtime, code)
	if err != nil {
		return fmt.Errorf("%s: %w", fn.Code, err)
	}
	p.code, p.codeDigest = code, digest
	if p.exists && digest == hexDigest(p.latest.CodeSha256) {
		p.code = nil // the node has it
	}
	return nil
}

// readAlias reads the alias, the versions it routes to and its
// provisioned concurrency.
func (p *fnPlan) readAlias(ctx context.Context, c *client.Client) error {
	name := p.fn.Name
	al, err := c.GetAlias(ctx, name, p.fn.Alias)
	if isAPIError(err, api.ErrResourceNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read alias %s: %w", p.fn.Alias, err)
	}
	p.alias = &al
	mainCfg, err := c.GetFunctionConfigurationAt(ctx, name, al.FunctionVersion)
	if err != nil {
		return fmt.Errorf("read version %s: %w", al.FunctionVersion, err)
	}
	p.aliasMain = &mainCfg
	if v, _, ok := canaryOf(al); ok {
		cfg, err := c.GetFunctionConfigurationAt(ctx, name, v)
		if err != nil {
			return fmt.Errorf("read version %s: %w", v, err)
		}
		p.aliasCanary = &cfg
	}
	pc, err := c.GetProvisionedConcurrencyConfig(ctx, name, p.fn.Alias)
	switch {
	case isAPIError(err, api.ErrProvisionedConcurrencyNotFound):
	case err != nil:
		return fmt.Errorf("read the provisioned concurrency of %s: %w", p.fn.Alias, err)
	default:
		p.provisioned = pc.RequestedProvisionedConcurrentExecutions
	}
	return nil
}

// canaryOf returns the alias's weighted version and its weight.
func canaryOf(al api.AliasConfiguration) (string, float64, bool) {
	if al.RoutingConfig == nil {
		return "", 0, false
	}
	for v, w := range al.RoutingConfig.AdditionalVersionWeights {
		return v, w, true
	}
	return "", 0, false
}

// runsDesired reports whether a version (or $LATEST) runs the program the
// project asks for: the same code and every setting the program sees.
func (p *fnPlan) runsDesired(c *api.FunctionConfiguration) bool {
	fn := p.fn
	return c != nil && hexDigest(c.CodeSha256) == p.codeDigest && c.Runtime == fn.Runtime && c.Handler == fn.Handler &&
		int(c.MemorySize) == fn.MemoryMB && int(c.Timeout) == fn.TimeoutSec && sameEnv(c.Environment, fn.Env) &&
		sameGrants(c.GustGrants, fn.Grants)
}

// sameGrants reports whether a node's grants are the project's (nil and
// empty alike; order and repeats do not count).
func sameGrants(have *api.Grants, want *registry.Grants) bool {
	var h *registry.Grants
	if have != nil {
		h = &registry.Grants{KV: sortedSet(have.KV), Objects: sortedSet(have.Objects), Hosts: sortedSet(have.Hosts)}
	}
	var w *registry.Grants
	if want != nil {
		w = &registry.Grants{KV: sortedSet(want.KV), Objects: sortedSet(want.Objects), Hosts: sortedSet(want.Hosts)}
	}
	return h.Equal(w)
}

func sortedSet(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// apiGrants returns g for the Lambda API: an empty set (which removes
// every grant on an update) when g is nil.
func apiGrants(g *registry.Grants) *api.Grants {
	if g == nil {
		return &api.Grants{}
	}
	return &api.Grants{KV: slices.Clone(g.KV), Objects: slices.Clone(g.Objects), Hosts: slices.Clone(g.Hosts)}
}

func sameEnv(have *api.EnvironmentResponse, want map[string]string) bool {
	var h map[string]string
	if have != nil {
		h = have.Variables
	}
	return len(h) == len(want) && maps.Equal(h, want)
}

// configChanges names the settings of $LATEST that differ from the
// project's.
func (p *fnPlan) configChanges() []string {
	fn, l := p.fn, p.latest
	var out []string
	add := func(changed bool, name string) {
		if changed {
			out = append(out, name)
		}
	}
	add(l.Runtime != fn.Runtime, "runtime")
	add(l.Handler != fn.Handler, "handler")
	add(int(l.MemorySize) != fn.MemoryMB, "memory")
	add(int(l.Timeout) != fn.TimeoutSec, "timeout")
	add(!sameEnv(l.Environment, fn.Env), "env")
	add(l.Description != fn.Description, "description")
	add(int(l.GustIdleTimeout) != fn.IdleTimeoutSec, "idle_timeout")
	add(!sameGrants(l.GustGrants, fn.Grants), "grants")
	return out
}

// applyPlan deploys one function: code and configuration of $LATEST, a
// version when no version the alias routes to runs the project's program,
// the alias, then reserved and provisioned concurrency.
func (a *app) applyPlan(ctx context.Context, c *client.Client, p *fnPlan, bar *progressBar) (projectFunctionResult, error) {
	fn := p.fn
	r := projectFunctionResult{FunctionName: fn.Name, Alias: fn.Alias, Action: actionUnchanged,
		CodeSha256: p.codeDigest, Digest: fn.Digest(p.codeDigest)}
	change := func(what string) {
		if !slices.Contains(r.Changes, what) {
			r.Changes = append(r.Changes, what)
		}
	}
	idle := int32(fn.IdleTimeoutSec)
	env := fn.Env
	if env == nil {
		env = map[string]string{}
	}
	tag := ""
	if p.inputs != "" {
		tag = p.inputs + ":" + p.codeDigest
	}

	if !p.exists {
		bar.status(fmt.Sprintf("uploading %s (%s)", fn.Name, humanBytes(int64(len(p.code)))))
		mem, timeout := int32(fn.MemoryMB), int32(fn.TimeoutSec)
		in := api.CreateFunctionRequest{
			FunctionName: fn.Name, Runtime: fn.Runtime, Handler: fn.Handler, Description: fn.Description,
			Code: &api.FunctionCode{ZipFile: p.code}, MemorySize: &mem, Timeout: &timeout,
			Environment: &api.Environment{Variables: env}, GustIdleTimeout: &idle,
		}
		if tag != "" {
			in.Tags = map[string]string{tagBuildInputs: tag}
		}
		if fn.Grants != nil {
			in.GustGrants = apiGrants(fn.Grants)
		}
		cfg, err := c.CreateFunction(ctx, in)
		if err != nil {
			return r, fmt.Errorf("create: %w", err)
		}
		p.latest, r.Action = cfg, actionCreated
	} else {
		if p.code != nil {
			bar.status(fmt.Sprintf("uploading %s (%s)", fn.Name, humanBytes(int64(len(p.code)))))
			cfg, err := c.UpdateFunctionCode(ctx, fn.Name, api.UpdateFunctionCodeRequest{ZipFile: p.code, RevisionID: p.latest.RevisionID})
			if err != nil {
				return r, fmt.Errorf("update code: %w", err)
			}
			p.latest = cfg
			change("code")
		}
		if changes := p.configChanges(); len(changes) > 0 {
			bar.status("configuring " + fn.Name)
			mem, timeout := int32(fn.MemoryMB), int32(fn.TimeoutSec)
			rt, handler, desc := fn.Runtime, fn.Handler, fn.Description
			cfg, err := c.UpdateFunctionConfiguration(ctx, fn.Name, api.UpdateFunctionConfigurationRequest{
				Runtime: &rt, Handler: &handler, Description: &desc, MemorySize: &mem, Timeout: &timeout,
				Environment: &api.Environment{Variables: env}, GustIdleTimeout: &idle, RevisionID: p.latest.RevisionID,
				GustGrants: apiGrants(fn.Grants),
			})
			if err != nil {
				return r, fmt.Errorf("update configuration: %w", err)
			}
			p.latest = cfg
			for _, ch := range changes {
				change(ch)
			}
		}
	}
	if hexDigest(p.latest.CodeSha256) != p.codeDigest {
		// The node is the judge of what it stores.
		p.codeDigest = hexDigest(p.latest.CodeSha256)
		r.CodeSha256, r.Digest = p.codeDigest, fn.Digest(p.codeDigest)
	}

	if want := fn.ReservedConcurrency; !sameReserved(p.reserved, want) {
		var err error
		if want == nil {
			err = c.DeleteFunctionConcurrency(ctx, fn.Name)
		} else {
			err = c.PutFunctionConcurrency(ctx, fn.Name, int32(*want))
		}
		if err != nil {
			return r, fmt.Errorf("set reserved concurrency: %w", err)
		}
		change("reserved_concurrency")
	}

	// The version to route to: one the alias already uses if it runs the
	// project's program, else a version published from $LATEST.
	var target string
	switch {
	case p.runsDesired(p.aliasMain):
		target = p.alias.FunctionVersion
	case p.runsDesired(p.aliasCanary):
		target = p.aliasCanary.Version
	default:
		bar.status("publishing " + fn.Name)
		v, err := c.PublishVersion(ctx, fn.Name, api.PublishVersionRequest{CodeSha256: p.codeDigest, RevisionID: p.latest.RevisionID})
		if err != nil {
			return r, fmt.Errorf("publish: %w", err)
		}
		target = v.Version
	}

	// Tagging changes $LATEST's revision: after the publish, which names
	// the revision it publishes.
	if p.exists && tag != "" && p.tags[tagBuildInputs] != tag {
		if err := c.TagResource(ctx, fn.Name, map[string]string{tagBuildInputs: tag}); err != nil {
			return r, fmt.Errorf("record the build inputs: %w", err)
		}
	}

	if p.alias == nil {
		al, err := c.CreateAlias(ctx, fn.Name, api.CreateAliasRequest{Name: fn.Alias, FunctionVersion: target,
			Description: "moved by gust deploy"})
		if err != nil {
			return r, fmt.Errorf("create alias %s: %w", fn.Alias, err)
		}
		p.alias = &al
		change("alias")
	} else {
		mainV, weights := target, map[string]float64{}
		if p.canary > 0 && target != p.alias.FunctionVersion {
			mainV, weights = p.alias.FunctionVersion, map[string]float64{target: float64(p.canary) / 100}
		}
		var have map[string]float64
		if p.alias.RoutingConfig != nil {
			have = p.alias.RoutingConfig.AdditionalVersionWeights
		}
		if mainV != p.alias.FunctionVersion || !maps.Equal(have, weights) {
			al, err := c.UpdateAlias(ctx, fn.Name, fn.Alias, api.UpdateAliasRequest{FunctionVersion: mainV,
				RoutingConfig: &api.AliasRoutingConfiguration{AdditionalVersionWeights: weights}, RevisionID: p.alias.RevisionID})
			if err != nil {
				return r, fmt.Errorf("move alias %s: %w", fn.Alias, err)
			}
			if al.FunctionVersion != p.alias.FunctionVersion {
				r.PreviousVersion = p.alias.FunctionVersion
			}
			p.alias = &al
			change("alias")
		}
	}
	r.Version = p.alias.FunctionVersion
	r.CanaryVersion, r.CanaryWeight, _ = canaryOf(*p.alias)

	if want := int32(fn.Provisioned); want != p.provisioned {
		var err error
		if want == 0 {
			err = c.DeleteProvisionedConcurrencyConfig(ctx, fn.Name, fn.Alias)
		} else {
			_, err = c.PutProvisionedConcurrencyConfig(ctx, fn.Name, fn.Alias, want)
		}
		if err != nil {
			return r, fmt.Errorf("set provisioned concurrency on %s: %w", fn.Alias, err)
		}
		change("provisioned")
	}
	if r.Action == actionUnchanged && len(r.Changes) > 0 {
		r.Action = actionUpdated
	}
	if r.Action == actionCreated {
		r.Changes = nil
	}
	return r, nil
}

func sameReserved(have *int32, want *int) bool {
	if have == nil || want == nil {
		return have == nil && want == nil
	}
	return int(*have) == *want
}

// isAPIError reports whether err is an *api.Error with the given code.
func isAPIError(err error, code string) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == code
}

// parallel runs f(0..n-1), at most projectParallel at a time, and waits.
func parallel(n int, f func(i int)) {
	sem := make(chan struct{}, projectParallel)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// writeProjectResults prints results as a table, or doc as JSON.
func (a *app) writeProjectResults(results []projectFunctionResult, doc any) error {
	if a.output == outputJSON {
		return writeJSON(a.env.Stdout, doc)
	}
	w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FUNCTION\tACTION\tVERSION\tALIAS\tDETAILS")
	for _, r := range results {
		version := r.Version
		if version == "" {
			version = "-"
		}
		changes := strings.Join(r.Changes, ",")
		if changes == "" && r.PreviousVersion != "" {
			changes = "was " + r.PreviousVersion
		}
		if r.Error != "" {
			changes = "error: " + firstLine(r.Error)
		}
		if changes == "" {
			changes = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.FunctionName, r.Action, version, describeAlias(r), changes)
	}
	return w.Flush()
}

// describeAlias renders where an alias sends traffic: "live -> 3", or
// "live -> 2 (90%), 3 (10%)" during a canary.
func describeAlias(r projectFunctionResult) string {
	if r.Version == "" {
		return r.Alias
	}
	if r.CanaryVersion == "" {
		return r.Alias + " -> " + r.Version
	}
	pc := r.CanaryWeight * 100
	return fmt.Sprintf("%s -> %s (%s%%), %s (%s%%)", r.Alias, r.Version, formatDecimal(100-pc, 2), r.CanaryVersion, formatDecimal(pc, 2))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// aliasTarget is one function and the alias promote or rollback acts on.
type aliasTarget struct{ name, alias string }

// aliasTargets resolves the functions promote and rollback act on: the
// names given, or with none (when allowed) every function of the project
// file. The alias is --alias, else the one the project file gives the
// function, else the default.
func (a *app) aliasTargets(cmd *cobra.Command, names []string, file, alias string, all bool) ([]aliasTarget, error) {
	var proj *project.Project
	needFile := len(names) == 0 || alias == "" && cmd.Flags().Changed("file")
	if alias == "" {
		if _, err := os.Stat(file); err == nil || needFile {
			p, err := project.LoadWith(file, project.Options{KeepVariables: true})
			if err != nil {
				return nil, usageError{fmt.Errorf("%s is not valid (with --alias, it is not read):\n%w", file, err)}
			}
			proj = p
		}
	}
	if len(names) == 0 {
		if !all {
			return nil, usagef("%s: name the functions (%s NAME...)", cmd.CommandPath(), cmd.CommandPath())
		}
		if proj == nil {
			p, err := project.LoadWith(file, project.Options{KeepVariables: true})
			if err != nil {
				return nil, usageError{fmt.Errorf("%s is not valid:\n%w", file, err)}
			}
			proj = p
		}
		for _, f := range proj.Functions {
			names = append(names, f.Name)
		}
	}
	out := make([]aliasTarget, 0, len(names))
	for _, n := range names {
		t := aliasTarget{name: n, alias: alias}
		if t.alias == "" {
			t.alias = project.DefaultAlias
			if proj != nil {
				if f := proj.Function(n); f != nil {
					t.alias = f.Alias
				}
			}
		}
		out = append(out, t)
	}
	return out, nil
}

func (a *app) promoteCommand() *cobra.Command {
	var file, alias string
	cmd := &cobra.Command{
		Use:   "promote [NAME...]",
		Short: "Complete canary deploys: send all of an alias's traffic to its canary version",
		Long: "Complete the canary of each named function (with none, of every function of the\n" +
			"project file): its alias sends all traffic to the version `gust deploy --canary`\n" +
			"published. A function with no canary in progress is left as it is.\n" +
			"The alias is --alias, else the function's alias in the project file, else live.\n" +
			"Exit status 1 if any function fails.",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := a.aliasTargets(cmd, args, file, alias, true)
			if err != nil {
				return err
			}
			return a.eachAlias(cmd.Context(), targets, a.promote)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", project.DefaultFile, "project file")
	cmd.Flags().StringVar(&alias, "alias", "", "alias (default: the function's alias in the project file, else live)")
	return cmd
}

func (a *app) rollbackCommand() *cobra.Command {
	var file, alias string
	cmd := &cobra.Command{
		Use:   "rollback NAME...",
		Short: "Point an alias back to the previous version at once",
		Long: "Point each named function's alias back, at once: during a canary, drop the\n" +
			"canary (all traffic to the version the alias had before it); otherwise, move the\n" +
			"alias to the newest version older than its current one.\n" +
			"The alias is --alias, else the function's alias in the project file, else live.\n" +
			"Exit status 1 if any function fails.",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := a.aliasTargets(cmd, args, file, alias, false)
			if err != nil {
				return err
			}
			return a.eachAlias(cmd.Context(), targets, a.rollback)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", project.DefaultFile, "project file")
	cmd.Flags().StringVar(&alias, "alias", "", "alias (default: the function's alias in the project file, else live)")
	return cmd
}

// eachAlias runs op on every target and prints the results.
func (a *app) eachAlias(ctx context.Context, targets []aliasTarget, op func(context.Context, *client.Client, aliasTarget) (projectFunctionResult, error)) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	results := make([]projectFunctionResult, len(targets))
	parallel(len(targets), func(i int) {
		r, err := op(ctx, c, targets[i])
		r.FunctionName, r.Alias = targets[i].name, targets[i].alias
		if err != nil {
			r.Action, r.Error = actionFailed, err.Error()
		}
		results[i] = r
	})
	failed := 0
	for _, r := range results {
		if r.Action == actionFailed {
			failed++
			fmt.Fprintf(a.env.Stderr, "gust: %s: %s\n", r.FunctionName, r.Error)
		}
	}
	if err := a.writeProjectResults(results, results); err != nil {
		return err
	}
	if failed > 0 {
		return exitError{ExitFailure}
	}
	return nil
}

// promote sends all of the alias's traffic to its weighted version.
func (a *app) promote(ctx context.Context, c *client.Client, t aliasTarget) (projectFunctionResult, error) {
	r := projectFunctionResult{Action: actionUnchanged}
	al, err := c.GetAlias(ctx, t.name, t.alias)
	if err != nil {
		return r, fmt.Errorf("read alias %s: %w", t.alias, err)
	}
	r.Version = al.FunctionVersion
	v, _, ok := canaryOf(al)
	if !ok {
		return r, nil
	}
	al, err = c.UpdateAlias(ctx, t.name, t.alias, api.UpdateAliasRequest{FunctionVersion: v,
		RoutingConfig: &api.AliasRoutingConfiguration{}, RevisionID: al.RevisionID})
	if err != nil {
		return r, fmt.Errorf("move alias %s: %w", t.alias, err)
	}
	r.Action, r.PreviousVersion, r.Version = actionPromoted, r.Version, al.FunctionVersion
	return r, nil
}

// rollback drops the alias's canary, or moves it to the newest version
// older than its current one.
func (a *app) rollback(ctx context.Context, c *client.Client, t aliasTarget) (projectFunctionResult, error) {
	r := projectFunctionResult{}
	al, err := c.GetAlias(ctx, t.name, t.alias)
	if err != nil {
		return r, fmt.Errorf("read alias %s: %w", t.alias, err)
	}
	r.Version = al.FunctionVersion
	in := api.UpdateAliasRequest{RoutingConfig: &api.AliasRoutingConfiguration{}, RevisionID: al.RevisionID}
	if _, _, ok := canaryOf(al); !ok {
		cur, err := strconv.Atoi(al.FunctionVersion)
		if err != nil {
			return r, fmt.Errorf("alias %s points to %s: there is no version before it", t.alias, al.FunctionVersion)
		}
		versions, err := c.ListVersions(ctx, t.name)
		if err != nil {
			return r, fmt.Errorf("list versions: %w", err)
		}
		prev := 0
		for _, v := range versions {
			if n, err := strconv.Atoi(v.Version); err == nil && n < cur && n > prev {
				prev = n
			}
		}
		if prev == 0 {
			return r, fmt.Errorf("alias %s points to version %d and there is no version before it", t.alias, cur)
		}
		in.FunctionVersion = strconv.Itoa(prev)
	}
	al, err = c.UpdateAlias(ctx, t.name, t.alias, in)
	if err != nil {
		return r, fmt.Errorf("move alias %s: %w", t.alias, err)
	}
	r.Action = actionRolledBck
	if al.FunctionVersion != r.Version {
		r.PreviousVersion = r.Version
	}
	r.Version = al.FunctionVersion
	return r, nil
}

// progressBar shows a project deploy's progress on a terminal:
//
//	[#######-------------]  3/8  building greet
//
// It is safe for concurrent use; when disabled, every method does nothing.
type progressBar struct {
	mu      sync.Mutex
	w       io.Writer
	on      bool
	total   int
	done    int
	current string
	shown   bool
}

// newProgressBar returns a bar of total steps, shown on stderr when it is
// a terminal and the output is a table.
func (a *app) newProgressBar(total int) *progressBar {
	return &progressBar{w: a.env.Stderr, on: isTerminal(a.env.Stderr) && a.output == outputTable, total: total}
}

// status says what is being done now.
func (b *progressBar) status(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.current = s
	b.draw()
}

// step counts one step done.
func (b *progressBar) step(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = min(b.done+1, b.total)
	b.current = s
	b.draw()
}

// finish erases the bar.
func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.on && b.shown {
		fmt.Fprint(b.w, "\r\033[K")
		b.shown = false
	}
}

const progressWidth = 20

func (b *progressBar) draw() {
	if !b.on || b.total == 0 {
		return
	}
	n := b.done * progressWidth / b.total
	line := fmt.Sprintf("[%s%s] %*d/%d  %s", strings.Repeat("#", n), strings.Repeat("-", progressWidth-n),
		len(strconv.Itoa(b.total)), b.done, b.total, b.current)
	if len(line) > 100 {
		line = line[:100]
	}
	fmt.Fprint(b.w, "\r\033[K"+line)
	b.shown = true
}

// bucketStore is what a project deploy needs of the node's storage API.
type bucketStore interface {
	// bucketKind returns the kind of the bucket called name: kind when
	// a bucket of that kind exists, else the other kind when one of
	// that exists, else "".
	bucketKind(ctx context.Context, name, kind string) (string, error)
	// createBucket creates b.
	createBucket(ctx context.Context, b *project.Bucket) error
}

// buckets returns the bucket store of c.
func (a *app) buckets(c *client.Client) bucketStore { return &clientBuckets{c: c} }

// clientBuckets is a bucketStore over the client, listing the node's
// buckets once (a describe would count every key).
type clientBuckets struct {
	c *client.Client

	once  sync.Once
	kinds map[string][]string // name -> kinds
	err   error
}

func (s *clientBuckets) bucketKind(ctx context.Context, name, kind string) (string, error) {
	s.once.Do(func() {
		list, err := s.c.ListBuckets(ctx, "")
		if err != nil {
			s.err = err
			return
		}
		s.kinds = map[string][]string{}
		for _, b := range list {
			s.kinds[b.Name] = append(s.kinds[b.Name], b.Kind)
		}
	})
	if s.err != nil {
		return "", s.err
	}
	kinds := s.kinds[name]
	switch {
	case slices.Contains(kinds, kind):
		return kind, nil
	case len(kinds) > 0:
		return kinds[0], nil
	}
	return "", nil
}

func (s *clientBuckets) createBucket(ctx context.Context, b *project.Bucket) error {
	_, err := s.c.CreateBucket(ctx, b.Kind, b.Name, api.CreateBucketRequest{MaxObjectSize: b.MaxObjectSize})
	if isAPIError(err, api.ErrResourceConflict) {
		return nil // created meanwhile
	}
	return err
}
