package cli

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/gobuild"
	"github.com/gustfaas/gust/internal/registry"
)

func (a *app) upCommand() *cobra.Command {
	o := UpOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a gust node in the foreground",
		Long: "Run a gust node in the foreground until interrupted (SIGINT or SIGTERM).\n" +
			"The node keeps its state and an admin key (credentials file) in the data directory.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.env.Up == nil {
				return errors.New("this build of gust cannot run a node")
			}
			if a.dataDir == "" {
				return usagef("cannot tell where to keep data: pass --data, or set XDG_DATA_HOME or HOME")
			}
			if o.PricePerRequest < 0 || o.PricePerGBSecond < 0 {
				return usagef("--price-per-request and --price-per-gb-second must not be negative")
			}
			o.DataDir = a.dataDir
			return a.env.Up(cmd.Context(), o, a.env.Stdout, a.env.Stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address to serve HTTP on")
	f.BoolVar(&o.Examples, "examples", false, "deploy the bundled example functions on start")
	f.DurationVar(&o.GraceTimeout, "grace", 10*time.Second, "how long in-flight invocations may finish at shutdown")
	f.DurationVar(&o.IdleTimeout, "idle-timeout", 0, "how long an idle instance stays warm (0: node default)")
	f.IntVar(&o.MemoryMB, "memory", 0, "memory budget for all instances, in MB (0: node default)")
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "log operational messages to stderr")
	f.Float64Var(&o.PricePerRequest, "price-per-request", defaultPricePerRequest, "US dollars per request, for usage reports")
	f.Float64Var(&o.PricePerGBSecond, "price-per-gb-second", defaultPricePerGBSecond, "US dollars per GB-second of compute, for usage reports")
	return cmd
}

// Default prices of `gust up`: AWS Lambda's x86 list prices.
const (
	defaultPricePerRequest  = 0.0000002
	defaultPricePerGBSecond = 0.0000166667
)

// deployResult is `gust deploy -o json` output.
type deployResult struct {
	Action        string                    `json:"Action"` // "created" or "updated"
	ElapsedMs     int64                     `json:"ElapsedMs"`
	Configuration api.FunctionConfiguration `json:"Configuration"`
	// Concurrency is set when --reserved-concurrency was given; it has no
	// ReservedConcurrentExecutions when the reservation was removed.
	Concurrency *api.Concurrency `json:"Concurrency,omitempty"`
	// ProvisionedConcurrency is set when --provisioned was given and is
	// more than zero.
	ProvisionedConcurrency *api.ProvisionedConcurrencyConfig `json:"ProvisionedConcurrency,omitempty"`
}

func (a *app) deployCommand() *cobra.Command {
	var (
		memory, timeout       int32
		envVars               []string
		description           string
		idleTimeout           time.Duration
		reserved, provisioned int32
		rt, handler           string
		grantKV, grantObjects []string
		allowHosts            []string
		proj                  *projectOptions
	)
	cmd := &cobra.Command{
		Use:   "deploy [NAME PATH]",
		Short: "Create or update a function from a .wasm file, a .zip, an executable, sources or a Go package directory",
		Long: "Create a function, or update its code if it exists.\n\n" +
			"With the default --runtime wasm, PATH is a WebAssembly module (.wasm), a zip holding\n" +
			"one, or a directory holding a Go main package written with the Gust SDK, which is\n" +
			"built for GOOS=wasip1 GOARCH=wasm.\n" +
			"With --runtime provided.al2023 (or provided.al2, provided), PATH is a zip with an\n" +
			"executable bootstrap at its root, an executable (deployed as bootstrap), or a\n" +
			"directory holding a Go main package (aws-lambda-go), built for GOOS=linux with\n" +
			"-tags lambda.norpc.\n" +
			"With --runtime nodejs20.x, nodejs22.x, python3.11, python3.12 or python3.13, PATH\n" +
			"is a zip, a single source file, or a directory, zipped without .git, __pycache__ and\n" +
			"node_modules/.cache. --handler defaults to index.handler (Node.js) or app.handler\n" +
			"(Python) when a function is created.\n\n" +
			"--memory, --timeout, --env, --description, --idle-timeout, --runtime and --handler\n" +
			"set the configuration; on an update only the flags given change it.\n\n" +
			"--reserved-concurrency N caps the function at N concurrent invocations and keeps\n" +
			"them for it (-1 removes the cap); --provisioned N keeps N instances warm (0 stops).\n\n" +
			"--grant-kv BUCKET, --grant-objects BUCKET and --allow-host HOST (each repeatable)\n" +
			"grant the buckets the function may read and write and the outbound hosts it may\n" +
			"call (host, host:port, *.domain or an IP address). Together they are the whole\n" +
			"grant set: on an update, any of them replaces the function's grants with what\n" +
			"they give, and --grant-kv '' (with no other grant flag) removes every grant.\n\n" +
			projectDeployHelp,
		Args: a.deployArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return a.deployProject(cmd, proj)
			}
			name, path := args[0], args[1]
			f := cmd.Flags()
			env, err := parseEnv(envVars)
			if err != nil {
				return err
			}
			idleSec, err := idleSeconds(idleTimeout)
			if err != nil {
				return err
			}
			if f.Changed("reserved-concurrency") && reserved < -1 {
				return usagef("--reserved-concurrency %d: want 0 or more, or -1 to remove it", reserved)
			}
			if f.Changed("provisioned") && provisioned < 0 {
				return usagef("--provisioned %d: want 0 or more", provisioned)
			}
			grants, err := grantFlags(grantKV, grantObjects, allowHosts)
			if err != nil {
				return err
			}
			grantsSet := f.Changed("grant-kv") || f.Changed("grant-objects") || f.Changed("allow-host")
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			start := time.Now()
			progress := func(format string, args ...any) {
				if isTerminal(a.env.Stderr) && a.output == outputTable {
					fmt.Fprintf(a.env.Stderr, format+"\n", args...)
				}
			}
			code, err := a.packager(progress).pack(ctx, rt, path)
			if err != nil {
				return err
			}
			progress("uploading %s...", humanBytes(int64(len(code))))

			create := api.CreateFunctionRequest{
				FunctionName: name,
				Runtime:      rt,
				Handler:      handler,
				Code:         &api.FunctionCode{ZipFile: code},
				Description:  description,
			}
			if !f.Changed("handler") {
				create.Handler = defaultHandler(rt)
			}
			update := api.UpdateFunctionConfigurationRequest{}
			changed := false
			if f.Changed("runtime") {
				update.Runtime, changed = &rt, true
			}
			if f.Changed("handler") {
				update.Handler, changed = &handler, true
			}
			if f.Changed("memory") {
				create.MemorySize, update.MemorySize, changed = &memory, &memory, true
			}
			if f.Changed("timeout") {
				create.Timeout, update.Timeout, changed = &timeout, &timeout, true
			}
			if f.Changed("env") {
				create.Environment = &api.Environment{Variables: env}
				update.Environment, changed = create.Environment, true
			}
			if f.Changed("description") {
				update.Description, changed = &description, true
			}
			if f.Changed("idle-timeout") {
				create.GustIdleTimeout, update.GustIdleTimeout, changed = &idleSec, &idleSec, true
			}
			if grantsSet {
				create.GustGrants, update.GustGrants, changed = grants, grants, true
			}

			res := deployResult{Action: "created"}
			res.Configuration, err = c.CreateFunction(ctx, create)
			var apiErr *api.Error
			if errors.As(err, &apiErr) && apiErr.Code == api.ErrResourceConflict {
				res.Action = "updated"
				if !f.Changed("runtime") {
					// Redeploying keeps the function's runtime: a native
					// function's code must not be packaged as wasm.
					if cur, gerr := c.GetFunctionConfiguration(ctx, name); gerr == nil && cur.Runtime != "" && cur.Runtime != rt {
						if code, err = a.packager(progress).pack(ctx, cur.Runtime, path); err != nil {
							return err
						}
					}
				}
				res.Configuration, err = c.UpdateFunctionCode(ctx, name, api.UpdateFunctionCodeRequest{ZipFile: code})
				if err == nil && changed {
					res.Configuration, err = c.UpdateFunctionConfiguration(ctx, name, update)
				}
			}
			if err != nil {
				return fmt.Errorf("deploy %s: %w", name, err)
			}
			if f.Changed("reserved-concurrency") {
				if reserved < 0 {
					err = c.DeleteFunctionConcurrency(ctx, name)
					res.Concurrency = &api.Concurrency{}
				} else {
					err = c.PutFunctionConcurrency(ctx, name, reserved)
					res.Concurrency = &api.Concurrency{ReservedConcurrentExecutions: &reserved}
				}
				if err != nil {
					return fmt.Errorf("deploy %s: %s, but setting reserved concurrency failed: %w", name, res.Action, err)
				}
			}
			if f.Changed("provisioned") {
				if provisioned == 0 {
					err = c.DeleteProvisionedConcurrency(ctx, name)
				} else {
					var pc api.ProvisionedConcurrencyConfig
					pc, err = c.PutProvisionedConcurrency(ctx, name, provisioned)
					res.ProvisionedConcurrency = &pc
				}
				if err != nil {
					return fmt.Errorf("deploy %s: %s, but setting provisioned concurrency failed: %w", name, res.Action, err)
				}
			}
			elapsed := time.Since(start)
			res.ElapsedMs = elapsed.Milliseconds()
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, res)
			}
			cfg := res.Configuration
			fmt.Fprintf(a.env.Stdout, "%s %s in %s\n", res.Action, cfg.FunctionName, elapsed.Round(time.Millisecond))
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "  runtime:\t%s\n", cfg.Runtime)
			if cfg.Handler != "" {
				fmt.Fprintf(w, "  handler:\t%s\n", cfg.Handler)
			}
			fmt.Fprintf(w, "  code:\t%s (%d bytes)\n", humanBytes(cfg.CodeSize), cfg.CodeSize)
			fmt.Fprintf(w, "  sha256:\t%s\n", hexDigest(cfg.CodeSha256))
			fmt.Fprintf(w, "  memory:\t%d MB\n", cfg.MemorySize)
			fmt.Fprintf(w, "  timeout:\t%ds\n", cfg.Timeout)
			if f.Changed("idle-timeout") {
				fmt.Fprintf(w, "  idle keep-alive:\t%s\n", describeIdle(cfg.GustIdleTimeout))
			}
			if grantsSet {
				fmt.Fprintf(w, "  grants:\t%s\n", describeGrants(cfg.GustGrants))
			}
			if res.Concurrency != nil {
				fmt.Fprintf(w, "  reserved concurrency:\t%s\n", describeReserved(res.Concurrency))
			}
			if f.Changed("provisioned") {
				v := "none"
				if pc := res.ProvisionedConcurrency; pc != nil {
					v = fmt.Sprintf("%d requested, %d ready (%s)", pc.RequestedProvisionedConcurrentExecutions,
						pc.AvailableProvisionedConcurrentExecutions, pc.Status)
				}
				fmt.Fprintf(w, "  provisioned:\t%s\n", v)
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.Int32Var(&memory, "memory", 0, "memory size in MB")
	f.Int32Var(&timeout, "timeout", 0, "timeout in seconds")
	f.StringArrayVar(&envVars, "env", nil, "environment variable K=V (repeatable; replaces the whole environment)")
	f.StringVar(&description, "description", "", "description")
	f.DurationVar(&idleTimeout, "idle-timeout", 0, "how long an idle instance stays warm, in whole seconds (0: node default)")
	f.Int32Var(&reserved, "reserved-concurrency", 0, "reserve and cap concurrent invocations (0: throttle all; -1: remove the reservation)")
	f.Int32Var(&provisioned, "provisioned", 0, "instances to keep warm (0: none)")
	f.StringVar(&rt, "runtime", runtimeWasm, "runtime: wasm, provided.al2023, provided.al2, provided, nodejs20.x, nodejs22.x, python3.11, python3.12, python3.13")
	f.StringVar(&handler, "handler", "", "handler, such as index.handler (default on create: index.handler for nodejs, app.handler for python)")
	f.StringArrayVar(&grantKV, "grant-kv", nil, "grant the KV `bucket` (repeatable; the grant flags together replace the function's grants)")
	f.StringArrayVar(&grantObjects, "grant-objects", nil, "grant the object `bucket` (repeatable)")
	f.StringArrayVar(&allowHosts, "allow-host", nil, "allow outbound HTTP to `host`: api.example.com, host:port, *.example.com or an IP (repeatable)")
	proj = a.projectDeployFlags(cmd)
	return cmd
}

// packager returns the packager deploy uses, with the builders of the
// environment.
func (a *app) packager(progress func(string, ...any)) packager {
	pk := packager{buildWasm: a.env.Build, buildBootstrap: a.env.BuildBootstrap, progress: progress}
	if pk.buildWasm == nil {
		pk.buildWasm = gobuild.Build
	}
	if pk.buildBootstrap == nil {
		pk.buildBootstrap = buildBootstrap
	}
	return pk
}

// grantFlags checks --grant-kv, --grant-objects and --allow-host and
// returns the grant set they give (empty values are skipped, so
// --grant-kv "" alone gives an empty set, which removes every grant).
func grantFlags(kv, objects, hosts []string) (*api.Grants, error) {
	g := &api.Grants{}
	for _, list := range []struct {
		flag   string
		values []string
		out    *[]string
	}{{"grant-kv", kv, &g.KV}, {"grant-objects", objects, &g.Objects}, {"allow-host", hosts, &g.Hosts}} {
		for _, v := range list.values {
			if v == "" {
				continue
			}
			if list.flag == "allow-host" {
				h, err := registry.ValidateHostPattern(v)
				if err != nil {
					return nil, usagef("--allow-host: %v", err)
				}
				v = h
			} else if err := registry.ValidateBucketName(v); err != nil {
				return nil, usagef("--%s: %v", list.flag, err)
			}
			if !slices.Contains(*list.out, v) {
				*list.out = append(*list.out, v)
			}
		}
		if len(*list.out) > registry.MaxGrants {
			return nil, usagef("--%s is given %d times; at most %d are allowed", list.flag, len(*list.out), registry.MaxGrants)
		}
	}
	return g, nil
}

// describeGrants renders a function's grants: "kv items; objects photos;
// hosts api.github.com", or "none".
func describeGrants(g *api.Grants) string {
	if g == nil {
		return "none"
	}
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"kv", g.KV}, {"objects", g.Objects}, {"hosts", g.Hosts}} {
		if len(p.names) > 0 {
			parts = append(parts, p.what+" "+strings.Join(p.names, ","))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// idleSeconds converts --idle-timeout to GustIdleTimeout seconds.
func idleSeconds(d time.Duration) (int32, error) {
	switch {
	case d < 0:
		return 0, usagef("--idle-timeout %s: want 0 or more", d)
	case d%time.Second != 0:
		return 0, usagef("--idle-timeout %s: want whole seconds", d)
	case d/time.Second > math.MaxInt32:
		return 0, usagef("--idle-timeout %s: too long", d)
	}
	return int32(d / time.Second), nil
}

// describeIdle renders GustIdleTimeout.
func describeIdle(sec int32) string {
	if sec == 0 {
		return "node default"
	}
	return (time.Duration(sec) * time.Second).String()
}

// describeReserved renders a function's reserved concurrency.
func describeReserved(c *api.Concurrency) string {
	if c == nil || c.ReservedConcurrentExecutions == nil {
		return "none"
	}
	return strconv.Itoa(int(*c.ReservedConcurrentExecutions))
}

// parseEnv turns K=V flags into a map.
func parseEnv(kvs []string) (map[string]string, error) {
	env := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--env %q: want KEY=VALUE", kv)
		}
		env[k] = v
	}
	return env, nil
}

// hexDigest renders Lambda's base64 CodeSha256 as hex, the form sha256sum
// prints; other values are returned as they are.
func hexDigest(b64 string) string {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != sha256.Size {
		return b64
	}
	return hex.EncodeToString(raw)
}

// invokeOutput is `gust invoke -o json` output.
type invokeOutput struct {
	StatusCode      int             `json:"StatusCode"`
	FunctionError   string          `json:"FunctionError,omitempty"`
	ExecutedVersion string          `json:"ExecutedVersion,omitempty"`
	RequestID       string          `json:"RequestId,omitempty"`
	LogResult       string          `json:"LogResult,omitempty"`
	Payload         json.RawMessage `json:"Payload,omitempty"`
	// PayloadText holds a payload that is not JSON.
	PayloadText string `json:"PayloadText,omitempty"`
}

func (a *app) invokeCommand() *cobra.Command {
	var (
		payload string
		showLog bool
		async   bool
		idemKey string
	)
	cmd := &cobra.Command{
		Use:   "invoke NAME",
		Short: "Invoke a function and print its response",
		Long: "Invoke a function synchronously and print its response to stdout as it is.\n" +
			"--payload is literal JSON, @FILE to read a file, or - to read stdin.\n" +
			"If the function returns an error, the error document is printed, a summary goes\n" +
			"to stderr and gust exits with status 1.",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			body, err := readPayload(payload, a.env.Stdin)
			if err != nil {
				return err
			}
			if async {
				return a.invokeAsync(cmd, name, body, idemKey)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			o := client.InvokeOptions{LogTail: showLog}
			res, err := c.Invoke(cmd.Context(), name, body, o)
			if err != nil {
				return fmt.Errorf("invoke %s: %w", name, err)
			}
			if a.output == outputJSON {
				out := invokeOutput{StatusCode: res.StatusCode, FunctionError: res.FunctionError,
					ExecutedVersion: res.ExecutedVersion, RequestID: res.RequestID, LogResult: res.LogResult}
				if json.Valid(res.Payload) {
					out.Payload = res.Payload
				} else {
					out.PayloadText = string(res.Payload)
				}
				if err := writeJSON(a.env.Stdout, out); err != nil {
					return err
				}
			} else {
				if showLog && res.LogResult != "" {
					io.WriteString(a.env.Stderr, res.LogResult)
					if !strings.HasSuffix(res.LogResult, "\n") {
						io.WriteString(a.env.Stderr, "\n")
					}
				}
				if _, err := a.env.Stdout.Write(res.Payload); err != nil {
					return err
				}
				if len(res.Payload) > 0 && res.Payload[len(res.Payload)-1] != '\n' && isTerminal(a.env.Stdout) {
					io.WriteString(a.env.Stdout, "\n")
				}
			}
			if res.FunctionError != "" {
				fmt.Fprintf(a.env.Stderr, "gust: %s: function error (%s)%s\n", name, res.FunctionError, describeFunctionError(res.Payload))
				return exitError{ExitFailure}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&payload, "payload", "{}", "event: JSON, @FILE, or - for stdin")
	f.BoolVar(&showLog, "log", false, "print the tail of the invocation's log to stderr")
	f.BoolVar(&async, "async", false, "queue the invocation (InvocationType Event) durably and print its request id")
	f.StringVar(&idemKey, "idempotency-key", "", "with --async: a key whose repeat within 24h returns the first request id and runs nothing")
	return cmd
}

// readPayload resolves --payload: "-" reads stdin, "@file" reads file,
// anything else is the payload itself.
func readPayload(p string, stdin io.Reader) ([]byte, error) {
	switch {
	case p == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read payload from stdin: %w", err)
		}
		return b, nil
	case strings.HasPrefix(p, "@"):
		b, err := os.ReadFile(p[1:])
		if err != nil {
			return nil, fmt.Errorf("read payload: %w", err)
		}
		return b, nil
	default:
		return []byte(p), nil
	}
}

// describeFunctionError returns ": type: message" from a Lambda error
// document, or "".
func describeFunctionError(payload []byte) string {
	var doc struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(payload, &doc) != nil || doc.ErrorMessage == "" && doc.ErrorType == "" {
		return ""
	}
	if doc.ErrorType == "" {
		return ": " + doc.ErrorMessage
	}
	return ": " + doc.ErrorType + ": " + doc.ErrorMessage
}

func (a *app) lsCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List functions",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			fns, err := c.ListFunctions(cmd.Context())
			if err != nil {
				return fmt.Errorf("list functions: %w", err)
			}
			slices.SortFunc(fns, func(x, y api.FunctionConfiguration) int { return strings.Compare(x.FunctionName, y.FunctionName) })
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, fns)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tRUNTIME\tMEMORY\tTIMEOUT\tCODE SIZE\tLAST MODIFIED")
			for _, f := range fns {
				fmt.Fprintf(w, "%s\t%s\t%d MB\t%ds\t%s\t%s\n", f.FunctionName, f.Runtime, f.MemorySize, f.Timeout,
					humanBytes(f.CodeSize), displayTime(f.LastModified))
			}
			return w.Flush()
		},
	}
}

// displayTime renders Lambda's LastModified in a shorter form.
func displayTime(s string) string {
	t, err := time.Parse(api.TimeLayout, s)
	if err != nil {
		return s
	}
	return t.Format("2006-01-02 15:04:05 -0700")
}

func (a *app) getCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a function's configuration",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.GetFunction(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("get %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, res)
			}
			f := res.Configuration
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 1, ' ', 0)
			line := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
			line("name", f.FunctionName)
			line("arn", f.FunctionArn)
			line("runtime", f.Runtime)
			kind := f.GustKind
			if kind == "" {
				kind = "unknown"
			}
			line("kind", kind)
			if f.Handler != "" {
				line("handler", f.Handler)
			}
			line("memory", fmt.Sprintf("%d MB", f.MemorySize))
			line("timeout", fmt.Sprintf("%ds", f.Timeout))
			line("idle keep-alive", describeIdle(f.GustIdleTimeout))
			line("reserved concurrency", describeReserved(res.Concurrency))
			line("code size", fmt.Sprintf("%s (%d bytes)", humanBytes(f.CodeSize), f.CodeSize))
			line("code sha256", hexDigest(f.CodeSha256))
			line("description", f.Description)
			line("version", f.Version)
			line("state", f.State)
			line("last modified", displayTime(f.LastModified))
			if f.Environment != nil && len(f.Environment.Variables) > 0 {
				keys := make([]string, 0, len(f.Environment.Variables))
				for k := range f.Environment.Variables {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				label := "environment:"
				for _, k := range keys {
					fmt.Fprintf(w, "%s\t%s=%s\n", label, k, f.Environment.Variables[k])
					label = ""
				}
			}
			label := "isolation:"
			for _, l := range f.GustIsolation {
				fmt.Fprintf(w, "%s\t%s\n", label, l)
				label = ""
			}
			return w.Flush()
		},
	}
}

func (a *app) rmCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Delete a function",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteFunction(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("rm %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, map[string]any{"FunctionName": args[0], "Deleted": true})
			}
			fmt.Fprintf(a.env.Stdout, "deleted %s\n", args[0])
			return nil
		},
	}
}

func (a *app) logsCommand() *cobra.Command {
	var (
		follow bool
		since  string
	)
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a function's logs",
		Long: "Print a function's logs. --since takes a duration (10m, 2h) or an RFC 3339 time;\n" +
			"--follow keeps printing new logs until interrupted. With -o json, each event is\n" +
			"printed as one JSON object per line.",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.LogsOptions{Follow: follow}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				o.Since = t
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			enc := json.NewEncoder(a.env.Stdout)
			err = c.Logs(cmd.Context(), args[0], o, func(ev api.LogEvent) error {
				if a.output == outputJSON {
					return enc.Encode(ev)
				}
				text := ev.Text
				if !strings.HasSuffix(text, "\n") {
					text += "\n"
				}
				_, err := io.WriteString(a.env.Stdout, text)
				return err
			})
			if err != nil && follow && errors.Is(err, context.Canceled) {
				return nil // interrupted while following: the normal way out
			}
			if err != nil {
				return fmt.Errorf("logs %s: %w", args[0], err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new logs")
	f.StringVar(&since, "since", "", "only logs newer than a duration ago (10m) or a time (RFC 3339)")
	return cmd
}

// parseSince accepts a duration before now or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usagef("--since %q: want a positive duration", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--since %q: want a duration like 10m or an RFC 3339 time", s)
}

func (a *app) usageReportCommand() *cobra.Command {
	var since, function string
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show metered usage and what it costs",
		Long: "Show requests, errors, throttles, cold starts and compute (GB-seconds) per function\n" +
			"version, and their cost under the node's price table (set with `gust up\n" +
			"--price-per-request` and `--price-per-gb-second`). --since takes a duration (24h)\n" +
			"or an RFC 3339 time; the node counts whole minutes. With -o json, the node's report\n" +
			"is printed as it is.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			rep, err := c.Usage(cmd.Context(), from, function)
			if err != nil {
				return fmt.Errorf("usage: %w", err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, rep)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "FUNCTION\tVERSION\tREQUESTS\tERRORS\tTHROTTLES\tCOLD STARTS\tGB-SECONDS\tCOST")
			row := func(fn, version string, l api.UsageLine) {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", fn, version, l.Requests, l.Errors, l.Throttles,
					l.ColdStarts, formatDecimal(l.GBSeconds, 6), formatDollars(l.Cost.Total))
			}
			for _, l := range rep.Functions {
				row(l.Function, l.Version, l)
			}
			row("TOTAL", "", rep.Total)
			if err := w.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.env.Stdout, "prices: %s per request, %s per GB-second\n",
				formatPrice(rep.Prices.PerRequest), formatPrice(rep.Prices.PerGBSecond))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "24h", "usage newer than a duration ago (24h) or a time (RFC 3339)")
	f.StringVar(&function, "function", "", "only this function (default: all)")
	return cmd
}

// formatDollars renders an amount of US dollars with two to six
// decimals, more (up to ten) when needed to show two significant digits
// of a small amount: "$0.00", "$1.50", "$0.000012", "$0.0000002".
func formatDollars(v float64) string {
	digits, a := 6, math.Abs(v)
	for digits < 10 && a != 0 && a < math.Pow10(1-digits) {
		digits++
	}
	return "$" + atLeastTwoDecimals(formatDecimal(v, digits))
}

// formatPrice renders a price in US dollars exactly as it was configured:
// "$0.0000166667".
func formatPrice(v float64) string {
	return "$" + atLeastTwoDecimals(strconv.FormatFloat(v, 'f', -1, 64))
}

// atLeastTwoDecimals pads a decimal number to two decimals: "1" is "1.00".
func atLeastTwoDecimals(s string) string {
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return s + ".00"
	}
	if n := len(s) - i - 1; n < 2 {
		return s + strings.Repeat("0", 2-n)
	}
	return s
}

// formatDecimal renders v with at most digits decimals, without trailing
// zeros: formatDecimal(0.0125, 6) = "0.0125".
func formatDecimal(v float64, digits int) string {
	s := strconv.FormatFloat(v, 'f', digits, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// versionInfo is `gust version -o json` output.
type versionInfo struct {
	Version   string `json:"Version"`
	Revision  string `json:"Revision,omitempty"`
	GoVersion string `json:"GoVersion"`
	Platform  string `json:"Platform"`
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print gust's version",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{Version: "(unknown)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
			if bi, ok := debug.ReadBuildInfo(); ok {
				v.Version = bi.Main.Version
				dirty := false
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision":
						v.Revision = s.Value
					case "vcs.modified":
						dirty, _ = strconv.ParseBool(s.Value)
					}
				}
				if dirty && v.Revision != "" {
					v.Revision += "-dirty"
				}
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, v)
			}
			fmt.Fprintf(a.env.Stdout, "gust %s", v.Version)
			if v.Revision != "" {
				fmt.Fprintf(a.env.Stdout, " (%s)", v.Revision)
			}
			fmt.Fprintf(a.env.Stdout, " %s %s\n", v.GoVersion, v.Platform)
			return nil
		},
	}
}

// writeJSON writes v indented, with a final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
