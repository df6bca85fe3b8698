package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func (a *app) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and replay failed asynchronous invocations",
		Long: "Inspect and replay a function's dead letters: asynchronous invocations that failed\n" +
			"for good (retries exhausted, or older than MaximumEventAgeInSeconds) while the\n" +
			"function had neither a DeadLetterConfig nor an on-failure destination. Gust keeps\n" +
			"them in its built-in dead-letter stream so none is lost silently.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %s: want ls or replay", args[0], cmd.CommandPath())
			}
			return usagef("%s needs a command: ls or replay", cmd.CommandPath())
		},
	}
	cmd.AddCommand(a.dlqListCommand(), a.dlqReplayCommand())
	return cmd
}

func (a *app) dlqListCommand() *cobra.Command {
	var payload bool
	cmd := &cobra.Command{
		Use:     "ls NAME",
		Aliases: []string{"list"},
		Short:   "List a function's dead letters, oldest first",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			letters, err := c.ListDeadLetters(cmd.Context(), args[0], payload)
			if err != nil {
				return fmt.Errorf("dlq ls %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, letters)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tTIME\tATTEMPTS\tCONDITION\tSIZE\tERROR")
			for _, d := range letters {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%s\n", d.ID, d.Time.Local().Format("2006-01-02 15:04:05 -0700"), d.Attempts, d.Condition, d.PayloadSize, d.Error)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&payload, "payload", false, "include each event (with -o json)")
	return cmd
}

func (a *app) dlqReplayCommand() *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "replay NAME [--id ID]",
		Short: "Enqueue a function's dead letters again (all, or one with --id)",
		Long: "Enqueue a function's dead letters again as new asynchronous invocations, with\n" +
			"fresh retries and event age, and remove them from the dead-letter stream.",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			replayed, err := c.ReplayDeadLetters(cmd.Context(), args[0], id)
			if err != nil {
				return fmt.Errorf("dlq replay %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, replayed)
			}
			for _, r := range replayed {
				fmt.Fprintf(a.env.Stdout, "replayed %s as request %s\n", r.ID, r.RequestID)
			}
			if len(replayed) == 0 {
				fmt.Fprintf(a.env.Stdout, "%s has no dead letters\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "replay only this dead letter")
	return cmd
}
