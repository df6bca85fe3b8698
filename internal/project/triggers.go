package project

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
)

// Trigger is one trigger of a project, checked: the definition `gust
// deploy` sends the node, with ${NAME} references replaced.
type Trigger struct {
	// Line is the line of the trigger's name in the project file.
	Line int
	api.Trigger
}

// Bounds on a trigger's settings.
const (
	MaxTriggerNameLen = 64
	MaxBatchSize      = api.MaxTriggerBatchSize
	MaxConcurrency    = api.MaxTriggerConcurrency
	MaxBatchWindow    = api.MaxTriggerBatchWindow
)

// EventsOf returns the events a trigger of kind may select, in their
// canonical order (none for a queue, whose messages are all delivered).
func EventsOf(kind string) []string {
	switch kind {
	case api.TriggerKV:
		return []string{"put", "delete"}
	case api.TriggerObjects:
		return []string{"created", "deleted"}
	case api.TriggerPostgres:
		return []string{"insert", "update", "delete"}
	}
	return nil
}

// ValidTriggerName reports whether name is a valid trigger name.
func ValidTriggerName(name string) bool { return triggerNameRE.MatchString(name) }

var triggerNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// triggerFields are the fields of a trigger; sourceKinds those that name
// its source, one of which is required.
var (
	triggerFields = map[string]bool{"function": true, "qualifier": true,
		api.TriggerKV: true, api.TriggerObjects: true, api.TriggerQueue: true, api.TriggerPostgres: true}
	sourceKinds        = []string{api.TriggerKV, api.TriggerObjects, api.TriggerQueue, api.TriggerPostgres}
	sourceBucketFields = map[string]bool{"bucket": true, "prefix": true, "events": true}
	queueFields        = map[string]bool{"url": true, "subject": true, "stream": true, "filter_subject": true,
		"batch_size": true, "batch_window": true, "concurrency": true, "max_deliver": true}
	postgresFields = map[string]bool{"dsn": true, "tables": true, "events": true, "batch_size": true,
		"batch_window": true, "max_attempts": true}
)

// triggers checks the triggers mapping.
func (p *parser) triggers(fe entry, proj *Project) []*Trigger {
	n := resolve(fe.value)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(fe.value.Line, "triggers", "want a mapping of trigger names to triggers, got %s", describe(n))
		return nil
	}
	var out []*Trigger
	for _, e := range p.entries(n, "triggers") {
		if t := p.trigger(e, proj); t != nil {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *Trigger) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// trigger checks one trigger. It returns nil if it has errors.
func (p *parser) trigger(e entry, proj *Project) *Trigger {
	before := len(p.errs)
	name := e.key.Value
	path := join("triggers", name)
	t := &Trigger{Line: e.key.Line, Trigger: api.Trigger{Name: name}}
	if !ValidTriggerName(name) {
		p.errorf(e.key.Line, path, "invalid trigger name: 1 to %d letters, digits, '-' and '_'", MaxTriggerNameLen)
	}
	v := resolve(e.value)
	if v.Kind != yaml.MappingNode {
		p.errorf(e.value.Line, path, "want a mapping of settings (function: and one source: kv:, objects:, queue: or postgres:), got %s", describe(v))
		return nil
	}
	fields := p.mapping(v, path, triggerFields, "")
	if fn, line, ok := p.str(fields, path, "function"); ok {
		if err := registry.ValidateName(fn); err != nil {
			p.errorf(line, join(path, "function"), "invalid function name: %s", lambdaMessage(err))
		}
		t.Function = fn
	} else if _, given := fields["function"]; !given {
		p.errorf(e.key.Line, join(path, "function"), "missing: name the function the trigger invokes")
	}
	if q, line, ok := p.str(fields, path, "qualifier"); ok {
		if err := registry.ValidateQualifier(q); err != nil {
			p.errorf(line, join(path, "qualifier"), "invalid qualifier: %s", lambdaMessage(err))
		}
		t.Qualifier = q
	} else if f := proj.Function(t.Function); f != nil {
		t.Qualifier = f.Alias
	}

	var sources []entry
	for _, k := range sourceKinds {
		if se, ok := fields[k]; ok {
			sources = append(sources, se)
		}
	}
	slices.SortFunc(sources, func(a, b entry) int { return a.key.Line - b.key.Line })
	switch len(sources) {
	case 0:
		p.errorf(e.key.Line, path, "missing: a source, one of kv:, objects:, queue: or postgres:")
	case 1:
		se := sources[0]
		spath := join(path, se.key.Value)
		sv := resolve(se.value)
		if sv.Kind != yaml.MappingNode {
			p.errorf(se.value.Line, spath, "want a mapping of the source's settings, got %s", describe(sv))
			break
		}
		switch se.key.Value {
		case api.TriggerKV:
			bucket, prefix, events := p.bucketSource(sv, spath, api.TriggerKV)
			t.KV = &api.KVSource{Bucket: bucket, Prefix: prefix, Events: events}
		case api.TriggerObjects:
			bucket, prefix, events := p.bucketSource(sv, spath, api.TriggerObjects)
			t.Objects = &api.ObjectsSource{Bucket: bucket, Prefix: prefix, Events: events}
		case api.TriggerQueue:
			t.Queue = p.queueSource(sv, spath)
		case api.TriggerPostgres:
			t.Postgres = p.postgresSource(sv, spath)
		}
	default:
		for _, se := range sources[1:] {
			p.errorf(se.key.Line, join(path, se.key.Value), "%s: and %s: exclude each other: a trigger has one source",
				sources[0].key.Value, se.key.Value)
		}
	}
	if len(p.errs) > before {
		return nil
	}
	return t
}

// bucketSource reads a kv: or objects: source.
func (p *parser) bucketSource(n *yaml.Node, path, kind string) (bucket, prefix string, events []string) {
	fields := p.mapping(n, path, sourceBucketFields, "")
	if b, line, ok := p.str(fields, path, "bucket"); ok {
		if err := registry.ValidateBucketName(b); err != nil {
			p.errorf(line, join(path, "bucket"), "%v", err)
		} else {
			p.bucketRefs = append(p.bucketRefs, bucketRef{line, join(path, "bucket"), b, kind})
		}
		bucket = b
	} else if _, given := fields["bucket"]; !given {
		p.errorf(n.Line, join(path, "bucket"), "missing: name the %s bucket whose changes fire the trigger", kind)
	}
	if s, _, ok := p.str(fields, path, "prefix"); ok {
		prefix = s
	}
	return bucket, prefix, p.events(fields, path, kind)
}

// events reads a source's events: a subset of EventsOf(kind), returned in
// canonical order (nil: all).
func (p *parser) events(fields map[string]entry, path, kind string) []string {
	allowed := EventsOf(kind)
	items, ok := p.stringList(fields, path, "events", "events ("+strings.Join(allowed, ", ")+")")
	if !ok {
		return nil
	}
	picked := map[string]bool{}
	for _, it := range items {
		if !slices.Contains(allowed, it.value) {
			p.errorf(it.line, join(path, "events"), "unknown event %q: want %s", it.value, strings.Join(allowed, ", "))
			continue
		}
		picked[it.value] = true
	}
	var out []string
	for _, ev := range allowed {
		if picked[ev] {
			out = append(out, ev)
		}
	}
	return out
}

// queueSource reads a queue: source.
func (p *parser) queueSource(n *yaml.Node, path string) *api.QueueSource {
	fields := p.mapping(n, path, queueFields, "")
	q := &api.QueueSource{}
	subject, sline, hasSubject := p.str(fields, path, "subject")
	stream, tline, hasStream := p.str(fields, path, "stream")
	_, subjectGiven := fields["subject"]
	_, streamGiven := fields["stream"]
	switch {
	case subjectGiven && streamGiven:
		p.errorf(fields["stream"].key.Line, join(path, "stream"), "subject: and stream: exclude each other: read a NATS subject or a JetStream stream")
	case !subjectGiven && !streamGiven:
		p.errorf(n.Line, path, "missing: what to read, subject: (a NATS subject) or stream: (a JetStream stream)")
	case hasSubject:
		if problem := checkSubject(subject); problem != "" {
			p.errorf(sline, join(path, "subject"), "%s", problem)
		}
		q.Subject = subject
	case hasStream:
		if problem := checkStreamName(stream); problem != "" {
			p.errorf(tline, join(path, "stream"), "%s", problem)
		}
		q.Stream = stream
	}
	if s, line, ok := p.str(fields, path, "filter_subject"); ok {
		if !streamGiven {
			p.errorf(fields["filter_subject"].key.Line, join(path, "filter_subject"), "applies to a stream: only (stream: NAME)")
		} else if problem := checkSubject(s); problem != "" {
			p.errorf(line, join(path, "filter_subject"), "%s", problem)
		}
		q.FilterSubject = s
	}
	if s, line, ok := p.str(fields, path, "url"); ok {
		if v, refs, ok := p.expand(s, line, join(path, "url")); ok {
			if !(p.keepVars && len(refs) > 0) {
				if problem := checkNATSURL(v); problem != "" {
					p.errorf(line, join(path, "url"), "%s%s", fromVariables(refs), problem)
				}
			}
			q.URL = v
		}
	}
	if v, ok := p.within(fields, path, "batch_size", "a number of messages", 1, MaxBatchSize); ok {
		q.BatchSize = v
	}
	if v, ok := p.millis(fields, path, "batch_window"); ok {
		q.BatchWindowMs = v
	}
	if v, ok := p.within(fields, path, "concurrency", "a number of batches at once", 1, MaxConcurrency); ok {
		q.Concurrency = v
	}
	if fe, ok := fields["max_deliver"]; ok && !streamGiven {
		p.errorf(fe.key.Line, join(path, "max_deliver"), "applies to a stream: only (a subject's messages are delivered at most once)")
	} else if v, ok := p.within(fields, path, "max_deliver", "a number of tries", 1, api.MaxQueueDeliver); ok {
		q.MaxDeliver = v
	}
	return q
}

// postgresSource reads a postgres: source.
func (p *parser) postgresSource(n *yaml.Node, path string) *api.PostgresSource {
	fields := p.mapping(n, path, postgresFields, "")
	pg := &api.PostgresSource{}
	if s, line, ok := p.str(fields, path, "dsn"); ok {
		field := join(path, "dsn")
		if v, refs, ok := p.expand(s, line, field); ok {
			if !(p.keepVars && len(refs) > 0) {
				if problem := checkDSN(v); problem != "" {
					p.errorf(line, field, "%s%s", fromVariables(refs), problem)
				}
			}
			pg.DSN = v
		}
	} else if _, given := fields["dsn"]; !given {
		p.errorf(n.Line, join(path, "dsn"), "missing: the database to read, a DSN such as ${ORDERS_DSN} (postgres://user:password@host/db)")
	}
	if items, ok := p.stringList(fields, path, "tables", "tables"); ok {
		for _, it := range items {
			if !tableRE.MatchString(it.value) {
				p.errorf(it.line, join(path, "tables"), "table %q is invalid: want schema.table or table (letters, digits, _ and $)", it.value)
				continue
			}
			if !slices.Contains(pg.Tables, it.value) {
				pg.Tables = append(pg.Tables, it.value)
			}
		}
		if len(items) == 0 {
			p.errorf(fields["tables"].value.Line, join(path, "tables"), "empty: name at least one table")
		}
	} else if _, given := fields["tables"]; !given {
		p.errorf(n.Line, join(path, "tables"), "missing: name the tables whose row changes fire the trigger ([public.orders])")
	}
	pg.Events = p.events(fields, path, api.TriggerPostgres)
	if v, ok := p.within(fields, path, "batch_size", "a number of changes", 1, MaxBatchSize); ok {
		pg.BatchSize = v
	}
	if v, ok := p.millis(fields, path, "batch_window"); ok {
		pg.BatchWindowMs = v
	}
	if v, ok := p.within(fields, path, "max_attempts", "a number of tries", 1, api.MaxPostgresAttempts); ok {
		pg.MaxAttempts = v
	}
	return pg
}

// tableRE is a table, optionally schema-qualified.
var tableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$`)

// ValidTableName reports whether name is a table a PostgreSQL trigger may
// read: "schema.table" or "table", each of letters, digits, _ and $ (not
// starting with a digit or $).
func ValidTableName(name string) bool { return tableRE.MatchString(name) }

// millis reads a duration: a string ("100ms", "2s") or a number of
// seconds, in whole milliseconds, 0 to MaxBatchWindow.
func (p *parser) millis(fields map[string]entry, path, key string) (int, bool) {
	fe, ok := fields[key]
	if !ok {
		return 0, false
	}
	n := resolve(fe.value)
	field := join(path, key)
	var d time.Duration
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int":
		s, ok := p.integer(fields, path, key, "")
		if !ok {
			return 0, false
		}
		if s < 0 || s > int(MaxBatchWindow/time.Second) {
			p.errorf(fe.value.Line, field, "%d is out of range: want 0 to %s", s, MaxBatchWindow)
			return 0, false
		}
		d = time.Duration(s) * time.Second
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		var err error
		if d, err = time.ParseDuration(n.Value); err != nil {
			p.errorf(fe.value.Line, field, "want a duration (\"100ms\", \"2s\") or seconds, got %q", n.Value)
			return 0, false
		}
	default:
		p.errorf(fe.value.Line, field, "want a duration (\"100ms\", \"2s\") or seconds, got %s", describe(n))
		return 0, false
	}
	switch {
	case d%time.Millisecond != 0:
		p.errorf(fe.value.Line, field, "%s is not a whole number of milliseconds", n.Value)
		return 0, false
	case d < 0 || d > MaxBatchWindow:
		p.errorf(fe.value.Line, field, "%s is out of range: want 0 to %s", n.Value, MaxBatchWindow)
		return 0, false
	}
	return int(d / time.Millisecond), true
}

// varNameRE is an environment variable's name.
var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${NAME} in s by the environment variable NAME ($$ is a
// literal $; a $ before anything else stays). It returns the names read;
// ok is false, with the problem reported, when a reference is malformed
// or names an unset variable. With keepVars, references stay as written.
func (p *parser) expand(s string, line int, field string) (string, []string, bool) {
	var b strings.Builder
	var names []string
	ok := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c != '$' || i+1 == len(s):
			b.WriteByte(c)
		case s[i+1] == '$':
			b.WriteByte('$')
			i++
		case s[i+1] == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				p.errorf(line, field, "${ is not closed by }: write ${NAME}, or $$ for a literal $")
				return "", names, false
			}
			name := s[i+2 : i+2+end]
			ref := s[i : i+3+end]
			i += 2 + end
			if !varNameRE.MatchString(name) {
				p.errorf(line, field, "%s does not name an environment variable (letters, digits and _): write $$ for a literal $", ref)
				ok = false
				continue
			}
			names = append(names, name)
			if p.keepVars {
				b.WriteString(ref)
				continue
			}
			v := p.getenv(name)
			if v == "" {
				p.errorf(line, field, "environment variable %s is not set (or is empty): set it where gust deploy runs", name)
				ok = false
				continue
			}
			b.WriteString(v)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), names, ok
}

// fromVariables prefixes a problem with the variables a value came from.
func fromVariables(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return "the value of " + strings.Join(names, ", ") + ": "
}

// checkDSN returns what is wrong with a PostgreSQL DSN, without quoting
// it (it may hold a password), or "".
func checkDSN(dsn string) string {
	switch {
	case strings.TrimSpace(dsn) == "":
		return "empty: want postgres://user:password@host/db or key=value settings (host=... dbname=...)"
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		if _, err := url.Parse(dsn); err != nil {
			return "is not a valid postgres:// URL (special characters in the password must be %-escaped)"
		}
	case !strings.Contains(dsn, "="):
		return "is neither a postgres:// URL nor key=value settings (host=... dbname=...)"
	}
	return ""
}

// checkNATSURL returns what is wrong with a NATS server URL (or a
// comma-separated list of them), without quoting it, or "".
func checkNATSURL(s string) string {
	for _, one := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.Host == "" {
			return "want a NATS server URL such as nats://host:4222 (or several, separated by commas)"
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return "want a nats://, tls://, ws:// or wss:// URL, got the scheme " + u.Scheme + "://"
		}
	}
	return ""
}

// checkSubject returns what is wrong with a NATS subject (wildcards
// allowed), or "".
func checkSubject(s string) string {
	if s == "" {
		return "empty: want a NATS subject such as jobs or jobs.>"
	}
	tokens := strings.Split(s, ".")
	for i, tok := range tokens {
		switch {
		case tok == "":
			return "subject " + strconv.Quote(s) + " has an empty token (two dots, or a dot at an end)"
		case strings.ContainsAny(tok, " \t\r\n"):
			return "subject " + strconv.Quote(s) + " has white space"
		case tok == ">" && i != len(tokens)-1:
			return "subject " + strconv.Quote(s) + ": > may only be the last token"
		case tok != "*" && tok != ">" && strings.ContainsAny(tok, "*>"):
			return "subject " + strconv.Quote(s) + ": * and > must be whole tokens (jobs.*, jobs.>)"
		}
	}
	return ""
}

// checkStreamName returns what is wrong with a JetStream stream name, or
// "".
func checkStreamName(s string) string {
	if s == "" || len(s) > 255 || strings.ContainsAny(s, " \t\r\n.*>/\\") {
		return "stream name " + strconv.Quote(s) + " is invalid: 1 to 255 characters without spaces, '.', '*', '>', '/' or '\\'"
	}
	return ""
}
