package tokenadmin

import (
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
)

// Every admin route refuses a caller who is not a system admin before it
// looks at anything else about the request.

// adminOnly does what every admin route without a body does first: refuse a
// caller who is not a system admin, then apply the request rules.
func adminOnly(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := c.CheckAdmin(); err != nil {
		return err
	}
	return readOnly(w, r)
}

// adminList is adminOnly for a list route, which also reads limit and
// cursor. It returns the query for the route's filters.
func adminList(w http.ResponseWriter, r *http.Request, c apitoken.Caller) (url.Values, apitoken.Page, error) {
	if err := adminOnly(w, r, c); err != nil {
		return nil, apitoken.Page{}, err
	}
	q := r.URL.Query()
	p, err := page(q)
	return q, p, err
}

// GET /admin/tokens?owner=&status=
func (a *api) adminTokens(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	q, p, err := adminList(w, r, c)
	if err != nil {
		return err
	}
	f := apitoken.TokenFilter{Owner: q.Get("owner"), Page: p}
	if s := q.Get("status"); s != "" {
		if f.Statuses, err = apitoken.ParseStatuses(s); err != nil {
			return err
		}
	}
	ts, next, err := a.svc.ListAllTokens(r.Context(), c, f)
	if err != nil {
		return err
	}
	jsonhttp.Write(w, http.StatusOK, a.tokenList(ts, next))
	return nil
}

// POST /admin/tokens/{id}/revoke
func (a *api) adminRevoke(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := adminOnly(w, r, c); err != nil {
		return err
	}
	t, err := a.svc.RevokeFor(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	a.revoked(w, r, c, t)
	return nil
}

// POST /admin/users/{user}/tokens: a token for a service account.
func (a *api) createFor(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := c.CheckAdmin(); err != nil {
		return err
	}
	ti, err := a.readNewToken(w, r)
	if err != nil {
		return err
	}
	t, err := a.svc.CreateTokenFor(r.Context(), c, r.PathValue("user"), ti)
	if err != nil {
		return err
	}
	a.created(w, r, c, t)
	return nil
}

// POST /admin/tokens/{id}/generate: a new JWT for a service account's
// token.
func (a *api) generateFor(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := c.CheckAdmin(); err != nil {
		return err
	}
	overlap, err := readOverlap(w, r)
	if err != nil {
		return err
	}
	jwt, t, err := a.svc.GenerateForOverlap(r.Context(), c, r.PathValue("id"), overlap)
	if err != nil {
		return err
	}
	a.generated(w, r, c, jwt, t)
	return nil
}

// GET /admin/logs?token=&owner=&activity=&result=&since=
func (a *api) adminLogs(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	q, p, err := adminList(w, r, c)
	if err != nil {
		return err
	}
	f := apitoken.LogFilter{TokenID: q.Get("token"), Owner: q.Get("owner"), Result: q.Get("result"), Page: p}
	if f.Result != "" && f.Result != apitoken.ResultOK && f.Result != apitoken.ResultFail {
		return apitoken.Errorf(apitoken.ErrInvalid, "result must be %s or %s, not %q", apitoken.ResultOK, apitoken.ResultFail, f.Result)
	}
	if s := q.Get("activity"); s != "" {
		if f.Activity, err = apitoken.ParseActivity(s); err != nil {
			return err
		}
	}
	if s := q.Get("since"); s != "" {
		if f.Since, err = time.Parse(time.RFC3339, s); err != nil {
			return apitoken.Errorf(apitoken.ErrInvalid, "since must be an RFC 3339 time such as 2025-01-31T09:00:00Z, not %q", s)
		}
		f.Since = f.Since.UTC()
	}
	ls, next, err := a.svc.AdminLogs(r.Context(), c, f)
	if err != nil {
		return err
	}
	jsonhttp.Write(w, http.StatusOK, logListOf(ls, next))
	return nil
}

// GET /admin/users?kind=&q=
func (a *api) listUsers(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	q, p, err := adminList(w, r, c)
	if err != nil {
		return err
	}
	f := apitoken.UserFilter{Q: q.Get("q"), Page: p}
	if k := q.Get("kind"); k != "" {
		if f.Kind, err = apitoken.ParseKind(k); err != nil {
			return err
		}
	}
	us, next, err := a.svc.ListUsers(r.Context(), c, f)
	if err != nil {
		return err
	}
	out := UserList{Users: make([]wire.User, len(us)), NextCursor: cursor(next)}
	for i := range us {
		out.Users[i] = wire.FromUser(&us[i])
	}
	jsonhttp.Write(w, http.StatusOK, out)
	return nil
}

// PUT /admin/users/{user}
func (a *api) putUser(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := c.CheckAdmin(); err != nil {
		return err
	}
	var in UserPatch
	if err := readObject(w, r, &in, userFields, ""); err != nil {
		return err
	}
	p := apitoken.UserPatch{Name: in.Name, Email: in.Email, ViewOnly: in.ViewOnly, Disabled: in.Disabled}
	if in.Kind != nil {
		k, err := apitoken.ParseKind(*in.Kind)
		if err != nil {
			return err
		}
		p.Kind = &k
	}
	u, err := a.svc.PutUser(r.Context(), c, r.PathValue("user"), p)
	if err != nil {
		return err
	}
	a.changed(r, c, "user set", zap.String("user", u.ID))
	jsonhttp.Write(w, http.StatusOK, wire.FromUser(&u))
	return nil
}

// PUT /admin/users/{user}/roles/{role}
func (a *api) grantRole(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	role, err := a.roleRequest(w, r, c)
	if err != nil {
		return err
	}
	u, err := a.svc.GrantRole(r.Context(), c, r.PathValue("user"), role)
	if err != nil {
		return err
	}
	a.changed(r, c, "role granted", zap.String("user", u.ID), zap.String("role", string(role)))
	jsonhttp.Write(w, http.StatusOK, wire.FromUser(&u))
	return nil
}

// DELETE /admin/users/{user}/roles/{role}
func (a *api) removeRole(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	role, err := a.roleRequest(w, r, c)
	if err != nil {
		return err
	}
	u, err := a.svc.RemoveRole(r.Context(), c, r.PathValue("user"), role)
	if err != nil {
		return err
	}
	a.changed(r, c, "role removed", zap.String("user", u.ID), zap.String("role", string(role)))
	jsonhttp.Write(w, http.StatusOK, wire.FromUser(&u))
	return nil
}

func (a *api) roleRequest(w http.ResponseWriter, r *http.Request, c apitoken.Caller) (apitoken.Role, error) {
	if err := adminOnly(w, r, c); err != nil {
		return "", err
	}
	return apitoken.ParseRole(r.PathValue("role"))
}
