package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

// parseAdmin sets up the management routes. The directive takes no
// arguments:
//
//	api_token_admin [{
//		api_url <url>   # the guarded report API, shown with client snippets
//	}]
func parseAdmin(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // the directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	a := new(tokenadmin.Handler)
	for h.NextBlock(0) {
		switch h.Val() {
		case "api_url":
			if !h.AllArgs(&a.APIURL) {
				return nil, h.Errf("api_url takes the report API's base URL, e.g. `api_url https://reports.example.com`")
			}
		default:
			return nil, h.Errf("unrecognized api_token_admin option %q", h.Val())
		}
	}
	return a, nil
}
