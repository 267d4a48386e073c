package tokenadmin

import (
	"context"
	"net/http"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
)

// api answers the management routes for callers whose identity the Caddy
// handler has established. It needs only the service, so it is tested
// without a server.
type api struct {
	svc    *apitoken.Service
	logger *zap.Logger
	mux    *http.ServeMux
}

// routeFunc answers one route for a caller that exists and is not disabled.
// A returned error is answered by fail.
type routeFunc func(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error

type route struct {
	method, path string
	fn           routeFunc
}

func newAPI(svc *apitoken.Service, logger *zap.Logger) *api {
	if logger == nil {
		logger = zap.NewNop()
	}
	a := &api{svc: svc, logger: logger, mux: http.NewServeMux()}
	routes := []route{
		// Self-service.
		{"GET", "/tokens", a.listTokens},
		{"POST", "/tokens", a.createToken},
		{"GET", "/tokens/{id}", a.getToken},
		{"PATCH", "/tokens/{id}", a.updateToken},
		{"POST", "/tokens/{id}/generate", a.generate},
		{"POST", "/tokens/{id}/revoke", a.revoke},
		{"GET", "/tokens/{id}/logs", a.tokenLogs},
		// System admin.
		{"GET", "/admin/tokens", a.adminTokens},
		{"POST", "/admin/tokens/{id}/revoke", a.adminRevoke},
		{"GET", "/admin/logs", a.adminLogs},
		{"GET", "/admin/notifications", a.adminNotifications}, // notifications.go
		{"GET", "/admin/users", a.listUsers},
		{"PUT", "/admin/users/{user}", a.putUser},
		{"PUT", "/admin/users/{user}/roles/{role}", a.grantRole},
		{"DELETE", "/admin/users/{user}/roles/{role}", a.removeRole},
	}
	allow := map[string][]string{}
	var paths []string
	for _, rt := range routes {
		a.mux.HandleFunc(rt.method+" "+rt.path, a.handle(rt.fn))
		if allow[rt.path] == nil {
			paths = append(paths, rt.path)
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
		if rt.method == http.MethodGet {
			allow[rt.path] = append(allow[rt.path], http.MethodHead)
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

// serve answers a request on behalf of caller ("" when Caddy authenticated
// no one). viaToken tells that the identity comes from an API token, which
// never manages tokens.
func (a *api) serve(w http.ResponseWriter, r *http.Request, caller string, viaToken bool) {
	if isUIPath(r.URL.Path) { // the web pages, in ui.go
		a.serveUI(w, r, caller, viaToken)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	switch {
	case caller == "":
		a.fail(w, r, &jsonhttp.Error{Status: http.StatusUnauthorized, Code: "unauthenticated",
			Msg: "sign in to manage API tokens"})
		return
	case viaToken:
		a.fail(w, r, apitoken.Errorf(apitoken.ErrForbidden,
			"API tokens cannot manage tokens; sign in with your own account instead"))
		return
	}
	c, err := a.svc.Caller(r.Context(), caller)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// ServeMux would answer a path with "." or ".." segments or repeated
	// slashes with a redirect; no route has such a path.
	if p := r.URL.Path; p == "" || path.Clean(p) != p {
		a.notFound(w, r)
		return
	}
	a.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
}

func (a *api) handle(fn routeFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(callerKey{}).(apitoken.Caller)
		if err := fn(w, r, c); err != nil {
			a.fail(w, r, err)
		}
	}
}

func (a *api) notFound(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, apitoken.Errorf(apitoken.ErrNotFound, "there is no management route %s %s", r.Method, r.URL.Path))
}
