package cli

// Triggers: `gust trigger` creates, lists, shows and removes event-source
// triggers, and a project deploy creates or replaces the project file's.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/project"
	"github.com/gustfaas/gust/internal/registry"
)

func (a *app) triggerCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "trigger",
		Aliases: []string{"triggers"},
		Short:   "Invoke functions on bucket changes, NATS messages or PostgreSQL row changes",
		Long: "Create, list, show and remove triggers: event sources wired to a function.\n\n" +
			"A KV or object bucket's changes each become an asynchronous invocation (with the\n" +
			"function's retries and destinations). Messages of a NATS subject or JetStream\n" +
			"stream, and row changes of PostgreSQL tables (by logical replication), invoke the\n" +
			"function synchronously with batches of events; a batch that keeps failing is\n" +
			"retried event by event, and an event that still fails goes to the dead letters.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %s: want create, ls, get or rm", args[0], cmd.CommandPath())
			}
			return usagef("%s needs a command: create, ls, get or rm", cmd.CommandPath())
		},
	}
	cmd.AddCommand(a.triggerCreateCommand(), a.triggerListCommand(), a.triggerGetCommand(), a.triggerRemoveCommand())
	return cmd
}

// triggerFlags are the flags of `gust trigger create`.
type triggerFlags struct {
	function, qualifier     string
	postgres, kv, objects   string
	subject, stream         string
	tables, events          []string
	prefix, filterSubject   string
	url                     string
	batchSize, concurrency  int
	maxDeliver, maxAttempts int
	batchWindow             time.Duration
	replace                 bool
}

// triggerSourceFlags are the flags that choose a trigger's source.
var triggerSourceFlags = []string{"postgres", "kv", "objects", "subject", "stream"}

// triggerFlagSources says which sources each setting flag applies to.
var triggerFlagSources = map[string][]string{
	"table":          {"postgres"},
	"max-attempts":   {"postgres"},
	"events":         {"postgres", "kv", "objects"},
	"prefix":         {"kv", "objects"},
	"batch-size":     {"postgres", "subject", "stream"},
	"batch-window":   {"postgres", "subject", "stream"},
	"url":            {"subject", "stream"},
	"concurrency":    {"subject", "stream"},
	"filter-subject": {"stream"},
	"max-deliver":    {"stream"},
}

func (a *app) triggerCreateCommand() *cobra.Command {
	o := &triggerFlags{}
	cmd := &cobra.Command{
		Use: "create NAME --function F (--postgres DSN --table T | --kv BUCKET | --objects BUCKET | --subject S | --stream NAME) [flags]",
		Example: "  gust trigger create orders --postgres \"$ORDERS_DSN\" --table public.orders --events insert,update,delete --function audit\n" +
			"  gust trigger create on-upload --objects photos --prefix in/ --events created --function thumbnail --qualifier live\n" +
			"  gust trigger create jobs --stream JOBS --batch-size 10 --concurrency 2 --function worker",
		Short: "Create a trigger (with --replace, create or replace it)",
		Long: "Create a trigger named NAME (1 to 64 letters, digits, '-' and '_') that invokes\n" +
			"--function (at --qualifier, default $LATEST) on events from one source:\n\n" +
			"  --postgres DSN      row changes of the --table(s) (schema.table; repeat or separate\n" +
			"                      with commas), by logical replication; --events insert,update,delete\n" +
			"                      (default all), --batch-size (default 100), --batch-window,\n" +
			"                      --max-attempts. --postgres - reads the DSN from stdin, which keeps\n" +
			"                      its password out of the process list. The node stores it\n" +
			"                      encrypted and never shows it back.\n" +
			"  --kv BUCKET         puts and deletes in a KV bucket; --prefix, --events put,delete\n" +
			"  --objects BUCKET    objects created and deleted in an object bucket; --prefix,\n" +
			"                      --events created,deleted\n" +
			"  --subject S         messages of a NATS subject (at most once)\n" +
			"  --stream NAME       messages of a JetStream stream (at least once); --filter-subject,\n" +
			"                      --max-deliver\n\n" +
			"Subjects and streams are read on the node's NATS, or --url's; --batch-size (default\n" +
			"10), --batch-window and --concurrency (default 1: batches in order) apply to both.\n" +
			"With --replace an existing trigger is replaced; one that reads the same source\n" +
			"resumes where the old one stopped.",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := o.trigger(cmd.Flags(), args[0], a.env.Stdin)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			op, verb := c.CreateTrigger, "created"
			if o.replace {
				op, verb = c.PutTrigger, "put"
			}
			got, err := op(cmd.Context(), t)
			if err != nil {
				return fmt.Errorf("trigger create %s: %w", t.Name, err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, got)
			}
			fmt.Fprintf(a.env.Stdout, "%s trigger %s: %s %s invokes %s\n", verb, got.Name, got.Kind(), describeTriggerSource(got), triggerTarget(got))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.function, "function", "", "the function the trigger invokes (required)")
	f.StringVar(&o.qualifier, "qualifier", "", "its version or alias (default $LATEST)")
	f.StringVar(&o.postgres, "postgres", "", "read row changes from this PostgreSQL `DSN` (- reads it from stdin)")
	f.StringVar(&o.kv, "kv", "", "fire on changes of this KV `bucket`")
	f.StringVar(&o.objects, "objects", "", "fire on changes of this object `bucket`")
	f.StringVar(&o.subject, "subject", "", "consume this NATS `subject` (wildcards * and > allowed)")
	f.StringVar(&o.stream, "stream", "", "consume this JetStream `stream`")
	f.StringSliceVar(&o.tables, "table", nil, "with --postgres: a table, schema.table (repeatable, or comma-separated)")
	f.StringSliceVar(&o.events, "events", nil, "events to fire on, comma-separated: insert,update,delete (--postgres), put,delete (--kv), created,deleted (--objects); default all")
	f.StringVar(&o.prefix, "prefix", "", "with --kv or --objects: only keys starting with this")
	f.StringVar(&o.filterSubject, "filter-subject", "", "with --stream: only the stream's messages on this subject")
	f.StringVar(&o.url, "url", "", "with --subject or --stream: the NATS server (default: the node's own)")
	f.IntVar(&o.batchSize, "batch-size", 0, "most events per invocation (default 10 for queues, 100 for --postgres)")
	f.DurationVar(&o.batchWindow, "batch-window", 0, "how long a batch may wait to fill, such as 100ms (default 0)")
	f.IntVar(&o.concurrency, "concurrency", 0, "with --subject or --stream: batches at once (default 1, in order)")
	f.IntVar(&o.maxDeliver, "max-deliver", 0, "with --stream: tries of a message before it is dead-lettered (default 3)")
	f.IntVar(&o.maxAttempts, "max-attempts", 0, "with --postgres: tries of a change before it is dead-lettered (default 3)")
	f.BoolVar(&o.replace, "replace", false, "replace the trigger if it exists (keeping its position when it reads the same source)")
	return cmd
}

// trigger builds the trigger the flags describe, refusing flags that do
// not fit together; stdin is read for --postgres -.
func (o *triggerFlags) trigger(f *pflag.FlagSet, name string, stdin io.Reader) (api.Trigger, error) {
	t := api.Trigger{Name: name, Function: o.function, Qualifier: o.qualifier}
	if !project.ValidTriggerName(name) {
		return t, usagef("trigger name %q is invalid: use 1 to %d letters, digits, '-' or '_'", name, project.MaxTriggerNameLen)
	}
	if o.function == "" {
		return t, usagef("--function is required: the function the trigger invokes")
	}
	if err := registry.ValidateName(o.function); err != nil {
		return t, usagef("--function %q is not a valid function name (letters, digits, '-' and '_', at most 64)", o.function)
	}
	if o.qualifier != "" && registry.ValidateQualifier(o.qualifier) != nil {
		return t, usagef("--qualifier %q is not a version or alias name", o.qualifier)
	}
	var source string
	for _, s := range triggerSourceFlags {
		if !f.Changed(s) {
			continue
		}
		if source != "" {
			return t, usagef("--%s and --%s exclude each other: a trigger has one source", source, s)
		}
		source = s
	}
	if source == "" {
		return t, usagef("name the source: --postgres DSN --table T, --kv BUCKET, --objects BUCKET, --subject S or --stream NAME")
	}
	for _, flag := range slices.Sorted(maps.Keys(triggerFlagSources)) {
		if sources := triggerFlagSources[flag]; f.Changed(flag) && !slices.Contains(sources, source) {
			return t, usagef("--%s does not apply to --%s (it applies to --%s)", flag, source, strings.Join(sources, ", --"))
		}
	}
	if f.Changed("batch-size") && (o.batchSize < 1 || o.batchSize > project.MaxBatchSize) {
		return t, usagef("--batch-size %d: want 1 to %d", o.batchSize, project.MaxBatchSize)
	}
	if f.Changed("concurrency") && (o.concurrency < 1 || o.concurrency > project.MaxConcurrency) {
		return t, usagef("--concurrency %d: want 1 to %d", o.concurrency, project.MaxConcurrency)
	}
	if f.Changed("max-deliver") && (o.maxDeliver < 1 || o.maxDeliver > api.MaxQueueDeliver) {
		return t, usagef("--max-deliver %d: want 1 to %d", o.maxDeliver, api.MaxQueueDeliver)
	}
	if f.Changed("max-attempts") && (o.maxAttempts < 1 || o.maxAttempts > api.MaxPostgresAttempts) {
		return t, usagef("--max-attempts %d: want 1 to %d", o.maxAttempts, api.MaxPostgresAttempts)
	}
	window := 0
	if f.Changed("batch-window") {
		if o.batchWindow < 0 || o.batchWindow > project.MaxBatchWindow || o.batchWindow%time.Millisecond != 0 {
			return t, usagef("--batch-window %s: want whole milliseconds from 0 to %s", o.batchWindow, project.MaxBatchWindow)
		}
		window = int(o.batchWindow / time.Millisecond)
	}
	events, err := triggerEvents(o.events, source)
	if err != nil {
		return t, err
	}
	switch source {
	case "postgres":
		dsn := o.postgres
		if dsn == "-" {
			line, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
			if err != nil && err != io.EOF {
				return t, fmt.Errorf("--postgres -: read the DSN from stdin: %w", err)
			}
			dsn = strings.TrimSpace(line)
		}
		if dsn == "" {
			return t, usagef("--postgres: the DSN is empty (postgres://user:password@host/db, or - to read it from stdin)")
		}
		if len(o.tables) == 0 {
			return t, usagef("--table is required with --postgres: the tables whose row changes fire the trigger (public.orders)")
		}
		for _, tb := range o.tables {
			if !project.ValidTableName(tb) {
				return t, usagef("--table %q: want schema.table or table (letters, digits, _ and $)", tb)
			}
		}
		t.Postgres = &api.PostgresSource{DSN: dsn, Tables: o.tables, Events: events, BatchSize: o.batchSize,
			BatchWindowMs: window, MaxAttempts: o.maxAttempts}
	case "kv", "objects":
		bucket := o.kv
		if source == "objects" {
			bucket = o.objects
		}
		if err := registry.ValidateBucketName(bucket); err != nil {
			return t, usagef("--%s: %v", source, err)
		}
		if source == "kv" {
			t.KV = &api.KVSource{Bucket: bucket, Prefix: o.prefix, Events: events}
		} else {
			t.Objects = &api.ObjectsSource{Bucket: bucket, Prefix: o.prefix, Events: events}
		}
	default:
		q := &api.QueueSource{URL: o.url, Subject: o.subject, Stream: o.stream, FilterSubject: o.filterSubject,
			BatchSize: o.batchSize, BatchWindowMs: window, Concurrency: o.concurrency, MaxDeliver: o.maxDeliver}
		if q.Subject == "" && q.Stream == "" {
			return t, usagef("--%s is empty", source)
		}
		if f.Changed("url") {
			if u, err := url.Parse(o.url); err != nil || u.Host == "" {
				return t, usagef("--url: want a NATS server URL such as nats://host:4222")
			}
		}
		t.Queue = q
	}
	return t, nil
}

// triggerEvents checks --events against what the source fires.
func triggerEvents(events []string, source string) ([]string, error) {
	kind := source
	if kind == "subject" || kind == "stream" {
		return nil, nil
	}
	allowed := project.EventsOf(kind)
	var out []string
	for _, e := range events {
		e = strings.TrimSpace(e)
		if !slices.Contains(allowed, e) {
			return nil, usagef("--events: unknown event %q for --%s: want %s", e, source, strings.Join(allowed, ","))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// triggerTarget renders a trigger's function and qualifier.
func triggerTarget(t api.Trigger) string {
	if t.Qualifier == "" {
		return t.Function
	}
	return t.Function + ":" + t.Qualifier
}

// describeTriggerSource renders where a trigger's events come from:
// "photos in/* [created]", "stream JOBS", "public.orders on postgres://gust@db/shop".
func describeTriggerSource(t api.Trigger) string {
	var b strings.Builder
	bucket := func(name, prefix string, events []string) {
		b.WriteString(name)
		if prefix != "" {
			b.WriteString(" " + prefix + "*")
		}
		if len(events) > 0 {
			b.WriteString(" [" + strings.Join(events, ",") + "]")
		}
	}
	switch {
	case t.KV != nil:
		bucket(t.KV.Bucket, t.KV.Prefix, t.KV.Events)
	case t.Objects != nil:
		bucket(t.Objects.Bucket, t.Objects.Prefix, t.Objects.Events)
	case t.Queue != nil:
		q := t.Queue
		if q.Stream != "" {
			b.WriteString("stream " + q.Stream)
			if q.FilterSubject != "" {
				b.WriteString(" (" + q.FilterSubject + ")")
			}
		} else {
			b.WriteString("subject " + q.Subject)
		}
		if q.URL != "" {
			b.WriteString(" at " + q.URL)
		}
	case t.Postgres != nil:
		pg := t.Postgres
		b.WriteString(strings.Join(pg.Tables, ","))
		if len(pg.Events) > 0 {
			b.WriteString(" [" + strings.Join(pg.Events, ",") + "]")
		}
		if pg.DSNRedacted != "" {
			b.WriteString(" on " + pg.DSNRedacted)
		}
	}
	return b.String()
}

// describeLag renders a PostgreSQL trigger's lag, or "-".
func describeLag(s api.TriggerStatus) string {
	if s.LagBytes == nil && s.LagSeconds == nil {
		return "-"
	}
	var parts []string
	if s.LagBytes != nil {
		parts = append(parts, humanBytes(*s.LagBytes))
	}
	if s.LagSeconds != nil {
		parts = append(parts, (time.Duration(math.Round(*s.LagSeconds*10)) * 100 * time.Millisecond).String())
	}
	return strings.Join(parts, ", ")
}

func (a *app) triggerListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List triggers, with how each runs on the node",
		Long: "List triggers: NAME KIND FUNCTION SOURCE STATE DELIVERED DEAD LAG. DELIVERED and DEAD\n" +
			"count events handed to the function and dead-lettered since the node started; LAG\n" +
			"is how far a PostgreSQL trigger's replication slot is behind. Each trigger's last\n" +
			"error follows the table.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.ListTriggers(cmd.Context())
			if err != nil {
				return fmt.Errorf("trigger ls: %w", err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, api.TriggerList{Triggers: list})
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tKIND\tFUNCTION\tSOURCE\tSTATE\tDELIVERED\tDEAD\tLAG")
			for _, s := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.Name, s.Kind(), triggerTarget(s.Trigger),
					describeTriggerSource(s.Trigger), s.State, s.Delivered, s.DeadLettered, describeLag(s))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for _, s := range list {
				if s.Error != "" {
					fmt.Fprintf(a.env.Stdout, "%s: error: %s\n", s.Name, s.Error)
				}
			}
			return nil
		},
	}
}

func (a *app) triggerGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a trigger and how it runs on the node",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.GetTrigger(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("trigger get %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, s)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			line := func(k, v string) {
				if v != "" {
					fmt.Fprintf(w, "%s:\t%s\n", k, v)
				}
			}
			num := func(n int) string {
				if n == 0 {
					return ""
				}
				return strconv.Itoa(n)
			}
			line("name", s.Name)
			line("kind", s.Kind())
			line("function", triggerTarget(s.Trigger))
			line("source", describeTriggerSource(s.Trigger))
			switch {
			case s.Queue != nil:
				line("batch size", num(s.Queue.BatchSize))
				line("batch window", windowString(s.Queue.BatchWindowMs))
				line("concurrency", num(s.Queue.Concurrency))
				line("max deliver", num(s.Queue.MaxDeliver))
			case s.Postgres != nil:
				line("batch size", num(s.Postgres.BatchSize))
				line("batch window", windowString(s.Postgres.BatchWindowMs))
				line("max attempts", num(s.Postgres.MaxAttempts))
			}
			line("state", s.State)
			line("error", s.Error)
			line("delivered", strconv.FormatUint(s.Delivered, 10))
			line("dead-lettered", strconv.FormatUint(s.DeadLettered, 10))
			if lag := describeLag(s); lag != "-" {
				line("lag", lag)
			}
			line("resource", s.Resource)
			if !s.Created.IsZero() {
				line("created", formatTick(s.Created))
			}
			return w.Flush()
		},
	}
}

func windowString(ms int) string {
	if ms == 0 {
		return ""
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

func (a *app) triggerRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Remove a trigger and what it holds at its source (a replication slot, a consumer)",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteTrigger(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("trigger rm %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, map[string]string{"name": args[0], "action": "deleted"})
			}
			fmt.Fprintf(a.env.Stdout, "removed trigger %s\n", args[0])
			return nil
		},
	}
}

// Actions of a project deploy's triggers, besides those of functions.
const actionReplaced = "replaced"

// projectTriggerResult is one trigger's line of a project deploy.
type projectTriggerResult struct {
	Name string `json:"Name"`
	Kind string `json:"Kind"`
	// Action is created, updated (it differed), replaced (put again with
	// --replace-triggers), unchanged, failed, or skipped (a function or
	// bucket of the file failed, so no trigger was deployed).
	Action string `json:"Action"`
	// Changes names what an update changed: function, qualifier, source
	// (another kind), bucket, prefix, events, url, subject, stream,
	// filter_subject, batch_size, batch_window, concurrency, max_deliver,
	// dsn, tables, max_attempts.
	Changes  []string `json:"Changes,omitempty"`
	Function string   `json:"Function"`
	Source   string   `json:"Source"`
	Error    string   `json:"Error,omitempty"`
}

// deployTriggers creates or replaces the project's triggers (after its
// functions and schedules; skipped when skip). Triggers the file does not
// name are left alone.
func (a *app) deployTriggers(ctx context.Context, c *client.Client, triggers []*project.Trigger, skip, replace bool) []projectTriggerResult {
	results := make([]projectTriggerResult, len(triggers))
	parallel(len(triggers), func(i int) {
		t := triggers[i].Trigger
		if skip {
			results[i] = projectTriggerResult{Name: t.Name, Kind: t.Kind(), Action: actionSkipped, Function: triggerTarget(t), Source: describeTriggerSource(redacted(t))}
			return
		}
		r, err := deployTrigger(ctx, c, t, replace)
		if err != nil {
			r.Action, r.Error = actionFailed, err.Error()
		}
		results[i] = r
	})
	return results
}

// redacted is t as a node answers it: the DSN without its password.
func redacted(t api.Trigger) api.Trigger {
	if t.Postgres != nil {
		pg := *t.Postgres
		pg.DSNRedacted, pg.DSN = dsnWithoutPassword(pg.DSN), ""
		t.Postgres = &pg
	}
	return t
}

func deployTrigger(ctx context.Context, c *client.Client, t api.Trigger, replace bool) (projectTriggerResult, error) {
	r := projectTriggerResult{Name: t.Name, Kind: t.Kind(), Action: actionUnchanged, Function: triggerTarget(t), Source: describeTriggerSource(redacted(t))}
	have, err := c.GetTrigger(ctx, t.Name)
	if isAPIError(err, api.ErrResourceNotFound) {
		got, err := c.CreateTrigger(ctx, t)
		if err != nil {
			return r, fmt.Errorf("create: %w", err)
		}
		r.Action, r.Source = actionCreated, describeTriggerSource(got)
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("read the trigger: %w", err)
	}
	r.Source = describeTriggerSource(have.Trigger)
	r.Changes = triggerChanges(have.Trigger, t)
	switch {
	case len(r.Changes) > 0:
		r.Action = actionUpdated
	case replace:
		r.Action = actionReplaced
	default:
		return r, nil
	}
	got, err := c.PutTrigger(ctx, t)
	if err != nil {
		return r, fmt.Errorf("replace: %w", err)
	}
	r.Source = describeTriggerSource(got)
	return r, nil
}

// Defaults a node fills in for settings left out (see api/triggers.go),
// so a setting left out and the default compare equal.
const (
	defaultQueueBatch       = 10
	defaultQueueConcurrency = 1
	defaultMaxDeliver       = 3
	defaultPostgresBatch    = 100
	defaultMaxAttempts      = 3
)

// triggerChanges names what differs between the trigger a node has and
// the one wanted. A DSN is compared without its password, which a node
// never answers back.
func triggerChanges(have, want api.Trigger) []string {
	var out []string
	add := func(changed bool, what string) {
		if changed {
			out = append(out, what)
		}
	}
	add(have.Function != want.Function, "function")
	add(have.Qualifier != want.Qualifier, "qualifier")
	if have.Kind() != want.Kind() {
		return append(out, "source")
	}
	events := func(kind string, a, b []string) bool {
		return !slices.Equal(canonicalEvents(kind, a), canonicalEvents(kind, b))
	}
	switch {
	case want.KV != nil:
		h, w := have.KV, want.KV
		add(h.Bucket != w.Bucket, "bucket")
		add(h.Prefix != w.Prefix, "prefix")
		add(events(api.TriggerKV, h.Events, w.Events), "events")
	case want.Objects != nil:
		h, w := have.Objects, want.Objects
		add(h.Bucket != w.Bucket, "bucket")
		add(h.Prefix != w.Prefix, "prefix")
		add(events(api.TriggerObjects, h.Events, w.Events), "events")
	case want.Queue != nil:
		h, w := have.Queue, want.Queue
		add(h.URL != w.URL, "url")
		add(h.Subject != w.Subject, "subject")
		add(h.Stream != w.Stream, "stream")
		add(h.FilterSubject != w.FilterSubject, "filter_subject")
		add(orDefault(h.BatchSize, defaultQueueBatch) != orDefault(w.BatchSize, defaultQueueBatch), "batch_size")
		add(h.BatchWindowMs != w.BatchWindowMs, "batch_window")
		add(orDefault(h.Concurrency, defaultQueueConcurrency) != orDefault(w.Concurrency, defaultQueueConcurrency), "concurrency")
		if w.Stream != "" {
			add(orDefault(h.MaxDeliver, defaultMaxDeliver) != orDefault(w.MaxDeliver, defaultMaxDeliver), "max_deliver")
		}
	case want.Postgres != nil:
		h, w := have.Postgres, want.Postgres
		hd := h.DSNRedacted
		if hd == "" {
			hd = h.DSN
		}
		add(dsnWithoutPassword(hd) != dsnWithoutPassword(w.DSN), "dsn")
		add(!slices.Equal(canonicalTables(h.Tables), canonicalTables(w.Tables)), "tables")
		add(events(api.TriggerPostgres, h.Events, w.Events), "events")
		add(orDefault(h.BatchSize, defaultPostgresBatch) != orDefault(w.BatchSize, defaultPostgresBatch), "batch_size")
		add(h.BatchWindowMs != w.BatchWindowMs, "batch_window")
		add(orDefault(h.MaxAttempts, defaultMaxAttempts) != orDefault(w.MaxAttempts, defaultMaxAttempts), "max_attempts")
	}
	return out
}

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// canonicalEvents returns events in canonical order, all of them when
// none is given.
func canonicalEvents(kind string, events []string) []string {
	all := project.EventsOf(kind)
	if len(events) == 0 {
		return all
	}
	var out []string
	for _, e := range all {
		if slices.Contains(events, e) {
			out = append(out, e)
		}
	}
	return out
}

// canonicalTables returns tables schema-qualified, sorted, without repeats.
func canonicalTables(tables []string) []string {
	out := make([]string, 0, len(tables))
	for _, t := range tables {
		if !strings.Contains(t, ".") {
			t = "public." + t
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// dsnPairRE finds the key=value settings of a DSN (values quoted or not).
var dsnPairRE = regexp.MustCompile(`([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)

// dsnWithoutPassword returns a PostgreSQL DSN without its password, in a
// canonical form (URL query and key=value settings sorted), for comparing
// a DSN with the redacted one a node answers.
func dsnWithoutPassword(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(unparsable DSN)"
		}
		u.Scheme = "postgres"
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		q.Del("password")
		u.RawQuery = q.Encode()
		return u.String()
	}
	var pairs []string
	for _, m := range dsnPairRE.FindAllStringSubmatch(dsn, -1) {
		if strings.EqualFold(m[1], "password") {
			continue
		}
		pairs = append(pairs, m[1]+"="+m[2])
	}
	slices.Sort(pairs)
	return strings.Join(pairs, " ")
}

// writeTriggerResults prints a project deploy's triggers as a table
// (nothing with -o json, where they are part of the document).
func (a *app) writeTriggerResults(results []projectTriggerResult) error {
	if a.output == outputJSON || len(results) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TRIGGER\tACTION\tKIND\tFUNCTION\tSOURCE\tDETAILS")
	for _, r := range results {
		details := strings.Join(r.Changes, ",")
		if r.Error != "" {
			details = "error: " + firstLine(r.Error)
		}
		if details == "" {
			details = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Action, r.Kind, r.Function, r.Source, details)
	}
	return w.Flush()
}
