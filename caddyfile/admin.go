package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

// parseAdmin sets up the management routes. The directive takes no
// arguments; its optional block names what the identity layer says about the
// caller, as placeholders:
//
//	api_token_admin {
//		user   <placeholder>   # default {http.auth.user.id}
//		name   <placeholder>
//		email  <placeholder>
//		groups <placeholder>   # comma-separated
//	}
func parseAdmin(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // the directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	handler := new(tokenadmin.Handler)
	for h.NextBlock(0) {
		var dst *string
		switch h.Val() {
		case "user":
			dst = &handler.User
		case "name":
			dst = &handler.Name
		case "email":
			dst = &handler.Email
		case "groups":
			dst = &handler.Groups
		default:
			return nil, h.Errf("unrecognized api_token_admin option %q: use user, name, email or groups", h.Val())
		}
		if *dst != "" {
			return nil, h.Errf("api_token_admin: %s is given twice", h.Val())
		}
		if !h.AllArgs(dst) {
			return nil, h.Errf("api_token_admin: %s takes one placeholder, e.g. {http.request.header.X-Auth-Request-Email}", h.Val())
		}
	}
	return handler, nil
}
