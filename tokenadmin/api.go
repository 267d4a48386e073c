package tokenadmin

import (
	"context"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/docs"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
)

// api answers the management routes at one mount, for a caller the mount
// has established. It needs only the service (and, for the key routes, the
// keyring), so it is tested without a server.
type api struct {
	svc    *apitoken.Service
	keys   keyring // nil where no key route is mounted
	logger *zap.Logger
	at     mount
	mux    *http.ServeMux
	apiURL string // api_url, shown by the pages; "" when not set
	// noAuthWarned is set once a request without a user has been warned of.
	noAuthWarned atomic.Bool
}

// routeFunc answers one route for a caller that exists and is not disabled.
// A returned error is answered by fail.
type routeFunc func(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error

// route is one row of the route table. Its path is the one api_token_admin
// serves; a mount decides where (and whether) it serves it.
type route struct {
	method, path string
	fn           routeFunc
	// operator marks a route served only on Caddy's admin endpoint, to the
	// operator (or a system admin named with --as): the signing keys.
	operator bool
	// operatorToo marks a self-service route that the operator's mount
	// serves as well (at BasePath and the path's last segment).
	operatorToo bool
	// query names the query parameters the route reads; any other is
	// refused (400), so that a misspelt filter never returns the
	// unfiltered list.
	query []string
}

// The query parameters of list routes.
var (
	pageQuery   = []string{"limit", "cursor"}
	tokensQuery = append([]string{"status"}, pageQuery...)
)

// routes is the route table: every management route, for both mounts.
func (a *api) routes() []route {
	return []route{
		// This API's OpenAPI document, for any signed-in user.
		{method: "GET", path: "/openapi.json", fn: a.openAPI},
		// Self-service.
		{method: "GET", path: "/scopes", fn: a.listScopes, operatorToo: true},
		{method: "GET", path: "/tokens", fn: a.listTokens, query: tokensQuery},
		{method: "POST", path: "/tokens", fn: a.createToken},
		{method: "GET", path: "/tokens/{id}", fn: a.getToken},
		{method: "PATCH", path: "/tokens/{id}", fn: a.updateToken},
		{method: "POST", path: "/tokens/{id}/generate", fn: a.generate},
		{method: "POST", path: "/tokens/{id}/revoke", fn: a.revoke},
		{method: "GET", path: "/tokens/{id}/logs", fn: a.tokenLogs, query: pageQuery},
		// System admin (admin.go, notifications.go).
		{method: "GET", path: "/admin/tokens", fn: a.adminTokens, query: append([]string{"owner"}, tokensQuery...)},
		{method: "POST", path: "/admin/tokens/{id}/generate", fn: a.generateFor},
		{method: "POST", path: "/admin/tokens/{id}/revoke", fn: a.adminRevoke},
		{method: "GET", path: "/admin/logs", fn: a.adminLogs, query: append([]string{"token", "owner", "activity", "result", "since"}, pageQuery...)},
		{method: "GET", path: "/admin/notifications", fn: a.adminNotifications, query: append([]string{"state", "token"}, pageQuery...)},
		{method: "GET", path: "/admin/users", fn: a.listUsers, query: append([]string{"kind", "q"}, pageQuery...)},
		{method: "PUT", path: "/admin/users/{user}", fn: a.putUser},
		{method: "POST", path: "/admin/users/{user}/tokens", fn: a.createFor},
		{method: "PUT", path: "/admin/users/{user}/roles/{role}", fn: a.grantRole},
		{method: "DELETE", path: "/admin/users/{user}/roles/{role}", fn: a.removeRole},
		// Signing keys (keys.go).
		{method: "GET", path: "/admin/keys", fn: a.listKeys, operator: true},
		{method: "POST", path: "/admin/keys/rotate", fn: a.rotateKey, operator: true},
		{method: "POST", path: "/admin/keys/{kid}/retire", fn: a.retireKey, operator: true},
	}
}

// A mount is one place where the route table is served.
type mount struct {
	// path is where rt is served at this mount; false when it is not.
	path func(rt route) (string, bool)
	// internal is what a client is told of a failure on the server.
	internal string
}

// siteMount is api_token_admin: every route but the operator's, at its own
// path on the site. The caller comes from Caddy's authentication.
var siteMount = mount{
	path:     func(rt route) (string, bool) { return rt.path, !rt.operator },
	internal: "something went wrong on the server; try again, and tell the administrator if it persists",
}

// operatorMount is the admin.api.api_tokens module: the system admin routes,
// operator routes included, with /admin/ served as BasePath on Caddy's admin
// endpoint (/admin/users is /api-tokens/users). The caller is the operator
// or the system admin the request names (adminapi.go).
var operatorMount = mount{
	path: func(rt route) (string, bool) {
		if rt.operatorToo {
			return BasePath + strings.TrimPrefix(rt.path, "/"), true
		}
		rest, ok := strings.CutPrefix(rt.path, "/admin/")
		return BasePath + rest, ok
	},
	internal: "something went wrong in Caddy; see Caddy's log",
}

func newAPI(svc *apitoken.Service, keys keyring, logger *zap.Logger, at mount) *api {
	if logger == nil {
		logger = zap.NewNop()
	}
	a := &api{svc: svc, keys: keys, logger: logger, at: at, mux: http.NewServeMux()}
	allow := map[string][]string{}
	var paths []string
	for _, rt := range a.routes() {
		p, ok := at.path(rt)
		if !ok {
			continue
		}
		a.mux.HandleFunc(rt.method+" "+p, a.handle(rt))
		if allow[p] == nil {
			paths = append(paths, p)
		}
		allow[p] = append(allow[p], rt.method)
		if rt.method == http.MethodGet {
			allow[p] = append(allow[p], http.MethodHead)
		}
	}
	// A known path with another method: 405 naming the methods it has.
	for _, p := range paths {
		methods := strings.Join(allow[p], ", ")
		a.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			a.fail(w, r, &jsonhttp.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
				Msg: r.Method + " is not allowed here; use " + methods})
		})
	}
	a.mux.HandleFunc("/", a.notFound)
	return a
}

// now is the service's clock, so statuses are derived at the time the
// service acted.
func (a *api) now() time.Time {
	return a.svc.Now()
}

type callerKey struct{}

// serve answers a request of api_token_admin on behalf of the caller the
// identity layer describes (ID "" when Caddy authenticated no one), who
// signs in (apitoken.Service.SignIn). viaToken tells that the identity comes
// from an API token, which never manages tokens.
func (a *api) serve(w http.ResponseWriter, r *http.Request, id apitoken.Identity, viaToken bool) {
	if id.ID == "" && !viaToken && a.noAuthWarned.CompareAndSwap(false, true) {
		a.logger.Warn("api_token_admin was reached by a request without a signed-in user: put Caddy authentication "+
			"(basic_auth, forward_auth) in front of it, or nobody can manage tokens here; warned once",
			zap.String("remote_addr", r.RemoteAddr))
	}
	if isUIPath(r.URL.Path) { // the web pages, in ui.go
		a.serveUI(w, r, id, viaToken)
		return
	}
	noStore(w)
	switch {
	case id.ID == "":
		a.fail(w, r, &jsonhttp.Error{Status: http.StatusUnauthorized, Code: "unauthenticated",
			Msg: "sign in to manage API tokens"})
		return
	case viaToken:
		a.fail(w, r, apitoken.Errorf(apitoken.ErrForbidden,
			"API tokens cannot manage tokens; sign in with your own account instead"))
		return
	}
	c, err := a.svc.SignIn(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.route(w, r, c)
}

// route answers the request with the route of the table its method and
// path name, for c.
func (a *api) route(w http.ResponseWriter, r *http.Request, c apitoken.Caller) {
	// ServeMux would answer a path with "." or ".." segments or repeated
	// slashes with a redirect; no route has such a path.
	if p := r.URL.Path; p == "" || path.Clean(p) != p {
		a.notFound(w, r)
		return
	}
	a.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
}

// noStore sets the headers of every management answer: it may carry a
// secret (a new JWT), so nothing may store it.
func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

func (a *api) handle(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(callerKey{}).(apitoken.Caller)
		err := unknownQuery(r, rt.query)
		if id := r.PathValue("id"); err != nil && id != "" && strings.HasPrefix(rt.path, "/tokens/") {
			// Another user's token is missing before anything else is
			// said about the request.
			if _, oerr := a.svc.OwnedToken(r.Context(), c, id); oerr != nil {
				err = oerr
			}
		}
		if err == nil {
			err = rt.fn(w, r, c)
		}
		if err != nil {
			a.fail(w, r, err)
		}
	}
}

// unknownQuery refuses a query parameter that is not in known, naming it.
func unknownQuery(r *http.Request, known []string) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	for name := range r.URL.Query() {
		if !slices.Contains(known, name) {
			if len(known) == 0 {
				return apitoken.Errorf(apitoken.ErrInvalid, "unknown query parameter %q: this route takes none", name)
			}
			return apitoken.Errorf(apitoken.ErrInvalid, "unknown query parameter %q: this route takes %s", name, strings.Join(known, ", "))
		}
	}
	return nil
}

// GET /openapi.json: docs/openapi.json, embedded.
func (a *api) openAPI(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(docs.OpenAPI) // the client is gone if this fails
	return nil
}

func (a *api) notFound(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, apitoken.Errorf(apitoken.ErrNotFound, "there is no management route %s %s", r.Method, r.URL.Path))
}

// fail answers err as JSON; see jsonhttp.Fail.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	jsonhttp.Fail(w, r, a.logger, err, a.at.internal)
}

// changed logs a change in Caddy's log, naming the acting user.
func (a *api) changed(r *http.Request, c apitoken.Caller, msg string, fields ...zap.Field) {
	a.logger.Info(msg, append(fields, zap.String("acting_user", c.ID), zap.String("remote_addr", r.RemoteAddr))...)
}
