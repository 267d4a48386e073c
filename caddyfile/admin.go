package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

// parseAdmin sets up the management routes. The directive takes no
// arguments; its optional block names the report API and what the identity
// layer says about the caller, as placeholders:
//
//	api_token_admin [{
//		api_url <url>          # the guarded report API, shown with client snippets
//		user   <placeholder>   # default {http.auth.user.id}
//		name   <placeholder>
//		email  <placeholder>
//		groups <placeholder>   # comma-separated
//		groups_separator <sep> # default ","; Authentik's is "|"
//	}]
func parseAdmin(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // the directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	a := new(tokenadmin.Handler)
	for h.NextBlock(0) {
		var dst *string
		switch h.Val() {
		case "api_url":
			if !h.AllArgs(&a.APIURL) {
				return nil, h.Errf("api_url takes the report API's base URL, e.g. `api_url https://reports.example.com`")
			}
			continue
		case "user":
			dst = &a.User
		case "name":
			dst = &a.Name
		case "email":
			dst = &a.Email
		case "groups":
			dst = &a.Groups
		case "groups_separator":
			dst = &a.GroupsSeparator
		default:
			return nil, h.Errf("unrecognized api_token_admin option %q: use api_url, user, name, email, groups or groups_separator", h.Val())
		}
		if *dst != "" {
			return nil, h.Errf("api_token_admin: %s is given twice", h.Val())
		}
		if !h.AllArgs(dst) {
			return nil, h.Errf("api_token_admin: %s takes one placeholder, e.g. {http.request.header.X-Auth-Request-Email}", h.Val())
		}
	}
	return a, nil
}
