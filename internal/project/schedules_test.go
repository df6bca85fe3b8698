package project

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSchedules(t *testing.T) {
	dir := testDir(t)
	yml := `functions:
  greet:
    code: ./greet
    alias: prod
schedules:
  nightly:
    function: greet
    cron: "0 3 * * *"
    timezone: Europe/Paris
    payload: {job: backup, n: 2, tags: [a, b]}
    catch_up: true
  often:
    function: other
    rate: 5 minutes
  pinned:
    function: greet
    qualifier: "3"
    rate: rate(1 hour)
`
	proj, err := Parse(filepath.Join(dir, "gust.yaml"), []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	want := []*Schedule{
		{Name: "nightly", Line: 6, Function: "greet", Qualifier: "prod", Expression: "0 3 * * *", Timezone: "Europe/Paris",
			Payload: []byte(`{"job":"backup","n":2,"tags":["a","b"]}`), CatchUp: true},
		{Name: "often", Line: 12, Function: "other", Expression: "rate(5 minutes)"},
		{Name: "pinned", Line: 15, Function: "greet", Qualifier: "3", Expression: "rate(1 hour)"},
	}
	if diff := cmp.Diff(want, proj.Schedules); diff != "" {
		t.Errorf("Schedules (-want +got):\n%s", diff)
	}
}

func TestParseScheduleErrors(t *testing.T) {
	dir := testDir(t)
	head := "functions:\n  greet:\n    code: ./greet\nschedules:\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"not a mapping", "schedules: [a]\n", "gust.yaml:4: schedules: want a mapping of schedule names to schedules"},
		{"bad name", "  a.b:\n    function: greet\n    rate: 1 minute\n", "gust.yaml:5: schedules.a.b: invalid schedule name"},
		{"no function", "  s:\n    rate: 1 minute\n", "gust.yaml:5: schedules.s.function: missing"},
		{"no when", "  s:\n    function: greet\n", "gust.yaml:5: schedules.s: missing: say when"},
		{"both", "  s:\n    function: greet\n    cron: '@daily'\n    rate: 1 minute\n", "gust.yaml:8: schedules.s.rate: cron: and rate: exclude each other"},
		{"bad cron", "  s:\n    function: greet\n    cron: 0 25 * * *\n", "gust.yaml:7: schedules.s.cron: field 'hour': 25 is outside 0-23"},
		{"bad rate", "  s:\n    function: greet\n    rate: 5 weeks\n", `gust.yaml:7: schedules.s.rate: unknown unit "weeks"`},
		{"bad zone", "  s:\n    function: greet\n    rate: 1 hour\n    timezone: Europe/Atlantis\n", `gust.yaml:8: schedules.s.timezone: unknown time zone "Europe/Atlantis"`},
		{"bad catch_up", "  s:\n    function: greet\n    rate: 1 hour\n    catch_up: sometimes\n", "gust.yaml:8: schedules.s.catch_up: want true or false"},
		{"unknown field", "  s:\n    function: greet\n    rate: 1 hour\n    every: 1\n", "gust.yaml:8: schedules.s.every: unknown field"},
		{"payload keys", "  s:\n    function: greet\n    rate: 1 hour\n    payload: {1: a, [x]: b}\n", "gust.yaml:8: schedules.s.payload:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + tt.yaml
			if strings.HasPrefix(tt.yaml, "schedules:") {
				src = strings.TrimSuffix(head, "schedules:\n") + tt.yaml
			}
			_, err := Parse(filepath.Join(dir, "gust.yaml"), []byte(src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
