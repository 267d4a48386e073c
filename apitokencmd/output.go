package apitokencmd

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

// output prints a command's answer: the admin API's JSON as it came with
// --json, else a table for people. Notes for people go to standard error,
// so standard output holds only the answer.
type output struct {
	cmd  *cobra.Command
	json bool
}

func (o *output) stdout() io.Writer { return o.cmd.OutOrStdout() }

// note prints a line for people on standard error (not with --json).
func (o *output) note(format string, args ...any) {
	if !o.json {
		fmt.Fprintf(o.cmd.ErrOrStderr(), format+"\n", args...)
	}
}

func (o *output) raw(raw []byte) error {
	_, err := o.stdout().Write(raw)
	return err
}

// table prints rows under header, or says on standard error that there are
// none. A next page is pointed to on standard error.
func (o *output) table(what string, header []string, rows [][]string, next *string) error {
	if len(rows) == 0 {
		o.note("No %s found.", what)
		return nil
	}
	tw := tabwriter.NewWriter(o.stdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			r[i] = cell(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != nil {
		o.note("More %s: repeat with --cursor %s", what, *next)
	}
	return nil
}

// cell keeps a value on one table cell: no tabs or line breaks, "-" for none.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

func when(t *wire.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (o *output) users(raw []byte, us []wire.User, next *string) error {
	if o.json {
		return o.raw(raw)
	}
	rows := make([][]string, len(us))
	for i, u := range us {
		// A role from an identity-provider group is marked with its source.
		roles := make([]string, len(u.Roles))
		for j, r := range u.Roles {
			roles[j] = string(r)
			if slices.Contains(u.GroupRoles, r) {
				roles[j] += "(group)"
			}
		}
		rows[i] = []string{u.ID, u.Kind, u.Email, strings.Join(roles, ","), yesNo(u.ViewOnly), yesNo(u.Disabled),
			when(u.CreatedAt), when(u.LastSeenAt)}
	}
	return o.table("users", []string{"USER", "KIND", "EMAIL", "ROLES", "VIEW-ONLY", "DISABLED", "CREATED", "LAST SEEN"}, rows, next)
}

func (o *output) tokens(raw []byte, ts []wire.Token, next *string) error {
	if o.json {
		return o.raw(raw)
	}
	rows := make([][]string, len(ts))
	for i, t := range ts {
		allowed := "any"
		if len(t.AllowedIPs) > 0 {
			allowed = strings.Join(t.AllowedIPs, ",")
		}
		rows[i] = []string{t.ID, t.Name, t.Owner, strings.Join(t.Scopes, ","), string(t.Expires), t.StatusLabel,
			when(t.ExpiresAt), when(t.LastUsedAt), str(t.LastUsedIP), allowed}
	}
	return o.table("tokens", []string{"ID", "NAME", "OWNER", "SCOPES", "EXPIRES", "STATUS", "EXPIRES AT", "LAST USED", "LAST IP", "ALLOWED IPS"}, rows, next)
}

func (o *output) logs(raw []byte, ls []wire.Log, next *string) error {
	if o.json {
		return o.raw(raw)
	}
	rows := make([][]string, len(ls))
	for i, l := range ls {
		rows[i] = []string{when(l.ActivityOn), string(l.Activity), str(l.TokenID), str(l.TokenName), str(l.User), l.ActivityBy,
			str(l.Result), strconv.FormatInt(l.Count, 10), str(l.ClientIP), str(l.Reason)}
	}
	return o.table("logs", []string{"TIME", "ACTIVITY", "TOKEN", "NAME", "USER", "BY", "RESULT", "COUNT", "CLIENT IP", "REASON"}, rows, next)
}

// generated prints the JWT alone on standard output, and what it is on
// standard error.
func (o *output) generated(raw []byte, g tokenadmin.Generated) error {
	if o.json {
		return o.raw(raw)
	}
	if _, err := fmt.Fprintln(o.stdout(), g.Token); err != nil {
		return err
	}
	expires := "never expires"
	if g.ExpiresAt != nil {
		expires = "expires " + when(g.ExpiresAt)
	}
	previous := "The previous JWT, if any, stopped at once."
	if g.Details.PreviousValidUntil != nil {
		previous = "The previous JWT keeps working until " + when(g.Details.PreviousValidUntil) + "."
	}
	o.note("Generated the JWT of token %s %q of %s: scopes %s, %s.\nIt is shown this once and never stored; generating again replaces it. %s",
		g.Details.ID, g.Details.Name, g.Details.Owner, strings.Join(g.Details.Scopes, ","), expires, previous)
	return nil
}
