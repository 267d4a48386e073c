package apitokencmd

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

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
		if s, _ := logs.Flags().GetString("token"); s != "" {
			q.Set("token", s)
		}
		if s, _ := logs.Flags().GetString("activity"); s != "" {
			// The flag takes any case; the API, the activities as logs
			// spell them. Caddy refuses an unknown one, quoting it.
			if a, err := apitoken.ParseActivity(strings.ToUpper(s)); err == nil {
				s = string(a)
			}
			q.Set("activity", s)
		}
		if s, _ := logs.Flags().GetString("since"); s != "" {
			since, err := parseSince(s, time.Now())
			if err != nil {
				return err
			}
			q.Set("since", since.UTC().Format(time.RFC3339))
		}
		pageQuery(logs, q)
		var ans tokenadmin.LogList
		raw, err := cl.call(ctx, "GET", tokenadmin.BasePath+"logs", q, nil, &ans)
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
