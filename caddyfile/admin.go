package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

// parseAdmin sets up the management routes. The directive takes no
// arguments and no block:
//
//	api_token_admin
func parseAdmin(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // the directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	if h.NextBlock(0) {
		return nil, h.Errf("api_token_admin takes no options; unexpected %q", h.Val())
	}
	return new(tokenadmin.Handler), nil
}
