package tokenadmin

import (
	"errors"
	"fmt"
	"net/http"
	"sync"

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
// that names no one with the ActingUserHeader (the --as flag). Reaching the
// admin endpoint is full control of Caddy, so the operator is a system admin
// by definition. The name contains a slash, which no user id may hold, so it
// can never be mistaken for a user.
const Operator = "caddy/admin"

// ActingUserHeader names, on a call to the admin API, the system admin on
// whose behalf it is made: it is recorded as the acting user in token logs
// and Caddy's log. It must name a system admin (in the app's admins, or
// holding the admin role) who is not disabled.
const ActingUserHeader = "Api-Tokens-Acting-User"

// BasePath is where AdminAPI serves on Caddy's admin endpoint: the system
// admin routes of api_token_admin, /admin/ read as /api-tokens/, and
// GET /scopes as /api-tokens/scopes.
const BasePath = "/api-tokens/"

// AdminAPI serves the management routes of the running config's api_tokens
// app on Caddy's admin endpoint (default localhost:2019), under /api-tokens/:
// the system admin routes of api_token_admin (/api-tokens/users is
// /admin/users), and the operator's own: the signing keys (list, rotate,
// retire), and tokens created and generated for another user. It is the
// same route table, so answers, errors and request rules are the same.
// The `caddy api-tokens` commands call it.
type AdminAPI struct {
	logger *zap.Logger
	last   *served
}

// served is the route table of the app last served, kept until a reload
// brings another app.
type served struct {
	mu  sync.Mutex
	app *caddymodule.App
	api *api
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.api_tokens",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision names the logger. The api_tokens app is looked up at each
// request in the running config, so a reload that changes it is followed.
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	// Passing the module names the logger: an admin router's context has no
	// module of its own (Caddy's admin.api.pki does the same).
	a.logger = ctx.Logger(a)
	a.last = new(served)
	return nil
}

// Routes mounts the API on the admin endpoint.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: BasePath,
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			a.serve(w, r)
			return nil // every answer, errors included, is written here
		}),
	}}
}

// serve answers a request for the operator, or the system admin it names.
func (a *AdminAPI) serve(w http.ResponseWriter, r *http.Request) {
	api, err := a.running()
	if err != nil {
		noStore(w)
		jsonhttp.Fail(w, r, a.logger, err, operatorMount.internal)
		return
	}
	api.serveOperator(w, r)
}

// running is the route table of the running config's api_tokens app.
func (a *AdminAPI) running() (*api, error) {
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
	l := a.last
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.app != app {
		l.app, l.api = app, newAPI(app.Service(), app, a.logger, operatorMount)
	}
	return l.api, nil
}

var errNotConfigured = &jsonhttp.Error{Status: http.StatusServiceUnavailable, Code: "not_configured",
	Msg: "the running Caddy config has no api_tokens app: add the api_tokens global option (or a site using api_token_auth or api_token_admin) and reload"}

// serveOperator answers a request of the admin API, on behalf of the
// system admin it names or the Operator.
func (a *api) serveOperator(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	c, err := actingUser(r, a.svc)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.route(w, r, c)
}

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
