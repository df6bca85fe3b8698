package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/api"
)

func (a *app) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Issue, list and revoke access keys",
		Long: "Issue, list and revoke the node's access keys (admin keys only).\n\n" +
			"A key of scope admin may do everything. A key of scope invoke may only invoke\n" +
			"functions (Invoke, and function URLs whose AuthType is AWS_IAM), and with\n" +
			"--function only the functions named. Secrets are kept encrypted by the node and\n" +
			"shown once, when the key is created.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %s: want create, ls or rm", args[0], cmd.CommandPath())
			}
			return usagef("%s needs a command: create, ls or rm", cmd.CommandPath())
		},
	}
	cmd.AddCommand(a.keysCreateCommand(), a.keysListCommand(), a.keysRemoveCommand())
	return cmd
}

func (a *app) keysCreateCommand() *cobra.Command {
	var req api.CreateKeyRequest
	cmd := &cobra.Command{
		Use:   "create --scope admin|invoke [--function NAME ...] [--description TEXT]",
		Short: "Issue a key pair and print it once, as an AWS credentials profile",
		Long: "Issue a key pair. Its secret is printed once, in the AWS shared-credentials\n" +
			"format (append it to ~/.aws/credentials and select it with AWS_PROFILE); the node\n" +
			"cannot show it again. With -o json the key is printed as JSON, secret included.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch req.Scope {
			case api.ScopeAdmin:
				if len(req.Functions) > 0 {
					return usagef("--function limits keys of scope %s only: a key of scope %s may do everything", api.ScopeInvoke, api.ScopeAdmin)
				}
			case api.ScopeInvoke:
			case "":
				return usagef("--scope is required: %s (every operation) or %s (invoke functions only)", api.ScopeAdmin, api.ScopeInvoke)
			default:
				return usagef("--scope %q is not a scope: want %s (every operation) or %s (invoke functions only)", req.Scope, api.ScopeAdmin, api.ScopeInvoke)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			key, err := c.CreateKey(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("create key: %w", err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, key)
			}
			w := a.env.Stdout
			fmt.Fprintf(w, "# Gust access key %s, scope %s, functions %s", key.AccessKeyID, key.Scope, describeFunctions(key))
			if key.Description != "" {
				fmt.Fprintf(w, ": %s", key.Description)
			}
			fmt.Fprintf(w, "\n# The secret is shown only now: the node keeps it encrypted and will not show it again.\n")
			fmt.Fprintf(w, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", key.AccessKeyID, key.AccessKeyID, key.SecretAccessKey)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Scope, "scope", "", "what the key may do: admin (everything) or invoke (invoke functions only)")
	f.StringArrayVar(&req.Functions, "function", nil, "with --scope invoke, limit the key to this function (repeat for more)")
	f.StringVar(&req.Description, "description", "", "what the key is for")
	return cmd
}

// describeFunctions renders the functions a key may invoke.
func describeFunctions(k api.AccessKey) string {
	if len(k.Functions) == 0 {
		return "(all)"
	}
	return strings.Join(k.Functions, ",")
}

func (a *app) keysListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List access keys (never their secrets)",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			keys, err := c.ListKeys(cmd.Context())
			if err != nil {
				return fmt.Errorf("list keys: %w", err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, keys)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ACCESS KEY ID\tSCOPE\tFUNCTIONS\tCREATED\tDESCRIPTION")
			for _, k := range keys {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.AccessKeyID, k.Scope, describeFunctions(k), displayTime(k.Created), k.Description)
			}
			return w.Flush()
		},
	}
}

func (a *app) keysRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID",
		Aliases: []string{"revoke", "delete"},
		Short:   "Revoke an access key: requests signed with it are refused at once",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RevokeKey(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("rm key %s: %w", args[0], err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, map[string]any{"accessKeyId": args[0], "revoked": true})
			}
			fmt.Fprintf(a.env.Stdout, "revoked %s\n", args[0])
			return nil
		},
	}
}
