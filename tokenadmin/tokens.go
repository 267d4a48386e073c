package tokenadmin

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
)

// readOnly applies the request rules to a route that takes no body: a body,
// if sent anyway, must still be JSON within the size limit, and must carry
// no fields.
func readOnly(w http.ResponseWriter, r *http.Request) error {
	return readObject(w, r, &emptyBody{}, noFields, "")
}

// readObject applies the request rules (readBody) and decodes the JSON
// object of the body into dst; fields names what it accepts. A request
// without a body leaves dst as it is, unless the route needs one: then need
// is the message that says so.
func readObject(w http.ResponseWriter, r *http.Request, dst any, fields, need string) error {
	body, err := readBody(w, r)
	switch {
	case err != nil:
		return err
	case len(body) > 0:
		return decodeJSON(body, dst, fields)
	case need != "":
		return apitoken.Errorf(apitoken.ErrInvalid, "%s", need)
	}
	return nil
}

// owned loads the caller's token named in the path, before anything else
// about the request is looked at: another user's token is not found, exactly
// like a missing one. Then the caller must hold the effective token role.
func (a *api) owned(r *http.Request, c apitoken.Caller) (apitoken.Token, error) {
	t, err := a.svc.OwnedToken(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return apitoken.Token{}, err
	}
	if err := c.CheckOwner(); err != nil {
		return apitoken.Token{}, err
	}
	return t, nil
}

// GET /tokens
func (a *api) listTokens(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := c.CheckOwner(); err != nil {
		return err
	}
	if err := readOnly(w, r); err != nil {
		return err
	}
	q := r.URL.Query()
	p, err := page(q)
	if err != nil {
		return err
	}
	f := apitoken.TokenFilter{Page: p}
	if s := q.Get("status"); s != "" {
		if f.Statuses, err = apitoken.ParseStatuses(s); err != nil {
			return err
		}
	}
	ts, next, err := a.svc.ListTokens(r.Context(), c, f)
	if err != nil {
		return err
	}
	jsonhttp.Write(w, http.StatusOK, a.tokenList(ts, next))
	return nil
}

// GET /scopes: the declared scopes, to any signed-in user.
func (a *api) listScopes(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
	if err := readOnly(w, r); err != nil {
		return err
	}
	defs := a.svc.Scopes().Defs()
	out := ScopeList{Scopes: make([]Scope, len(defs))}
	for i, d := range defs {
		out.Scopes[i] = Scope(d)
	}
	jsonhttp.Write(w, http.StatusOK, out)
	return nil
}

// POST /tokens
func (a *api) createToken(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := c.CheckOwner(); err != nil {
		return err
	}
	ti, err := a.readNewToken(w, r)
	if err != nil {
		return err
	}
	t, err := a.svc.CreateToken(r.Context(), c, ti)
	if err != nil {
		return err
	}
	a.created(w, r, c, t)
	return nil
}

// readNewToken reads the body of a new token (NewToken).
func (a *api) readNewToken(w http.ResponseWriter, r *http.Request) (apitoken.TokenInput, error) {
	var in NewToken
	if err := readObject(w, r, &in, tokenFields,
		`creating a token needs a JSON body with `+tokenFields+`, such as {"name": "nightly export", "expires": "30d", "scopes": ["report"]}`); err != nil {
		return apitoken.TokenInput{}, err
	}
	ti := apitoken.TokenInput{Name: in.Name}
	var err error
	if in.Expires != "" {
		if ti.Expires, err = apitoken.ParseExpiry(in.Expires); err != nil {
			return ti, err
		}
	}
	if ti.Scopes, err = a.svc.Scopes().Parse(in.Scopes); err != nil {
		return ti, err
	}
	ti.AllowedIPs, err = apitoken.ParseNetworks(in.AllowedIPs)
	return ti, err
}

// created answers a new token, and logs it.
func (a *api) created(w http.ResponseWriter, r *http.Request, c apitoken.Caller, t apitoken.Token) {
	a.changed(r, c, "token created", zap.String("token_id", t.ID), zap.String("owner", t.Owner))
	jsonhttp.Write(w, http.StatusCreated, a.tokenJSON(&t))
}

// readOverlap reads the optional body of the generate routes
// (GenerateOptions): the overlap asked for, 0 for none.
func readOverlap(w http.ResponseWriter, r *http.Request) (time.Duration, error) {
	var in GenerateOptions
	if err := readObject(w, r, &in, generateFields, ""); err != nil || in.Overlap == nil {
		return 0, err
	}
	return apitoken.ParseOverlap(*in.Overlap)
}

// generated answers a new JWT, and logs the generation (never the JWT).
func (a *api) generated(w http.ResponseWriter, r *http.Request, c apitoken.Caller, jwt string, t apitoken.Token) {
	a.changed(r, c, "token generated", zap.String("token_id", t.ID), zap.String("owner", t.Owner))
	details := a.tokenJSON(&t)
	jsonhttp.Write(w, http.StatusOK, Generated{Token: jwt, ExpiresAt: details.ExpiresAt, Details: details})
}

// revoked answers a revoked token, and logs the revocation.
func (a *api) revoked(w http.ResponseWriter, r *http.Request, c apitoken.Caller, t apitoken.Token) {
	a.changed(r, c, "token revoked", zap.String("token_id", t.ID), zap.String("owner", t.Owner))
	jsonhttp.Write(w, http.StatusOK, a.tokenJSON(&t))
}

// GET /tokens/{id}
func (a *api) getToken(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	t, err := a.owned(r, c)
	if err != nil {
		return err
	}
	if err := readOnly(w, r); err != nil {
		return err
	}
	jsonhttp.Write(w, http.StatusOK, a.tokenJSON(&t))
	return nil
}

// PATCH /tokens/{id}
func (a *api) updateToken(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	t, err := a.owned(r, c)
	if err != nil {
		return err
	}
	var in patchBody
	if err := readObject(w, r, &in, patchFields,
		`an update needs a JSON body with `+patchFields+`, such as {"name": "nightly export"}`); err != nil {
		return err
	}
	p := apitoken.TokenPatch{Name: in.Name}
	if in.Expires != nil {
		e, err := apitoken.ParseExpiry(*in.Expires)
		if err != nil {
			return err
		}
		p.Expires = &e
	}
	if in.Scopes != nil {
		s, err := a.svc.Scopes().Parse(*in.Scopes)
		if err != nil {
			return err
		}
		p.Scopes = &s
	}
	if in.AllowedIPs != nil {
		n, err := apitoken.ParseNetworks(*in.AllowedIPs)
		if err != nil {
			return err
		}
		p.AllowedIPs = &n
	}
	if t, err = a.svc.UpdateToken(r.Context(), c, t.ID, p); err != nil {
		return err
	}
	a.changed(r, c, "token updated", zap.String("token_id", t.ID), zap.String("owner", t.Owner))
	jsonhttp.Write(w, http.StatusOK, a.tokenJSON(&t))
	return nil
}

// POST /tokens/{id}/generate
func (a *api) generate(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	t, err := a.owned(r, c)
	if err != nil {
		return err
	}
	overlap, err := readOverlap(w, r)
	if err != nil {
		return err
	}
	jwt, t, err := a.svc.GenerateOverlap(r.Context(), c, t.ID, overlap)
	if err != nil {
		return err
	}
	a.generated(w, r, c, jwt, t)
	return nil
}

// POST /tokens/{id}/revoke. An owner may revoke without the token role.
func (a *api) revoke(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	t, err := a.svc.OwnedToken(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := readOnly(w, r); err != nil {
		return err
	}
	if t, err = a.svc.Revoke(r.Context(), c, t.ID); err != nil {
		return err
	}
	a.revoked(w, r, c, t)
	return nil
}

// GET /tokens/{id}/logs
func (a *api) tokenLogs(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	t, err := a.owned(r, c)
	if err != nil {
		return err
	}
	if err := readOnly(w, r); err != nil {
		return err
	}
	p, err := page(r.URL.Query())
	if err != nil {
		return err
	}
	ls, next, err := a.svc.TokenLogs(r.Context(), c, t.ID, p)
	if err != nil {
		return err
	}
	jsonhttp.Write(w, http.StatusOK, logListOf(ls, next))
	return nil
}
