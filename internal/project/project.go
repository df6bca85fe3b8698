// Package project reads and checks a Gust project file, gust.yaml: the
// functions a project deploys with one `gust deploy`, each with its code,
// configuration and grants, and the buckets, schedules and triggers that
// go with them. It owns the file's schema, its validation (every
// error names the file, the line and the field) and the digests that tell
// a changed function from an unchanged one. It does not talk to a node.
//
// The schema (unknown fields are refused):
//
//	functions:                   # required: function name -> function
//	  greet:                     # a function name (letters, digits, - and _)
//	    code: ./greet            # required: a file or directory, relative to gust.yaml
//	    runtime: wasm            # wasm (default), provided.al2023, provided.al2, provided,
//	                             # nodejs20.x, nodejs22.x, python3.11, python3.12, python3.13
//	    handler: app.handler     # nodejs and python only; default index.handler or app.handler
//	    memory: 128              # MB, 128 to 10240; default 128
//	    timeout: 3               # seconds (3) or a duration ("3s"), 1 to 900; default 3
//	    env:                     # environment variables; the whole environment
//	      GREETING: Hello
//	    description: greets people
//	    reserved_concurrency: 10 # reserve and cap concurrent invocations; absent: none
//	    provisioned: 1           # instances kept warm for the alias; default 0
//	    idle_timeout: 30s        # seconds or a duration; absent: the node's default
//	    alias: live              # the alias deploys move; default live
//	    canary: 10               # deploy through a canary taking this % of traffic (1 to 99)
//
// A directory is built when the runtime needs a program (wasm: a Go package
// written with the Gust SDK, built for wasip1; provided.*: a Go main
// package built for Linux) and zipped as it is for nodejs and python. YAML
// anchors, aliases and merge keys (<<) may be used to share settings;
// top-level keys starting with "x-" are ignored, a place to define them:
//
//	x-common: &common {memory: 256, env: {STAGE: prod}}
//	functions:
//	  greet: {<<: *common, code: ./greet}
//
// Schedules invoke functions asynchronously on a cron expression or at a
// rate (see package internal/trigger/cron):
//
//	schedules:                   # optional: schedule name -> schedule
//	  nightly:                   # letters, digits, - and _ (at most 64)
//	    function: report         # required: a function of this file or of the node
//	    cron: "0 3 * * *"        # five fields, a macro (@daily) or "@every 10m"; or
//	    rate: 5 minutes          # VALUE UNIT (seconds, minutes, hours, days)
//	    timezone: Europe/Paris   # IANA name the cron fields are read in; default UTC
//	    qualifier: live          # default: the function's alias when it is in this file
//	    payload: {job: backup}   # any YAML value, sent as JSON instead of the scheduled event
//	    catch_up: true           # fire the ticks missed while every node was down
//
// A function's grants are what it may reach beyond its code: storage
// buckets and outbound HTTP hosts. Absent, it reaches nothing; present,
// the list is the whole grant set (a deploy removes what it leaves out):
//
//	functions:
//	  api:
//	    code: ./api
//	    grants:
//	      kv: [items]              # KV buckets it may read and write
//	      objects: [photos]        # object buckets
//	      hosts: [api.github.com, "*.example.com", "127.0.0.1:9000"]
//	                               # host (any port), host:port, *.domain or an IP address
//
// Buckets are created by `gust deploy` when they are missing (never
// deleted or changed by it; a bucket of the other kind is an error):
//
//	buckets:                     # optional: bucket name -> bucket
//	  items: {kind: kv}          # letters, digits, - and _ (at most 64); kind: kv | objects
//	  photos:
//	    kind: objects
//	    max_object_size: 16MB    # objects only: bytes (16777216) or B, KB, MB, GB (powers
//	                             # of 1024; KiB, MiB, ... too), at most 5GB; absent: the node's default
//
// Triggers invoke a function on events from one source each: changes in
// a KV or object bucket (one asynchronous invocation per change), or
// messages on a NATS subject or stream and row changes of PostgreSQL
// tables (synchronous invocations with batches of events):
//
//	triggers:                    # optional: trigger name -> trigger
//	  on-upload:                 # letters, digits, - and _ (at most 64)
//	    function: thumbnail      # required: a function of this file or of the node
//	    qualifier: live          # default: the function's alias when it is in this file
//	    objects: {bucket: photos, prefix: "in/", events: [created]}
//	                             # events: created, deleted (default both)
//	  on-item:
//	    function: api
//	    kv: {bucket: items, prefix: "user.", events: [put, delete]}
//	                             # events: put, delete (default both)
//	  orders:
//	    function: audit
//	    postgres:
//	      dsn: ${ORDERS_DSN}     # postgres://... or key=value settings; required
//	      tables: [public.orders]  # "schema.table" or "table" (public); required
//	      events: [insert]       # insert, update, delete (default all)
//	      batch_size: 50         # most changes per invocation, 1 to 1000 (node default 100)
//	      batch_window: 100ms    # how long a batch may wait to fill: a duration or
//	                             # seconds, up to 300s; default 0
//	      max_attempts: 3        # tries of a failing change before it is dead-lettered (1 to 10)
//	  jobs:
//	    function: worker
//	    queue:
//	      stream: JOBS           # a JetStream stream (at least once), or
//	      subject: jobs.>        # a NATS subject (at most once); one of the two
//	      filter_subject: jobs.a # stream only: the stream's messages on this subject
//	      url: nats://host:4222  # an external NATS server; default the node's own
//	      batch_size: 10         # 1 to 1000 (node default 10)
//	      batch_window: 1s
//	      concurrency: 2         # batches at once, 1 to 100 (node default 1, in order)
//	      max_deliver: 3         # stream only: tries before a message is dead-lettered (1 to 100)
//
// In a DSN and a queue URL, ${NAME} is replaced by the environment
// variable NAME of the `gust deploy` that reads the file (an unset or
// empty one is an error naming it), so secrets need not be committed;
// $$ is a literal $. The node never answers a DSN back: a deploy
// compares DSNs without their passwords (`gust deploy --replace-triggers`
// puts every trigger again, for a password that alone changed).
//
// The file is the desired state of the functions, schedules and triggers
// it names: a setting that is absent is the default, not "leave it as it
// is". Functions, schedules, triggers and buckets the file does not name
// are left alone, and a schedule paused on the node stays paused.
package project

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gustfaas/gust/internal/registry"
)

// DefaultFile is the project file `gust deploy` reads when none is named.
const DefaultFile = "gust.yaml"

// DefaultAlias is the alias a function's deploys move when the file names
// none.
const DefaultAlias = "live"

// DefaultRuntime is the runtime of a function whose runtime is not given.
const DefaultRuntime = "wasm"

// MaxFileBytes bounds a project file.
const MaxFileBytes = 1 << 20

// maxErrors bounds how many errors one parse reports.
const maxErrors = 50

// Project is a parsed, valid project file.
type Project struct {
	// File is the project file's path as it was given.
	File string
	// Dir is the directory code paths are relative to (the file's).
	Dir string
	// Functions are the project's functions, sorted by name.
	Functions []*Function
	// Schedules are the project's schedules, sorted by name.
	Schedules []*Schedule
	// Buckets are the project's storage buckets, sorted by name.
	Buckets []*Bucket
	// Triggers are the project's triggers, sorted by name.
	Triggers []*Trigger
}

// Function returns the function called name, or nil.
func (p *Project) Function(name string) *Function {
	for _, f := range p.Functions {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Function is one function of a project, with defaults filled in.
type Function struct {
	Name string
	// Line is the line of the function's name in the project file.
	Line    int
	Runtime string
	// Code is the code's path: a file or a directory. It is joined to the
	// project's directory unless it was absolute.
	Code string
	// CodeIsDir reports whether Code was a directory when the file was
	// read.
	CodeIsDir   bool
	Handler     string
	MemoryMB    int
	TimeoutSec  int
	Env         map[string]string
	Description string
	// ReservedConcurrency is nil when the function reserves nothing.
	ReservedConcurrency *int
	// Provisioned instances are kept warm for the alias.
	Provisioned    int
	IdleTimeoutSec int
	Alias          string
	// Canary is the percentage (1 to 99) of the alias's traffic a new
	// version receives until it is promoted; 0 moves the alias at once.
	Canary int
	// Grants is what the function may reach: buckets and outbound hosts,
	// sorted, without repeats, hosts in canonical form (nil: nothing).
	Grants *registry.Grants
}

// Builds reports whether the function's code is a directory that is
// compiled (a Go package) rather than packaged as it is.
func (f *Function) Builds() bool {
	return f.CodeIsDir && (registry.IsWasm(f.Runtime) || isProvided(f.Runtime))
}

func isProvided(rt string) bool { return rt == "provided" || strings.HasPrefix(rt, "provided.") }

// DefaultHandler is the handler of a function whose handler is not given:
// Lambda's conventional module names for Node.js and Python, none for
// other runtimes.
func DefaultHandler(runtime string) string {
	switch {
	case strings.HasPrefix(runtime, "nodejs"):
		return "index.handler"
	case strings.HasPrefix(runtime, "python"):
		return "app.handler"
	}
	return ""
}

// Error is one problem in a project file.
type Error struct {
	File string
	Line int // 0 when the problem has no line (the file cannot be read)
	// Field is the dotted path of the field at fault, such as
	// "functions.greet.memory"; empty for syntax errors.
	Field   string
	Problem string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Problem)
	return b.String()
}

// Errors is every problem found in a project file, in line order. Each
// line of its message is one "file:line: field: problem".
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the errors, for errors.As on *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Options change how a project file is read.
type Options struct {
	// Getenv returns an environment variable's value ("" when it is
	// unset), for the ${NAME} references of DSNs and queue URLs; nil
	// means the process's environment (os.Getenv).
	Getenv func(string) string
	// KeepVariables leaves ${NAME} references as they are written, for
	// reading a file's functions without the secrets its triggers need;
	// a Project read so must not be deployed.
	KeepVariables bool
}

// Load reads and checks the project file at path, with ${NAME} read from
// the process's environment. A file that is not valid gives Errors.
func Load(path string) (*Project, error) { return LoadWith(path, Options{}) }

// LoadWith is Load with options.
func LoadWith(path string, o Options) (*Project, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Errors{{File: path, Problem: cleanPathError(err)}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, Errors{{File: path, Problem: cleanPathError(err)}}
	}
	if len(data) > MaxFileBytes {
		return nil, Errors{{File: path, Problem: fmt.Sprintf("the file is larger than %d bytes", MaxFileBytes)}}
	}
	return ParseWith(path, data, o)
}

// cleanPathError renders an *fs.PathError without repeating the path.
func cleanPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse checks data, the contents of the project file at path (used in
// messages, and its directory as the base of code paths), with ${NAME}
// read from the process's environment. Code paths must exist. A file that
// is not valid gives Errors.
func Parse(path string, data []byte) (*Project, error) { return ParseWith(path, data, Options{}) }

// ParseWith is Parse with options.
func ParseWith(path string, data []byte, o Options) (*Project, error) {
	p := &parser{file: path, dir: filepath.Dir(path), getenv: o.Getenv, keepVars: o.KeepVariables}
	if p.getenv == nil {
		p.getenv = os.Getenv
	}
	proj := p.parse(data)
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
		if len(p.errs) > maxErrors {
			p.errs = append(p.errs[:maxErrors], &Error{File: path, Problem: "too many errors"})
		}
		return nil, p.errs
	}
	return proj, nil
}

// parser collects the errors of one file.
type parser struct {
	file string
	dir  string
	errs Errors
	// getenv reads the variables ${NAME} names, unless keepVars.
	getenv   func(string) string
	keepVars bool
	// bucketRefs are the buckets grants and triggers name.
	bucketRefs []bucketRef
	// merging holds the mappings whose merge keys are being expanded, to
	// refuse cycles; work counts mapping entries read, to bound what
	// aliases can multiply.
	merging map[*yaml.Node]bool
	work    int
}

// maxWork bounds the mapping entries one parse reads, merges included.
const maxWork = 100_000

func (p *parser) errorf(line int, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Problem: fmt.Sprintf(format, args...)})
}

// yamlLineRE finds the line in the YAML library's syntax errors.
var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// splitYAMLError returns the line a YAML syntax error names (0 if none)
// and its message.
func splitYAMLError(err error) (int, string) {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, err.Error()
	}
	line, _ := strconv.Atoi(m[1])
	return line, m[2]
}

// syntaxError returns the line and message of a syntax error in data.
// The YAML library names the line where the construct that failed began,
// or none; the line that breaks it is the shortest prefix of the file
// that fails the same way (found by bisection: any longer prefix holds
// the same mistake).
func syntaxError(data []byte, err error) (int, string) {
	line, msg := splitYAMLError(err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(k int) bool {
		var n yaml.Node
		err := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n)
		if err == nil {
			return false
		}
		_, m := splitYAMLError(err)
		return m == msg
	}
	if k := sort.Search(len(lines), func(k int) bool { return fails(k + 1) }); k < len(lines) {
		return k + 1, msg
	}
	return max(line, 1), msg
}

func (p *parser) parse(data []byte) *Project {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := syntaxError(data, err)
		p.errorf(line, "", "not valid YAML: %s", msg)
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		p.errorf(1, "functions", "missing: the file is empty (declare at least one function under functions:)")
		return nil
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "", "want a mapping with a functions: key, got %s", describe(root))
		return nil
	}
	proj := &Project{File: p.file, Dir: p.dir}
	fields := p.mapping(root, "", map[string]bool{"functions": true, "schedules": true, "buckets": true, "triggers": true}, "x-")
	fnsNode, ok := fields["functions"]
	if !ok {
		if !p.hasErrors() {
			p.errorf(root.Line, "functions", "missing: declare at least one function")
		}
		return nil
	}
	fns := resolve(fnsNode.value)
	if fns.Kind != yaml.MappingNode {
		p.errorf(fnsNode.value.Line, "functions", "want a mapping of function names to functions, got %s", describe(fns))
		return nil
	}
	entries := p.entries(fns, "functions")
	if len(entries) == 0 && !p.hasErrors() {
		p.errorf(fns.Line, "functions", "empty: declare at least one function")
	}
	for _, e := range entries {
		if f := p.function(e); f != nil {
			proj.Functions = append(proj.Functions, f)
		}
	}
	slices.SortFunc(proj.Functions, func(a, b *Function) int { return strings.Compare(a.Name, b.Name) })
	if e, ok := fields["schedules"]; ok {
		proj.Schedules = p.schedules(e, proj)
	}
	if e, ok := fields["buckets"]; ok {
		proj.Buckets = p.buckets(e)
	}
	if e, ok := fields["triggers"]; ok {
		proj.Triggers = p.triggers(e, proj)
	}
	p.checkBucketKinds(proj)
	return proj
}

func (p *parser) hasErrors() bool { return len(p.errs) > 0 }

// entry is one key and value of a mapping.
type entry struct {
	key   *yaml.Node
	value *yaml.Node
}

// resolve follows YAML aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// entries returns a mapping's entries in order with merge keys (<<)
// expanded: keys written in the mapping itself win over merged ones.
// Duplicate keys and keys that are not strings are errors.
func (p *parser) entries(m *yaml.Node, path string) []entry {
	p.work += len(m.Content) / 2
	if p.work > maxWork {
		if p.work-len(m.Content)/2 <= maxWork {
			p.errorf(m.Line, path, "too many keys (more than %d, counting those aliases and merges repeat)", maxWork)
		}
		return nil
	}
	if p.merging[m] {
		p.errorf(m.Line, path, "a merge (<<) includes the mapping it is in")
		return nil
	}
	if p.merging == nil {
		p.merging = map[*yaml.Node]bool{}
	}
	p.merging[m] = true
	defer delete(p.merging, m)
	var out []entry
	seen := map[string]int{} // key -> line
	var merged []entry
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, p.mergeSources(v, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode || (k.ShortTag() != "!!str" && k.ShortTag() != "!!int") {
			p.errorf(k.Line, path, "keys must be names, got %s", describe(resolve(k)))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			p.errorf(k.Line, join(path, k.Value), "given twice (first on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, entry{k, v})
	}
	for _, e := range merged {
		if _, ok := seen[e.key.Value]; ok {
			continue
		}
		seen[e.key.Value] = e.key.Line
		out = append(out, e)
	}
	return out
}

// mergeSources returns the entries a merge key's value brings: a mapping
// or a sequence of mappings.
func (p *parser) mergeSources(v *yaml.Node, path string) []entry {
	v = resolve(v)
	switch v.Kind {
	case yaml.MappingNode:
		return p.entries(v, path)
	case yaml.SequenceNode:
		var out []entry
		for _, item := range v.Content {
			item = resolve(item)
			if item.Kind != yaml.MappingNode {
				p.errorf(item.Line, path, "a merge (<<) takes mappings, got %s", describe(item))
				continue
			}
			out = append(out, p.entries(item, path)...)
		}
		return out
	}
	p.errorf(v.Line, path, "a merge (<<) takes a mapping or a list of mappings, got %s", describe(v))
	return nil
}

// mapping returns a mapping's entries by key, refusing keys not in known
// (keys starting with ignorePrefix, when it is not empty, are skipped).
func (p *parser) mapping(m *yaml.Node, path string, known map[string]bool, ignorePrefix string) map[string]entry {
	out := map[string]entry{}
	for _, e := range p.entries(m, path) {
		if ignorePrefix != "" && strings.HasPrefix(e.key.Value, ignorePrefix) {
			continue
		}
		if !known[e.key.Value] {
			p.errorf(e.key.Line, join(path, e.key.Value), "unknown field (known fields: %s)", strings.Join(sortedKeys(known), ", "))
			continue
		}
		out[e.key.Value] = e
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names a node's kind for messages: "a list", "a mapping",
// "the number 12", "the string "x"".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing (null)"
		case "!!str":
			return strconv.Quote(n.Value)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return n.Value
	}
	return "an unexpected node"
}

// functionFields are the fields of a function.
var functionFields = map[string]bool{
	"runtime": true, "code": true, "handler": true, "memory": true, "timeout": true, "env": true,
	"description": true, "reserved_concurrency": true, "provisioned": true, "idle_timeout": true,
	"alias": true, "canary": true, "grants": true,
}

// function checks one function. It returns nil if it has errors.
func (p *parser) function(e entry) *Function {
	before := len(p.errs)
	name := e.key.Value
	path := join("functions", name)
	f := &Function{Name: name, Line: e.key.Line, Alias: DefaultAlias}
	if err := registry.ValidateName(name); err != nil {
		p.errorf(e.key.Line, path, "invalid function name: %s", lambdaMessage(err))
	}
	v := resolve(e.value)
	if v.Kind != yaml.MappingNode {
		p.errorf(e.value.Line, path, "want a mapping of settings (at least code:), got %s", describe(v))
		return nil
	}
	fields := p.mapping(v, path, functionFields, "")
	lines := map[string]int{} // field -> line of its key
	for k, fe := range fields {
		lines[k] = fe.key.Line
	}
	str := func(key string) (string, bool) {
		fe, ok := fields[key]
		if !ok {
			return "", false
		}
		n := resolve(fe.value)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			p.errorf(fe.value.Line, join(path, key), "want a string, got %s", describe(n))
			return "", false
		}
		return n.Value, true
	}

	f.Runtime = DefaultRuntime
	if s, ok := str("runtime"); ok {
		f.Runtime = s
	}
	if s, ok := str("handler"); ok {
		f.Handler = s
	} else if _, given := fields["handler"]; !given {
		f.Handler = DefaultHandler(f.Runtime)
	}
	if s, ok := str("description"); ok {
		f.Description = s
	}
	if s, ok := str("alias"); ok {
		if err := registry.ValidateAliasName(s); err != nil {
			p.errorf(lines["alias"], join(path, "alias"), "invalid alias name: %s", lambdaMessage(err))
		} else {
			f.Alias = s
		}
	}
	p.code(f, fields, path, str)

	if n, ok := p.integer(fields, path, "memory", "a whole number of MB"); ok {
		if n == 0 {
			p.errorf(lines["memory"], join(path, "memory"), "must be between %d and %d MB, got 0 (leave memory out for the default, %d)",
				registry.MinMemoryMB, registry.MaxMemoryMB, registry.DefaultMemoryMB)
		}
		f.MemoryMB = n
	}
	if n, ok := p.seconds(fields, path, "timeout"); ok {
		if n == 0 {
			p.errorf(lines["timeout"], join(path, "timeout"), "must be between 1 and %d seconds, got 0 (leave timeout out for the default, %d)",
				registry.MaxTimeoutSec, registry.DefaultTimeoutSec)
		}
		f.TimeoutSec = n
	}
	if n, ok := p.seconds(fields, path, "idle_timeout"); ok {
		f.IdleTimeoutSec = n
	}
	if n, ok := p.integer(fields, path, "reserved_concurrency", "a whole number of concurrent invocations"); ok {
		f.ReservedConcurrency = &n
	}
	if n, ok := p.integer(fields, path, "provisioned", "a whole number of instances"); ok {
		f.Provisioned = n
	}
	if n, ok := p.integer(fields, path, "canary", "a percentage of traffic, 1 to 99"); ok {
		if n < 1 || n > 99 {
			p.errorf(lines["canary"], join(path, "canary"), "%d is out of range: want a percentage of traffic from 1 to 99 (leave canary out to move the alias at once)", n)
		} else {
			f.Canary = n
		}
	}
	if fe, ok := fields["env"]; ok {
		f.Env = p.env(fe, join(path, "env"))
	}
	if fe, ok := fields["grants"]; ok {
		f.Grants = p.grants(fe, join(path, "grants"))
	}
	if len(p.errs) == before {
		p.normalize(f, path, lines, e.key.Line)
	}
	if len(p.errs) > before {
		return nil
	}
	return f
}

// code checks the code field: given, a string, and a path that exists.
func (p *parser) code(f *Function, fields map[string]entry, path string, str func(string) (string, bool)) {
	fe, given := fields["code"]
	if !given {
		p.errorf(f.Line, join(path, "code"), "missing: name the function's code, a file or a directory relative to %s", filepath.Base(p.file))
		return
	}
	s, ok := str("code")
	if !ok {
		return
	}
	if strings.TrimSpace(s) == "" {
		p.errorf(fe.value.Line, join(path, "code"), "empty: name a file or a directory")
		return
	}
	full := s
	if !filepath.IsAbs(full) {
		full = filepath.Join(p.dir, filepath.FromSlash(s))
	}
	fi, err := os.Stat(full)
	if err != nil {
		p.errorf(fe.value.Line, join(path, "code"), "%s: %s", s, cleanPathError(err))
		return
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		p.errorf(fe.value.Line, join(path, "code"), "%s is neither a file nor a directory", s)
		return
	}
	f.Code, f.CodeIsDir = full, fi.IsDir()
}

// integer reads an integer field.
func (p *parser) integer(fields map[string]entry, path, key, want string) (int, bool) {
	fe, ok := fields[key]
	if !ok {
		return 0, false
	}
	n := resolve(fe.value)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		p.errorf(fe.value.Line, join(path, key), "want %s, got %s", want, describe(n))
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil || v < -1<<31 || v > 1<<31-1 {
		p.errorf(fe.value.Line, join(path, key), "%s is out of range", n.Value)
		return 0, false
	}
	return int(v), true
}

// seconds reads a whole number of seconds: a number (10) or a duration
// string ("10s", "1m").
func (p *parser) seconds(fields map[string]entry, path, key string) (int, bool) {
	fe, ok := fields[key]
	if !ok {
		return 0, false
	}
	n := resolve(fe.value)
	field := join(path, key)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		return p.integer(fields, path, key, "")
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errorf(fe.value.Line, field, "want seconds (10) or a duration (\"10s\", \"2m\"), got %s", describe(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	switch {
	case err != nil:
		p.errorf(fe.value.Line, field, "want seconds (10) or a duration (\"10s\", \"2m\"), got %q", n.Value)
		return 0, false
	case d%time.Second != 0:
		p.errorf(fe.value.Line, field, "%s is not a whole number of seconds", n.Value)
		return 0, false
	case d < 0 || d/time.Second > 1<<31-1:
		p.errorf(fe.value.Line, field, "%s is out of range", n.Value)
		return 0, false
	}
	return int(d / time.Second), true
}

// env reads the environment: a mapping of names to scalar values (numbers
// and booleans are taken as written). Each variable is checked with the
// registry's rules, so the error points at its line.
func (p *parser) env(fe entry, path string) map[string]string {
	n := resolve(fe.value)
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
			return nil
		}
		p.errorf(fe.value.Line, path, "want a mapping of variable names to values, got %s", describe(n))
		return nil
	}
	env := map[string]string{}
	for _, e := range p.entries(n, path) {
		k := e.key.Value
		v := resolve(e.value)
		if v.Kind != yaml.ScalarNode {
			p.errorf(e.value.Line, join(path, k), "want a value (a string, number or boolean), got %s", describe(v))
			continue
		}
		if v.ShortTag() == "!!null" {
			p.errorf(e.value.Line, join(path, k), "no value: write \"\" for an empty one")
			continue
		}
		probe := &registry.Function{Name: "probe", Runtime: DefaultRuntime, Env: map[string]string{k: v.Value}}
		if err := registry.Normalize(probe); err != nil {
			p.errorf(e.key.Line, join(path, k), "%s", lambdaMessage(err))
			continue
		}
		env[k] = v.Value
	}
	return env
}

// fieldOfRegistry maps the registry's validation fields to project fields.
var fieldOfRegistry = map[string]string{
	"runtime":                         "runtime",
	"handler":                         "handler",
	"memorySize":                      "memory",
	"timeout":                         "timeout",
	"description":                     "description",
	"reservedConcurrentExecutions":    "reserved_concurrency",
	"provisionedConcurrentExecutions": "provisioned",
	"idleTimeout":                     "idle_timeout",
	"environment":                     "env",
	"grants.kv":                       "grants",
	"grants.objects":                  "grants",
	"grants.hosts":                    "grants",
}

// normalize applies the registry's rules to the whole function, reporting
// every field that breaks one at its line, and fills the defaults.
func (p *parser) normalize(f *Function, path string, lines map[string]int, keyLine int) {
	rf := &registry.Function{
		Name: f.Name, Runtime: f.Runtime, Handler: f.Handler, Description: f.Description,
		MemoryMB: f.MemoryMB, TimeoutSec: f.TimeoutSec, Env: f.Env,
		ReservedConcurrency: f.ReservedConcurrency, ProvisionedConcurrency: f.Provisioned,
		IdleTimeoutSec: f.IdleTimeoutSec, Grants: f.Grants.Clone(),
	}
	for range len(fieldOfRegistry) + 1 {
		err := registry.Normalize(rf)
		if err == nil {
			break
		}
		var ve *registry.ValidationError
		if !errors.As(err, &ve) {
			p.errorf(keyLine, path, "%v", err)
			return
		}
		field, ok := fieldOfRegistry[ve.Field]
		if !ok {
			p.errorf(keyLine, path, "%s", lambdaMessage(err))
			return
		}
		line := lines[field]
		if line == 0 {
			line = keyLine
		}
		msg := lambdaMessage(err)
		if field == "runtime" && ve.Message != "" && strings.Contains(ve.Message, "enum value set") {
			msg = fmt.Sprintf("unknown runtime %q: want one of %s", rf.Runtime, strings.Join(registry.Runtimes, ", "))
		}
		p.errorf(line, join(path, field), "%s", msg)
		// Clear the field and look for the next problem.
		switch field {
		case "runtime":
			rf.Runtime = DefaultRuntime
		case "handler":
			rf.Handler = "index.handler"
		case "memory":
			rf.MemoryMB = 0
		case "timeout":
			rf.TimeoutSec = 0
		case "description":
			rf.Description = ""
		case "reserved_concurrency":
			rf.ReservedConcurrency = nil
		case "provisioned":
			rf.ProvisionedConcurrency = 0
		case "idle_timeout":
			rf.IdleTimeoutSec = 0
		case "env":
			rf.Env = nil
		case "grants":
			rf.Grants = nil
		}
	}
	f.MemoryMB, f.TimeoutSec = rf.MemoryMB, rf.TimeoutSec
}

// lambdaRE matches the registry's Lambda-worded constraint messages.
var lambdaRE = regexp.MustCompile(`^(?:\d+ validation errors? detected: )?Value (?:'(.*)' )?at '[^']*' failed to satisfy constraint: Member (must .*)$`)

// lambdaMessage turns a registry validation message, worded as Lambda's
// API words it, into the shorter form a file's reader needs: "must have
// value between 128 and 10240, got 99999".
func lambdaMessage(err error) string {
	msg := err.Error()
	m := lambdaRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	if m[1] != "" {
		return m[2] + ", got " + m[1]
	}
	return m[2]
}
