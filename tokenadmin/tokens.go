package tokenadmin

import (
	"net/http"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
)

// The JSON answers of the management routes.
type (
	tokenList struct {
		Tokens     []wire.Token `json:"tokens"`
		NextCursor *string      `json:"next_cursor"`
	}
	logList struct {
		Logs       []wire.Log `json:"logs"`
		NextCursor *string    `json:"next_cursor"`
	}
	userList struct {
		Users      []wire.User `json:"users"`
		NextCursor *string     `json:"next_cursor"`
	}
	generated struct {
		Token     string     `json:"token"`
		ExpiresAt *wire.Time `json:"expires_at"`
		Details   wire.Token `json:"details"`
	}
)

// The JSON bodies the routes accept. Anything else, "owner" included, is an
// unknown field and refused.
type (
	createBody struct {
		Name    string   `json:"name"`
		Expires string   `json:"expires"`
		Scopes  []string `json:"scopes"`
	}
	patchBody struct {
		Name    *string   `json:"name"`
		Expires *string   `json:"expires"`
		Scopes  *[]string `json:"scopes"`
	}
	userBody struct {
		Email    *string `json:"email"`
		ViewOnly *bool   `json:"view_only"`
		Disabled *bool   `json:"disabled"`
	}
	emptyBody struct{}
)

const (
	tokenFields = `"name", "expires" and "scopes"`
	patchFields = `any of "name", "expires" and "scopes"`
	userFields  = `any of "email", "view_only" and "disabled"`
	noFields    = "no fields"
)

func cursor(next string) *string {
	if next == "" {
		return nil
	}
	return &next
}

func (a *api) tokenList(ts []apitoken.Token, next string) tokenList {
	now := a.now()
	out := tokenList{Tokens: make([]wire.Token, len(ts)), NextCursor: cursor(next)}
	for i := range ts {
		out.Tokens[i] = wire.FromToken(&ts[i], now)
	}
	return out
}

func logListOf(ls []apitoken.Log, next string) logList {
	out := logList{Logs: make([]wire.Log, len(ls)), NextCursor: cursor(next)}
	for i := range ls {
		out.Logs[i] = wire.FromLog(&ls[i])
	}
	return out
}

// readOnly applies the request rules to a route that takes no body: a body,
// if sent anyway, must still be JSON within the size limit, and must carry
// no fields.
func readOnly(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r)
	if err != nil || len(body) == 0 {
		return err
	}
	return decodeJSON(body, &emptyBody{}, noFields)
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
	p, err := page(r.URL.Query())
	if err != nil {
		return err
	}
	ts, next, err := a.svc.ListTokens(r.Context(), c, apitoken.TokenFilter{Page: p})
	if err != nil {
		return err
	}
	jsonhttp.Write(w, http.StatusOK, a.tokenList(ts, next))
	return nil
}

// POST /tokens
func (a *api) createToken(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := c.CheckOwner(); err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return apitoken.Errorf(apitoken.ErrInvalid, `creating a token needs a JSON body with %s, such as {"name": "nightly export", "expires": "30d", "scopes": ["report"]}`, tokenFields)
	}
	var in createBody
	if err := decodeJSON(body, &in, tokenFields); err != nil {
		return err
	}
	ti := apitoken.TokenInput{Name: in.Name}
	if in.Expires != "" {
		if ti.Expires, err = apitoken.ParseExpiry(in.Expires); err != nil {
			return err
		}
	}
	if ti.Scopes, err = apitoken.ParseScopes(in.Scopes); err != nil {
		return err
	}
	t, err := a.svc.CreateToken(r.Context(), c, ti)
	if err != nil {
		return err
	}
	jsonhttp.Write(w, http.StatusCreated, wire.FromToken(&t, a.now()))
	return nil
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
	jsonhttp.Write(w, http.StatusOK, wire.FromToken(&t, a.now()))
	return nil
}

// PATCH /tokens/{id}
func (a *api) updateToken(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	t, err := a.owned(r, c)
	if err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return apitoken.Errorf(apitoken.ErrInvalid, `an update needs a JSON body with %s, such as {"name": "nightly export"}`, patchFields)
	}
	var in patchBody
	if err := decodeJSON(body, &in, patchFields); err != nil {
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
		s, err := apitoken.ParseScopes(*in.Scopes)
		if err != nil {
			return err
		}
		p.Scopes = &s
	}
	if t, err = a.svc.UpdateToken(r.Context(), c, t.ID, p); err != nil {
		return err
	}
	jsonhttp.Write(w, http.StatusOK, wire.FromToken(&t, a.now()))
	return nil
}

// POST /tokens/{id}/generate
func (a *api) generate(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	t, err := a.owned(r, c)
	if err != nil {
		return err
	}
	if err := readOnly(w, r); err != nil {
		return err
	}
	jwt, t, err := a.svc.Generate(r.Context(), c, t.ID)
	if err != nil {
		return err
	}
	details := wire.FromToken(&t, a.now())
	jsonhttp.Write(w, http.StatusOK, generated{Token: jwt, ExpiresAt: details.ExpiresAt, Details: details})
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
	jsonhttp.Write(w, http.StatusOK, wire.FromToken(&t, a.now()))
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
