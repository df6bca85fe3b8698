package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/client"
)

// invokeAsync queues an invocation for `gust invoke NAME --async` and
// prints its request id (`-o json`: {"requestId", "duplicate"}).
func (a *app) invokeAsync(cmd *cobra.Command, name string, payload []byte, idempotencyKey string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	acc, err := c.InvokeAsync(cmd.Context(), name, payload, client.AsyncOptions{IdempotencyKey: idempotencyKey})
	if err != nil {
		return fmt.Errorf("invoke %s: %w", name, err)
	}
	if a.output == outputJSON {
		return writeJSON(a.env.Stdout, acc)
	}
	fmt.Fprintln(a.env.Stdout, acc.RequestID)
	if acc.Duplicate {
		fmt.Fprintf(a.env.Stderr, "gust: the idempotency key repeats an earlier invocation of %s: nothing new was queued\n", name)
	}
	return nil
}

// invocationCommand is `gust invocation ID`: an asynchronous invocation's
// record.
func (a *app) invocationCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "invocation ID",
		Short: "Show an asynchronous invocation's record",
		Long: "Show the record of an asynchronous invocation (gust invoke --async prints its\n" +
			"request id): its status (queued, running, succeeded, failed, dead-lettered),\n" +
			"attempts, times and error.",
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			rec, err := c.Invocation(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("invocation %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, rec)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 1, ' ', 0)
			line := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
			when := func(k string, t time.Time) {
				if !t.IsZero() {
					line(k, t.Local().Format(time.RFC3339Nano))
				}
			}
			line("request id", rec.ID)
			fn := rec.Function
			if rec.Qualifier != "" {
				fn += ":" + rec.Qualifier
			}
			line("function", fn)
			if rec.Version != "" {
				line("version", rec.Version)
			}
			line("status", rec.Status)
			line("attempts", fmt.Sprint(rec.Attempts))
			if rec.Throttles > 0 {
				line("throttles", fmt.Sprint(rec.Throttles))
			}
			when("enqueued", rec.Enqueued)
			when("started", rec.Started)
			when("finished", rec.Finished)
			when("next attempt", rec.NextAttempt)
			if rec.Reason != "" {
				line("reason", rec.Reason)
			}
			if rec.Error != nil {
				line("error", rec.Error.Type+": "+rec.Error.Message)
			}
			if rec.DeadLetter != "" {
				line("dead letter", rec.DeadLetter)
			}
			if rec.Source != "" {
				line("source", rec.Source)
			}
			if rec.Replay > 0 {
				line("replay", fmt.Sprint(rec.Replay))
			}
			return w.Flush()
		},
	}
}
