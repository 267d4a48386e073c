package tokenadmin

import (
	"net/http"
	"net/url"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
)

// Every admin route refuses a caller who is not a system admin before it
// looks at anything else about the request.

// adminList does what every admin list route does first: refuse a caller who
// is not a system admin, apply the request rules of a route without a body,
// and read limit and cursor. It returns the query for the route's filters.
func adminList(w http.ResponseWriter, r *http.Request, c apitoken.Caller) (url.Values, apitoken.Page, error) {
	if err := c.CheckAdmin(); err != nil {
		return nil, apitoken.Page{}, err
	}
	if err := readOnly(w, r); err != nil {
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
		if f.Status, err = apitoken.ParseStatus(s); err != nil {
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
	if err := c.CheckAdmin(); err != nil {
		return err
	}
	if err := readOnly(w, r); err != nil {
		return err
	}
	t, err := a.svc.RevokeFor(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	jsonhttp.Write(w, http.StatusOK, wire.FromToken(&t, a.now()))
	return nil
}

// GET /admin/logs?token=&activity=&since=
func (a *api) adminLogs(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	q, p, err := adminList(w, r, c)
	if err != nil {
		return err
	}
	f := apitoken.LogFilter{TokenID: q.Get("token"), Page: p}
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

// GET /admin/users
func (a *api) listUsers(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	_, p, err := adminList(w, r, c)
	if err != nil {
		return err
	}
	us, next, err := a.svc.ListUsers(r.Context(), c, p)
	if err != nil {
		return err
	}
	out := userList{Users: make([]wire.User, len(us)), NextCursor: cursor(next)}
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
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	var in userBody
	if len(body) > 0 {
		if err := decodeJSON(body, &in, userFields); err != nil {
			return err
		}
	}
	u, err := a.svc.PutUser(r.Context(), c, r.PathValue("user"), apitoken.UserPatch{Email: in.Email, ViewOnly: in.ViewOnly, Disabled: in.Disabled})
	if err != nil {
		return err
	}
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
	jsonhttp.Write(w, http.StatusOK, wire.FromUser(&u))
	return nil
}

func (a *api) roleRequest(w http.ResponseWriter, r *http.Request, c apitoken.Caller) (apitoken.Role, error) {
	if err := c.CheckAdmin(); err != nil {
		return "", err
	}
	if err := readOnly(w, r); err != nil {
		return "", err
	}
	return apitoken.ParseRole(r.PathValue("role"))
}
