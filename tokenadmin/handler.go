// Package tokenadmin is the management API: one route table (api.go)
// through which users manage their own API tokens and system admins manage
// users, roles and every token, turning HTTP into calls of
// apitoken.Service and back. Two modules mount it: the api_token_admin
// handler (handler.go), for the caller Caddy's authentication established,
// and the admin API on Caddy's admin endpoint (adminapi.go), for the
// operator, which `caddy api-tokens` calls.
package tokenadmin

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler answers the token management routes (GET /tokens, POST
// /tokens/{id}/generate, GET /admin/users, ...). It is terminal: every
// request that reaches it is answered here, unknown routes with 404.
//
// The caller is {http.auth.user.id} (or User), so put Caddy authentication
// (basic_auth, forward_auth, ...) before it. An identity established by
// api_token_auth is refused: a JWT never manages tokens. A caller seen for
// the first time becomes a user; Name, Email and Groups keep the user's
// record up to date, and groups give roles by the api_tokens app's group
// map.
//
// A header named in these placeholders must be one that the authentication
// in front always sets or removes (forward_auth's copy_headers does):
// otherwise a client could send it and name anyone.
type Handler struct {
	// APIURL is the base URL of the report API that api_token_auth guards
	// (https://reports.example.com), shown in the "token generated" dialog
	// with ready-to-paste snippets for each client. Optional.
	APIURL string `json:"api_url,omitempty"`

	// User is the caller's user id (a placeholder). Default:
	// {http.auth.user.id}.
	User string `json:"user,omitempty"`
	// Name is the caller's display name (a placeholder), e.g.
	// {http.request.header.X-Auth-Request-Preferred-Username}. Default: none.
	Name string `json:"name,omitempty"`
	// Email is the caller's email address (a placeholder), e.g.
	// {http.request.header.X-Auth-Request-Email}. Default: none.
	Email string `json:"email,omitempty"`
	// Groups is the caller's identity-provider groups, comma-separated (a
	// placeholder), e.g. {http.request.header.X-Auth-Request-Groups}.
	// Default: none (the groups stored for the user stay).
	Groups string `json:"groups,omitempty"`
	// GroupsSeparator separates the groups in Groups. Default: "," (as
	// oauth2-proxy and Authelia send them); Authentik sends "|".
	GroupsSeparator string `json:"groups_separator,omitempty"`

	api    *api
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.api_token_admin",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision reaches the api_tokens app and its service.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appAny, err := ctx.App("api_tokens")
	if err != nil {
		return fmt.Errorf("loading the api_tokens app: %w", err)
	}
	app, ok := appAny.(*caddymodule.App)
	if !ok {
		return fmt.Errorf("api_tokens app is a %T, not *caddymodule.App", appAny)
	}
	svc := app.Service()
	if svc == nil {
		return fmt.Errorf("api_tokens app has no token service")
	}
	apiURL, err := checkAPIURL(h.APIURL)
	if err != nil {
		return err
	}
	h.api = newAPI(svc, app, h.logger, siteMount)
	h.api.apiURL = apiURL
	if h.User == "" {
		h.User = DefaultUser
	}
	if h.GroupsSeparator == "" {
		h.GroupsSeparator = ","
	}
	return nil
}

// DefaultUser is Handler.User when unset.
const DefaultUser = "{http.auth.user.id}"

// identity is the caller as the placeholders describe them.
func (h *Handler) identity(r *http.Request) apitoken.Identity {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return apitoken.Identity{}
	}
	id := apitoken.Identity{ID: repl.ReplaceAll(h.User, ""), Name: repl.ReplaceAll(h.Name, ""),
		Email: repl.ReplaceAll(h.Email, "")}
	if h.Groups != "" {
		id.HasGroups = true
		id.Groups = strings.Split(repl.ReplaceAll(h.Groups, ""), h.GroupsSeparator)
	}
	return id
}

// checkAPIURL checks api_url: an absolute http(s) URL without a user,
// query or fragment. It returns it without a trailing slash, so snippets
// append paths to it.
func checkAPIURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, "?#\"\\'<> `") {
		return "", fmt.Errorf("api_token_admin: api_url %q is not the report API's base URL: write e.g. https://reports.example.com", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// ServeHTTP answers a management request. It never calls next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	viaToken := false
	switch v := caddyhttp.GetVar(r.Context(), caddymodule.VarTokenID).(type) {
	case nil:
	case string:
		viaToken = v != ""
	default:
		viaToken = true
	}
	h.api.serve(w, r, h.identity(r), viaToken)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
