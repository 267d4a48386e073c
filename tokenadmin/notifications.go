package tokenadmin

import (
	"net/http"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
)

// GET /admin/notifications?state=&token=
//
// The notification outbox, newest first: what was sent, what waits for a
// retry (attempts, last_error, next_attempt_at), and what failed or was
// skipped and why. It never holds a JWT.
func (a *api) adminNotifications(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	q, p, err := adminList(w, r, c)
	if err != nil {
		return err
	}
	f := apitoken.NotificationFilter{TokenID: q.Get("token"), Page: p}
	if s := q.Get("state"); s != "" {
		if f.State, err = apitoken.ParseNotificationState(s); err != nil {
			return err
		}
	}
	ns, next, err := a.svc.Notifications(r.Context(), c, f)
	if err != nil {
		return err
	}
	out := NotificationList{Notifications: make([]wire.Notification, len(ns)), NextCursor: cursor(next)}
	for i := range ns {
		out.Notifications[i] = wire.FromNotification(&ns[i])
	}
	jsonhttp.Write(w, http.StatusOK, out)
	return nil
}
