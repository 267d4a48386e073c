package apitokencmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

func (c *cli) scopesCommand() *cobra.Command {
	scopes := &cobra.Command{
		Use:   "scopes",
		Short: "Lists the scopes the config declares, which tokens may be given",
		Long: `Lists the scopes declared in the api_tokens scopes block (meta and report
when it declares none), with what each grants, in the order of the config.
Tokens are given only these; a scope rule of api_token_auth names only these.`,
		Args: cobra.NoArgs,
	}
	scopes.RunE = c.action(func(ctx context.Context, out *output, cl *client, _ []string) error {
		var ans tokenadmin.ScopeList
		raw, err := cl.call(ctx, "GET", tokenadmin.BasePath+"scopes", nil, nil, &ans)
		if err != nil {
			return err
		}
		if out.json {
			return out.raw(raw)
		}
		rows := make([][]string, len(ans.Scopes))
		for i, s := range ans.Scopes {
			rows[i] = []string{s.Name, s.Description}
		}
		return out.table("scopes", []string{"SCOPE", "DESCRIPTION"}, rows, nil)
	})
	return scopes
}
