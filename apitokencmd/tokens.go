package apitokencmd

import (
	"context"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

func (c *cli) tokensCommand() *cobra.Command {
	tokens := &cobra.Command{
		Use:   "tokens",
		Short: "Lists, creates, generates and revokes tokens of any user",
	}
	group(tokens)

	list := &cobra.Command{
		Use:   "list [--owner <user>] [--status <status>[,<status>...]]",
		Short: "Lists every user's tokens, or one owner's, newest first",
		Args:  cobra.NoArgs,
	}
	list.Flags().String("owner", "", "Only this user's tokens")
	list.Flags().String("status", "", "Only tokens in this status, or any of several comma-separated: not_generated, generated_inactive, generated_active, expired, revoked")
	pageFlags(list)
	list.RunE = c.action(func(ctx context.Context, out *output, cl *client, _ []string) error {
		q := url.Values{}
		for _, f := range []string{"owner", "status"} {
			if s, _ := list.Flags().GetString(f); s != "" {
				q.Set(f, s)
			}
		}
		pageQuery(list, q)
		var ans tokenadmin.TokenList
		raw, err := cl.call(ctx, "GET", tokenadmin.BasePath+"tokens", q, nil, &ans)
		if err != nil {
			return err
		}
		return out.tokens(raw, ans.Tokens, ans.NextCursor)
	})

	create := &cobra.Command{
		Use:   "create --owner <service-account> --name <name> --expires <expiry> --scopes <scope,...> [--allowed-ips <cidr,...>]",
		Short: "Creates a token for a service account",
		Long: `Creates a token owned by the service account given (a user of kind service:
"caddy api-tokens users set <id> --kind service"), which must hold the
api_tokens role (and be neither view-only nor disabled). A person's tokens
are the person's own: they are refused here, so no admin ever holds a
person's JWT. Every rule of the management routes
applies: the name is unique among the owner's tokens that are not revoked,
the expiry is within the configured max_lifetime. With --allowed-ips, only
clients in those networks may use it (Caddy's client IP, trusted_proxies
aware); others get 401 like any invalid token. The token is created not
generated: generate its JWT with "caddy api-tokens tokens generate <id>".`,
		Args: cobra.NoArgs,
	}
	create.Flags().String("owner", "", "Service account that will own the token (required)")
	create.Flags().String("name", "", "Token name, 1 to 100 characters, unique among the owner's tokens (required)")
	create.Flags().String("expires", "", "Lifetime from each generation: 1d, 7d, 30d, 60d, 90d, 1y or never, within max_lifetime (required)")
	create.Flags().StringSlice("scopes", nil, "Scopes, comma-separated, among the declared ones (see caddy api-tokens scopes) (required)")
	create.Flags().StringSlice("allowed-ips", nil, "Client networks the token may be used from: CIDRs or addresses, IPv4 or IPv6, comma-separated, at most 20 (default: any client)")
	for _, f := range []string{"owner", "name", "expires", "scopes"} {
		_ = create.MarkFlagRequired(f) // the flags exist
	}
	create.RunE = c.action(func(ctx context.Context, out *output, cl *client, _ []string) error {
		var in tokenadmin.NewToken
		owner, _ := create.Flags().GetString("owner")
		in.Name, _ = create.Flags().GetString("name")
		in.Expires, _ = create.Flags().GetString("expires")
		in.Scopes, _ = create.Flags().GetStringSlice("scopes")
		in.AllowedIPs, _ = create.Flags().GetStringSlice("allowed-ips")
		var t wire.Token
		raw, err := cl.call(ctx, "POST", tokenadmin.BasePath+"users/"+url.PathEscape(owner)+"/tokens", nil, in, &t)
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
		Use:   "generate <token-id> [--overlap <duration>]",
		Short: "Generates a service account token's JWT and prints it, this once",
		Long: `Issues a new JWT for the token and prints it on standard output, alone, so
that a script can capture it: TOKEN=$(caddy api-tokens tokens generate <id>).
It is shown this once and never stored. Generating again replaces the
previous JWT at once, or, with --overlap (e.g. 1h, at most 24h), when that
overlap ends, so that the service can switch without failing; only the
latest previous JWT overlaps, and revoking ends it. The owner must be a
service account holding the api_tokens role. The token's log records the
generation, and its overlap, by the acting system admin.`,
		Args: cobra.ExactArgs(1),
	}
	generate.Flags().String("overlap", "", "Keep the previous JWT working this long: a duration such as 30m, 1h or 24h (at most 24h); default: it stops at once")
	generate.RunE = c.action(func(ctx context.Context, out *output, cl *client, args []string) error {
		var in any // no body: no overlap
		if generate.Flags().Changed("overlap") {
			overlap, _ := generate.Flags().GetString("overlap")
			in = tokenadmin.GenerateOptions{Overlap: &overlap} // checked by the server, which says what to fix
		}
		var g tokenadmin.Generated
		raw, err := cl.call(ctx, "POST", tokenadmin.BasePath+"tokens/"+url.PathEscape(args[0])+"/generate", nil, in, &g)
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
		raw, err := cl.call(ctx, "POST", tokenadmin.BasePath+"tokens/"+url.PathEscape(args[0])+"/revoke", nil, nil, &t)
		if err != nil {
			return err
		}
		return out.tokens(raw, []wire.Token{t}, nil)
	})

	tokens.AddCommand(list, create, generate, revoke)
	return tokens
}
