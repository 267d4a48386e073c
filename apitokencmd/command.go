package apitokencmd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "api-tokens",
		Usage: "<users|tokens|logs|keys> <command> [--address <interface> | --config <path> [--adapter <name>]] [--as <admin>] [--json]",
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
	cmd.AddCommand(c.usersCommand(), c.tokensCommand(), c.logsCommand(), c.keysCommand())
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

func (c *cli) usersCommand() *cobra.Command {
	users := &cobra.Command{
		Use:   "users",
		Short: "Lists and changes users and their roles",
	}
	group(users)

	list := &cobra.Command{
		Use:   "list",
		Short: "Lists users, newest first",
		Args:  cobra.NoArgs,
	}
	pageFlags(list)
	list.RunE = c.action(func(ctx context.Context, out *output, cl *client, _ []string) error {
		q := url.Values{}
		pageQuery(list, q)
		var ans UserList
		raw, err := cl.call(ctx, "GET", BasePath+"users", q, nil, &ans)
		if err != nil {
			return err
		}
		return out.users(raw, ans.Users, ans.NextCursor)
	})

	set := &cobra.Command{
		Use:   "set <user> [--email <address>] [--view-only[=false]] [--disabled[=false]]",
		Short: "Creates a user, or changes the fields given",
		Long: `Creates the user if it does not exist, and sets the fields given; the others stay.
A view-only or disabled user's tokens stop working until that is undone
(--view-only=false, --disabled=false); nothing is revoked by it.`,
		Args: cobra.ExactArgs(1),
	}
	set.Flags().String("email", "", "Email address (\"\" clears it)")
	set.Flags().Bool("view-only", false, "View-only: may not have API tokens (--view-only=false undoes it)")
	set.Flags().Bool("disabled", false, "Disabled: may not sign in, tokens stop working (--disabled=false undoes it)")
	set.RunE = c.action(func(ctx context.Context, out *output, cl *client, args []string) error {
		var p UserPatch
		if set.Flags().Changed("email") {
			s, _ := set.Flags().GetString("email")
			p.Email = &s
		}
		if set.Flags().Changed("view-only") {
			b, _ := set.Flags().GetBool("view-only")
			p.ViewOnly = &b
		}
		if set.Flags().Changed("disabled") {
			b, _ := set.Flags().GetBool("disabled")
			p.Disabled = &b
		}
		var u wire.User
		raw, err := cl.call(ctx, "PUT", BasePath+"users/"+url.PathEscape(args[0]), nil, p, &u)
		if err != nil {
			return err
		}
		return out.users(raw, []wire.User{u}, nil)
	})

	roleCmd := func(use, alias, short, method string) *cobra.Command {
		cmd := &cobra.Command{
			Use:     use + " <user> <api_tokens|admin>",
			Aliases: []string{alias},
			Short:   short,
			Args:    cobra.ExactArgs(2),
		}
		cmd.RunE = c.action(func(ctx context.Context, out *output, cl *client, args []string) error {
			var u wire.User
			raw, err := cl.call(ctx, method, BasePath+"users/"+url.PathEscape(args[0])+"/roles/"+url.PathEscape(args[1]), nil, nil, &u)
			if err != nil {
				return err
			}
			return out.users(raw, []wire.User{u}, nil)
		})
		return cmd
	}
	grant := roleCmd("grant-role", "grant", "Grants a role: api_tokens (may own tokens) or admin (system admin)", "PUT")
	grant.Long = `Grants a role, creating the user if needed: api_tokens (the right to own
tokens; refused for a view-only user) or admin (system admin).`
	remove := roleCmd("remove-role", "remove", "Removes a role (nothing happens if it is not held)", "DELETE")

	users.AddCommand(list, set, grant, remove)
	return users
}

func (c *cli) tokensCommand() *cobra.Command {
	tokens := &cobra.Command{
		Use:   "tokens",
		Short: "Lists, creates, generates and revokes tokens of any user",
	}
	group(tokens)

	list := &cobra.Command{
		Use:   "list [--owner <user>] [--status <status>]",
		Short: "Lists every user's tokens, or one owner's, newest first",
		Args:  cobra.NoArgs,
	}
	list.Flags().String("owner", "", "Only this user's tokens")
	list.Flags().String("status", "", "Only tokens in this status: not_generated, generated_inactive, generated_active, expired or revoked")
	pageFlags(list)
	list.RunE = c.action(func(ctx context.Context, out *output, cl *client, _ []string) error {
		q := url.Values{}
		for _, f := range []string{"owner", "status"} {
			if s, _ := list.Flags().GetString(f); s != "" {
				q.Set(f, s)
			}
		}
		pageQuery(list, q)
		var ans TokenList
		raw, err := cl.call(ctx, "GET", BasePath+"tokens", q, nil, &ans)
		if err != nil {
			return err
		}
		return out.tokens(raw, ans.Tokens, ans.NextCursor)
	})

	create := &cobra.Command{
		Use:   "create --owner <user> --name <name> --expires <expiry> --scopes <meta,report>",
		Short: "Creates a token for a user, such as a service account",
		Long: `Creates a token owned by the user given, who must hold the api_tokens role
(and be neither view-only nor disabled). Every rule of the management routes
applies: the name is unique among the owner's tokens that are not revoked,
the expiry is within the configured max_lifetime. The token is created not
generated: generate its JWT with "caddy api-tokens tokens generate <id>".`,
		Args: cobra.NoArgs,
	}
	create.Flags().String("owner", "", "User who will own the token (required)")
	create.Flags().String("name", "", "Token name, 1 to 100 characters, unique among the owner's tokens (required)")
	create.Flags().String("expires", "", "Lifetime from each generation: 1d, 7d, 30d, 60d, 90d, 1y or never, within max_lifetime (required)")
	create.Flags().StringSlice("scopes", nil, "Scopes, comma-separated: meta, report (required)")
	for _, f := range []string{"owner", "name", "expires", "scopes"} {
		_ = create.MarkFlagRequired(f) // the flags exist
	}
	create.RunE = c.action(func(ctx context.Context, out *output, cl *client, _ []string) error {
		var in NewToken
		in.Owner, _ = create.Flags().GetString("owner")
		in.Name, _ = create.Flags().GetString("name")
		in.Expires, _ = create.Flags().GetString("expires")
		in.Scopes, _ = create.Flags().GetStringSlice("scopes")
		var t wire.Token
		raw, err := cl.call(ctx, "POST", BasePath+"tokens", nil, in, &t)
		if err != nil {
			return err
		}
		if err := out.tokens(raw, []wire.Token{t}, nil); err != nil {
			return err
		}
		out.note("Created %s. Generate its JWT with: caddy api-tokens tokens generate %s", t.ID, t.ID)
		return nil
	})

	generate := &cobra.Command{
		Use:   "generate <token-id>",
		Short: "Generates a token's JWT and prints it, this once",
		Long: `Issues a new JWT for the token and prints it on standard output, alone, so
that a script can capture it: TOKEN=$(caddy api-tokens tokens generate <id>).
It is shown this once and never stored. Generating again replaces the
previous JWT at once. The owner must hold the api_tokens role. The token's
log records the generation by the acting system admin.`,
		Args: cobra.ExactArgs(1),
	}
	generate.RunE = c.action(func(ctx context.Context, out *output, cl *client, args []string) error {
		var g Generated
		raw, err := cl.call(ctx, "POST", BasePath+"tokens/"+url.PathEscape(args[0])+"/generate", nil, nil, &g)
		if err != nil {
			return err
		}
		return out.generated(raw, g)
	})

	revoke := &cobra.Command{
		Use:   "revoke <token-id>",
		Short: "Revokes any user's token, for good",
		Args:  cobra.ExactArgs(1),
	}
	revoke.RunE = c.action(func(ctx context.Context, out *output, cl *client, args []string) error {
		var t wire.Token
		raw, err := cl.call(ctx, "POST", BasePath+"tokens/"+url.PathEscape(args[0])+"/revoke", nil, nil, &t)
		if err != nil {
			return err
		}
		return out.tokens(raw, []wire.Token{t}, nil)
	})

	tokens.AddCommand(list, create, generate, revoke)
	return tokens
}

func (c *cli) logsCommand() *cobra.Command {
	logs := &cobra.Command{
		Use:   "logs [--token <id>] [--activity <activity>] [--since <time|duration>]",
		Short: "Lists token logs and user and role changes, newest first",
		Args:  cobra.NoArgs,
	}
	logs.Flags().String("token", "", "Only this token's logs")
	logs.Flags().String("activity", "", "Only this activity: CREATE, GENERATE, UPDATE, REVOKE, AUTHENTICATE, USER_UPDATE, ROLE_GRANT or ROLE_REMOVE")
	logs.Flags().String("since", "", "Only logs from this time on: RFC 3339 (2025-01-31T09:00:00Z) or a time ago (90m, 24h, 7d)")
	pageFlags(logs)
	logs.RunE = c.action(func(ctx context.Context, out *output, cl *client, _ []string) error {
		q := url.Values{}
		for _, f := range []string{"token", "activity"} {
			if s, _ := logs.Flags().GetString(f); s != "" {
				q.Set(f, s)
			}
		}
		if s, _ := logs.Flags().GetString("since"); s != "" {
			since, err := parseSince(s, time.Now())
			if err != nil {
				return err
			}
			q.Set("since", since.UTC().Format(time.RFC3339))
		}
		pageQuery(logs, q)
		var ans LogList
		raw, err := cl.call(ctx, "GET", BasePath+"logs", q, nil, &ans)
		if err != nil {
			return err
		}
		return out.logs(raw, ans.Logs, ans.NextCursor)
	})
	return logs
}

// parseSince reads --since: an RFC 3339 time, or a duration before now
// (Go's 90m or 24h, or whole days such as 7d).
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if n, err = strconv.Atoi(days); err == nil {
			d = time.Duration(n) * 24 * time.Hour
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < 0 {
		return time.Time{}, usageErrorf("--since %q: give an RFC 3339 time such as 2025-01-31T09:00:00Z, or a time ago such as 90m, 24h or 7d", s)
	}
	return now.Add(-d), nil
}

func (c *cli) keysCommand() *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Lists, rotates and retires the JWT signing keys",
		Long: `Lists, rotates and retires the keys that sign and verify JWTs, when they are
kept in Caddy's data directory (no signing_key in the config). Keys named in
the config rotate by editing it and reloading; these commands then refuse
(exit 3).`,
	}
	group(keys)

	show := func(out *output, raw []byte, kl KeyList) error {
		if out.json {
			return out.raw(raw)
		}
		rows := make([][]string, len(kl.Keys))
		for i, id := range kl.Keys {
			use := "verifies"
			if id == kl.Signing {
				use = "signs and verifies"
			}
			rows[i] = []string{id, use}
		}
		return out.table("keys", []string{"KEY ID", "USE"}, rows, nil)
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "Lists the keys the running Caddy verifies with, the signing one first",
		Args:  cobra.NoArgs,
	}
	list.RunE = c.action(func(ctx context.Context, out *output, cl *client, _ []string) error {
		var kl KeyList
		raw, err := cl.call(ctx, "GET", BasePath+"keys", nil, nil, &kl)
		if err != nil {
			return err
		}
		return show(out, raw, kl)
	})

	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Generates a new signing key; the previous ones keep verifying until retired",
		Long: `Generates a new key into the keyring in Caddy's data directory. It signs every
JWT generated from now on; JWTs signed with the previous keys keep working
until those keys are retired. Other Caddy processes sharing the data
directory pick the change up when they next load their config.`,
		Args: cobra.NoArgs,
	}
	rotate.RunE = c.action(func(ctx context.Context, out *output, cl *client, _ []string) error {
		var kl KeyList
		raw, err := cl.call(ctx, "POST", BasePath+"keys/rotate", nil, nil, &kl)
		if err != nil {
			return err
		}
		if err := show(out, raw, kl); err != nil {
			return err
		}
		out.note("Key %s signs from now on. Retire the old keys once their JWTs have been generated again: caddy api-tokens keys retire <key-id>", kl.Rotated)
		return nil
	})

	retire := &cobra.Command{
		Use:   "retire <key-id>",
		Short: "Removes a key for good: JWTs it signed stop working at once",
		Long: `Removes a key from the keyring for good: JWTs signed with it stop working at
once. The key that signs cannot be retired: rotate first.`,
		Args: cobra.ExactArgs(1),
	}
	retire.RunE = c.action(func(ctx context.Context, out *output, cl *client, args []string) error {
		var kl KeyList
		raw, err := cl.call(ctx, "POST", BasePath+"keys/"+url.PathEscape(args[0])+"/retire", nil, nil, &kl)
		if err != nil {
			return err
		}
		return show(out, raw, kl)
	})

	keys.AddCommand(list, rotate, retire)
	return keys
}
