package apitokencmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
)

// The routes of AdminAPI. Each one is one call of apitoken.Service on behalf
// of the acting system admin; the service applies every rule and writes the
// token and admin logs. Changes are also logged in Caddy's log with the
// acting user.

// GET /api-tokens/users?limit=&cursor=
func (a *AdminAPI) listUsers(w http.ResponseWriter, r *http.Request, op *operation) error {
	p, err := page(r.URL.Query())
	if err != nil {
		return err
	}
	us, next, err := op.svc.ListUsers(r.Context(), op.by, p)
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

// PUT /api-tokens/users/{user} {"email"?, "view_only"?, "disabled"?}
func (a *AdminAPI) putUser(w http.ResponseWriter, r *http.Request, op *operation) error {
	var in UserPatch
	if err := readJSON(w, r, &in, false); err != nil {
		return err
	}
	u, err := op.svc.PutUser(r.Context(), op.by, r.PathValue("user"), apitoken.UserPatch{Email: in.Email, ViewOnly: in.ViewOnly, Disabled: in.Disabled})
	if err != nil {
		return err
	}
	a.changed(r, op, "user set", zap.String("user", u.ID))
	jsonhttp.Write(w, http.StatusOK, wire.FromUser(&u))
	return nil
}

// PUT /api-tokens/users/{user}/roles/{role}
func (a *AdminAPI) grantRole(w http.ResponseWriter, r *http.Request, op *operation) error {
	role, err := apitoken.ParseRole(r.PathValue("role"))
	if err != nil {
		return err
	}
	u, err := op.svc.GrantRole(r.Context(), op.by, r.PathValue("user"), role)
	if err != nil {
		return err
	}
	a.changed(r, op, "role granted", zap.String("user", u.ID), zap.String("role", string(role)))
	jsonhttp.Write(w, http.StatusOK, wire.FromUser(&u))
	return nil
}

// DELETE /api-tokens/users/{user}/roles/{role}
func (a *AdminAPI) removeRole(w http.ResponseWriter, r *http.Request, op *operation) error {
	role, err := apitoken.ParseRole(r.PathValue("role"))
	if err != nil {
		return err
	}
	u, err := op.svc.RemoveRole(r.Context(), op.by, r.PathValue("user"), role)
	if err != nil {
		return err
	}
	a.changed(r, op, "role removed", zap.String("user", u.ID), zap.String("role", string(role)))
	jsonhttp.Write(w, http.StatusOK, wire.FromUser(&u))
	return nil
}

// GET /api-tokens/tokens?owner=&status=&limit=&cursor=
func (a *AdminAPI) listTokens(w http.ResponseWriter, r *http.Request, op *operation) error {
	q := r.URL.Query()
	p, err := page(q)
	if err != nil {
		return err
	}
	f := apitoken.TokenFilter{Owner: q.Get("owner"), Page: p}
	if s := q.Get("status"); s != "" {
		if f.Status, err = apitoken.ParseStatus(s); err != nil {
			return err
		}
	}
	ts, next, err := op.svc.ListAllTokens(r.Context(), op.by, f)
	if err != nil {
		return err
	}
	now := now(op.svc)
	out := TokenList{Tokens: make([]wire.Token, len(ts)), NextCursor: cursor(next)}
	for i := range ts {
		out.Tokens[i] = wire.FromToken(&ts[i], now)
	}
	jsonhttp.Write(w, http.StatusOK, out)
	return nil
}

// POST /api-tokens/tokens {"owner", "name", "expires", "scopes"}
func (a *AdminAPI) createToken(w http.ResponseWriter, r *http.Request, op *operation) error {
	var in NewToken
	if err := readJSON(w, r, &in, true); err != nil {
		return err
	}
	if in.Owner == "" {
		return apitoken.Errorf(apitoken.ErrInvalid, "owner is required: the user who will own the token")
	}
	ti := apitoken.TokenInput{Name: in.Name}
	var err error
	if in.Expires != "" {
		if ti.Expires, err = apitoken.ParseExpiry(in.Expires); err != nil {
			return err
		}
	}
	if ti.Scopes, err = apitoken.ParseScopes(in.Scopes); err != nil {
		return err
	}
	t, err := op.svc.CreateTokenFor(r.Context(), op.by, in.Owner, ti)
	if err != nil {
		return err
	}
	a.changed(r, op, "token created", zap.String("token_id", t.ID), zap.String("owner", t.Owner))
	jsonhttp.Write(w, http.StatusCreated, wire.FromToken(&t, now(op.svc)))
	return nil
}

// POST /api-tokens/tokens/{id}/generate
func (a *AdminAPI) generate(w http.ResponseWriter, r *http.Request, op *operation) error {
	jwt, t, err := op.svc.GenerateFor(r.Context(), op.by, r.PathValue("id"))
	if err != nil {
		return err
	}
	a.changed(r, op, "token generated", zap.String("token_id", t.ID), zap.String("owner", t.Owner))
	details := wire.FromToken(&t, now(op.svc))
	jsonhttp.Write(w, http.StatusOK, Generated{Token: jwt, ExpiresAt: details.ExpiresAt, Details: details})
	return nil
}

// POST /api-tokens/tokens/{id}/revoke
func (a *AdminAPI) revoke(w http.ResponseWriter, r *http.Request, op *operation) error {
	t, err := op.svc.RevokeFor(r.Context(), op.by, r.PathValue("id"))
	if err != nil {
		return err
	}
	a.changed(r, op, "token revoked", zap.String("token_id", t.ID), zap.String("owner", t.Owner))
	jsonhttp.Write(w, http.StatusOK, wire.FromToken(&t, now(op.svc)))
	return nil
}

// GET /api-tokens/logs?token=&activity=&since=&limit=&cursor=
func (a *AdminAPI) logs(w http.ResponseWriter, r *http.Request, op *operation) error {
	q := r.URL.Query()
	p, err := page(q)
	if err != nil {
		return err
	}
	f := apitoken.LogFilter{TokenID: q.Get("token"), Page: p}
	if s := q.Get("activity"); s != "" {
		// Any case is accepted; a refusal quotes what was given.
		if f.Activity, err = apitoken.ParseActivity(strings.ToUpper(s)); err != nil {
			_, err = apitoken.ParseActivity(s)
			return err
		}
	}
	if s := q.Get("since"); s != "" {
		if f.Since, err = time.Parse(time.RFC3339, s); err != nil {
			return apitoken.Errorf(apitoken.ErrInvalid, "since must be an RFC 3339 time such as 2025-01-31T09:00:00Z, not %q", s)
		}
		f.Since = f.Since.UTC()
	}
	ls, next, err := op.svc.AdminLogs(r.Context(), op.by, f)
	if err != nil {
		return err
	}
	out := LogList{Logs: make([]wire.Log, len(ls)), NextCursor: cursor(next)}
	for i := range ls {
		out.Logs[i] = wire.FromLog(&ls[i])
	}
	jsonhttp.Write(w, http.StatusOK, out)
	return nil
}

// changed logs a change in Caddy's log, naming the acting user.
func (a *AdminAPI) changed(r *http.Request, op *operation, msg string, fields ...zap.Field) {
	a.logger.Info(msg, append(fields, zap.String("acting_user", op.by.ID), zap.String("remote_addr", r.RemoteAddr))...)
}

func now(svc *apitoken.Service) time.Time {
	return svc.Now()
}

// The JSON of the admin API: the shapes of the api_token_admin routes, and
// the bodies the routes accept.
type (
	// TokenList answers GET /api-tokens/tokens.
	TokenList struct {
		Tokens     []wire.Token `json:"tokens"`
		NextCursor *string      `json:"next_cursor"`
	}
	// LogList answers GET /api-tokens/logs.
	LogList struct {
		Logs       []wire.Log `json:"logs"`
		NextCursor *string    `json:"next_cursor"`
	}
	// UserList answers GET /api-tokens/users.
	UserList struct {
		Users      []wire.User `json:"users"`
		NextCursor *string     `json:"next_cursor"`
	}
	// Generated answers POST /api-tokens/tokens/{id}/generate. Token, the
	// JWT, is shown this once.
	Generated struct {
		Token     string     `json:"token"`
		ExpiresAt *wire.Time `json:"expires_at"`
		Details   wire.Token `json:"details"`
	}
	// NewToken is the body of POST /api-tokens/tokens.
	NewToken struct {
		Owner   string   `json:"owner"`
		Name    string   `json:"name"`
		Expires string   `json:"expires"`
		Scopes  []string `json:"scopes"`
	}
	// UserPatch is the body of PUT /api-tokens/users/{user}; absent fields
	// stay.
	UserPatch struct {
		Email    *string `json:"email,omitempty"`
		ViewOnly *bool   `json:"view_only,omitempty"`
		Disabled *bool   `json:"disabled,omitempty"`
	}
)

func cursor(next string) *string {
	if next == "" {
		return nil
	}
	return &next
}

// page reads the limit and cursor query parameters of a list.
func page(q url.Values) (apitoken.Page, error) {
	p := apitoken.Page{Limit: apitoken.DefaultPageLimit, Cursor: q.Get("cursor")}
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > apitoken.MaxPageLimit || len(s) > 1 {
			return p, apitoken.Errorf(apitoken.ErrInvalid, "limit must be a whole number from 1 to %d", apitoken.MaxPageLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// maxBodyBytes is the largest request body accepted.
const maxBodyBytes = 64 << 10

// readJSON decodes the request's JSON object into dst, refusing unknown
// fields, a body that is not application/json, and anything past the object.
// Without required, an empty body leaves dst as it is.
func readJSON(w http.ResponseWriter, r *http.Request, dst any, required bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return apitoken.Errorf(apitoken.ErrInvalid, "the request body is larger than %d KiB, the most accepted", maxBodyBytes>>10)
	case err != nil:
		return apitoken.Errorf(apitoken.ErrInvalid, "the request body could not be read completely")
	case len(bytes.TrimSpace(body)) == 0 && !required:
		return nil
	case len(bytes.TrimSpace(body)) == 0:
		return apitoken.Errorf(apitoken.ErrInvalid, "this request needs a JSON object in its body")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &jsonhttp.Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Msg: "the request body must be JSON sent as Content-Type: application/json"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return apitoken.Errorf(apitoken.ErrInvalid, "the request body is not the JSON object this request takes: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return apitoken.Errorf(apitoken.ErrInvalid, "the request body has more after its JSON object; send one object only")
	}
	return nil
}

// fail answers err as JSON; see jsonhttp.Fail.
func (a *AdminAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	jsonhttp.Fail(w, r, a.logger, err, "something went wrong in Caddy; see Caddy's log")
}
