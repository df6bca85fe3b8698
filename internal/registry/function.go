package registry

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Latest names the function's unpublished, mutable version: its latest
// code and configuration.
const Latest = "$LATEST"

// Defaults and bounds, as on Lambda.
const (
	DefaultMemoryMB   = 128
	MinMemoryMB       = 128
	MaxMemoryMB       = 10240
	DefaultTimeoutSec = 3
	MaxTimeoutSec     = 900
	MaxEnvBytes       = 4096
	MaxDescription    = 256
	MaxNameLen        = 64
	MaxConcurrency    = 10000
	MaxIdleTimeoutSec = 24 * 3600
)

// Runtimes lists every runtime name Gust knows. Whether a node can run one
// is the node's business (a host without Node.js 22 cannot run nodejs22.x);
// the registry only refuses names that are not runtimes at all.
var Runtimes = []string{"wasm", "provided.al2023", "provided.al2", "provided",
	"nodejs20.x", "nodejs22.x", "python3.11", "python3.12", "python3.13"}

// NeedsHandler reports whether a runtime requires Handler (Lambda's
// managed runtimes do; wasm and custom runtimes do not).
func NeedsHandler(runtime string) bool {
	return strings.HasPrefix(runtime, "nodejs") || strings.HasPrefix(runtime, "python")
}

// IsWasm reports whether a runtime takes a WebAssembly module.
func IsWasm(runtime string) bool { return runtime == "wasm" }

// Function is one function's stored configuration. Code lives in the object
// store under CodeDigest.
type Function struct {
	Name         string            `json:"name"`
	Runtime      string            `json:"runtime"`
	Handler      string            `json:"handler,omitempty"`
	Role         string            `json:"role,omitempty"`
	Description  string            `json:"description,omitempty"`
	MemoryMB     int               `json:"memoryMB"`
	TimeoutSec   int               `json:"timeoutSec"`
	Env          map[string]string `json:"env,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
	CodeDigest   string            `json:"codeDigest"` // lowercase hex sha256
	CodeSize     int64             `json:"codeSize"`
	RevisionID   string            `json:"revisionId"`
	LastModified time.Time         `json:"lastModified"`
	// Kind is what the runtime found the code to be (for wasm: a WASI
	// command or a Gust SDK module).
	Kind string `json:"kind,omitempty"`
	// ReservedConcurrency caps concurrent invocations (nil: no cap; 0:
	// the function is throttled entirely), as Lambda's
	// PutFunctionConcurrency.
	ReservedConcurrency *int `json:"reservedConcurrency,omitempty"`
	// ProvisionedConcurrency is how many instances are kept warm at all
	// times, started at deploy.
	ProvisionedConcurrency int `json:"provisionedConcurrency,omitempty"`
	// IdleTimeoutSec is how long an idle instance is kept (0: the node's
	// default).
	IdleTimeoutSec int `json:"idleTimeoutSec,omitempty"`
	// Version is empty for $LATEST, else the published version's number.
	// A published version is an immutable copy of $LATEST's code and
	// configuration; only its provisioned concurrency can change.
	Version string `json:"version,omitempty"`
	// LastVersion is the highest version number ever published ($LATEST
	// only); numbers are never reused.
	LastVersion int `json:"lastVersion,omitempty"`
	// URL is the unqualified function URL's configuration ($LATEST only;
	// nil: Gust's default, a public URL without CORS).
	URL *URLConfig `json:"url,omitempty"`
	// DeadLetterTarget is DeadLetterConfig.TargetArn: where an
	// asynchronous event that failed for good is sent (a function or a
	// Gust queue; see ParseDestination). Part of the configuration, so
	// published versions carry it.
	DeadLetterTarget string `json:"deadLetterTarget,omitempty"`
	// EventInvoke holds the asynchronous invocation settings of each
	// qualifier ($LATEST, a version or an alias) that has any ($LATEST
	// only: a function-level setting, like URL).
	EventInvoke map[string]*EventInvokeConfig `json:"eventInvoke,omitempty"`
	// Grants is what the function may reach: storage buckets and outbound
	// hosts (nil: nothing). Part of the configuration, so published
	// versions carry it.
	Grants *Grants `json:"grants,omitempty"`
}

// Qualifier is the version's name: "$LATEST" or a number.
func (f *Function) Qualifier() string {
	if f.Version == "" {
		return Latest
	}
	return f.Version
}

// IsLatest reports whether f is the function's $LATEST.
func (f *Function) IsLatest() bool { return f.Version == "" || f.Version == Latest }

// SameProgram reports whether a and b would run identically: the same
// code and every setting the running program sees. Scaling settings,
// descriptions and tags do not count.
func SameProgram(a, b *Function) bool {
	if a.CodeDigest != b.CodeDigest || a.Runtime != b.Runtime || a.Handler != b.Handler ||
		a.MemoryMB != b.MemoryMB || a.TimeoutSec != b.TimeoutSec || a.Role != b.Role || len(a.Env) != len(b.Env) ||
		!a.Grants.Equal(b.Grants) {
		return false
	}
	for k, v := range a.Env {
		if bv, ok := b.Env[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// Timeout is the function's timeout as a duration.
func (f *Function) Timeout() time.Duration { return time.Duration(f.TimeoutSec) * time.Second }

// Clone returns a deep copy.
func (f *Function) Clone() *Function {
	c := *f
	if f.ReservedConcurrency != nil {
		r := *f.ReservedConcurrency
		c.ReservedConcurrency = &r
	}
	if f.Env != nil {
		c.Env = make(map[string]string, len(f.Env))
		for k, v := range f.Env {
			c.Env[k] = v
		}
	}
	if f.Tags != nil {
		c.Tags = make(map[string]string, len(f.Tags))
		for k, v := range f.Tags {
			c.Tags[k] = v
		}
	}
	if f.URL != nil {
		c.URL = f.URL.Clone()
	}
	c.Grants = f.Grants.Clone()
	if f.EventInvoke != nil {
		c.EventInvoke = make(map[string]*EventInvokeConfig, len(f.EventInvoke))
		for k, v := range f.EventInvoke {
			if v != nil {
				v = v.Clone()
			}
			c.EventInvoke[k] = v
		}
	}
	return &c
}

// ValidationError names a field that breaks a rule. Its message follows
// Lambda's wording so tools that parse it keep working.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

var (
	nameRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	envKeyRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)
	// Fully or partly qualified function ARNs, as Lambda accepts them:
	// arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER],
	// ACCOUNT:function:NAME[:QUALIFIER], NAME[:QUALIFIER].
	arnRE = regexp.MustCompile(`^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?([a-zA-Z0-9_-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$`)
)

// reservedEnv are variables Lambda sets itself and refuses from users.
var reservedEnv = []string{
	"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION",
	"AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
	"AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME",
	"AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
}

// ValidateName checks a bare function name against Lambda's rules.
func ValidateName(name string) error {
	switch {
	case name == "":
		return &ValidationError{Field: "functionName", Message: "1 validation error detected: Value at 'functionName' failed to satisfy constraint: Member must have length greater than or equal to 1"}
	case len(name) > MaxNameLen:
		return &ValidationError{Field: "functionName", Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to %d", name, MaxNameLen)}
	case !nameRE.MatchString(name):
		return &ValidationError{Field: "functionName", Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+", name)}
	}
	return nil
}

// ParseName resolves a FunctionName as Lambda accepts it (a name, a partial
// or full ARN, optionally with a qualifier) to the bare name and qualifier.
func ParseName(s string) (name, qualifier string, err error) {
	if len(s) > 170 {
		return "", "", &ValidationError{Field: "functionName", Message: fmt.Sprintf("1 validation error detected: Value at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 170")}
	}
	m := arnRE.FindStringSubmatch(s)
	if m == nil {
		if err := ValidateName(s); err != nil {
			return "", "", err
		}
		return "", "", &ValidationError{Field: "functionName", Message: fmt.Sprintf("invalid function name or ARN %q", s)}
	}
	if err := ValidateName(m[1]); err != nil {
		return "", "", err
	}
	return m[1], m[2], nil
}

// Normalize fills defaults and validates f. It does not look at code.
func Normalize(f *Function) error {
	if err := ValidateName(f.Name); err != nil {
		return err
	}
	if f.Runtime == "" {
		return &ValidationError{Field: "runtime", Message: "Runtime is required: Gust supports " + strings.Join(Runtimes, ", ")}
	}
	if !slices.Contains(Runtimes, f.Runtime) {
		return &ValidationError{Field: "runtime", Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [%s]", f.Runtime, strings.Join(Runtimes, ", "))}
	}
	if NeedsHandler(f.Runtime) && f.Handler == "" {
		return &ValidationError{Field: "handler", Message: fmt.Sprintf("Handler is required for runtime %s (for example index.handler or app.handler)", f.Runtime)}
	}
	if len(f.Handler) > 128 {
		return &ValidationError{Field: "handler", Message: "1 validation error detected: Value at 'handler' failed to satisfy constraint: Member must have length less than or equal to 128"}
	}
	if f.MemoryMB == 0 {
		f.MemoryMB = DefaultMemoryMB
	}
	if f.MemoryMB < MinMemoryMB || f.MemoryMB > MaxMemoryMB {
		return &ValidationError{Field: "memorySize", Message: fmt.Sprintf("1 validation error detected: Value '%d' at 'memorySize' failed to satisfy constraint: Member must have value between %d and %d", f.MemoryMB, MinMemoryMB, MaxMemoryMB)}
	}
	if f.TimeoutSec == 0 {
		f.TimeoutSec = DefaultTimeoutSec
	}
	if f.TimeoutSec < 1 || f.TimeoutSec > MaxTimeoutSec {
		return &ValidationError{Field: "timeout", Message: fmt.Sprintf("1 validation error detected: Value '%d' at 'timeout' failed to satisfy constraint: Member must have value between 1 and %d", f.TimeoutSec, MaxTimeoutSec)}
	}
	if len(f.Description) > MaxDescription {
		return &ValidationError{Field: "description", Message: fmt.Sprintf("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to %d", MaxDescription)}
	}
	if f.ReservedConcurrency != nil && (*f.ReservedConcurrency < 0 || *f.ReservedConcurrency > MaxConcurrency) {
		return &ValidationError{Field: "reservedConcurrentExecutions", Message: fmt.Sprintf("1 validation error detected: Value '%d' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value between 0 and %d", *f.ReservedConcurrency, MaxConcurrency)}
	}
	if f.ProvisionedConcurrency < 0 || f.ProvisionedConcurrency > MaxConcurrency {
		return &ValidationError{Field: "provisionedConcurrentExecutions", Message: fmt.Sprintf("1 validation error detected: Value '%d' at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value between 0 and %d", f.ProvisionedConcurrency, MaxConcurrency)}
	}
	if f.ReservedConcurrency != nil && f.ProvisionedConcurrency > *f.ReservedConcurrency {
		return &ValidationError{Field: "provisionedConcurrentExecutions", Message: fmt.Sprintf("Requested Provisioned Concurrency (%d) should not be greater than the reservedConcurrentExecution for function (%d)", f.ProvisionedConcurrency, *f.ReservedConcurrency)}
	}
	if f.IdleTimeoutSec < 0 || f.IdleTimeoutSec > MaxIdleTimeoutSec {
		return &ValidationError{Field: "idleTimeout", Message: fmt.Sprintf("idle timeout %ds must be between 0 (the node's default) and %d seconds", f.IdleTimeoutSec, MaxIdleTimeoutSec)}
	}
	size := 0
	for k, v := range f.Env {
		if !envKeyRE.MatchString(k) {
			return &ValidationError{Field: "environment", Message: fmt.Sprintf("environment variable name %q is invalid: names start with a letter and contain only letters, digits and underscores", k)}
		}
		if slices.Contains(reservedEnv, k) {
			return &ValidationError{Field: "environment", Message: fmt.Sprintf("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", k)}
		}
		size += len(k) + len(v)
	}
	if size > MaxEnvBytes {
		return &ValidationError{Field: "environment", Message: fmt.Sprintf("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %d bytes", size)}
	}
	if err := f.Grants.validate(); err != nil {
		return err
	}
	if f.Grants.Empty() {
		f.Grants = nil
	}
	return validateEvents(f)
}
