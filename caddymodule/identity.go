package caddymodule

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// identify strips client-sent credentials and identity headers, then sets
// ours, the placeholders and the expiration header. What a token's state
// always answers the same (the placeholders' values, the request
// variable, the expiration date) comes from its identity, built once; the
// request costs one allocation, for the five header values.
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
	id := h.identities.get(p)
	t := p.Token
	// Fresh slices for every request: Caddy's header replace operations
	// change a header's values in place.
	vals := []string{t.Owner, t.ID, t.Name, id.scopes, id.expiration}
	r.Header["X-Api-Token-User"] = vals[0:1:1]
	r.Header["X-Api-Token-Id"] = vals[1:2:2]
	r.Header["X-Api-Token-Name"] = vals[2:3:3]
	r.Header["X-Api-Token-Scopes"] = vals[3:4:4]
	if id.expiration != "" {
		w.Header()["Api-Token-Expiration"] = vals[4:5:5]
	}

	// One provider answers every placeholder we set: cheaper than Set, which
	// grows the replacer's map on every request. A static value set by an
	// authentication that ran before ours would answer first: drop it.
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Delete("http.auth.user.id")
	repl.Map(id.placeholder)
	caddyhttp.SetVar(r.Context(), VarTokenID, id.tokenID)
}

// identity is what the guard hands on for one cached state of a token:
// built at its first request, shared by the next ones, never changed.
type identity struct {
	token     *apitoken.Token
	scopeBits apitoken.Scopes
	expiresAt time.Time

	scopes     string // X-Api-Token-Scopes
	expiration string // Api-Token-Expiration as an HTTP date, "" when the token does not expire
	// The placeholders' values and the request variable, each converted
	// to an interface once: a string converted per request allocates.
	owner, tokenID, name, scopesValue any
	placeholder                       caddy.ReplacerFunc
}

func newIdentity(p apitoken.Principal) *identity {
	t := p.Token
	id := &identity{token: t, scopeBits: p.Scopes, expiresAt: p.ExpiresAt, scopes: p.Scopes.String(),
		owner: t.Owner, tokenID: t.ID, name: t.Name}
	id.scopesValue = id.scopes
	if !p.ExpiresAt.IsZero() {
		id.expiration = p.ExpiresAt.UTC().Format(http.TimeFormat)
	}
	id.placeholder = func(key string) (any, bool) {
		switch key {
		case "http.auth.user.id":
			return id.owner, true
		case "api_token.id":
			return id.tokenID, true
		case "api_token.name":
			return id.name, true
		case "api_token.scopes":
			return id.scopesValue, true
		}
		return nil, false
	}
	return id
}

// maxIdentities bounds the identities kept. Each cached state of a token
// has its own, so old ones pile up as states are read again (every
// cache_ttl); past the bound, all are dropped and built again as requests
// come.
const maxIdentities = 10_000

// identities keeps an identity per cached token state (the *Token the
// Authenticator returns, which is never changed but replaced). Reading is
// lock-free (sync.Map); a miss builds one and stores it.
type identities struct {
	m sync.Map // *apitoken.Token -> *identity
	n atomic.Int64
}

// get returns p's identity, building it on a miss. The token's state fixes
// the scopes and expiry of its live JWT; they are checked all the same.
func (c *identities) get(p apitoken.Principal) *identity {
	if v, ok := c.m.Load(p.Token); ok {
		if id := v.(*identity); id.scopeBits == p.Scopes && id.expiresAt.Equal(p.ExpiresAt) {
			return id
		}
	}
	id := newIdentity(p)
	if c.n.Add(1) > maxIdentities {
		c.m.Clear()
		c.n.Store(0)
	}
	c.m.Store(p.Token, id)
	return id
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
