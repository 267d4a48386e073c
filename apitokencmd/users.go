package apitokencmd

import (
	"context"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

func (c *cli) usersCommand() *cobra.Command {
	users := &cobra.Command{
		Use:   "users",
		Short: "Lists and changes users and their roles",
	}
	group(users)

	list := &cobra.Command{
		Use:   "list [--kind person|service] [--search <text>]",
		Short: "Lists users, newest first",
		Args:  cobra.NoArgs,
	}
	list.Flags().String("kind", "", "Only users of this kind: person or service")
	list.Flags().String("search", "", "Only users whose id, name or email contains this text (any case)")
	pageFlags(list)
	list.RunE = c.action(func(ctx context.Context, out *output, cl *client, _ []string) error {
		q := url.Values{}
		if s, _ := list.Flags().GetString("kind"); s != "" {
			q.Set("kind", s)
		}
		if s, _ := list.Flags().GetString("search"); s != "" {
			q.Set("q", s)
		}
		pageQuery(list, q)
		var ans tokenadmin.UserList
		raw, err := cl.call(ctx, "GET", tokenadmin.BasePath+"users", q, nil, &ans)
		if err != nil {
			return err
		}
		return out.users(raw, ans.Users, ans.NextCursor)
	})

	set := &cobra.Command{
		Use:   "set <user> [--kind service] [--name <name>] [--email <address>] [--view-only[=false]] [--disabled[=false]]",
		Short: "Creates a user or a service account, or changes the fields given",
		Long: `Creates the user if it does not exist, and sets the fields given; the others stay.
--kind service creates a service account (a user that never signs in and whose
tokens admins create and generate); a user's kind is set when it is created
and never changes. A view-only or disabled user's tokens stop working until
that is undone (--view-only=false, --disabled=false); nothing is revoked by it.`,
		Args: cobra.ExactArgs(1),
	}
	set.Flags().String("kind", "", "Kind, when the user is created: person (the default) or service")
	set.Flags().String("name", "", "Display name")
	set.Flags().String("email", "", "Email address (\"\" clears it)")
	set.Flags().Bool("view-only", false, "View-only: may not have API tokens (--view-only=false undoes it)")
	set.Flags().Bool("disabled", false, "Disabled: may not sign in, tokens stop working (--disabled=false undoes it)")
	set.RunE = c.action(func(ctx context.Context, out *output, cl *client, args []string) error {
		var p tokenadmin.UserPatch
		for flag, field := range map[string]**string{"kind": &p.Kind, "name": &p.Name} {
			if set.Flags().Changed(flag) {
				s, _ := set.Flags().GetString(flag)
				*field = &s
			}
		}
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
		raw, err := cl.call(ctx, "PUT", tokenadmin.BasePath+"users/"+url.PathEscape(args[0]), nil, p, &u)
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
			raw, err := cl.call(ctx, method, tokenadmin.BasePath+"users/"+url.PathEscape(args[0])+"/roles/"+url.PathEscape(args[1]), nil, nil, &u)
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
