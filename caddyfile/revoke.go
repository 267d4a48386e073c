package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
)

// parseRevoke sets up the token revocation endpoint (RFC 7009), which has
// no options:
//
//	api_token_revoke [<matcher>]
func parseRevoke(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // the directive name
	if h.NextArg() {
		return nil, h.Errf("api_token_revoke takes no arguments; put it on a path: api_token_revoke /oauth/revoke")
	}
	if h.NextBlock(0) {
		return nil, h.Errf("api_token_revoke has no options")
	}
	return new(caddymodule.Revoke), nil
}
