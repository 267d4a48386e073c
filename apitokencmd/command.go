// Package apitokencmd is the operator's command line of caddy-apitokens:
// the `caddy api-tokens ...` subcommands, a client of the admin API
// (tokenadmin.AdminAPI, admin.api.api_tokens) of the running Caddy.
//
// The commands never open the token store themselves: they ask the running
// Caddy, whose api_tokens app applies every rule and drops its caches at
// once, exactly as for a change made through api_token_admin.
package apitokencmd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "api-tokens",
		Usage: "<users|tokens|scopes|logs|keys> <command> [--address <interface> | --config <path> [--adapter <name>]] [--as <admin>] [--json]",
		Short: "Manages API tokens, users and roles in the running Caddy",
		Long:  longHelp,
		CobraFunc: func(cmd *cobra.Command) {
			new(cli).setup(cmd)
		},
	})
}

const longHelp = `
Manages the users, roles, tokens and logs of the api_tokens app of the
running Caddy instance, through its admin endpoint (the admin.api.api_tokens
module), with every rule the management routes apply.

The admin endpoint is taken from --address if given; otherwise from the
config file given with --config (and --adapter); otherwise the default
(localhost:2019, or $CADDY_ADMIN).

Reaching the admin endpoint is full control of Caddy, so these commands act
as a system admin. Logs record the acting user as "caddy/admin", or as the
system admin named with --as (who must be in the api_tokens admins or hold
the admin role, and not be disabled).

Output is a table for people; --json prints the admin API's JSON answer
(the shapes of the management routes) for scripts.

Exit codes:
  0  done
  1  bad arguments or flags, or a value refused as invalid
  2  no such user or token
  3  refused: a conflict with the current state (a duplicate name, a
     revoked token, an owner without the api_tokens role, retiring the
     signing key, keys named in the config, ...) or not allowed (--as
     names no system admin)
  4  Caddy's admin endpoint cannot be reached: is Caddy running?
  5  Caddy answered but could not do it: no api_tokens app in its config,
     a Caddy without this plugin, the token store unavailable

Examples:
  caddy api-tokens users set svc-export --email ops@example.com
  caddy api-tokens users grant-role svc-export api_tokens
  caddy api-tokens scopes
  caddy api-tokens tokens create --owner svc-export --name "nightly export" --expires 90d --scopes report
  TOKEN=$(caddy api-tokens tokens generate tok_...)
  caddy api-tokens tokens list --owner alice --json
  caddy api-tokens logs --token tok_... --activity AUTHENTICATE --since 24h
  caddy api-tokens keys rotate
`

// cli builds the api-tokens command tree and runs its commands. Its fields
// are the flags every command shares.
type cli struct {
	address, config, adapter string
	as                       string
	json                     bool

	// code is the exit code of the last command run (for tests; Caddy's
	// Main gets it through the error the command returns).
	code int
}

// setup adds the shared flags and the subcommands to the api-tokens command.
func (c *cli) setup(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&c.address, "address", "", "Address of Caddy's admin endpoint, if not the one in --config or the default")
	pf.StringVarP(&c.config, "config", "c", "", "Config file to read the admin endpoint's address from")
	pf.StringVarP(&c.adapter, "adapter", "a", "", "Name of the config adapter for --config")
	pf.StringVar(&c.as, "as", "", "System admin to record as the acting user (default: caddy/admin)")
	pf.BoolVar(&c.json, "json", false, "Print the JSON answer instead of a table")
	group(cmd)
	cmd.AddCommand(c.usersCommand(), c.tokensCommand(), c.scopesCommand(), c.logsCommand(), c.keysCommand())
}

// group makes cmd a command that only holds subcommands: alone it prints its
// help; with an unknown subcommand it fails (exit 1) instead of printing help.
func group(cmd *cobra.Command) {
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
}

// action turns fn into a command's RunE: it connects to the admin endpoint,
// runs fn, prints fn's error for the operator, and exits with its code.
func (c *cli) action(fn func(ctx context.Context, out *output, cl *client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cl, err := c.connect()
		if err == nil {
			err = fn(cmd.Context(), &output{cmd: cmd, json: c.json}, cl, args)
		}
		return c.exit(cmd, args, err)
	}
}

func (c *cli) connect() (*client, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(c.address, nil, c.config, c.adapter)
	if err != nil {
		return nil, usageErrorf("finding Caddy's admin endpoint: %v", err)
	}
	return newClient(addr, c.as)
}

// exit prints err and returns what makes caddycmd.Main exit with its code.
func (c *cli) exit(cmd *cobra.Command, args []string, err error) error {
	c.code = ExitOK
	if err == nil {
		return nil
	}
	var ce *cmdError
	if !errors.As(err, &ce) {
		ce = &cmdError{code: ExitUsage, msg: err.Error()}
	}
	c.code = ce.code
	fmt.Fprintf(cmd.ErrOrStderr(), "Error: %s\n", ce.msg)
	cmd.SilenceErrors = true // printed above
	if ce.code == ExitUsage {
		return ce // Main exits 1 on any error
	}
	// Main exits with the status of the error WrapCommandFuncForCobra
	// returns; it is the only way to set it.
	return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) { return ce.code, nil })(cmd, args)
}

// pageFlags adds --limit and --cursor to a list command.
func pageFlags(cmd *cobra.Command) {
	cmd.Flags().Int("limit", apitoken.DefaultPageLimit, fmt.Sprintf("Most items to list (1 to %d)", apitoken.MaxPageLimit))
	cmd.Flags().String("cursor", "", "Where to continue: the next_cursor of the previous page")
}

// pageQuery puts the page flags that were given into q.
func pageQuery(cmd *cobra.Command, q url.Values) {
	if cmd.Flags().Changed("limit") {
		n, _ := cmd.Flags().GetInt("limit")
		q.Set("limit", strconv.Itoa(n))
	}
	if s, _ := cmd.Flags().GetString("cursor"); s != "" {
		q.Set("cursor", s)
	}
}
