package cli

import (
	"context"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
)

// kvCommand is `gust kv`: KV buckets and their keys.
func (a *app) kvCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Key-value buckets: create them, and get, put, list and delete keys",
		Long: "Key-value buckets hold small values (up to 1 MiB) under keys, for functions (which\n" +
			"reach the buckets they are granted) and for you.\n\n" +
			"  gust kv buckets                      list KV buckets\n" +
			"  gust kv create BUCKET [--history N]  create a bucket\n" +
			"  gust kv info BUCKET                  its size, number of keys and limits\n" +
			"  gust kv delete-bucket BUCKET         delete a bucket and every key in it\n" +
			"  gust kv put BUCKET KEY VALUE         set a key (VALUE, or --file F, or - for stdin)\n" +
			"  gust kv get BUCKET KEY               print a key's value\n" +
			"  gust kv ls BUCKET [--prefix P]       list keys\n" +
			"  gust kv rm BUCKET KEY                delete a key\n\n" +
			"Bucket names are 1 to 64 letters, digits, '-' and '_'. Keys are up to 1024 bytes of\n" +
			"letters, digits and - / _ = . (not starting or ending with '.'). Every write gets a\n" +
			"revision: put --if-revision N writes only over revision N (compare and set), put\n" +
			"--create only if the key does not exist.",
		RunE: groupRunE("create, buckets, info, delete-bucket, put, get, ls or rm"),
	}
	cmd.AddCommand(a.bucketListCommand(api.BucketKV), a.bucketCreateCommand(api.BucketKV), a.bucketInfoCommand(api.BucketKV),
		a.bucketDeleteCommand(api.BucketKV), a.kvPutCommand(), a.kvGetCommand(), a.kvListCommand(), a.kvRemoveCommand())
	return cmd
}

// objectsCommand is `gust objects`: object buckets and their objects.
func (a *app) objectsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "objects",
		Aliases: []string{"object", "obj"},
		Short:   "Object buckets: create them, and put, get, list and delete objects",
		Long: "Object buckets hold files of any size up to the bucket's limit (64 MiB unless\n" +
			"the bucket or the node says otherwise), streamed in and out.\n\n" +
			"  gust objects buckets                         list object buckets\n" +
			"  gust objects create BUCKET [--max-size 1GiB]  create a bucket\n" +
			"  gust objects info BUCKET                     its size, number of objects and limits\n" +
			"  gust objects delete-bucket BUCKET            delete a bucket and every object in it\n" +
			"  gust objects put BUCKET NAME FILE|-          store a file (- for stdin)\n" +
			"  gust objects get BUCKET NAME [FILE|-]        fetch an object (to stdout by default)\n" +
			"  gust objects stat BUCKET NAME                an object's size, digest and type\n" +
			"  gust objects ls BUCKET [--prefix P]          list objects\n" +
			"  gust objects rm BUCKET NAME                  delete an object\n\n" +
			"A put that fails (too large, cut short) leaves the previous object of that name\n" +
			"as it was.",
		RunE: groupRunE("create, buckets, info, delete-bucket, put, get, stat, ls or rm"),
	}
	cmd.AddCommand(a.bucketListCommand(api.BucketObjects), a.bucketCreateCommand(api.BucketObjects), a.bucketInfoCommand(api.BucketObjects),
		a.bucketDeleteCommand(api.BucketObjects), a.objectPutCommand(), a.objectGetCommand(), a.objectStatCommand(),
		a.objectListCommand(), a.objectRemoveCommand())
	return cmd
}

// groupRunE answers a command group called without a command.
func groupRunE(commands string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q for %s: want %s", args[0], cmd.CommandPath(), commands)
		}
		return usagef("%s needs a command: %s", cmd.CommandPath(), commands)
	}
}

// kindNoun names a bucket kind for people.
func kindNoun(kind string) string {
	if kind == api.BucketKV {
		return "kv bucket"
	}
	return "object bucket"
}

// parseSize reads a byte size: 1048576, 512KiB, 64MiB, 1GiB, or the
// decimal 10KB, 10MB, 1GB.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want bytes, optionally with KiB, MiB or GiB (64MiB)", s)
	}
	return n * mult, nil
}

func (a *app) bucketCreateCommand(kind string) *cobra.Command {
	var req api.CreateBucketRequest
	var ttl time.Duration
	var maxBytes, maxSize string
	cmd := &cobra.Command{
		Use:   "create BUCKET",
		Short: "Create a " + kindNoun(kind),
		Args:  exactArgs("BUCKET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl < 0 || ttl > 0 && ttl < time.Second {
				return usagef("--ttl %s: want at least 1s (or 0: never expire)", ttl)
			}
			req.TTLSeconds = int64(ttl / time.Second)
			var err error
			if maxBytes != "" {
				if req.MaxBytes, err = parseSize(maxBytes); err != nil {
					return usagef("--max-bytes: %v", err)
				}
			}
			if maxSize != "" {
				if req.MaxObjectSize, err = parseSize(maxSize); err != nil {
					return usagef("--max-size: %v", err)
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			b, err := c.CreateBucket(cmd.Context(), kind, args[0], req)
			if err != nil {
				return fmt.Errorf("%s create %s: %w", cmd.Parent().Name(), args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, b)
			}
			fmt.Fprintf(a.env.Stdout, "created %s %s\n", kindNoun(kind), b.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Description, "description", "", "what the bucket holds")
	f.DurationVar(&ttl, "ttl", 0, "expire entries this long after they were written (default: never)")
	f.StringVar(&maxBytes, "max-bytes", "", "the bucket's size limit, such as 10GiB (default: none)")
	if kind == api.BucketKV {
		f.IntVar(&req.History, "history", 0, fmt.Sprintf("revisions kept per key, 1 to %d (default 1)", api.MaxKVHistory))
	} else {
		f.StringVar(&maxSize, "max-size", "", "the largest object, such as 1GiB (default: the node's, 64MiB)")
	}
	return cmd
}

func (a *app) bucketListCommand(kind string) *cobra.Command {
	return &cobra.Command{
		Use:   "buckets",
		Short: "List " + kindNoun(kind) + "s",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.ListBuckets(cmd.Context(), kind)
			if err != nil {
				return fmt.Errorf("%s buckets: %w", cmd.Parent().Name(), err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, list)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSIZE\tLIMITS\tCREATED\tDESCRIPTION")
			for _, b := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", b.Name, humanBytes(int64(b.Bytes)), bucketLimits(b), formatTick(b.Created), b.Description)
			}
			return w.Flush()
		},
	}
}

// bucketLimits renders a bucket's settings in one cell.
func bucketLimits(b api.Bucket) string {
	var parts []string
	if b.Kind == api.BucketKV {
		parts = append(parts, fmt.Sprintf("history %d", b.History))
	} else {
		parts = append(parts, "objects up to "+humanBytes(b.MaxObjectSize))
	}
	if b.TTLSeconds > 0 {
		parts = append(parts, "ttl "+(time.Duration(b.TTLSeconds)*time.Second).String())
	}
	if b.MaxBytes > 0 {
		parts = append(parts, "max "+humanBytes(b.MaxBytes))
	}
	return strings.Join(parts, ", ")
}

func (a *app) bucketInfoCommand(kind string) *cobra.Command {
	return &cobra.Command{
		Use:   "info BUCKET",
		Short: "Describe a " + kindNoun(kind) + ": size, contents and limits",
		Args:  exactArgs("BUCKET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			b, err := c.GetBucket(cmd.Context(), kind, args[0])
			if err != nil {
				return fmt.Errorf("%s info %s: %w", cmd.Parent().Name(), args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, b)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			count, what := int64(0), "keys"
			if b.Count != nil {
				count = *b.Count
			}
			if kind == api.BucketObjects {
				what = "objects"
			}
			fmt.Fprintf(w, "name:\t%s\n", b.Name)
			if b.Description != "" {
				fmt.Fprintf(w, "description:\t%s\n", b.Description)
			}
			fmt.Fprintf(w, "%s:\t%d\n", what, count)
			fmt.Fprintf(w, "size:\t%s\n", humanBytes(int64(b.Bytes)))
			fmt.Fprintf(w, "limits:\t%s\n", bucketLimits(b))
			fmt.Fprintf(w, "created:\t%s\n", formatTick(b.Created))
			return w.Flush()
		},
	}
}

func (a *app) bucketDeleteCommand(kind string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete-bucket BUCKET",
		Short: "Delete a " + kindNoun(kind) + " and everything in it",
		Args:  exactArgs("BUCKET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteBucket(cmd.Context(), kind, args[0]); err != nil {
				return fmt.Errorf("%s delete-bucket %s: %w", cmd.Parent().Name(), args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, map[string]string{"kind": kind, "name": args[0], "action": "deleted"})
			}
			fmt.Fprintf(a.env.Stdout, "deleted %s %s\n", kindNoun(kind), args[0])
			return nil
		},
	}
}

// readInput reads a value: the argument itself, a file, or stdin ("-").
func (a *app) readInput(arg, file string, limit int64) ([]byte, error) {
	var r io.Reader
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	case arg == "-":
		r = a.env.Stdin
	default:
		return []byte(arg), nil
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("the value is over the limit of %d bytes", limit)
	}
	return b, nil
}

func (a *app) kvPutCommand() *cobra.Command {
	var file string
	var ifRevision uint64
	var create bool
	cmd := &cobra.Command{
		Use:   "put BUCKET KEY (VALUE | - | --file FILE)",
		Short: "Set a key",
		Long: "Set a key to VALUE, to what stdin holds (-) or to a file's content (--file).\n\n" +
			"--if-revision N writes only if the key is at revision N (as `gust kv get -o json`\n" +
			"reports); --create only if the key does not exist. Either way a key that moved on\n" +
			"is refused with PreconditionFailedException.",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case file == "" && len(args) != 3:
				return usagef("%s takes BUCKET KEY VALUE (or - to read stdin, or --file FILE)", cmd.CommandPath())
			case file != "" && len(args) != 2:
				return usagef("%s with --file takes BUCKET KEY only", cmd.CommandPath())
			case create && ifRevision != 0:
				return usagef("--create and --if-revision exclude each other")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := ""
			if len(args) == 3 {
				arg = args[2]
			}
			value, err := a.readInput(arg, file, api.MaxKVValue)
			if err != nil {
				return fmt.Errorf("kv put %s %s: %w", args[0], args[1], err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var rev uint64
			switch {
			case create:
				rev, err = c.KVCreate(cmd.Context(), args[0], args[1], value)
			case ifRevision != 0:
				rev, err = c.KVUpdate(cmd.Context(), args[0], args[1], value, ifRevision)
			default:
				rev, err = c.KVPut(cmd.Context(), args[0], args[1], value)
			}
			if err != nil {
				return fmt.Errorf("kv put %s %s: %w", args[0], args[1], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, api.KVPutResult{Bucket: args[0], Key: args[1], Revision: rev})
			}
			fmt.Fprintf(a.env.Stdout, "%s/%s = %d bytes, revision %d\n", args[0], args[1], len(value), rev)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "file", "", "read the value from this file")
	f.Uint64Var(&ifRevision, "if-revision", 0, "write only if the key is at this revision")
	f.BoolVar(&create, "create", false, "write only if the key does not exist")
	return cmd
}

func (a *app) kvGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get BUCKET KEY",
		Short: "Print a key's value (with -o json: with its revision, the value in base64)",
		Args:  exactArgs("BUCKET", "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			e, err := c.KVGet(cmd.Context(), args[0], args[1])
			if err != nil {
				return fmt.Errorf("kv get %s %s: %w", args[0], args[1], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, e)
			}
			a.env.Stdout.Write(e.Value)
			if isTerminal(a.env.Stdout) && len(e.Value) > 0 && e.Value[len(e.Value)-1] != '\n' {
				fmt.Fprintln(a.env.Stdout)
			}
			return nil
		},
	}
}

func (a *app) kvRemoveCommand() *cobra.Command {
	var ifRevision uint64
	cmd := &cobra.Command{
		Use:     "rm BUCKET KEY",
		Aliases: []string{"delete"},
		Short:   "Delete a key",
		Args:    exactArgs("BUCKET", "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.KVDelete(cmd.Context(), args[0], args[1], ifRevision); err != nil {
				return fmt.Errorf("kv rm %s %s: %w", args[0], args[1], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, map[string]string{"bucket": args[0], "key": args[1], "action": "deleted"})
			}
			fmt.Fprintf(a.env.Stdout, "deleted %s/%s\n", args[0], args[1])
			return nil
		},
	}
	cmd.Flags().Uint64Var(&ifRevision, "if-revision", 0, "delete only if the key is at this revision")
	return cmd
}

// listFlags are the flags of `ls`.
type listFlags struct {
	prefix, marker string
	limit          int
}

func (l *listFlags) add(cmd *cobra.Command, what string) {
	f := cmd.Flags()
	f.StringVar(&l.prefix, "prefix", "", "list only the "+what+" starting with this")
	f.IntVar(&l.limit, "limit", 0, fmt.Sprintf("list one page of at most this many (1 to %d; default: every page)", api.MaxListLimit))
	f.StringVar(&l.marker, "marker", "", "start after this (the next marker of a previous page)")
}

func (l *listFlags) check() error {
	if l.limit < 0 || l.limit > api.MaxListLimit {
		return usagef("--limit %d: want 1 to %d", l.limit, api.MaxListLimit)
	}
	return nil
}

func (l *listFlags) options() client.ListOptions {
	return client.ListOptions{Prefix: l.prefix, Marker: l.marker, Limit: l.limit}
}

// pages lists one page when --limit is set, else every page from
// --marker on.
func pages[T any](ctx context.Context, l listFlags, page func(context.Context, client.ListOptions) ([]T, string, error)) ([]T, string, error) {
	o := l.options()
	var all []T
	for {
		items, next, err := page(ctx, o)
		if err != nil {
			return nil, "", err
		}
		all = append(all, items...)
		if l.limit > 0 || next == "" {
			return all, next, nil
		}
		if next <= o.Marker {
			return nil, "", fmt.Errorf("the node repeated marker %q", next)
		}
		o.Marker = next
	}
}

// listing describes one of the storage list commands.
type listing[T any] struct {
	name   string // the command, for errors: "kv ls"
	short  string
	noun   string // what is listed, plural: "keys"
	header string // the table's header, tab-separated
	page   func(ctx context.Context, c *client.Client, bucket string, o client.ListOptions) ([]T, string, error)
	row    func(T) string // one table row, tab-separated
	json   func(items []T, next string) any
}

// listCommand is `ls BUCKET` for l: every page (or one of --limit), as a
// table or as JSON, and on stderr the marker of what follows.
func listCommand[T any](a *app, l listing[T]) *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:     "ls BUCKET",
		Aliases: []string{"list"},
		Short:   l.short,
		Args:    exactArgs("BUCKET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			items, next, err := pages(cmd.Context(), f, func(ctx context.Context, o client.ListOptions) ([]T, string, error) {
				return l.page(ctx, c, args[0], o)
			})
			if err != nil {
				return fmt.Errorf("%s %s: %w", l.name, args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, l.json(nonNil(items), next))
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, l.header)
			for _, it := range items {
				fmt.Fprintln(w, l.row(it))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if next != "" {
				fmt.Fprintf(a.env.Stderr, "more %s follow: --marker %s\n", l.noun, next)
			}
			return nil
		},
	}
	f.add(cmd, l.noun)
	return cmd
}

func (a *app) kvListCommand() *cobra.Command {
	return listCommand(a, listing[api.KVKey]{
		name: "kv ls", short: "List a bucket's keys, in byte order", noun: "keys",
		header: "KEY\tREVISION\tSIZE\tMODIFIED",
		page: func(ctx context.Context, c *client.Client, bucket string, o client.ListOptions) ([]api.KVKey, string, error) {
			p, err := c.KVList(ctx, bucket, o)
			return p.Keys, p.NextMarker, err
		},
		row: func(k api.KVKey) string {
			return fmt.Sprintf("%s\t%d\t%s\t%s", k.Key, k.Revision, humanBytes(k.Size), formatTick(k.Modified))
		},
		json: func(keys []api.KVKey, next string) any { return api.KVKeyList{Keys: keys, NextMarker: next} },
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *app) objectPutCommand() *cobra.Command {
	var contentType string
	cmd := &cobra.Command{
		Use:   "put BUCKET NAME (FILE | -)",
		Short: "Store a file (or stdin, -) as an object",
		Long: "Store FILE, or what stdin holds (-), under NAME, streaming it. The content type is\n" +
			"--content-type, else guessed from FILE's extension, else application/octet-stream.",
		Args: exactArgs("BUCKET", "NAME", "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = a.env.Stdin
			size := int64(-1)
			if args[2] != "-" {
				f, err := os.Open(args[2])
				if err != nil {
					return fmt.Errorf("objects put %s %s: %w", args[0], args[1], err)
				}
				defer f.Close()
				fi, err := f.Stat()
				if err != nil {
					return fmt.Errorf("objects put %s %s: %w", args[0], args[1], err)
				}
				if !fi.Mode().IsRegular() {
					return usagef("%s is not a regular file", args[2])
				}
				r, size = f, fi.Size()
				if contentType == "" {
					contentType = mime.TypeByExtension(filepath.Ext(args[2]))
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			info, err := c.PutObject(cmd.Context(), args[0], args[1], r, size, contentType)
			if err != nil {
				return fmt.Errorf("objects put %s %s: %w", args[0], args[1], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, info)
			}
			fmt.Fprintf(a.env.Stdout, "stored %s/%s: %s, %s, sha256 %s\n", info.Bucket, info.Name, humanBytes(info.Size), info.ContentType, info.Digest)
			return nil
		},
	}
	cmd.Flags().StringVar(&contentType, "content-type", "", "the object's content type")
	return cmd
}

func (a *app) objectGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get BUCKET NAME [FILE | -]",
		Short: "Fetch an object to stdout or to FILE",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 && len(args) != 3 {
				return usagef("%s takes BUCKET NAME and optionally FILE (default: stdout), got %d argument(s)", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dest := "-"
			if len(args) == 3 {
				dest = args[2]
			}
			if dest == "-" && a.output == outputJSON {
				return usagef("-o json describes the object: give a FILE to write the object to")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			rc, info, err := c.GetObject(cmd.Context(), args[0], args[1])
			if err != nil {
				return fmt.Errorf("objects get %s %s: %w", args[0], args[1], err)
			}
			defer rc.Close()
			if dest == "-" {
				if _, err := io.Copy(a.env.Stdout, rc); err != nil {
					return fmt.Errorf("objects get %s %s: %w", args[0], args[1], err)
				}
				return nil
			}
			n, err := writeFileFrom(dest, rc)
			if err != nil {
				return fmt.Errorf("objects get %s %s: %w", args[0], args[1], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, info)
			}
			fmt.Fprintf(a.env.Stdout, "wrote %s/%s to %s (%s)\n", args[0], args[1], dest, humanBytes(n))
			return nil
		},
	}
}

// writeFileFrom writes r to path through a temporary file beside it, so
// that a failed download leaves no partial file.
func writeFileFrom(path string, r io.Reader) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	return n, nil
}

func (a *app) objectStatCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "stat BUCKET NAME",
		Aliases: []string{"head"},
		Short:   "Describe an object: size, SHA-256, content type, time",
		Args:    exactArgs("BUCKET", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			info, err := c.HeadObject(cmd.Context(), args[0], args[1])
			if err != nil {
				return fmt.Errorf("objects stat %s %s: %w", args[0], args[1], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, info)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "name:\t%s\nsize:\t%s (%d bytes)\nsha256:\t%s\ncontent type:\t%s\nmodified:\t%s\n",
				info.Name, humanBytes(info.Size), info.Size, info.Digest, info.ContentType, formatTick(info.Modified))
			return w.Flush()
		},
	}
}

func (a *app) objectListCommand() *cobra.Command {
	return listCommand(a, listing[api.ObjectInfo]{
		name: "objects ls", short: "List a bucket's objects, in byte order of their names", noun: "objects",
		header: "NAME\tSIZE\tTYPE\tMODIFIED",
		page: func(ctx context.Context, c *client.Client, bucket string, o client.ListOptions) ([]api.ObjectInfo, string, error) {
			p, err := c.ListObjects(ctx, bucket, o)
			return p.Objects, p.NextMarker, err
		},
		row: func(o api.ObjectInfo) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s", o.Name, humanBytes(o.Size), o.ContentType, formatTick(o.Modified))
		},
		json: func(objs []api.ObjectInfo, next string) any { return api.ObjectList{Objects: objs, NextMarker: next} },
	})
}

func (a *app) objectRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm BUCKET NAME",
		Aliases: []string{"delete"},
		Short:   "Delete an object",
		Args:    exactArgs("BUCKET", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteObject(cmd.Context(), args[0], args[1]); err != nil {
				return fmt.Errorf("objects rm %s %s: %w", args[0], args[1], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, map[string]string{"bucket": args[0], "name": args[1], "action": "deleted"})
			}
			fmt.Fprintf(a.env.Stdout, "deleted %s/%s\n", args[0], args[1])
			return nil
		},
	}
}
