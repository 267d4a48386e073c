package caddymodule

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

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
	scopes := (p.Scopes & h.declared).String()      // a scope no longer declared grants nothing
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
