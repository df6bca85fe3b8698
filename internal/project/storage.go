package project

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
)

// Bucket kinds.
const (
	BucketKV      = api.BucketKV
	BucketObjects = api.BucketObjects
)

// Bucket is one storage bucket of a project, checked.
type Bucket struct {
	Name string
	// Line is the line of the bucket's name in the project file.
	Line int
	// Kind is BucketKV or BucketObjects.
	Kind string
	// MaxObjectSize bounds an object's size in bytes (objects only; 0:
	// the node's default).
	MaxObjectSize int64
}

// Bucket returns the bucket called name, or nil.
func (p *Project) Bucket(name string) *Bucket {
	for _, b := range p.Buckets {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// bucketFields are the fields of a bucket.
var bucketFields = map[string]bool{"kind": true, "max_object_size": true}

// buckets checks the buckets mapping.
func (p *parser) buckets(fe entry) []*Bucket {
	n := resolve(fe.value)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(fe.value.Line, "buckets", "want a mapping of bucket names to buckets, got %s", describe(n))
		return nil
	}
	var out []*Bucket
	for _, e := range p.entries(n, "buckets") {
		if b := p.bucket(e); b != nil {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b *Bucket) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// bucket checks one bucket. It returns nil if it has errors.
func (p *parser) bucket(e entry) *Bucket {
	before := len(p.errs)
	name := e.key.Value
	path := join("buckets", name)
	b := &Bucket{Name: name, Line: e.key.Line}
	if err := registry.ValidateBucketName(name); err != nil {
		p.errorf(e.key.Line, path, "%v", err)
	}
	v := resolve(e.value)
	if v.Kind != yaml.MappingNode {
		p.errorf(e.value.Line, path, "want a mapping of settings (at least kind: kv or kind: objects), got %s", describe(v))
		return nil
	}
	fields := p.mapping(v, path, bucketFields, "")
	if kind, line, ok := p.str(fields, path, "kind"); ok {
		if kind != BucketKV && kind != BucketObjects {
			p.errorf(line, join(path, "kind"), "unknown kind %q: want kv or objects", kind)
		}
		b.Kind = kind
	} else if _, given := fields["kind"]; !given {
		p.errorf(e.key.Line, join(path, "kind"), "missing: say which kind of bucket, kv or objects")
	}
	if fe, ok := fields["max_object_size"]; ok {
		if b.Kind == BucketKV {
			p.errorf(fe.key.Line, join(path, "max_object_size"), "applies to object buckets only (kind: objects)")
		} else if n, ok := p.size(fe, join(path, "max_object_size")); ok {
			b.MaxObjectSize = n
		}
	}
	if len(p.errs) > before {
		return nil
	}
	return b
}

// sizeRE is a size with an optional unit.
var sizeRE = regexp.MustCompile(`^(\d+)\s*([KMGT]i?B|B)?$`)

// size reads a positive size in bytes, at most api.MaxMaxObjectSize: a
// number, or a string with a unit (B, KB, MB, GB, TB, powers of 1024;
// KiB, MiB, ... alike).
func (p *parser) size(fe entry, field string) (int64, bool) {
	n := resolve(fe.value)
	bad := func() (int64, bool) {
		p.errorf(fe.value.Line, field, "want a size in bytes (16777216) or with a unit (\"16MB\", \"512KB\"), got %s", describe(n))
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!str") {
		return bad()
	}
	m := sizeRE.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(n.Value)))
	if m == nil {
		return bad()
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	shift := map[string]int{"": 0, "B": 0, "KB": 10, "KIB": 10, "MB": 20, "MIB": 20, "GB": 30, "GIB": 30, "TB": 40, "TIB": 40}[m[2]]
	if err != nil || v > math.MaxInt64>>shift {
		p.errorf(fe.value.Line, field, "%s is out of range", n.Value)
		return 0, false
	}
	if v == 0 {
		p.errorf(fe.value.Line, field, "must be more than 0 (leave it out for the node's default)")
		return 0, false
	}
	if v<<shift > api.MaxMaxObjectSize {
		p.errorf(fe.value.Line, field, "%s is more than the largest allowed, %d bytes (5GB)", n.Value, int64(api.MaxMaxObjectSize))
		return 0, false
	}
	return v << shift, true
}

// grantFields are the fields of a function's grants.
var grantFields = map[string]bool{"kv": true, "objects": true, "hosts": true}

// bucketRef is a use of a bucket by name (a grant, a trigger), checked
// against the file's buckets once they are all read.
type bucketRef struct {
	line         int
	field        string
	bucket, kind string
}

// grants reads a function's grants: nil when they grant nothing.
func (p *parser) grants(fe entry, path string) *registry.Grants {
	n := resolve(fe.value)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(fe.value.Line, path, "want a mapping with kv:, objects: and hosts: lists, got %s", describe(n))
		return nil
	}
	fields := p.mapping(n, path, grantFields, "")
	g := &registry.Grants{}
	for _, list := range []struct {
		key   string
		names *[]string
		what  string
	}{{"kv", &g.KV, "KV buckets"}, {"objects", &g.Objects, "object buckets"}, {"hosts", &g.Hosts, "outbound hosts"}} {
		items, ok := p.stringList(fields, path, list.key, list.what)
		if !ok {
			continue
		}
		field := join(path, list.key)
		if len(items) > registry.MaxGrants {
			p.errorf(fields[list.key].key.Line, field, "lists %d %s; at most %d are allowed", len(items), list.what, registry.MaxGrants)
			continue
		}
		for _, it := range items {
			if list.key == "hosts" {
				h, err := registry.ValidateHostPattern(it.value)
				if err != nil {
					p.errorf(it.line, field, "%v", err)
					continue
				}
				*list.names = append(*list.names, h)
				continue
			}
			if err := registry.ValidateBucketName(it.value); err != nil {
				p.errorf(it.line, field, "%v", err)
				continue
			}
			*list.names = append(*list.names, it.value)
			p.bucketRefs = append(p.bucketRefs, bucketRef{it.line, field, it.value, list.key})
		}
		slices.Sort(*list.names)
		*list.names = slices.Compact(*list.names)
	}
	if g.Empty() {
		return nil
	}
	return g
}

// checkBucketKinds refuses grants and triggers that use a bucket of the
// file as the other kind. Buckets the file does not declare may exist on
// the node: the node checks those.
func (p *parser) checkBucketKinds(proj *Project) {
	for _, r := range p.bucketRefs {
		if b := proj.Bucket(r.bucket); b != nil && b.Kind != r.kind {
			p.errorf(r.line, r.field, "bucket %s is declared kind: %s (line %d), not %s", r.bucket, b.Kind, b.Line, r.kind)
		}
	}
}

// listItem is one string of a list, with its line.
type listItem struct {
	value string
	line  int
}

// stringList reads a list of strings (null: empty). ok is false when the
// field is absent or wrong.
func (p *parser) stringList(fields map[string]entry, path, key, what string) ([]listItem, bool) {
	fe, ok := fields[key]
	if !ok {
		return nil, false
	}
	field := join(path, key)
	n := resolve(fe.value)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(fe.value.Line, field, "want a list of %s, got %s", what, describe(n))
		return nil, false
	}
	out := make([]listItem, 0, len(n.Content))
	good := true
	for _, item := range n.Content {
		v := resolve(item)
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
			p.errorf(item.Line, field, "want a list of %s (strings), got %s in it", what, describe(v))
			good = false
			continue
		}
		out = append(out, listItem{v.Value, item.Line})
	}
	return out, good
}

// str reads a string field, returning its value's line.
func (p *parser) str(fields map[string]entry, path, key string) (string, int, bool) {
	fe, ok := fields[key]
	if !ok {
		return "", 0, false
	}
	n := resolve(fe.value)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errorf(fe.value.Line, join(path, key), "want a string, got %s", describe(n))
		return "", 0, false
	}
	return n.Value, fe.value.Line, true
}

// within reads an integer field that must be between lo and hi.
func (p *parser) within(fields map[string]entry, path, key, want string, lo, hi int) (int, bool) {
	n, ok := p.integer(fields, path, key, want)
	if !ok {
		return 0, false
	}
	if n < lo || n > hi {
		p.errorf(fields[key].value.Line, join(path, key), "%d is out of range: want %s from %d to %d", n, want, lo, hi)
		return 0, false
	}
	return n, true
}
