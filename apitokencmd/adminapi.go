// Package apitokencmd is the operator's command line of caddy-apitokens:
// the `caddy api-tokens ...` subcommands, and the admin API module
// (admin.api.api_tokens) on Caddy's admin endpoint that they talk to.
//
// The commands never open the token store themselves: they ask the running
// Caddy, whose api_tokens app applies every rule and drops its caches at
// once, exactly as for a change made through api_token_admin.
package apitokencmd

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// Operator is the acting user recorded for a call on Caddy's admin endpoint
// that names no one with the Api-Tokens-Acting-User header (the --as flag).
// Reaching the admin endpoint is full control of Caddy, so the operator is a
// system admin by definition. The name contains a slash, which no user id
// may hold, so it can never be mistaken for a user.
const Operator = "caddy/admin"

// ActingUserHeader names, on a call to the admin API, the system admin on
// whose behalf it is made: it is recorded as the acting user in token logs
// and Caddy's log. It must name a system admin (in the app's admins, or
// holding the admin role) who is not disabled.
const ActingUserHeader = "Api-Tokens-Acting-User"

// BasePath is where AdminAPI serves on Caddy's admin endpoint.
const BasePath = "/api-tokens/"

// AdminAPI serves the management operations of the running config's
// api_tokens app on Caddy's admin endpoint (default localhost:2019), under
// /api-tokens/: users and roles, every user's tokens (create for a user,
// generate, revoke), the logs, and the signing keys (list, rotate, retire).
// The `caddy api-tokens` commands call it.
//
// Answers and errors have the JSON shapes of the api_token_admin routes
// (errors are {"error": "<code>", "message": "<sentence>"}).
type AdminAPI struct {
	logger *zap.Logger
	mux    *http.ServeMux
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.api_tokens",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision sets up the routes. The api_tokens app is looked up at each
// request in the running config, so a reload that changes it is followed.
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	// Passing the module names the logger: an admin router's context has no
	// module of its own (Caddy's admin.api.pki does the same).
	a.logger = ctx.Logger(a)
	a.mux = http.NewServeMux()
	for _, rt := range []struct {
		pattern string
		fn      opFunc
	}{
		{"GET /api-tokens/users", a.listUsers},
		{"PUT /api-tokens/users/{user}", a.putUser},
		{"PUT /api-tokens/users/{user}/roles/{role}", a.grantRole},
		{"DELETE /api-tokens/users/{user}/roles/{role}", a.removeRole},
		{"GET /api-tokens/tokens", a.listTokens},
		{"POST /api-tokens/tokens", a.createToken},
		{"POST /api-tokens/tokens/{id}/generate", a.generate},
		{"POST /api-tokens/tokens/{id}/revoke", a.revoke},
		{"GET /api-tokens/logs", a.logs},
		{"GET /api-tokens/keys", a.listKeys},
		{"POST /api-tokens/keys/rotate", a.rotateKey},
		{"POST /api-tokens/keys/{kid}/retire", a.retireKey},
	} {
		a.mux.HandleFunc(rt.pattern, a.handle(rt.fn))
	}
	a.mux.HandleFunc(BasePath, func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, apitoken.Errorf(apitoken.ErrNotFound, "there is no api-tokens admin route %s %s", r.Method, r.URL.Path))
	})
	return nil
}

// Routes mounts the API on the admin endpoint.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: BasePath,
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			a.mux.ServeHTTP(w, r)
			return nil // every answer, errors included, is written here
		}),
	}}
}

// opFunc answers one route for the acting system admin of the running app.
type opFunc func(w http.ResponseWriter, r *http.Request, op *operation) error

// operation is one call: the running app, its service, and who acts.
type operation struct {
	app *caddymodule.App
	svc *apitoken.Service
	by  apitoken.Caller
}

func (a *AdminAPI) handle(fn opFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op, err := a.operation(r)
		if err == nil {
			err = fn(w, r, op)
		}
		if err != nil {
			a.fail(w, r, err)
		}
	}
}

// operation finds the api_tokens app of the running config and the acting
// user.
func (a *AdminAPI) operation(r *http.Request) (*operation, error) {
	v, err := caddy.ActiveContext().AppIfConfigured("api_tokens")
	if err != nil {
		if errors.Is(err, caddy.ErrNotConfigured) {
			return nil, errNotConfigured
		}
		return nil, fmt.Errorf("finding the api_tokens app: %w", err)
	}
	app, ok := v.(*caddymodule.App)
	if !ok || app.Service() == nil {
		return nil, fmt.Errorf("the api_tokens app is a %T without a token service", v)
	}
	op := &operation{app: app, svc: app.Service()}
	op.by, err = actingUser(r, op.svc)
	return op, err
}

var errNotConfigured = &jsonhttp.Error{Status: http.StatusServiceUnavailable, Code: "not_configured",
	Msg: "the running Caddy config has no api_tokens app: add the api_tokens global option (or a site using api_token_auth or api_token_admin) and reload"}

// actingUser is the system admin the request names, or Operator.
func actingUser(r *http.Request, svc *apitoken.Service) (apitoken.Caller, error) {
	as := r.Header.Get(ActingUserHeader)
	if as == "" {
		return apitoken.Caller{ID: Operator, User: apitoken.User{ID: Operator}, Admin: true}, nil
	}
	if err := apitoken.CheckUserID(as); err != nil {
		return apitoken.Caller{}, apitoken.Errorf(apitoken.ErrInvalid, "--as %q: %s", as, apitoken.Message(err))
	}
	c, err := svc.Caller(r.Context(), as)
	switch {
	case errors.Is(err, apitoken.ErrForbidden):
		return apitoken.Caller{}, apitoken.Errorf(apitoken.ErrForbidden, "--as %q: the user is disabled and cannot act", as)
	case err != nil:
		return apitoken.Caller{}, err
	case !c.Admin:
		return apitoken.Caller{}, apitoken.Errorf(apitoken.ErrForbidden,
			"--as %q: not a system admin; name a user listed in the api_tokens admins or holding the admin role", as)
	}
	return c, nil
}

// Interface guards
var (
	_ caddy.AdminRouter = (*AdminAPI)(nil)
	_ caddy.Provisioner = (*AdminAPI)(nil)
)
