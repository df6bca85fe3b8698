package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/project"
)

func (a *app) scheduleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "schedule",
		Aliases: []string{"schedules"},
		Short:   "Invoke functions on a cron expression or at a rate",
		Long: "Create, list, pause, resume and remove schedules. Each tick of a schedule is one\n" +
			"asynchronous invocation of its function (with the function's retries and\n" +
			"destinations), fired once per tick whatever the number of nodes and restarts.\n\n" +
			"The event is EventBridge's scheduled event ({\"source\":\"aws.events\",\n" +
			"\"detail-type\":\"Scheduled Event\",\"time\":...}); with --payload the payload is sent\n" +
			"instead, as an EventBridge target's constant input, with <aws.scheduler.scheduled-time>,\n" +
			"<aws.scheduler.schedule-arn> and <aws.scheduler.execution-id> replaced.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %s: want create, ls, rm, pause or resume", args[0], cmd.CommandPath())
			}
			return usagef("%s needs a command: create, ls, rm, pause or resume", cmd.CommandPath())
		},
	}
	cmd.AddCommand(a.scheduleCreateCommand(), a.scheduleListCommand(), a.scheduleRemoveCommand(),
		a.schedulePauseCommand(true), a.schedulePauseCommand(false))
	return cmd
}

// rateExpression turns --rate's "5 minutes" into "rate(5 minutes)".
func rateExpression(rate string) string {
	r := strings.TrimSpace(rate)
	if strings.HasPrefix(strings.ToLower(r), "rate(") {
		return r
	}
	return "rate(" + r + ")"
}

func (a *app) scheduleCreateCommand() *cobra.Command {
	var req api.CreateScheduleRequest
	var cronExpr, rate, payload string
	cmd := &cobra.Command{
		Use:   "create NAME --function F (--cron EXPR | --rate \"5 minutes\")",
		Short: "Create a schedule",
		Long: "Create a schedule that invokes a function asynchronously.\n\n" +
			"--cron takes five fields (minute hour day-of-month month day-of-week, with\n" +
			"ranges, lists, steps and JAN-DEC/SUN-SAT names), a macro (@hourly, @daily,\n" +
			"@weekly, @monthly, @yearly) or @every DURATION (10s, 5m). --rate takes VALUE UNIT\n" +
			"(seconds, minutes, hours, days). Cron fields are read in --timezone (an IANA\n" +
			"name, default UTC). A tick fires up to 5 s late (a restart loses none); ticks\n" +
			"missed for longer, while every node was down, are skipped, or with --catch-up\n" +
			"fired late, oldest first (at most 1000).",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case cronExpr == "" && rate == "":
				return usagef("say when: --cron EXPR (\"0 3 * * *\", @daily, \"@every 10m\") or --rate \"5 minutes\"")
			case cronExpr != "" && rate != "":
				return usagef("--cron and --rate exclude each other")
			case req.Function == "":
				return usagef("--function is required: the function each tick invokes")
			}
			req.Name, req.Expression = args[0], cronExpr
			if rate != "" {
				req.Expression = rateExpression(rate)
			}
			if payload != "" {
				if !json.Valid([]byte(payload)) {
					return usagef("--payload is not valid JSON: %s", payload)
				}
				req.Payload = json.RawMessage(payload)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.CreateSchedule(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("schedule create %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, s)
			}
			fmt.Fprintf(a.env.Stdout, "created schedule %s: %s (%s) invokes %s", s.Name, s.Expression, s.Timezone, target(s))
			if s.NextFire != nil {
				fmt.Fprintf(a.env.Stdout, ", next at %s", formatTick(*s.NextFire))
			}
			fmt.Fprintln(a.env.Stdout)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Function, "function", "", "the function each tick invokes")
	f.StringVar(&req.Qualifier, "qualifier", "", "its version or alias (default $LATEST)")
	f.StringVar(&cronExpr, "cron", "", "cron expression: \"MIN HOUR DOM MON DOW\", @daily, \"@every 10m\"")
	f.StringVar(&rate, "rate", "", "rate: \"VALUE UNIT\", such as \"5 minutes\"")
	f.StringVar(&req.Timezone, "timezone", "", "IANA time zone the cron fields are read in (default UTC)")
	f.StringVar(&payload, "payload", "", "JSON event to send instead of EventBridge's scheduled event")
	f.BoolVar(&req.CatchUp, "catch-up", false, "fire the ticks missed while every node was down")
	f.BoolVar(&req.Paused, "paused", false, "create the schedule paused")
	return cmd
}

// target renders a schedule's function and qualifier.
func target(s api.Schedule) string {
	if s.Qualifier == "" {
		return s.Function
	}
	return s.Function + ":" + s.Qualifier
}

func formatTick(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 -0700") }

func (a *app) scheduleListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List schedules",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.ListSchedules(cmd.Context())
			if err != nil {
				return fmt.Errorf("schedule ls: %w", err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, list)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tFUNCTION\tEXPRESSION\tTIMEZONE\tSTATE\tNEXT\tLAST")
			for _, s := range list {
				state, next, last := "active", "-", "-"
				if s.Paused {
					state = "paused"
				}
				if s.CatchUp {
					state += ",catch-up"
				}
				if s.NextFire != nil {
					next = formatTick(*s.NextFire)
				}
				if s.LastFired != nil {
					last = formatTick(*s.LastFired)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, target(s), s.Expression, s.Timezone, state, next, last)
			}
			return w.Flush()
		},
	}
}

func (a *app) scheduleRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Remove a schedule",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteSchedule(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("schedule rm %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, map[string]string{"name": args[0], "action": "deleted"})
			}
			fmt.Fprintf(a.env.Stdout, "removed schedule %s\n", args[0])
			return nil
		},
	}
}

// schedulePauseCommand is `schedule pause` (pause) or `schedule resume`.
func (a *app) schedulePauseCommand(pause bool) *cobra.Command {
	use, short, verb := "pause NAME", "Stop a schedule's ticks until it is resumed", "paused"
	if !pause {
		use, short, verb = "resume NAME", "Start a paused schedule's ticks again (the ticks of the pause are not fired)", "resumed"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			op := c.ResumeSchedule
			if pause {
				op = c.PauseSchedule
			}
			s, err := op(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("schedule %s %s: %w", strings.Fields(use)[0], args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, s)
			}
			fmt.Fprintf(a.env.Stdout, "%s schedule %s", verb, s.Name)
			if s.NextFire != nil {
				fmt.Fprintf(a.env.Stdout, ", next at %s", formatTick(*s.NextFire))
			}
			fmt.Fprintln(a.env.Stdout)
			return nil
		},
	}
}

// projectScheduleResult is one schedule's line of a project deploy.
type projectScheduleResult struct {
	Name string `json:"Name"`
	// Action is created, updated, unchanged, failed, or skipped (a
	// function of the file failed, so no schedule was deployed).
	Action string `json:"Action"`
	// Changes names what an update changed: function, qualifier,
	// expression, timezone, payload, catch_up.
	Changes    []string   `json:"Changes,omitempty"`
	Function   string     `json:"Function"`
	Expression string     `json:"Expression"`
	NextFire   *time.Time `json:"NextFire,omitempty"`
	Paused     bool       `json:"Paused,omitempty"`
	Error      string     `json:"Error,omitempty"`
}

// deploySchedules creates or updates the project's schedules (after its
// functions; skipped when one of them failed). Schedules the file does not
// name are left alone, and so is whether a schedule is paused.
func (a *app) deploySchedules(ctx context.Context, c *client.Client, scheds []*project.Schedule, skip bool) []projectScheduleResult {
	results := make([]projectScheduleResult, len(scheds))
	parallel(len(scheds), func(i int) {
		s := scheds[i]
		if skip {
			results[i] = projectScheduleResult{Name: s.Name, Action: actionSkipped, Function: projectTarget(s), Expression: s.Expression}
			return
		}
		r, err := deploySchedule(ctx, c, s)
		if err != nil {
			r.Action, r.Error = actionFailed, err.Error()
		}
		results[i] = r
	})
	return results
}

func projectTarget(s *project.Schedule) string {
	return target(api.Schedule{Function: s.Function, Qualifier: s.Qualifier})
}

func deploySchedule(ctx context.Context, c *client.Client, s *project.Schedule) (projectScheduleResult, error) {
	r := projectScheduleResult{Name: s.Name, Action: actionUnchanged, Function: projectTarget(s), Expression: s.Expression}
	have, err := c.GetSchedule(ctx, s.Name)
	if isAPIError(err, api.ErrResourceNotFound) {
		got, err := c.CreateSchedule(ctx, api.CreateScheduleRequest{Name: s.Name, Function: s.Function, Qualifier: s.Qualifier,
			Expression: s.Expression, Timezone: s.Timezone, Payload: s.Payload, CatchUp: s.CatchUp})
		if err != nil {
			return r, fmt.Errorf("create: %w", err)
		}
		r.Action, r.NextFire = actionCreated, got.NextFire
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("read the schedule: %w", err)
	}
	tz := s.Timezone
	if tz == "" {
		tz = "UTC"
	}
	add := func(changed bool, what string) {
		if changed {
			r.Changes = append(r.Changes, what)
		}
	}
	add(have.Function != s.Function, "function")
	add(have.Qualifier != s.Qualifier, "qualifier")
	add(have.Expression != s.Expression, "expression")
	add(have.Timezone != tz, "timezone")
	add(!sameJSON(have.Payload, s.Payload), "payload")
	add(have.CatchUp != s.CatchUp, "catch_up")
	r.NextFire, r.Paused = have.NextFire, have.Paused
	if len(r.Changes) == 0 {
		return r, nil
	}
	payload := s.Payload
	if payload == nil {
		payload = json.RawMessage("null")
	}
	got, err := c.UpdateSchedule(ctx, s.Name, api.UpdateScheduleRequest{Function: &s.Function, Qualifier: &s.Qualifier,
		Expression: &s.Expression, Timezone: &s.Timezone, Payload: payload, CatchUp: &s.CatchUp})
	if err != nil {
		return r, fmt.Errorf("update: %w", err)
	}
	r.Action, r.NextFire = actionUpdated, got.NextFire
	return r, nil
}

// sameJSON reports whether two JSON documents (nil for none) are equal as
// values.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}

// writeScheduleResults prints a project deploy's schedules as a table
// (nothing with -o json, where they are part of the document).
func (a *app) writeScheduleResults(results []projectScheduleResult) error {
	if a.output == outputJSON || len(results) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SCHEDULE\tACTION\tFUNCTION\tEXPRESSION\tDETAILS")
	for _, r := range results {
		details := strings.Join(r.Changes, ",")
		switch {
		case r.Error != "":
			details = "error: " + firstLine(r.Error)
		case r.Paused:
			details = strings.TrimPrefix(details+",paused", ",")
		case r.NextFire != nil && details == "":
			details = "next " + formatTick(*r.NextFire)
		}
		if details == "" {
			details = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Action, r.Function, r.Expression, details)
	}
	return w.Flush()
}
