package apitokencmd

import (
	"context"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

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

	show := func(out *output, raw []byte, kl tokenadmin.KeyList) error {
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
		var kl tokenadmin.KeyList
		raw, err := cl.call(ctx, "GET", tokenadmin.BasePath+"keys", nil, nil, &kl)
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
		var kl tokenadmin.KeyList
		raw, err := cl.call(ctx, "POST", tokenadmin.BasePath+"keys/rotate", nil, nil, &kl)
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
		var kl tokenadmin.KeyList
		raw, err := cl.call(ctx, "POST", tokenadmin.BasePath+"keys/"+url.PathEscape(args[0])+"/retire", nil, nil, &kl)
		if err != nil {
			return err
		}
		return show(out, raw, kl)
	})

	keys.AddCommand(list, rotate, retire)
	return keys
}
