package project

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/trigger/cron"
)

// Schedule is one schedule of a project, checked.
type Schedule struct {
	Name string
	// Line is the line of the schedule's name in the project file.
	Line      int
	Function  string
	Qualifier string
	// Expression is the cron expression as written, or "rate(VALUE UNIT)".
	Expression string
	// Timezone is the IANA time zone ("" for UTC).
	Timezone string
	// Payload is the JSON event, nil for EventBridge's scheduled event.
	Payload json.RawMessage
	CatchUp bool
}

// scheduleFields are the fields of a schedule.
var scheduleFields = map[string]bool{
	"function": true, "qualifier": true, "cron": true, "rate": true, "timezone": true, "payload": true, "catch_up": true,
}

// MaxSchedulePayload bounds a schedule's payload, as JSON.
const MaxSchedulePayload = 256 << 10

// scheduleNameRE is a valid schedule name.
var scheduleNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// schedules checks the schedules mapping.
func (p *parser) schedules(fe entry, proj *Project) []*Schedule {
	n := resolve(fe.value)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(fe.value.Line, "schedules", "want a mapping of schedule names to schedules, got %s", describe(n))
		return nil
	}
	var out []*Schedule
	for _, e := range p.entries(n, "schedules") {
		if s := p.schedule(e, proj); s != nil {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *Schedule) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// schedule checks one schedule. It returns nil if it has errors.
func (p *parser) schedule(e entry, proj *Project) *Schedule {
	before := len(p.errs)
	name := e.key.Value
	path := join("schedules", name)
	s := &Schedule{Name: name, Line: e.key.Line}
	if !scheduleNameRE.MatchString(name) {
		p.errorf(e.key.Line, path, "invalid schedule name: 1 to 64 letters, digits, '-' and '_'")
	}
	v := resolve(e.value)
	if v.Kind != yaml.MappingNode {
		p.errorf(e.value.Line, path, "want a mapping of settings (function: and cron: or rate:), got %s", describe(v))
		return nil
	}
	fields := p.mapping(v, path, scheduleFields, "")
	str := func(key string) (string, int, bool) {
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

	if fn, line, ok := str("function"); ok {
		if err := registry.ValidateName(fn); err != nil {
			p.errorf(line, join(path, "function"), "invalid function name: %s", lambdaMessage(err))
		}
		s.Function = fn
	} else if _, given := fields["function"]; !given {
		p.errorf(e.key.Line, join(path, "function"), "missing: name the function each tick invokes")
	}
	if q, line, ok := str("qualifier"); ok {
		if err := registry.ValidateQualifier(q); err != nil {
			p.errorf(line, join(path, "qualifier"), "invalid qualifier: %s", lambdaMessage(err))
		}
		s.Qualifier = q
	} else if f := proj.Function(s.Function); f != nil {
		s.Qualifier = f.Alias
	}

	_, hasCron := fields["cron"]
	_, hasRate := fields["rate"]
	switch {
	case hasCron && hasRate:
		p.errorf(fields["rate"].key.Line, join(path, "rate"), "cron: and rate: exclude each other; keep one")
	case !hasCron && !hasRate:
		p.errorf(e.key.Line, path, "missing: say when, with cron: (\"0 3 * * *\", \"@daily\") or rate: (5 minutes)")
	case hasCron:
		if c, line, ok := str("cron"); ok {
			if _, err := cron.Parse(c); err != nil {
				p.errorf(line, join(path, "cron"), "%s", strings.TrimPrefix(err.Error(), "cron: "))
			}
			s.Expression = strings.TrimSpace(c)
		}
	default:
		if r, line, ok := str("rate"); ok {
			expr := "rate(" + strings.TrimSpace(r) + ")"
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(r)), "rate(") {
				expr = strings.TrimSpace(r)
			}
			if _, err := cron.Parse(expr); err != nil {
				p.errorf(line, join(path, "rate"), "%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "cron: "), "rate: "))
			}
			s.Expression = expr
		}
	}
	if tz, line, ok := str("timezone"); ok {
		if _, err := time.LoadLocation(tz); err != nil || tz == "Local" || tz == "" || len(tz) > 64 {
			p.errorf(line, join(path, "timezone"), "unknown time zone %q: want an IANA name such as Europe/Paris or America/New_York", tz)
		}
		s.Timezone = tz
	}
	if fe, ok := fields["payload"]; ok {
		var val any
		if err := resolve(fe.value).Decode(&val); err != nil {
			p.errorf(fe.value.Line, join(path, "payload"), "%v", err)
		} else if b, err := json.Marshal(val); err != nil {
			p.errorf(fe.value.Line, join(path, "payload"), "cannot be sent as JSON (mapping keys must be strings): %v", err)
		} else if len(b) > MaxSchedulePayload {
			p.errorf(fe.value.Line, join(path, "payload"), "is %d bytes as JSON; at most %d are allowed", len(b), MaxSchedulePayload)
		} else {
			s.Payload = b
		}
	}
	if fe, ok := fields["catch_up"]; ok {
		n := resolve(fe.value)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&s.CatchUp) != nil {
			p.errorf(fe.value.Line, join(path, "catch_up"), "want true or false, got %s", describe(n))
		}
	}
	if len(p.errs) > before {
		return nil
	}
	return s
}
