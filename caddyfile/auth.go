package caddyfile

import (
	"reflect"
	"strings"

	cf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
)

// parseAuth sets up the guard from the api_token_auth directive; its app
// defaults to the site's first address.
func parseAuth(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	a := new(caddymodule.Auth)
	if err := unmarshalAuth(h.Dispenser, a); err != nil {
		return nil, err
	}
	if a.App == "" {
		a.App = siteAddress(h)
	}
	return a, nil
}

// siteAddress is the first address of the site block that h is in, as the
// Caddyfile writes it (reports.example.com, :8080), "" in a named route:
// the default app of api_token_auth. Caddy v2.11's Helper keeps the block
// unexported and has no accessor for its keys, so they are read with
// reflect; should a Caddy release rename them, this gives "" and the guard
// falls back to the server's name (the golden adapt tests would say so).
func siteAddress(h httpcaddyfile.Helper) string {
	if h.IsNamedRoute() {
		return ""
	}
	block := reflect.ValueOf(h).FieldByName("parentBlock")
	if block.Kind() != reflect.Struct {
		return ""
	}
	keys := block.FieldByName("Keys")
	if keys.Kind() != reflect.Slice || keys.Len() == 0 || keys.Index(0).Kind() != reflect.Struct {
		return ""
	}
	if text := keys.Index(0).FieldByName("Text"); text.Kind() == reflect.String {
		return text.String()
	}
	return ""
}

// unmarshalAuth parses the api_token_auth directive into h:
//
//	api_token_auth {
//		app    <name>                   # default: the site's first address
//		scope  <scope...> <path...>     # any of the scopes grants the paths
//		default_scope <scope>
//		forward_authorization
//		revoke_exposed on|off           # default on
//		basic_challenge on|off          # default on
//		cors <origin...>                # browser origins allowed to call the API
//	}
func unmarshalAuth(d *cf.Dispenser, h *caddymodule.Auth) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "app":
			if !d.AllArgs(&h.App) {
				return d.ArgErr()
			}
		case "scope":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("scope takes one or more scopes and at least one path, e.g. `scope report /data/*` or `scope report sales /data/sales/*`")
			}
			// The scopes, then the paths: the first argument is a scope,
			// the last a path, and a path is the first argument that cannot
			// be a scope name (a scope name has no / or *).
			n := 1
			for n < len(args)-1 && !strings.ContainsAny(args[n], "/*") {
				n++
			}
			h.Scopes = append(h.Scopes, caddymodule.ScopeRule{Scope: strings.Join(args[:n], " "), Paths: args[n:]})
		case "default_scope":
			if !d.AllArgs(&h.DefaultScope) {
				return d.ArgErr()
			}
		case "forward_authorization":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.ForwardAuthorization = true
		case "revoke_exposed":
			on, err := onOff(d)
			if err != nil {
				return err
			}
			h.RevokeExposed = on
		case "basic_challenge":
			on, err := onOff(d)
			if err != nil {
				return err
			}
			h.BasicChallenge = on
		case "cors":
			origins := d.RemainingArgs()
			if len(origins) == 0 {
				return d.Errf("cors takes the origins allowed, e.g. `cors https://dash.example.com`")
			}
			h.CORS = append(h.CORS, origins...)
		default:
			return d.Errf("unrecognized api_token_auth option %q", d.Val())
		}
	}
	return nil
}

// onOff reads the one argument of an on|off option.
func onOff(d *cf.Dispenser) (*bool, error) {
	name := d.Val()
	var v string
	if !d.AllArgs(&v) || v != "on" && v != "off" {
		return nil, d.Errf("%s takes on or off", name)
	}
	on := v == "on"
	return &on, nil
}
