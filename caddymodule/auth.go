package caddymodule

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func init() {
	caddy.RegisterModule(Auth{})
}

// VarTokenID is the request variable that api_token_auth sets to the id of
// the token that authenticated the request. api_token_admin refuses such
// requests: a JWT never manages tokens.
const VarTokenID = "api_token.id"

// Auth is the api_token_auth middleware. Every request must carry a valid,
// unrevoked JWT whose token has the scope that the path needs, or it is
// answered here (RFC 6750) and never reaches the next handler.
type Auth struct {
	// App names the guarded API: the realm of WWW-Authenticate and the
	// "activity by" of AUTHENTICATE logs. Default: the site's first address
	// as the Caddyfile writes it (filled in when it is adapted), or in JSON
	// config the name of the server; never a value the client sends.
	App string `json:"app,omitempty"`

	// Scopes map paths to the scopes that grant them. The first rule whose
	// paths match wins. Paths use the syntax of Caddy's path matcher. Every
	// scope named must be declared in the api_tokens app.
	Scopes []ScopeRule `json:"scopes,omitempty"`

	// DefaultScope is the scope needed by paths that no rule matches; it
	// must be declared. Empty: such paths are refused (403).
	DefaultScope string `json:"default_scope,omitempty"`

	// ForwardAuthorization keeps the Authorization header for the next
	// handler. By default it is removed.
	ForwardAuthorization bool `json:"forward_authorization,omitempty"`

	// RevokeExposed revokes the token of a JWT sent in the URL
	// (access_token=) when its signature is good: URLs end up in proxies'
	// logs, browser history and referrers, so such a JWT has leaked. The
	// request is refused (400) either way. Default: true.
	RevokeExposed *bool `json:"revoke_exposed,omitempty"`

	// BasicChallenge adds a Basic challenge after the Bearer one to the 401
	// of a request without a credential, so that clients that wait for a
	// challenge before sending a user and password (Power Query's Basic
	// credential, Python's HTTPBasicAuthHandler, curl --anyauth) send the
	// token as the password. Default: true.
	BasicChallenge *bool `json:"basic_challenge,omitempty"`

	// CORS lists the browser origins (scheme://host[:port]) whose pages may
	// call the API: their preflights are answered here, before any
	// credential check, and every answer to them, refusals included, says
	// Access-Control-Allow-Origin. Other origins' preflights are refused
	// (403). Empty: no origin is allowed, and a preflight is refused like
	// any request without a credential.
	CORS []string `json:"cors,omitempty"`

	rules        []scopeRule
	origins      map[string]bool // of CORS
	defaultScope apitoken.Scopes
	declared     apitoken.Scopes // the app's declared scopes
	app          *App
	logger       *zap.Logger
	identities   *identities
}

// ScopeRule is one rule: the scopes that grant its paths.
type ScopeRule struct {
	// Scope names one scope, or several separated by spaces ("report
	// sales"): any of them grants the paths.
	Scope string              `json:"scope"`
	Paths caddyhttp.MatchPath `json:"paths"`
}

type scopeRule struct {
	name  string // the scopes, space-separated
	scope apitoken.Scopes
	paths pathMatcher
}

// CaddyModule returns the Caddy module information.
func (Auth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.api_token_auth",
		New: func() caddy.Module { return new(Auth) },
	}
}

// Provision binds the api_tokens app and compiles the scope rules against
// the scopes it declares.
func (h *Auth) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.identities = new(identities)
	var err error
	if h.app, err = app(ctx); err != nil {
		return err
	}
	declared := h.app.service.Scopes()
	h.declared = declared.All()
	h.rules = make([]scopeRule, 0, len(h.Scopes))
	seen := map[string]int{} // path -> the rule that names it
	for i, r := range h.Scopes {
		names := strings.Fields(r.Scope)
		if len(names) == 0 {
			return fmt.Errorf("api_token_auth: scope rule #%d names no scope; the declared scopes are %s", i+1, declared.List())
		}
		r.Scope = strings.Join(names, " ")
		var bits apitoken.Scopes
		for _, n := range names {
			bit, err := declared.Bit(n)
			if err != nil {
				return fmt.Errorf("api_token_auth: scope rule #%d: %s (declare it in the api_tokens scopes block)", i+1, apitoken.Message(err))
			}
			bits |= bit
		}
		if len(r.Paths) == 0 {
			return fmt.Errorf("api_token_auth: scope rule #%d (%s) has no paths", i+1, r.Scope)
		}
		for _, p := range r.Paths {
			// A path without its leading / matches no request: the rule
			// would silently grant nothing.
			if !strings.HasPrefix(p, "/") {
				return fmt.Errorf("api_token_auth: scope rule #%d (%s): path %q must start with /, e.g. /%s", i+1, r.Scope, p, strings.TrimLeft(p, "*"))
			}
			// The first matching rule wins: a path in two rules would
			// silently ignore the second.
			if first, ok := seen[p]; ok {
				return fmt.Errorf("api_token_auth: path %q is in scope rule #%d (%s) and in #%d (%s): give each path one rule", p, first+1, h.Scopes[first].Scope, i+1, r.Scope)
			}
			seen[p] = i
		}
		paths := append(caddyhttp.MatchPath(nil), r.Paths...)
		if err := paths.Provision(ctx); err != nil {
			return err
		}
		h.rules = append(h.rules, scopeRule{name: r.Scope, scope: bits, paths: compilePaths(paths)})
	}
	if h.DefaultScope != "" {
		bit, err := declared.Bit(h.DefaultScope)
		if err != nil {
			return fmt.Errorf("api_token_auth: default_scope: %s (declare it in the api_tokens scopes block)", apitoken.Message(err))
		}
		h.defaultScope = bit
	}
	h.origins, err = corsOrigins(h.CORS)
	return err
}

// Validate checks that the guard can let anything through at all.
func (h *Auth) Validate() error {
	if len(h.rules) == 0 && h.defaultScope == 0 {
		return fmt.Errorf("api_token_auth: no scope rule and no default_scope: every request would be refused; add e.g. `scope meta /meta /meta/*`")
	}
	return nil
}

// ServeHTTP authenticates the request, checks its scope and records the
// attempt, then hands it to next; a refused request is answered here.
func (h *Auth) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	origin := h.allowedOrigin(r)
	if origin != "" {
		allowOrigin(w, origin)
	}
	if lim := h.app.limiter; lim != nil {
		if wait := lim.retryAfter(clientKey(clientIP(r))); wait > 0 {
			return h.refuseTooMany(w, r, wait)
		}
	}
	if desc, reason := requestRefusal(r); desc != "" {
		return h.refuse(w, r, badRequest(desc), "", reason, nil)
	}
	if desc, err := h.pathRefusal(r); err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	} else if desc != "" {
		return h.refuse(w, r, badRequest(desc), "", "unsafe_path", nil)
	}
	if h.origins != nil && isPreflight(r) {
		return h.preflight(w, r, origin)
	}
	raw, ref := credential(r)
	if ref != nil {
		reason := "no_credential"
		switch {
		case ref == &refuseTokenInURL:
			reason = "token_in_url"
			h.revokeExposed(r)
		case ref.code != "":
			reason = "bad_credential"
		}
		return h.refuse(w, r, *ref, "", reason, nil)
	}
	p, fail := h.app.auth.Authenticate(r.Context(), raw)
	if fail == nil && len(p.Token.AllowedIPs) > 0 && !p.Token.AllowedIPs.Allow(clientIP(r)) {
		// Refused as any invalid token: the client learns nothing of the
		// limit. A token without allowed_ips costs only the length check.
		fail = &apitoken.Failure{Reason: apitoken.ReasonIPNotAllowed, TokenID: p.Token.ID}
	}
	if fail != nil {
		h.record(r, fail.TokenID, apitoken.ResultFail, fail.Reason)
		switch {
		case fail.Unavailable:
			w.Header().Set("Retry-After", "1")
			return h.refuse(w, r, refusal{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
				desc: "the token service is unavailable; try again shortly"}, fail.TokenID, fail.Reason, fail.Err)
		case fail.Reason == apitoken.ReasonExpired:
			return h.refuse(w, r, refuseExpired, fail.TokenID, fail.Reason, fail.Err)
		default:
			return h.refuse(w, r, refuseInvalid, fail.TokenID, fail.Reason, fail.Err)
		}
	}
	need, name, err := h.scopeFor(r)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	if need == 0 || !p.Scopes.Any(need) {
		reason := apitoken.ReasonInsufficientScope
		desc := "the token does not have the " + name + " scope"
		if strings.Contains(name, " ") {
			desc = "the token has none of the scopes " + name
		}
		if need == 0 {
			reason, desc = "path_not_allowed", "no scope grants access to this path"
		}
		h.record(r, p.Token.ID, apitoken.ResultFail, reason)
		return h.refuse(w, r, refusal{status: http.StatusForbidden, code: "insufficient_scope", desc: desc, scope: name}, p.Token.ID, reason, nil)
	}
	okReason := ""
	if p.Previous {
		okReason = apitoken.ReasonPreviousJWT // not a use of the live JWT: its status stays
	}
	h.record(r, p.Token.ID, apitoken.ResultOK, okReason)
	h.app.metrics.authenticated(apitoken.ResultOK, "")
	p.Scopes &= h.declared // a scope no longer declared grants nothing, nor is handed on
	h.identify(w, r, p)
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*Auth)(nil)
	_ caddy.Provisioner           = (*Auth)(nil)
	_ caddy.Validator             = (*Auth)(nil)
)
