package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/api"
)

func (a *app) publishCommand() *cobra.Command {
	var headerFlags []string
	cmd := &cobra.Command{
		Use:   "publish SUBJECT DATA",
		Short: "Publish a message on the node's NATS",
		Long: "Publish a message on a NATS subject of the node (DATA, or - to read it from stdin;\n" +
			"at most 1 MiB). When a stream stores the subject (see `gust stream`), the message\n" +
			"is stored durably and the stream and sequence are printed; otherwise it goes to\n" +
			"core NATS, which delivers it to whoever subscribes at that moment and keeps\n" +
			"nothing. Queue triggers consume both.\n\n" +
			"A subject is tokens separated by dots (orders.created), with no wildcard, space\n" +
			"or empty token; subjects starting with $ or _INBOX. and those under gust. are\n" +
			"refused (except gust.queue.NAME, a Gust queue). --header NAME=VALUE (repeated)\n" +
			"adds NATS headers; Nats-Msg-Id makes a stream drop a repeat of the message.",
		Args: exactArgs("SUBJECT", "DATA"),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject := args[0]
			headers, err := parseHeaderFlags(headerFlags)
			if err != nil {
				return err
			}
			data := []byte(args[1])
			if args[1] == "-" {
				if data, err = io.ReadAll(io.LimitReader(a.env.Stdin, api.MaxPublishBytes+1)); err != nil {
					return fmt.Errorf("read the message from stdin: %w", err)
				}
			}
			if len(data) > api.MaxPublishBytes {
				return fmt.Errorf("publish %s: the message is over %d bytes (1 MiB)", subject, api.MaxPublishBytes)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Publish(cmd.Context(), subject, data, headers)
			if err != nil {
				return fmt.Errorf("publish %s: %w", subject, err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, res)
			}
			switch {
			case res.Stream == "":
				fmt.Fprintln(a.env.Stdout, "published (no stream captured it)")
			case res.Duplicate:
				fmt.Fprintf(a.env.Stdout, "duplicate: stream %s has it already, sequence %d\n", res.Stream, res.Sequence)
			default:
				fmt.Fprintf(a.env.Stdout, "published to stream %s, sequence %d\n", res.Stream, res.Sequence)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&headerFlags, "header", nil, "a NATS header NAME=VALUE (repeat for more)")
	return cmd
}

// parseHeaderFlags reads --header NAME=VALUE flags.
func parseHeaderFlags(flags []string) (map[string][]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	h := map[string][]string{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("--header %q: want NAME=VALUE", f)
		}
		if strings.ContainsAny(k, ": \t") {
			return nil, usagef("--header %q: the name %q has ':' or a space", f, k)
		}
		h[k] = append(h[k], v)
	}
	return h, nil
}

func (a *app) streamCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "stream",
		Aliases: []string{"streams"},
		Short:   "Manage the streams queue triggers read",
		Long: "Create, list and remove queue streams: JetStream streams on the node that store\n" +
			"the messages published on their subjects (file storage, kept for --max-age,\n" +
			"7 days by default) until queue triggers consume them, at least once.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %s: want create, ls or rm", args[0], cmd.CommandPath())
			}
			return usagef("%s needs a command: create, ls or rm", cmd.CommandPath())
		},
	}
	cmd.AddCommand(a.streamCreateCommand(), a.streamListCommand(), a.streamRemoveCommand())
	return cmd
}

func (a *app) streamCreateCommand() *cobra.Command {
	var subjects []string
	var maxAge time.Duration
	cmd := &cobra.Command{
		Use:   "create NAME --subjects SUBJECT[,SUBJECT...]",
		Short: "Create a queue stream, or change its subjects and max age",
		Long: "Create a queue stream storing the messages published on --subjects (wildcards\n" +
			"allowed: orders.> is every subject under orders., events.*.created one token in\n" +
			"the middle). Run again with the same NAME to change the subjects or the max age.\n" +
			"NAME is letters, digits, '-' and '_' (not GUST_*, KV_* or OBJ_*, Gust's own).",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(subjects) == 0 {
				return usagef("--subjects is required: the subjects the stream stores (orders.>,invoices.*)")
			}
			if maxAge < 0 || maxAge%time.Second != 0 {
				return usagef("--max-age %s: want a whole number of seconds or more (168h, 30m)", maxAge)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.PutStream(cmd.Context(), args[0], api.PutStreamRequest{Subjects: subjects, MaxAgeSeconds: int64(maxAge / time.Second)})
			if err != nil {
				return fmt.Errorf("stream create %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, s)
			}
			fmt.Fprintf(a.env.Stdout, "stream %s stores %s for %s (%d messages)\n", s.Name, strings.Join(s.Subjects, ", "),
				formatAge(s.MaxAgeSeconds), s.Messages)
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&subjects, "subjects", nil, "subjects the stream stores, comma-separated")
	cmd.Flags().DurationVar(&maxAge, "max-age", 0, "how long a message is kept (default 168h, 7 days)")
	return cmd
}

// formatAge renders seconds as "7d", "36h", "90m" or "45s".
func formatAge(sec int64) string {
	d := time.Duration(sec) * time.Second
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", sec)
}

func (a *app) streamListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List queue streams",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.ListStreams(cmd.Context())
			if err != nil {
				return fmt.Errorf("stream ls: %w", err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, list)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSUBJECTS\tMESSAGES\tSIZE\tMAX AGE\tCONSUMERS")
			for _, s := range list {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%d\n", s.Name, strings.Join(s.Subjects, ","), s.Messages,
					humanBytes(int64(s.Bytes)), formatAge(s.MaxAgeSeconds), s.Consumers)
			}
			return w.Flush()
		},
	}
}

func (a *app) streamRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Remove a queue stream and its messages",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteStream(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("stream rm %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, map[string]string{"name": args[0], "action": "deleted"})
			}
			fmt.Fprintf(a.env.Stdout, "removed stream %s\n", args[0])
			return nil
		},
	}
}
