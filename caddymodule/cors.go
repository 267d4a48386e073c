package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The CORS headers of the guard (the cors option of api_token_auth).
const (
	// corsMethods are the methods a listed origin's page may send.
	corsMethods = "GET, HEAD, POST"
	// corsHeaders are the request headers it may send: the credential.
	corsHeaders = "Authorization"
	// corsExpose are the answer headers its script may read: when the token
	// ends, why it was refused, and when to try again.
	corsExpose = "Api-Token-Expiration, WWW-Authenticate, Retry-After"
	// corsMaxAge is how long (seconds) a browser may keep a preflight's
	// answer: ten minutes, so a change of the list is seen soon.
	corsMaxAge = "600"
)

// refuseOrigin answers the preflight of an origin that cors does not list.
var refuseOrigin = refusal{status: http.StatusForbidden, code: "origin_not_allowed",
	desc: "this origin may not call the API from a browser; ask the administrator to add it to cors"}

// corsOrigins checks the origins of the cors option and returns them as a
// set. An origin is scheme://host[:port] as a browser sends it in Origin:
// lower case, no path, no user; "*" and "null" are refused, since they
// would let any page (or a sandboxed one) read the answers.
func corsOrigins(origins []string) (map[string]bool, error) {
	if len(origins) == 0 {
		return nil, nil
	}
	set := make(map[string]bool, len(origins))
	for _, o := range origins {
		u, err := url.Parse(o)
		switch {
		case o == "*" || o == "null":
			return nil, fmt.Errorf("api_token_auth: cors %q: list each origin allowed, e.g. https://dash.example.com", o)
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?"):
			return nil, fmt.Errorf("api_token_auth: cors %q is not an origin: write scheme://host[:port], e.g. https://dash.example.com", o)
		}
		set[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	return set, nil
}

// allowedOrigin is the request's Origin when cors lists it, else "".
func (h *Auth) allowedOrigin(r *http.Request) string {
	if h.origins == nil {
		return ""
	}
	o := r.Header.Get("Origin")
	if !h.origins[o] {
		return ""
	}
	return o
}

// isPreflight tells a CORS preflight: OPTIONS with Origin and
// Access-Control-Request-Method. A browser sends it without credentials.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// allowOrigin sets the headers of every answer to a listed origin, refusals
// included, so its script can read them.
func allowOrigin(w http.ResponseWriter, origin string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", corsExpose)
	h.Add("Vary", "Origin")
}

// preflight answers a listed origin's preflight (204), and refuses any
// other's (403). It never reaches the next handler.
func (h *Auth) preflight(w http.ResponseWriter, r *http.Request, origin string) error {
	if origin == "" {
		return h.refuse(w, r, refuseOrigin, "", "origin_not_allowed", nil)
	}
	allowOrigin(w, origin)
	hd := w.Header()
	hd.Set("Access-Control-Allow-Methods", corsMethods)
	hd.Set("Access-Control-Allow-Headers", corsHeaders)
	hd.Set("Access-Control-Max-Age", corsMaxAge)
	hd.Add("Vary", "Access-Control-Request-Method")
	hd.Add("Vary", "Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
