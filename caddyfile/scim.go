package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
)

// parseSCIM sets up the SCIM service provider:
//
//	api_token_scim {
//		bearer <secret>   # e.g. {env.APITOKENS_SCIM_TOKEN}
//	}
func parseSCIM(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // the directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	s := new(caddymodule.SCIM)
	for h.NextBlock(0) {
		switch h.Val() {
		case "bearer":
			if s.Bearer != "" {
				return nil, h.Errf("api_token_scim: bearer is given twice")
			}
			if !h.AllArgs(&s.Bearer) {
				return nil, h.Errf("api_token_scim: bearer takes one secret, e.g. {env.APITOKENS_SCIM_TOKEN}")
			}
		default:
			return nil, h.Errf("unrecognized api_token_scim option %q: use bearer", h.Val())
		}
	}
	if s.Bearer == "" {
		return nil, h.Errf("api_token_scim needs a bearer secret: bearer {env.APITOKENS_SCIM_TOKEN}")
	}
	return s, nil
}
