// Package cron parses schedule expressions and computes when they fire.
//
// It accepts:
//
//   - standard five-field cron: minute hour day-of-month month day-of-week,
//     each a list (,) of values, ranges (a-b) and steps (*/n, a-b/n, a/n);
//     months JAN-DEC and days SUN-SAT by name (any case), day-of-week 0-7
//     (0 and 7 are Sunday), and ? as * in the day fields. As in Vixie
//     cron, when both day fields are restricted a day matches either;
//     when one of them starts with * (or is ?), the other alone decides;
//   - the macros @yearly (@annually), @monthly, @weekly, @daily
//     (@midnight) and @hourly;
//   - intervals: "@every 10s" (a Go duration), "rate(5 minutes)",
//     "5 minutes", "1 second" (units second, minute, hour, day, singular
//     or plural). An interval is a whole number of seconds, at least one.
//
// Cron expressions are read in a time zone (Next's loc): a local time that
// does not exist (skipped by a daylight-saving change) does not fire; a
// local time that occurs twice fires once, at its first occurrence, except
// when the hour field is * (every hour), where each of the two real hours
// fires so that "every 15 minutes" keeps its rhythm. Intervals ignore the
// time zone: their ticks are the multiples of the interval since the Unix
// epoch, so every node computes the same ticks.
//
// Errors name the field and the problem:
// "cron: field 'hour': 25 is outside 0-23".
package cron

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// MinInterval is the shortest interval.
const MinInterval = time.Second

// MaxInterval is the longest interval (ten years).
const MaxInterval = 10 * 365 * 24 * time.Hour

// MaxExprLen bounds an expression.
const MaxExprLen = 256

// Schedule is a parsed expression. The zero value never fires. A Schedule
// is immutable and safe for concurrent use.
type Schedule struct {
	expr  string
	every time.Duration // an interval; 0 for a cron expression

	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	domStar, dowStar, hourStar    bool
}

// field describes one cron field.
type field struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i
}

var fields = [5]field{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day-of-month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{name: "day-of-week", min: 0, max: 7, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}},
}

var macros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// Parse parses an expression (see the package comment).
func Parse(expr string) (Schedule, error) {
	s := strings.TrimSpace(expr)
	switch {
	case s == "":
		return Schedule{}, errors.New("cron: empty expression: want five cron fields (\"0 3 * * *\"), a macro (@daily) or a rate (\"5 minutes\")")
	case len(s) > MaxExprLen:
		return Schedule{}, fmt.Errorf("cron: expression is %d bytes long; at most %d are allowed", len(s), MaxExprLen)
	}
	if m, ok := macros[strings.ToLower(s)]; ok {
		sch, err := parseCron(m)
		sch.expr = s
		return sch, err
	}
	lower := strings.ToLower(s)
	if lower == "@every" || strings.HasPrefix(lower, "@every ") || strings.HasPrefix(lower, "@every\t") {
		rest := strings.TrimSpace(s[len("@every"):])
		if rest == "" {
			return Schedule{}, fmt.Errorf("cron: %q: want @every DURATION, such as @every 10s or @every 5m", s)
		}
		d, err := time.ParseDuration(rest)
		if err != nil {
			return Schedule{}, fmt.Errorf("cron: @every: %q is not a duration (want 10s, 5m, 1h30m)", rest)
		}
		return interval(s, d)
	}
	if strings.HasPrefix(s, "@") {
		return Schedule{}, fmt.Errorf("cron: unknown macro %q: want @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every DURATION", s)
	}
	if strings.HasPrefix(lower, "rate(") || strings.HasPrefix(lower, "rate ") {
		if !strings.HasPrefix(lower, "rate(") || !strings.HasSuffix(s, ")") {
			return Schedule{}, fmt.Errorf("cron: %q: want rate(VALUE UNIT), such as rate(5 minutes)", s)
		}
		return parseRate(s, s[len("rate("):len(s)-1])
	}
	if f := strings.Fields(s); len(f) == 2 && isLetters(f[1]) {
		return parseRate(s, s)
	}
	if strings.HasPrefix(lower, "cron(") {
		return Schedule{}, fmt.Errorf("cron: %q: write the five cron fields without cron(...) (AWS's six-field form is not accepted: drop the year field, and note day-of-week 0 is Sunday)", s)
	}
	sch, err := parseCron(s)
	sch.expr = s
	return sch, err
}

// parseRate parses "VALUE UNIT" (body) of a rate expression.
func parseRate(expr, body string) (Schedule, error) {
	f := strings.Fields(body)
	if len(f) != 2 {
		return Schedule{}, fmt.Errorf("cron: rate %q: want VALUE UNIT, such as 5 minutes", strings.TrimSpace(body))
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n <= 0 {
		return Schedule{}, fmt.Errorf("cron: rate: value %q must be a whole number greater than 0", f[0])
	}
	var unit time.Duration
	switch strings.ToLower(f[1]) {
	case "second", "seconds":
		unit = time.Second
	case "minute", "minutes":
		unit = time.Minute
	case "hour", "hours":
		unit = time.Hour
	case "day", "days":
		unit = 24 * time.Hour
	default:
		return Schedule{}, fmt.Errorf("cron: rate: unknown unit %q: want seconds, minutes, hours or days", f[1])
	}
	if n > int64(MaxInterval/unit) {
		return Schedule{}, fmt.Errorf("cron: rate: %d %s is longer than the longest interval, %s", n, f[1], MaxInterval)
	}
	return interval(expr, time.Duration(n)*unit)
}

func interval(expr string, d time.Duration) (Schedule, error) {
	switch {
	case d < MinInterval:
		return Schedule{}, fmt.Errorf("cron: interval %s is shorter than the shortest, %s", d, MinInterval)
	case d > MaxInterval:
		return Schedule{}, fmt.Errorf("cron: interval %s is longer than the longest, %s", d, MaxInterval)
	case d%time.Second != 0:
		return Schedule{}, fmt.Errorf("cron: interval %s is not a whole number of seconds", d)
	}
	return Schedule{expr: expr, every: d}, nil
}

// daysIn is the most days each month can have.
var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

func parseCron(s string) (Schedule, error) {
	parts := strings.Fields(s)
	if len(parts) != 5 {
		return Schedule{}, fmt.Errorf("cron: want 5 fields (minute hour day-of-month month day-of-week), got %d in %q", len(parts), s)
	}
	var sch Schedule
	dst := [5]*uint64{&sch.minute, &sch.hour, &sch.dom, &sch.month, &sch.dow}
	for i, p := range parts {
		bits, err := parseField(p, fields[i], i >= 2 && i != 3)
		if err != nil {
			return Schedule{}, err
		}
		*dst[i] = bits
	}
	if sch.dow&(1<<7) != 0 {
		sch.dow = sch.dow&^(1<<7) | 1
	}
	sch.domStar = strings.HasPrefix(parts[2], "*") || parts[2] == "?"
	sch.dowStar = strings.HasPrefix(parts[4], "*") || parts[4] == "?"
	sch.hourStar = parts[1] == "*" || parts[1] == "*/1"
	// A day-of-month that never occurs in the months asked for would
	// never fire: refuse it (when day-of-week does not widen the days).
	if !sch.domStar || sch.dowStar {
		ok := false
		for m := 1; m <= 12 && !ok; m++ {
			if sch.month&(1<<m) != 0 && sch.dom&(1<<(daysIn[m]+1)-1) != 0 {
				ok = true
			}
		}
		if !ok {
			return Schedule{}, fmt.Errorf("cron: field 'day-of-month': %s never occurs in month %s", parts[2], parts[3])
		}
	}
	return sch, nil
}

// parseField parses one field into a bit set.
func parseField(s string, f field, question bool) (uint64, error) {
	var set uint64
	for _, item := range strings.Split(s, ",") {
		b, err := parseItem(item, f, question)
		if err != nil {
			return 0, err
		}
		set |= b
	}
	return set, nil
}

func parseItem(item string, f field, question bool) (uint64, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("cron: field '%s': %s", f.name, fmt.Sprintf(format, args...))
	}
	if item == "" {
		return 0, bad("empty value (two commas, or a trailing comma)")
	}
	rng, stepStr, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepStr)
		if err != nil || n <= 0 {
			return 0, bad("step %q must be a whole number greater than 0", stepStr)
		}
		if n > f.max-f.min+1 {
			return 0, bad("step %d is larger than the field's range %d-%d", n, f.min, f.max)
		}
		step = n
	}
	lo, hi := f.min, f.max
	if f.name == "day-of-week" {
		hi = 6 // * means SUN-SAT once; 7 is only a synonym
	}
	switch {
	case rng == "*" || (rng == "?" && question):
		if rng == "?" && hasStep {
			return 0, bad("? takes no step")
		}
	case rng == "?":
		return 0, bad("? is only allowed in day-of-month and day-of-week")
	default:
		a, b, isRange := strings.Cut(rng, "-")
		var err error
		if lo, err = value(a, f); err != nil {
			return 0, bad("%v", err)
		}
		switch {
		case isRange:
			if hi, err = value(b, f); err != nil {
				return 0, bad("%v", err)
			}
			if hi < lo {
				return 0, bad("range %s goes backwards (%d > %d)", rng, lo, hi)
			}
		case hasStep:
			hi = f.max // a/n means a to the end, every n
			if f.name == "day-of-week" {
				hi = 6
			}
		default:
			hi = lo
		}
	}
	var set uint64
	for v := lo; v <= hi; v += step {
		set |= 1 << v
	}
	return set, nil
}

// value reads one number or name of a field.
func value(s string, f field) (int, error) {
	if s == "" {
		return 0, errors.New("empty value in a range")
	}
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		if f.names != nil {
			last := f.names[len(f.names)-1]
			if last == f.names[0] {
				last = f.names[len(f.names)-2]
			}
			return 0, fmt.Errorf("%q is neither a number nor a name (%s-%s)", s, f.names[0], last)
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%d is outside %d-%d", n, f.min, f.max)
	}
	return n, nil
}

// String returns the expression as it was given (trimmed).
func (s Schedule) String() string { return s.expr }

// Interval returns the interval of an interval schedule, 0 for cron.
func (s Schedule) Interval() time.Duration { return s.every }

// searchYears bounds how far Next looks ahead; a valid expression fires
// at least once every 8 years (the 29th of February on a given weekday
// needs 28, but Vixie's OR makes that fire every week).
const searchYears = 9

// Next returns the first tick strictly after after, or the zero time if
// there is none (only for the zero Schedule). loc is the time zone cron
// fields are read in (nil means UTC).
func (s Schedule) Next(after time.Time, loc *time.Location) time.Time {
	if s.every > 0 {
		sec := int64(s.every / time.Second)
		n := floorDiv(after.Unix(), sec)*sec + sec
		return time.Unix(n, 0).In(after.Location())
	}
	if s.minute == 0 {
		return time.Time{}
	}
	if loc == nil {
		loc = time.UTC
	}
	// Walk candidate local times (a civil clock, kept in UTC to avoid
	// DST arithmetic) in order, and map each to the instants it names.
	// Local order and instant order differ only when the clock is about to
	// go back: then start a little early and keep looking until a
	// candidate cannot beat the best found.
	const window = 3 * time.Hour
	at := after.In(loc)
	var slack time.Duration
	_, o1 := at.Zone()
	if _, o2 := after.Add(window).In(loc).Zone(); o2 < o1 {
		slack = window
	}
	civil := time.Date(at.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), 0, 0, time.UTC).Add(-slack)
	limit := civil.AddDate(searchYears, 0, 0)
	var best time.Time
	var bestCivil time.Time
	for {
		c, ok := s.nextCivil(civil, limit)
		if !ok {
			return best
		}
		if !best.IsZero() && c.After(bestCivil.Add(slack)) {
			return best
		}
		for _, t := range s.instants(c, loc) {
			if t.After(after) && (best.IsZero() || t.Before(best)) {
				best, bestCivil = t, c
			}
		}
		if !best.IsZero() && slack == 0 {
			return best
		}
		civil = c.Add(time.Minute)
	}
}

func isLetters(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return s != ""
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// instants returns the instants whose local time in loc is the civil time
// c, following the rules for skipped and repeated local times.
func (s Schedule) instants(c time.Time, loc *time.Location) []time.Time {
	y, mo, d := c.Date()
	h, mi := c.Hour(), c.Minute()
	t1 := time.Date(y, mo, d, h, mi, 0, 0, loc)
	same := func(t time.Time) bool {
		l := t.In(loc)
		ly, lmo, ld := l.Date()
		return ly == y && lmo == mo && ld == d && l.Hour() == h && l.Minute() == mi
	}
	if !same(t1) {
		return nil // skipped by a change of offset
	}
	out := []time.Time{t1}
	_, off1 := t1.Zone()
	for _, probe := range []time.Time{t1.Add(-3 * time.Hour), t1.Add(3 * time.Hour)} {
		_, o := probe.In(loc).Zone()
		if o == off1 {
			continue
		}
		t2 := c.Add(-time.Duration(o) * time.Second)
		t2 = time.Unix(t2.Unix(), 0).In(loc)
		if same(t2) && !t2.Equal(t1) {
			out = append(out, t2)
		}
	}
	if len(out) == 2 {
		if out[1].Before(out[0]) {
			out[0], out[1] = out[1], out[0]
		}
		if !s.hourStar {
			out = out[:1] // a repeated local time fires once
		}
	}
	return out
}

// nextCivil returns the first civil time at or after c (minute precision)
// that matches the fields, before limit.
func (s Schedule) nextCivil(c, limit time.Time) (time.Time, bool) {
	for c.Before(limit) {
		if s.month&(1<<uint(c.Month())) == 0 {
			c = time.Date(c.Year(), c.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !s.dayMatches(c) {
			c = time.Date(c.Year(), c.Month(), c.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if s.hour&(1<<uint(c.Hour())) == 0 {
			c = time.Date(c.Year(), c.Month(), c.Day(), c.Hour()+1, 0, 0, 0, time.UTC)
			continue
		}
		if s.minute&(1<<uint(c.Minute())) == 0 {
			// Jump to the next matching minute in this hour, if any.
			rest := s.minute >> uint(c.Minute())
			if rest == 0 {
				c = time.Date(c.Year(), c.Month(), c.Day(), c.Hour()+1, 0, 0, 0, time.UTC)
			} else {
				c = c.Add(time.Duration(bits.TrailingZeros64(rest)) * time.Minute)
			}
			continue
		}
		return c, true
	}
	return time.Time{}, false
}

func (s Schedule) dayMatches(c time.Time) bool {
	dom := s.dom&(1<<uint(c.Day())) != 0
	dow := s.dow&(1<<uint(c.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}
