//go:build linux

package process

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gustfaas/gust/internal/sandbox"
)

// reservedEnv are the variables Lambda sets and a function may not.
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true, "TZ": true,
}

// checkEnv refuses reserved or malformed variables and an environment over
// MaxEnvBytes, as Lambda does.
func checkEnv(env map[string]string) error {
	size := 0
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return &sandbox.InvalidCodeError{Reason: fmt.Sprintf("invalid environment variable name %q", k)}
		}
		if strings.ContainsRune(v, 0) {
			return &sandbox.InvalidCodeError{Reason: fmt.Sprintf("environment variable %s contains a NUL byte", k)}
		}
		if reservedEnv[k] {
			return &sandbox.InvalidCodeError{Reason: fmt.Sprintf("environment variable %s is reserved by the runtime", k)}
		}
		size += len(k) + len(v)
	}
	if size > MaxEnvBytes {
		return &sandbox.InvalidCodeError{Reason: fmt.Sprintf("environment variables take %d bytes; at most %d (4 KB) are allowed", size, MaxEnvBytes)}
	}
	return nil
}

// baseEnv is a program's environment but for AWS_LAMBDA_RUNTIME_API and
// AWS_LAMBDA_LOG_STREAM_NAME, which differ per instance.
func (rt *Runtime) baseEnv(spec sandbox.Spec, memoryMB int, interp *interpreter, taskRoot, runtimeDir string) []string {
	version := spec.Version
	if version == "" {
		version = "$LATEST"
	}
	env := map[string]string{
		"PATH":            "/usr/local/bin:/usr/bin:/bin:/opt/bin",
		"LD_LIBRARY_PATH": "/lib64:/usr/lib64:" + runtimeDir + ":" + runtimeDir + "/lib:" + taskRoot + ":" + taskRoot + "/lib:/opt/lib",
		"LANG":            "en_US.UTF-8",
	}
	if interp != nil {
		for k, v := range interp.env(taskRoot, runtimeDir) {
			env[k] = v
		}
	}
	maps.Copy(env, spec.Env) // the function may override PATH, LANG and the like
	maps.Copy(env, map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        spec.Function,
		"AWS_LAMBDA_FUNCTION_VERSION":     version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(memoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + spec.Function,
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"_HANDLER":                        spec.Handler,
		"LAMBDA_TASK_ROOT":                taskRoot,
		"LAMBDA_RUNTIME_DIR":              runtimeDir,
		"AWS_REGION":                      rt.opts.Region,
		"AWS_DEFAULT_REGION":              rt.opts.Region,
		"TZ":                              ":UTC",
	})
	if interp != nil {
		env["AWS_EXECUTION_ENV"] = "AWS_Lambda_" + spec.Runtime
	}
	if rt.opts.Credentials != nil {
		maps.Copy(env, rt.opts.Credentials(spec.Function, version))
	}
	out := make([]string, 0, len(env)+2)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}
