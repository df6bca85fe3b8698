package registry

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Grants is what a function may reach beyond its own code: storage
// buckets and outbound HTTP hosts. The zero value grants nothing, as on a
// Lambda function whose role has no policies.
type Grants struct {
	// KV and Objects name the key-value and object buckets the function
	// may read and write.
	KV      []string `json:"kv,omitempty"`
	Objects []string `json:"objects,omitempty"`
	// Hosts are the outbound HTTP hosts a wasm function may call:
	// "api.example.com" (any port), "api.example.com:8443" (that port
	// only), "*.example.com" (any subdomain) or an IP address.
	Hosts []string `json:"hosts,omitempty"`
}

// Bounds on grants.
const (
	MaxGrants        = 50
	MaxBucketNameLen = 64
)

var bucketNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ValidateBucketName checks a storage bucket's name.
func ValidateBucketName(name string) error {
	if name == "" || len(name) > MaxBucketNameLen || !bucketNameRE.MatchString(name) {
		return fmt.Errorf("bucket name %q is invalid: use 1 to %d letters, digits, '-' or '_'", name, MaxBucketNameLen)
	}
	return nil
}

// hostLabelRE is one DNS label.
var hostLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateHostPattern checks one entry of Grants.Hosts and returns its
// canonical (lower-case) form.
func ValidateHostPattern(p string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("outbound host %q is invalid: %s (want a host such as api.example.com, host:port, *.example.com or an IP address)", p, why)
	}
	if p == "" {
		return bad("it is empty")
	}
	if strings.Contains(p, "://") || strings.ContainsAny(p, "/?#@ ") {
		return bad("give the host alone, without scheme, path or credentials")
	}
	host, port := strings.ToLower(p), ""
	if h, pt, err := net.SplitHostPort(host); err == nil {
		host, port = h, pt
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return bad("the port must be a number from 1 to 65535")
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if net.ParseIP(host) == nil {
		name := strings.TrimPrefix(host, "*.")
		if name == "" || len(name) > 253 {
			return bad("the host name is empty or too long")
		}
		if strings.Contains(name, "*") {
			return bad("a wildcard may only be the first label (*.example.com)")
		}
		for _, l := range strings.Split(name, ".") {
			if !hostLabelRE.MatchString(l) {
				return bad(fmt.Sprintf("%q is not a valid DNS label", l))
			}
		}
	}
	if port != "" {
		return net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") { // an IPv6 address without port
		return "[" + host + "]", nil
	}
	return host, nil
}

// validate checks and canonicalises g in place (sorted, without
// repeats).
func (g *Grants) validate() error {
	if g == nil {
		return nil
	}
	for _, list := range []struct {
		field string
		names *[]string
	}{{"grants.kv", &g.KV}, {"grants.objects", &g.Objects}} {
		if len(*list.names) > MaxGrants {
			return &ValidationError{Field: list.field, Message: fmt.Sprintf("%s lists %d buckets; at most %d are allowed", list.field, len(*list.names), MaxGrants)}
		}
		for _, n := range *list.names {
			if err := ValidateBucketName(n); err != nil {
				return &ValidationError{Field: list.field, Message: fmt.Sprintf("%s: %v", list.field, err)}
			}
		}
		slices.Sort(*list.names)
		*list.names = slices.Compact(*list.names)
	}
	if len(g.Hosts) > MaxGrants {
		return &ValidationError{Field: "grants.hosts", Message: fmt.Sprintf("grants.hosts lists %d hosts; at most %d are allowed", len(g.Hosts), MaxGrants)}
	}
	for i, h := range g.Hosts {
		c, err := ValidateHostPattern(h)
		if err != nil {
			return &ValidationError{Field: "grants.hosts", Message: "grants.hosts: " + err.Error()}
		}
		g.Hosts[i] = c
	}
	slices.Sort(g.Hosts)
	g.Hosts = slices.Compact(g.Hosts)
	return nil
}

// Empty reports whether g grants nothing.
func (g *Grants) Empty() bool {
	return g == nil || len(g.KV) == 0 && len(g.Objects) == 0 && len(g.Hosts) == 0
}

// Clone returns a deep copy (nil stays nil).
func (g *Grants) Clone() *Grants {
	if g == nil {
		return nil
	}
	return &Grants{KV: slices.Clone(g.KV), Objects: slices.Clone(g.Objects), Hosts: slices.Clone(g.Hosts)}
}

// Equal reports whether a and b grant the same (nil and empty are equal).
func (a *Grants) Equal(b *Grants) bool {
	if a.Empty() || b.Empty() {
		return a.Empty() && b.Empty()
	}
	return slices.Equal(a.KV, b.KV) && slices.Equal(a.Objects, b.Objects) && slices.Equal(a.Hosts, b.Hosts)
}

// GrantsKV reports whether f may use KV bucket b.
func (f *Function) GrantsKV(b string) bool { return f.Grants != nil && slices.Contains(f.Grants.KV, b) }

// GrantsObjects reports whether f may use object bucket b.
func (f *Function) GrantsObjects(b string) bool {
	return f.Grants != nil && slices.Contains(f.Grants.Objects, b)
}
