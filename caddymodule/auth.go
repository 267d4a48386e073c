package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/text/unicode/norm"

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

	// Scopes map paths to the scope they need. The first rule whose paths
	// match wins. Paths use the syntax of Caddy's path matcher.
	Scopes []ScopeRule `json:"scopes,omitempty"`

	// DefaultScope is the scope needed by paths that no rule matches.
	// Empty: such paths are refused (403).
	DefaultScope string `json:"default_scope,omitempty"`

	// ForwardAuthorization keeps the Authorization header for the next
	// handler. By default it is removed.
	ForwardAuthorization bool `json:"forward_authorization,omitempty"`

	// RevokeExposed revokes the token of a JWT sent in the URL
	// (access_token=) when its signature is good: URLs end up in proxies'
	// logs, browser history and referrers, so such a JWT has leaked. The
	// request is refused (400) either way. Default: true.
	RevokeExposed *bool `json:"revoke_exposed,omitempty"`

	rules          []scopeRule
	defaultScope   apitoken.Scopes
	app            *App
	logger         *zap.Logger
	lastExpiration *atomic.Pointer[expiration]
}

// ScopeRule is one path-to-scope rule.
type ScopeRule struct {
	Scope string              `json:"scope"`
	Paths caddyhttp.MatchPath `json:"paths"`
}

type scopeRule struct {
	name  string
	scope apitoken.Scopes
	paths caddyhttp.MatchPath
}

// CaddyModule returns the Caddy module information.
func (Auth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.api_token_auth",
		New: func() caddy.Module { return new(Auth) },
	}
}

// Provision compiles the scope rules and binds the api_tokens app.
func (h *Auth) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.lastExpiration = new(atomic.Pointer[expiration])
	h.rules = make([]scopeRule, 0, len(h.Scopes))
	for i, r := range h.Scopes {
		bit, ok := apitoken.ScopeBit(apitoken.Scope(r.Scope))
		if !ok {
			return fmt.Errorf("api_token_auth: scope rule #%d: unknown scope %q (use meta or report)", i+1, r.Scope)
		}
		if len(r.Paths) == 0 {
			return fmt.Errorf("api_token_auth: scope rule #%d (%s) has no paths", i+1, r.Scope)
		}
		paths := append(caddyhttp.MatchPath(nil), r.Paths...)
		if err := paths.Provision(ctx); err != nil {
			return err
		}
		h.rules = append(h.rules, scopeRule{name: r.Scope, scope: bit, paths: paths})
	}
	if h.DefaultScope != "" {
		bit, ok := apitoken.ScopeBit(apitoken.Scope(h.DefaultScope))
		if !ok {
			return fmt.Errorf("api_token_auth: default_scope: unknown scope %q (use meta or report)", h.DefaultScope)
		}
		h.defaultScope = bit
	}
	var err error
	h.app, err = app(ctx)
	return err
}

// Validate checks that the guard can let anything through at all.
func (h *Auth) Validate() error {
	if len(h.rules) == 0 && h.defaultScope == 0 {
		return fmt.Errorf("api_token_auth: no scope rule and no default_scope: every request would be refused; add e.g. `scope meta /meta /meta/*`")
	}
	return nil
}

// refusal is an RFC 6750 answer.
type refusal struct {
	status int
	code   string // error of WWW-Authenticate and the body; "" for a bare challenge
	desc   string
	scope  string // the scope needed, for insufficient_scope
}

var (
	refuseNoCredential = refusal{status: http.StatusUnauthorized, desc: "an API token is required: send Authorization: Bearer <token>"}
	refuseInvalid      = refusal{status: http.StatusUnauthorized, code: "invalid_token", desc: "token is not valid"}
	refuseExpired      = refusal{status: http.StatusUnauthorized, code: "invalid_token", desc: "token expired"}
)

func badRequest(desc string) refusal {
	return refusal{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

var refuseTokenInURL = badRequest("tokens in the query string are refused: send Authorization: Bearer <token>")

// ServeHTTP authenticates the request, checks its scope and records the
// attempt, then hands it to next; a refused request is answered here.
func (h *Auth) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
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
	if need == 0 || !p.Scopes.Has(need) {
		reason := apitoken.ReasonInsufficientScope
		desc := "the token does not have the " + name + " scope"
		if need == 0 {
			reason, desc = "path_not_allowed", "no scope grants access to this path"
		}
		h.record(r, p.Token.ID, apitoken.ResultFail, reason)
		return h.refuse(w, r, refusal{status: http.StatusForbidden, code: "insufficient_scope", desc: desc, scope: name}, p.Token.ID, reason, nil)
	}
	h.record(r, p.Token.ID, apitoken.ResultOK, "")
	h.app.metrics.authenticated(apitoken.ResultOK, "")
	h.identify(w, r, p)
	return next.ServeHTTP(w, r)
}

// identify strips client-sent credentials and identity headers, then sets
// ours, the placeholders and the expiration header.
func (h *Auth) identify(w http.ResponseWriter, r *http.Request, p apitoken.Principal) {
	if !h.ForwardAuthorization {
		delete(r.Header, "Authorization") // the canonical key: Del would canonicalize again
	}
	stripIdentityHeaders(r.Header)
	if r.Trailer != nil {
		// Trailers were declared: net/http writes every trailer that comes
		// after the body, declared or not, into this map, and the proxy
		// sends them on.
		stripIdentityHeaders(r.Trailer)
		r.Body = identityTrailerStripper{r.Body, r.Trailer}
	}
	t := p.Token
	scopes := p.Scopes.String()
	vals := []string{t.Owner, t.ID, t.Name, scopes} // one allocation for the four headers
	r.Header["X-Api-Token-User"] = vals[0:1:1]
	r.Header["X-Api-Token-Id"] = vals[1:2:2]
	r.Header["X-Api-Token-Name"] = vals[2:3:3]
	r.Header["X-Api-Token-Scopes"] = vals[3:4:4]

	// One provider answers every placeholder we set: cheaper than Set, which
	// grows the replacer's map on every request. A static value set by an
	// authentication that ran before ours would answer first: drop it.
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Delete("http.auth.user.id")
	repl.Map(func(key string) (any, bool) {
		switch key {
		case "http.auth.user.id":
			return t.Owner, true
		case "api_token.id":
			return t.ID, true
		case "api_token.name":
			return t.Name, true
		case "api_token.scopes":
			return scopes, true
		}
		return nil, false
	})
	caddyhttp.SetVar(r.Context(), VarTokenID, t.ID)

	if !p.ExpiresAt.IsZero() {
		w.Header()["Api-Token-Expiration"] = []string{h.expirationHeader(p.ExpiresAt)}
	}
}

// expiration is an expiry and its header value.
type expiration struct {
	at    time.Time
	value string
}

// expirationHeader formats t as an HTTP date, reusing the last one: repeat
// requests of a token ask for the same instant.
func (h *Auth) expirationHeader(t time.Time) string {
	if last := h.lastExpiration.Load(); last != nil && last.at.Equal(t) {
		return last.value
	}
	e := &expiration{at: t, value: t.UTC().Format(http.TimeFormat)}
	h.lastExpiration.Store(e)
	return e.value
}

const identityPrefix = "X-Api-Token-"

// isIdentityHeader reports whether a header name is X-Api-Token-* in any
// case, also spelled with _ or . for -: CGI, FastCGI and PHP upstreams fold
// X_Api_Token_User and X.Api.Token.User onto X-Api-Token-User. (Caddy drops
// such names by default, but expected_underscore_headers and
// expected_dot_headers can let them in.)
func isIdentityHeader(name string) bool {
	if len(name) < len(identityPrefix) {
		return false
	}
	for i := 0; i < len(identityPrefix); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '.':
			c = '-'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		want := identityPrefix[i]
		if 'a' <= want && want <= 'z' {
			want -= 'a' - 'A'
		}
		if c != want {
			return false
		}
	}
	return true
}

// stripIdentityHeaders removes every X-Api-Token-* header and every
// Connection option (a proxy would otherwise drop ours as hop-by-hop) or
// Trailer entry (one announced to come after the body) naming one.
func stripIdentityHeaders(hdr http.Header) {
	for k := range hdr {
		if isIdentityHeader(k) {
			delete(hdr, k)
		}
	}
	stripIdentityNames(hdr, "Connection")
	stripIdentityNames(hdr, "Trailer")
}

// stripIdentityNames removes the X-Api-Token-* names from the
// comma-separated list of header names in hdr[key].
func stripIdentityNames(hdr http.Header, key string) {
	list := hdr[key]
	if len(list) == 0 {
		return
	}
	var kept []string
	for _, v := range list {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name != "" && !isIdentityHeader(name) {
				kept = append(kept, name)
			}
		}
	}
	if len(kept) == 0 {
		delete(hdr, key)
		return
	}
	hdr[key] = []string{strings.Join(kept, ", ")}
}

// identityTrailerStripper removes X-Api-Token-* trailers as the body
// ends: their values arrive with its last read, before the proxy copies
// them.
type identityTrailerStripper struct {
	io.ReadCloser
	trailer http.Header
}

func (b identityTrailerStripper) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		stripIdentityHeaders(b.trailer)
	}
	return n, err
}

// requestRefusal says why a request is refused whatever its path and
// credential, with the reason logged, or "": a request that asks to switch
// protocols (once an upstream has switched, Caddy only copies bytes, and
// whatever the client sends next on that connection reaches the upstream
// unguarded: h2c smuggling; the report API has no WebSockets either), and
// one with no path to scope (CONNECT, HTTP/2's extended CONNECT among
// them, and the asterisk form, which default_scope would let through).
func requestRefusal(r *http.Request) (desc, reason string) {
	conn := r.Header["Connection"]
	if r.Header["Upgrade"] != nil || r.Header["Http2-Settings"] != nil ||
		httpguts.HeaderValuesContainsToken(conn, "Upgrade") || httpguts.HeaderValuesContainsToken(conn, "HTTP2-Settings") {
		return "requests that switch protocols (Upgrade, HTTP2-Settings) are refused", "protocol_switch"
	}
	if r.Method == http.MethodConnect || !strings.HasPrefix(r.URL.Path, "/") {
		return "the request has no path to scope (CONNECT, *)", "no_path"
	}
	return "", ""
}

// scopeFor returns the scope the request's path needs, 0 when none grants it.
func (h *Auth) scopeFor(r *http.Request) (apitoken.Scopes, string, error) {
	for _, rule := range h.rules {
		ok, err := rule.paths.MatchWithError(r)
		if err != nil {
			return 0, "", err
		}
		if ok {
			return rule.scope, rule.name, nil
		}
	}
	return h.defaultScope, h.DefaultScope, nil
}

// unsafePath refuses raw paths that path normalisation between Caddy and
// the upstream could read differently, so that the scope decided here is
// the one the upstream serves: dot segments, also with a path parameter
// (Tomcat reads "..;" as "..") or as a Windows file name ("...", ".. "),
// encoded slashes, backslashes, dots or NULs, any double-encoded octet (an
// upstream may decode again: %252e, %2564), a backslash, and a path that is
// not UTF-8 (overlong forms of "." and "/") or that uses a dot look-alike a
// Unicode normaliser turns into one.
func unsafePath(r *http.Request) string {
	if desc := unsafeEscapes(r.URL.EscapedPath()); desc != "" {
		return desc
	}
	return unsafeSegments(r.URL.Path)
}

// unsafeEscapes refuses an encoded slash, backslash, dot or NUL in an
// escaped path, and any octet encoded twice: an upstream that decodes
// again reads /%2564ata as /data, another scope under default_scope. The
// path decoded once must hold no escape, however the %25 and its digits
// are spelt (%25%36%34 decodes to %64 too).
func unsafeEscapes(escaped string) string {
	if strings.IndexByte(escaped, '%') < 0 {
		return ""
	}
	lower := strings.ToLower(escaped)
	for _, bad := range []string{"%2f", "%5c", "%2e", "%00"} {
		if strings.Contains(lower, bad) {
			return "the path contains an encoded slash, backslash, dot or NUL"
		}
	}
	if hasEscape(laxUnescape(escaped)) {
		return "the path contains a double-encoded octet (%25 and two hex digits)"
	}
	return ""
}

// hasEscape reports whether s holds a %XX that a decoder would decode.
func hasEscape(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
	}
	return false
}

// unsafeSegments refuses a decoded path with a backslash, invalid UTF-8, or
// a dot segment in any of the spellings servers read as one.
func unsafeSegments(p string) string {
	if strings.IndexByte(p, '\\') >= 0 {
		return "the path contains a backslash"
	}
	nonASCII := false
	for i := 0; i < len(p) && !nonASCII; i++ {
		nonASCII = p[i] >= utf8.RuneSelf
	}
	if nonASCII {
		if !utf8.ValidString(p) {
			return "the path is not valid UTF-8"
		}
		p = dotLookalikes.Replace(p)
	}
	for rest := p; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i] // a path parameter: /..;x/ is /../ to some servers
		}
		if seg != "" && strings.Trim(seg, ". ") == "" && strings.IndexByte(seg, '.') >= 0 {
			return "the path contains a dot segment (. or ..)"
		}
	}
	return ""
}

// pathRefusal says why the request's path is refused before anything else,
// or "": unsafePath, and a path that servers which drop path parameters or
// trailing dots, or fold Unicode forms, would read as a path of another
// scope (with default_scope, /data;x/sales would otherwise pass as the
// default scope and be served as /data/sales by Tomcat).
func (h *Auth) pathRefusal(r *http.Request) (string, error) {
	if desc := unsafePath(r); desc != "" {
		return desc, nil
	}
	v := serverView(r.URL.Path)
	if v == "" {
		return "", nil
	}
	// The forms folded may spell what the raw path may not (a fullwidth
	// backslash or solidus, a fullwidth percent sign before 2e).
	if desc := unsafeEscapes(v); desc != "" {
		return desc + " once Unicode-normalised", nil
	}
	if desc := unsafeSegments(v); desc != "" {
		return desc + " once Unicode-normalised", nil
	}
	need, _, err := h.scopeFor(r)
	if err != nil {
		return "", err
	}
	alt := *r
	u := *r.URL
	u.Path, u.RawPath = v, ""
	alt.URL = &u
	other, _, err := h.scopeFor(&alt)
	if err != nil {
		return "", err
	}
	if other != need {
		return "the path reads as another path to some servers (a ;parameter, a trailing dot or space, or a Unicode compatibility form)", nil
	}
	return "", nil
}

// serverView is the path as servers that normalise hard may read it: path
// parameters dropped from each segment (Tomcat, Jetty), trailing dots and
// spaces dropped (Windows), Unicode compatibility forms folded (NFKC); ""
// when they read it as it is. A plain ASCII path without those costs one
// scan.
func serverView(p string) string {
	needed := false
	for i := 0; i < len(p) && !needed; i++ {
		c := p[i]
		needed = c == ';' || c >= utf8.RuneSelf || (c == '.' || c == ' ') && (i+1 == len(p) || p[i+1] == '/')
	}
	if !needed {
		return ""
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			seg = seg[:j]
		}
		segs[i] = strings.TrimRight(seg, ". ")
	}
	v := norm.NFKC.String(strings.Join(segs, "/"))
	if v == p {
		return ""
	}
	return v
}

// dotLookalikes are characters that Unicode normalisation (NFKC) turns into
// a full stop.
var dotLookalikes = strings.NewReplacer("\uff0e", ".", "\u2024", ".", "\ufe52", ".")

// laxUnescape decodes every valid %XX of s and leaves anything else as it
// is, as a lenient upstream would.
func laxUnescape(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// queryTokens reports whether the raw query carries a parameter that some
// server could read as access_token: its name compared case-insensitively,
// after decoding (at any depth), with & or ; between parameters, and with a
// PHP-style [] suffix; and returns the values of those parameters,
// decoded.
func queryTokens(q string) (values []string, found bool) {
	if strings.IndexByte(q, '%') < 0 && !strings.Contains(strings.ToLower(q), "access_token") {
		return nil, false // the common case: nothing encoded, and no such name
	}
	for rest := q; rest != ""; {
		var param string
		if i := strings.IndexAny(rest, "&;"); i >= 0 {
			param, rest = rest[:i], rest[i+1:]
		} else {
			param, rest = rest, ""
		}
		name, value, _ := strings.Cut(param, "=")
		name = strings.ToLower(strings.TrimSpace(decodeParam(name)))
		if name == "access_token" || strings.HasPrefix(name, "access_token[") {
			values, found = append(values, decodeParam(value)), true
		}
	}
	return values, found
}

// decodeParam decodes a query parameter's name or value as the most lenient
// server would: + as a space, then %XX again and again.
func decodeParam(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	for {
		next := laxUnescape(s)
		if next == s {
			return s
		}
		s = next
	}
}

// revokeExposed revokes the token of each JWT in r's query whose signature
// is good, unless revoke_exposed is off. An expired JWT, or one of another
// deployment, leaks no access and revokes nothing. It runs before the 400
// is answered, so the client learns the token is dead with it; a client
// that hangs up does not stop it.
func (h *Auth) revokeExposed(r *http.Request) {
	if h.RevokeExposed != nil && !*h.RevokeExposed {
		return
	}
	values, _ := queryTokens(r.URL.RawQuery)
	for _, raw := range values {
		if raw == "" || len(raw) > apitoken.MaxJWTLen {
			continue
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		// Through the caches: a JWT already dead (revoked, superseded,
		// expired, foreign) costs no store write however often it is sent.
		id, live := h.exposedToken(ctx, raw)
		if !live {
			cancel()
			continue
		}
		_, err := h.app.service.RevokeLeaked(ctx, id, apitoken.RevokedExposedInURL)
		cancel()
		switch {
		case err == nil:
			h.logger.Warn("api token sent in a URL: revoked", zap.String("token_id", id), zap.String("client_ip", clientIP(r)))
		case !errors.Is(err, apitoken.ErrConflict) && !errors.Is(err, apitoken.ErrNotFound): // already revoked, or gone
			h.logger.Error("revoking an api token sent in a URL", zap.String("token_id", id), zap.Error(err))
		}
	}
}

// exposedToken names the token of a JWT seen in a URL and says whether it
// can still be of use to whoever read it: it authenticates, or fails only
// because of its owner's role, which may come back.
func (h *Auth) exposedToken(ctx context.Context, raw string) (tokenID string, live bool) {
	p, fail := h.app.auth.Authenticate(ctx, raw)
	if fail == nil {
		return p.Token.ID, true
	}
	switch fail.Reason {
	case apitoken.ReasonRoleMissing, apitoken.ReasonViewOnly, apitoken.ReasonDisabled, apitoken.ReasonUnavailable:
		return fail.TokenID, fail.TokenID != ""
	}
	return "", false
}

// credential extracts the JWT: Authorization Bearer, or Basic with the JWT
// as the password. Two Authorization headers, a token in the query string
// (refuseTokenInURL) or a token over 8 KiB are refused.
func credential(r *http.Request) (string, *refusal) {
	if q := r.URL.RawQuery; q != "" {
		if _, found := queryTokens(q); found {
			return "", &refuseTokenInURL
		}
	}
	vals := r.Header["Authorization"]
	switch len(vals) {
	case 0:
		return "", &refuseNoCredential
	case 1:
	default:
		ref := badRequest("send exactly one Authorization header")
		return "", &ref
	}
	v := vals[0]
	if len(v) > apitoken.MaxJWTLen+64 {
		ref := badRequest("the Authorization header is too long")
		return "", &ref
	}
	scheme, rest, _ := strings.Cut(v, " ")
	var raw string
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		raw = strings.TrimSpace(rest)
	case strings.EqualFold(scheme, "Basic"):
		dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return "", &refuseInvalid
		}
		_, pass, ok := strings.Cut(string(dec), ":")
		if !ok {
			return "", &refuseInvalid
		}
		raw = pass
	default:
		return "", &refuseNoCredential
	}
	switch {
	case raw == "":
		return "", &refuseNoCredential
	case len(raw) > apitoken.MaxJWTLen:
		ref := badRequest("the token is longer than 8 KiB")
		return "", &ref
	}
	return raw, nil
}

// appName is the guarded API's name: the configured app (the Caddyfile
// fills in the site's address), else the name of the server in Caddy's
// JSON config. Never the Host: the client chooses it (a site matches its
// host name whatever the port part says), and it is unbounded.
func (h *Auth) appName(r *http.Request) string {
	if h.App != "" {
		return h.App
	}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.Name() != "" {
		return srv.Name()
	}
	return "api_token_auth"
}

// record queues an AUTHENTICATE log for an attempt that named a token.
func (h *Auth) record(r *http.Request, tokenID, result, reason string) {
	if tokenID == "" {
		return
	}
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	h.app.backend.auditor.Record(apitoken.AuthEvent{TokenID: tokenID, ActivityBy: h.appName(r), Result: result, Reason: reason,
		ClientIP: ip, UserAgent: r.UserAgent(), At: time.Now()})
}

// clientIP is Caddy's client IP of r (trusted_proxies aware).
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

// reasonFailLimit is the reason logged for a request refused by fail_limit.
const reasonFailLimit = "fail_limit"

// refuseTooMany answers a client past fail_limit: 429 with Retry-After in
// whole seconds, and the JSON body of every refusal.
func (h *Auth) refuseTooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) error {
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	return h.refuse(w, r, refusal{status: http.StatusTooManyRequests, code: "too_many_requests",
		desc: "too many failed attempts from this address; try again later"}, "", reasonFailLimit, nil)
}

// countsAsFailure reports whether a refusal is a failed attempt for
// fail_limit: a bad request or a credential that is not valid. A request
// without any credential is not one (clients such as .NET's send one
// first, to learn the scheme), nor a valid token lacking a scope, nor the
// store being down.
func countsAsFailure(ref refusal) bool {
	return ref.code != "" && (ref.status == http.StatusBadRequest || ref.status == http.StatusUnauthorized)
}

// refuse writes an RFC 6750 answer and logs the refusal (never the token).
func (h *Auth) refuse(w http.ResponseWriter, r *http.Request, ref refusal, tokenID, reason string, detail error) error {
	h.app.metrics.authenticated(apitoken.ResultFail, reason)
	if lim := h.app.limiter; lim != nil && countsAsFailure(ref) {
		ip := clientIP(r)
		if lim.fail(clientKey(ip)) {
			// Logged once, when the client reaches the limit; its refused
			// requests after that are logged at debug level only.
			h.logger.Warn("client reached fail_limit; refusing its requests for a while",
				zap.String("client_ip", ip), zap.Int("fail_limit", h.app.FailLimit))
		}
	}
	level := zapcore.InfoLevel
	if reason == "no_credential" || reason == reasonFailLimit {
		level = zapcore.DebugLevel
	}
	if ce := h.logger.Check(level, "api token refused"); ce != nil {
		ip := clientIP(r)
		fields := []zap.Field{zap.Int("status", ref.status), zap.String("reason", reason), zap.String("token_id", tokenID),
			zap.String("client_ip", ip), zap.String("path", clip(r.URL.Path))}
		if detail != nil {
			fields = append(fields, zap.String("detail", clip(detail.Error())))
		}
		ce.Write(fields...)
	}
	if ref.status == http.StatusUnauthorized || ref.status == http.StatusForbidden {
		w.Header().Set("WWW-Authenticate", challenge(h.appName(r), ref))
	}
	code := ref.code
	if code == "" {
		code = "unauthorized" // RFC 6750 gives no error code when no credential came
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(ref.status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, ref.desc})
}

// maxLogString is the most of a client-supplied string that a log line
// holds, in bytes: a client must not write kilobytes per request.
const maxLogString = 256

// clip cuts s to maxLogString bytes for a log line, at the start of a
// rune, so a multi-byte letter is not split.
func clip(s string) string {
	if len(s) <= maxLogString {
		return s
	}
	for i := maxLogString; i > maxLogString-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:maxLogString] // not UTF-8 there anyway
}

// challenge builds the WWW-Authenticate value of RFC 6750.
func challenge(realm string, ref refusal) string {
	var b strings.Builder
	b.WriteString("Bearer realm=")
	b.WriteString(strconv.Quote(realm))
	if ref.code != "" {
		b.WriteString(", error=")
		b.WriteString(strconv.Quote(ref.code))
		b.WriteString(", error_description=")
		b.WriteString(strconv.Quote(ref.desc))
	}
	if ref.scope != "" {
		b.WriteString(", scope=")
		b.WriteString(strconv.Quote(ref.scope))
	}
	return b.String()
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*Auth)(nil)
	_ caddy.Provisioner           = (*Auth)(nil)
	_ caddy.Validator             = (*Auth)(nil)
)
