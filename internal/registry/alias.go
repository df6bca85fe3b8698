package registry

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Alias is a named pointer to a version, optionally splitting traffic
// with one other version.
type Alias struct {
	Function    string `json:"function"`
	Name        string `json:"name"`
	Version     string `json:"version"` // "$LATEST" or a number
	Description string `json:"description,omitempty"`
	// Weights gives an additional version its share (0..1) of
	// invocations; Version receives the rest. At most one entry.
	Weights      map[string]float64 `json:"weights,omitempty"`
	RevisionID   string             `json:"revisionId"`
	LastModified time.Time          `json:"lastModified"`
	// ProvisionedConcurrency instances are kept warm for the alias, split
	// between its versions by weight.
	ProvisionedConcurrency int `json:"provisionedConcurrency,omitempty"`
	// ProvisionedModified is when ProvisionedConcurrency last changed.
	ProvisionedModified time.Time `json:"provisionedModified,omitzero"`
	// URL is the function URL configuration of NAME:ALIAS (nil: the
	// function's own).
	URL *URLConfig `json:"url,omitempty"`
}

// Clone returns a deep copy.
func (a *Alias) Clone() *Alias {
	c := *a
	if a.Weights != nil {
		c.Weights = make(map[string]float64, len(a.Weights))
		for k, v := range a.Weights {
			c.Weights[k] = v
		}
	}
	if a.URL != nil {
		c.URL = a.URL.Clone()
	}
	return &c
}

// Pick chooses the version for one invocation; r is uniform in [0, 1).
func (a *Alias) Pick(r float64) string {
	for v, w := range a.Weights {
		if r < w {
			return v
		}
	}
	return a.Version
}

// Share is the fraction of the alias's invocations that version receives.
func (a *Alias) Share(version string) float64 {
	var extra float64
	for v, w := range a.Weights {
		if v == version {
			return w
		}
		extra += w
	}
	if version == a.Version {
		return 1 - extra
	}
	return 0
}

// References reports whether the alias routes any traffic to version.
func (a *Alias) References(version string) bool {
	_, ok := a.Weights[version]
	return ok || a.Version == version
}

// Versions are the versions the alias routes to, its main one first.
func (a *Alias) Versions() []string {
	out := []string{a.Version}
	for v := range a.Weights {
		out = append(out, v)
	}
	return out
}

// URLConfig is a function URL's configuration.
type URLConfig struct {
	AuthType   string    `json:"authType"` // NONE or AWS_IAM
	Cors       *Cors     `json:"cors,omitempty"`
	InvokeMode string    `json:"invokeMode,omitempty"`
	Created    time.Time `json:"created"`
	Modified   time.Time `json:"modified"`
}

// Cors is a function URL's CORS settings, as Lambda defines them.
type Cors struct {
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
	AllowHeaders     []string `json:"allowHeaders,omitempty"`
	AllowMethods     []string `json:"allowMethods,omitempty"`
	AllowOrigins     []string `json:"allowOrigins,omitempty"`
	ExposeHeaders    []string `json:"exposeHeaders,omitempty"`
	MaxAge           int      `json:"maxAge,omitempty"`
}

// Clone returns a deep copy.
func (u *URLConfig) Clone() *URLConfig {
	c := *u
	if u.Cors != nil {
		cc := *u.Cors
		cc.AllowHeaders = slices.Clone(u.Cors.AllowHeaders)
		cc.AllowMethods = slices.Clone(u.Cors.AllowMethods)
		cc.AllowOrigins = slices.Clone(u.Cors.AllowOrigins)
		cc.ExposeHeaders = slices.Clone(u.Cors.ExposeHeaders)
		c.Cors = &cc
	}
	return &c
}

// Function URL auth types.
const (
	AuthNone   = "NONE"
	AuthAWSIAM = "AWS_IAM"
)

// Limits on CORS settings, as on Lambda.
const (
	maxCorsItems  = 100
	maxCorsMaxAge = 86400
)

// ValidateURLConfig checks a function URL configuration.
func ValidateURLConfig(u *URLConfig) error {
	switch u.AuthType {
	case AuthNone, AuthAWSIAM:
	case "":
		return &ValidationError{Field: "authType", Message: "AuthType is required: NONE (public) or AWS_IAM (SigV4-signed by a key allowed to invoke)"}
	default:
		return &ValidationError{Field: "authType", Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: [NONE, AWS_IAM]", u.AuthType)}
	}
	switch u.InvokeMode {
	case "", "BUFFERED":
	case "RESPONSE_STREAM":
		return &ValidationError{Field: "invokeMode", Message: "InvokeMode RESPONSE_STREAM is not supported by Gust: use BUFFERED"}
	default:
		return &ValidationError{Field: "invokeMode", Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'invokeMode' failed to satisfy constraint: Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]", u.InvokeMode)}
	}
	c := u.Cors
	if c == nil {
		return nil
	}
	for field, list := range map[string][]string{"allowHeaders": c.AllowHeaders, "allowMethods": c.AllowMethods, "allowOrigins": c.AllowOrigins, "exposeHeaders": c.ExposeHeaders} {
		if len(list) > maxCorsItems {
			return &ValidationError{Field: "cors." + field, Message: fmt.Sprintf("Cors.%s has %d entries; at most %d are allowed", strings.ToUpper(field[:1])+field[1:], len(list), maxCorsItems)}
		}
		for _, v := range list {
			if v == "" || len(v) > 1024 || strings.ContainsAny(v, "\r\n") {
				return &ValidationError{Field: "cors." + field, Message: fmt.Sprintf("Cors.%s entry %q is invalid: entries are 1 to 1024 characters on one line", strings.ToUpper(field[:1])+field[1:], v)}
			}
		}
	}
	for _, m := range c.AllowMethods {
		switch strings.ToUpper(m) {
		case "*", "GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS":
		default:
			return &ValidationError{Field: "cors.allowMethods", Message: fmt.Sprintf("Cors.AllowMethods entry %q is not an HTTP method (GET, PUT, HEAD, POST, PATCH, DELETE, OPTIONS or *)", m)}
		}
	}
	if c.MaxAge < 0 || c.MaxAge > maxCorsMaxAge {
		return &ValidationError{Field: "cors.maxAge", Message: fmt.Sprintf("1 validation error detected: Value '%d' at 'cors.maxAge' failed to satisfy constraint: Member must have value between 0 and %d", c.MaxAge, maxCorsMaxAge)}
	}
	return nil
}

var (
	aliasRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	versionRE = regexp.MustCompile(`^[0-9]+$`)
)

// MaxAliasLen bounds an alias name, as on Lambda.
const MaxAliasLen = 128

// ValidateAliasName checks an alias name: letters, digits, - and _, not
// all digits (that would be a version), at most 128 characters.
func ValidateAliasName(name string) error {
	switch {
	case name == "":
		return &ValidationError{Field: "name", Message: "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1"}
	case len(name) > MaxAliasLen:
		return &ValidationError{Field: "name", Message: fmt.Sprintf("1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length less than or equal to %d", MaxAliasLen)}
	case versionRE.MatchString(name) || !aliasRE.MatchString(name):
		return &ValidationError{Field: "name", Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+) (letters, digits, - and _, not only digits)", name)}
	}
	return nil
}

// IsVersionNumber reports whether q names a published version.
func IsVersionNumber(q string) bool { return versionRE.MatchString(q) && len(q) < 10 }

// ValidateQualifier checks a qualifier's syntax: $LATEST, a version
// number or an alias name.
func ValidateQualifier(q string) error {
	if q == Latest || IsVersionNumber(q) {
		return nil
	}
	if err := ValidateAliasName(q); err != nil {
		return &ValidationError{Field: "qualifier", Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)", q)}
	}
	return nil
}

// validateRouting checks an alias's main version and weights against the
// versions that exist (has reports whether a version exists).
func validateRouting(a *Alias, has func(string) bool) error {
	if a.Version == "" {
		return &ValidationError{Field: "functionVersion", Message: "FunctionVersion is required: $LATEST or a published version number"}
	}
	if a.Version != Latest && !IsVersionNumber(a.Version) {
		return &ValidationError{Field: "functionVersion", Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'functionVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)", a.Version)}
	}
	if !has(a.Version) {
		return &NotFoundError{What: fmt.Sprintf("version %s of %s", a.Version, a.Function)}
	}
	if len(a.Description) > MaxDescription {
		return &ValidationError{Field: "description", Message: fmt.Sprintf("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to %d", MaxDescription)}
	}
	if len(a.Weights) == 0 {
		a.Weights = nil
		return nil
	}
	if len(a.Weights) > 1 {
		vs := make([]string, 0, len(a.Weights))
		for v := range a.Weights {
			vs = append(vs, v)
		}
		slices.Sort(vs)
		return &ValidationError{Field: "routingConfig", Message: fmt.Sprintf("RoutingConfig names %d additional versions (%s): an alias routes to at most two versions, FunctionVersion and one more", len(vs), strings.Join(vs, ", "))}
	}
	if a.Version == Latest {
		return &ValidationError{Field: "routingConfig", Message: "RoutingConfig is not supported for an alias pointing to $LATEST: point the alias to a published version to split its traffic"}
	}
	for v, w := range a.Weights {
		if !IsVersionNumber(v) {
			return &ValidationError{Field: "routingConfig", Message: fmt.Sprintf("RoutingConfig version %q is not a published version number ($LATEST cannot receive weighted traffic)", v)}
		}
		if v == a.Version {
			return &ValidationError{Field: "routingConfig", Message: fmt.Sprintf("RoutingConfig names version %s, which is already the alias's FunctionVersion: weight another version", v)}
		}
		if math.IsNaN(w) || w < 0 || w > 1 {
			return &ValidationError{Field: "routingConfig", Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]", strconv.FormatFloat(w, 'g', -1, 64))}
		}
		if !has(v) {
			return &NotFoundError{What: fmt.Sprintf("version %s of %s", v, a.Function)}
		}
	}
	return nil
}

// NotFoundError names a missing version, alias or configuration.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What + " not found" }

// Is makes a NotFoundError match ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }
