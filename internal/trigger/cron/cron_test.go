package cron

import (
	"strings"
	"testing"
	"time"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s not available: %v", name, err)
	}
	return loc
}

func TestCronParseErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"", "empty expression"},
		{"* * * *", "want 5 fields"},
		{"* * * * * *", "got 6"},
		{"60 * * * *", "field 'minute': 60 is outside 0-59"},
		{"0 25 * * *", "field 'hour': 25 is outside 0-23"},
		{"0 0 0 * *", "field 'day-of-month': 0 is outside 1-31"},
		{"0 0 * 13 *", "field 'month': 13 is outside 1-12"},
		{"0 0 * * 8", "field 'day-of-week': 8 is outside 0-7"},
		{"0 0 * FOO *", `field 'month': "FOO" is neither a number nor a name (JAN-DEC)`},
		{"0 0 * * MOO", `field 'day-of-week': "MOO" is neither a number nor a name (SUN-SAT)`},
		{"x * * * *", `field 'minute': "x" is not a number`},
		{"5-1 * * * *", "field 'minute': range 5-1 goes backwards"},
		{"*/0 * * * *", "field 'minute': step \"0\" must be a whole number greater than 0"},
		{"*/61 * * * *", "field 'minute': step 61 is larger"},
		{"1,,2 * * * *", "field 'minute': empty value"},
		{"? * * * *", "field 'minute': ? is only allowed in day-of-month and day-of-week"},
		{"0 0 30 2 *", "field 'day-of-month': 30 never occurs in month 2"},
		{"0 0 31 APR,JUN *", "never occurs"},
		{"@often", "unknown macro"},
		{"@every", "want @every DURATION"},
		{"@every soon", "is not a duration"},
		{"@every 500ms", "shorter than the shortest"},
		{"@every 1500ms", "not a whole number of seconds"},
		{"@every 100000h", "longer than the longest"},
		{"rate(5 fortnights)", `unknown unit "fortnights"`},
		{"rate(0 minutes)", "greater than 0"},
		{"rate(-1 minutes)", "greater than 0"},
		{"rate(5minutes)", "want VALUE UNIT"},
		{"rate(5 minutes", "want rate(VALUE UNIT)"},
		{"five minutes", "must be a whole number"},
		{"rate(99999999 days)", "longer than the longest"},
		{"cron(0 3 * * ? *)", "without cron(...)"},
		{strings.Repeat("1,", 200) + "1 * * * *", "bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := Parse(tt.expr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tt.expr, err, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "cron: ") {
				t.Errorf("Parse(%q) = %v, want a message starting with cron:", tt.expr, err)
			}
		})
	}
}

func TestCronNext(t *testing.T) {
	paris := mustLoad(t, "Europe/Paris")
	ny := mustLoad(t, "America/New_York")
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name  string
		expr  string
		loc   *time.Location
		after string   // UTC
		want  []string // successive ticks, UTC
	}{
		{"every minute", "* * * * *", time.UTC, "2026-01-01 10:00:30", []string{"2026-01-01 10:01:00", "2026-01-01 10:02:00"}},
		{"strictly after", "0 3 * * *", time.UTC, "2026-01-01 03:00:00", []string{"2026-01-02 03:00:00"}},
		{"daily at 3 in Paris", "0 3 * * *", paris, "2026-01-01 00:00:00", []string{"2026-01-01 02:00:00", "2026-01-02 02:00:00"}},
		{"list range step", "0,30 9-17/4 * * *", time.UTC, "2026-01-01 09:10:00",
			[]string{"2026-01-01 09:30:00", "2026-01-01 13:00:00", "2026-01-01 13:30:00", "2026-01-01 17:00:00", "2026-01-01 17:30:00", "2026-01-02 09:00:00"}},
		{"value step", "10/20 0 * * *", time.UTC, "2026-01-01 00:00:00", []string{"2026-01-01 00:10:00", "2026-01-01 00:30:00", "2026-01-01 00:50:00", "2026-01-02 00:10:00"}},
		// 2026-01-01 is a Thursday.
		{"names", "0 0 * jan,Feb MON-wed", time.UTC, "2026-01-01 00:00:00",
			[]string{"2026-01-05 00:00:00", "2026-01-06 00:00:00", "2026-01-07 00:00:00", "2026-01-12 00:00:00"}},
		{"dow 7 is sunday", "0 0 * * 7", time.UTC, "2026-01-01 00:00:00", []string{"2026-01-04 00:00:00", "2026-01-11 00:00:00"}},
		{"dow range to 7", "0 0 * * 6-7", time.UTC, "2026-01-01 00:00:00", []string{"2026-01-03 00:00:00", "2026-01-04 00:00:00", "2026-01-10 00:00:00"}},
		{"vixie or", "0 0 13 * FRI", time.UTC, "2026-02-01 00:00:00",
			[]string{"2026-02-06 00:00:00", "2026-02-13 00:00:00", "2026-02-20 00:00:00", "2026-02-27 00:00:00", "2026-03-06 00:00:00", "2026-03-13 00:00:00"}},
		{"star step dom is and", "0 0 */10 * MON", time.UTC, "2026-01-01 00:00:00", []string{"2026-05-11 00:00:00", "2026-06-01 00:00:00"}},
		{"question mark", "0 12 ? * SAT", time.UTC, "2026-01-01 00:00:00", []string{"2026-01-03 12:00:00"}},
		{"leap day", "0 0 29 2 *", time.UTC, "2026-01-01 00:00:00", []string{"2028-02-29 00:00:00", "2032-02-29 00:00:00"}},
		{"leap day across 2100", "0 0 29 2 *", time.UTC, "2097-01-01 00:00:00", []string{"2104-02-29 00:00:00"}},
		{"@yearly", "@yearly", time.UTC, "2026-06-01 00:00:00", []string{"2027-01-01 00:00:00"}},
		{"@monthly", "@monthly", time.UTC, "2026-06-01 00:00:00", []string{"2026-07-01 00:00:00"}},
		{"@weekly", "@weekly", time.UTC, "2026-01-01 00:00:00", []string{"2026-01-04 00:00:00"}},
		{"@daily", "@DAILY", time.UTC, "2026-01-01 00:00:00", []string{"2026-01-02 00:00:00"}},
		{"@hourly", "@hourly", paris, "2026-01-01 00:10:00", []string{"2026-01-01 01:00:00"}},
		{"@every", "@every 10s", paris, "2026-01-01 00:00:05", []string{"2026-01-01 00:00:10", "2026-01-01 00:00:20"}},
		{"@every aligned to the epoch", "@every 7m", time.UTC, "2026-01-01 00:00:00", []string{"2026-01-01 00:07:00", "2026-01-01 00:14:00"}},
		{"rate", "rate(5 minutes)", time.UTC, "2026-01-01 00:00:00", []string{"2026-01-01 00:05:00", "2026-01-01 00:10:00"}},
		{"bare rate", "1 second", time.UTC, "2026-01-01 00:00:00", []string{"2026-01-01 00:00:01", "2026-01-01 00:00:02"}},
		{"rate in days", "rate(1 day)", ny, "2026-01-01 10:00:00", []string{"2026-01-02 00:00:00"}},

		// Paris: clocks go forward at 02:00 on 2026-03-29, back at 03:00 on 2026-10-25.
		{"paris nonexistent time is skipped", "30 2 * * *", paris, "2026-03-28 12:00:00", []string{"2026-03-30 00:30:00"}},
		{"paris every 30 min across the gap", "*/30 * * * *", paris, "2026-03-29 00:00:00",
			[]string{"2026-03-29 00:30:00", "2026-03-29 01:00:00", "2026-03-29 01:30:00"}},
		{"paris repeated time fires once", "30 2 * * *", paris, "2026-10-24 12:00:00", []string{"2026-10-25 00:30:00", "2026-10-26 01:30:00"}},
		{"paris every 30 min across the repeat", "*/30 * * * *", paris, "2026-10-25 00:00:00",
			[]string{"2026-10-25 00:30:00", "2026-10-25 01:00:00", "2026-10-25 01:30:00", "2026-10-25 02:00:00"}},
		// New York: forward at 02:00 on 2026-03-08, back at 02:00 on 2026-11-01.
		{"new york nonexistent time is skipped", "0 2 * * *", ny, "2026-03-07 12:00:00", []string{"2026-03-09 06:00:00"}},
		{"new york repeated time fires once", "30 1 * * *", ny, "2026-10-31 12:00:00", []string{"2026-11-01 05:30:00", "2026-11-02 06:30:00"}},
		{"new york repeated time already fired", "30 1 * * *", ny, "2026-11-01 05:45:00", []string{"2026-11-02 06:30:00"}},
		{"new york hourly in the repeat", "15 * * * *", ny, "2026-11-01 05:20:00", []string{"2026-11-01 06:15:00", "2026-11-01 07:15:00"}},
		{"new york from inside the repeat", "*/20 * * * *", ny, "2026-11-01 06:10:00", []string{"2026-11-01 06:20:00", "2026-11-01 06:40:00", "2026-11-01 07:00:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.expr)
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tt.expr, err)
			}
			at := utc(tt.after)
			for _, w := range tt.want {
				got := s.Next(at, tt.loc)
				if !got.Equal(utc(w)) {
					t.Fatalf("Parse(%q).Next(%s, %s) = %s, want %s", tt.expr, at.UTC(), tt.loc, got.UTC(), w)
				}
				at = got
			}
		})
	}
}

// reference is a slow Next: it tries every minute and applies the rules
// for skipped and repeated local times directly.
func reference(s Schedule, after time.Time, loc *time.Location, horizon time.Duration) time.Time {
	t := after.Truncate(time.Minute).Add(time.Minute)
	for end := after.Add(horizon); t.Before(end); t = t.Add(time.Minute) {
		l := t.In(loc)
		if s.minute&(1<<uint(l.Minute())) == 0 || s.hour&(1<<uint(l.Hour())) == 0 ||
			s.month&(1<<uint(l.Month())) == 0 || !s.dayMatches(l) {
			continue
		}
		repeat := false
		for _, d := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
			p := t.Add(-d).In(loc)
			if p.Hour() == l.Hour() && p.Minute() == l.Minute() && p.Day() == l.Day() {
				repeat = true
			}
		}
		if repeat && !s.hourStar {
			continue
		}
		return t
	}
	return time.Time{}
}

func TestCronNextMatchesReference(t *testing.T) {
	locs := []*time.Location{time.UTC, mustLoad(t, "Europe/Paris"), mustLoad(t, "America/New_York"),
		mustLoad(t, "Australia/Lord_Howe"), mustLoad(t, "Asia/Kolkata")}
	exprs := []string{"* * * * *", "*/7 * * * *", "15 * * * *", "0,30 1-3 * * *", "45 2 * * *", "0 */5 * * *",
		"30 0-6 * * SUN", "5 1 1,15 * *", "59 23 * * *", "0 2,3 * 3,10,11 0"}
	// Start times around the 2026 changes of each zone.
	starts := []string{"2026-03-08 05:00:00", "2026-03-29 00:10:00", "2026-04-04 14:00:00", "2026-10-03 15:00:00",
		"2026-10-25 00:20:00", "2026-11-01 05:10:00", "2026-11-01 06:20:00", "2026-06-15 12:34:00"}
	for _, e := range exprs {
		s, err := Parse(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, loc := range locs {
			for _, st := range starts {
				at, _ := time.Parse("2006-01-02 15:04:05", st)
				at = at.Add(17 * time.Second)
				for range 30 {
					want := reference(s, at, loc, 40*24*time.Hour)
					got := s.Next(at, loc)
					if want.IsZero() {
						break
					}
					if !got.Equal(want) {
						t.Fatalf("Parse(%q).Next(%s, %s) = %s, want %s", e, at.UTC(), loc, got.UTC(), want.UTC())
					}
					at = got
				}
			}
		}
	}
}

func TestCronString(t *testing.T) {
	for _, e := range []string{"0 3 * * *", "@daily", "rate(5 minutes)", "@every 10s"} {
		s, err := Parse("  " + e + " ")
		if err != nil {
			t.Fatal(err)
		}
		if s.String() != e {
			t.Errorf("Parse(%q).String() = %q, want %q", e, s.String(), e)
		}
	}
	if s, _ := Parse("rate(5 minutes)"); s.Interval() != 5*time.Minute {
		t.Errorf("Interval() = %v, want 5m", s.Interval())
	}
	if s, _ := Parse("0 3 * * *"); s.Interval() != 0 {
		t.Errorf("Interval() = %v, want 0", s.Interval())
	}
	var zero Schedule
	if got := zero.Next(time.Now(), nil); !got.IsZero() {
		t.Errorf("Schedule{}.Next = %v, want the zero time", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "*/5 1-3,7 1,15 JAN-MAR MON-FRI", "@daily", "@every 90s", "rate(5 minutes)",
		"1 second", "0 0 29 2 *", "0 0 13 * 5", "? ? ? ? ?", "1-2/3 4 5 6 7", "0 2 * * 0"} {
		f.Add(s, int64(1774747800), uint8(1))
	}
	zones := []string{"UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"}
	var locs []*time.Location
	for _, z := range zones {
		if l, err := time.LoadLocation(z); err == nil {
			locs = append(locs, l)
		}
	}
	f.Fuzz(func(t *testing.T, expr string, unix int64, zone uint8) {
		s, err := Parse(expr)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cron: ") {
				t.Fatalf("Parse(%q) error %q does not start with cron:", expr, err)
			}
			return
		}
		// Keep times within years Go and the zone database handle.
		after := time.Unix(unix%(200*365*86400), 0).Add(time.Duration(unix%1e9) * time.Nanosecond)
		loc := locs[int(zone)%len(locs)]
		start := time.Now()
		for range 3 {
			next := s.Next(after, loc)
			if next.IsZero() {
				t.Fatalf("Parse(%q).Next(%s, %s) found no tick", expr, after, loc)
			}
			if !next.After(after) {
				t.Fatalf("Parse(%q).Next(%s, %s) = %s, not after", expr, after, loc, next)
			}
			after = next
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Parse(%q).Next took %s", expr, d)
		}
	})
}
