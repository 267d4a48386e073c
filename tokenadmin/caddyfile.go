package tokenadmin

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("api_token_admin", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("api_token_admin", httpcaddyfile.Before, "respond")
}

// parseCaddyfile sets up the handler from Caddyfile tokens. The directive
// takes no arguments and no block:
//
//	api_token_admin
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // the directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	if h.NextBlock(0) {
		return nil, h.Errf("api_token_admin takes no options; unexpected %q", h.Val())
	}
	return new(Handler), nil
}
