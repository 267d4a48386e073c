// Package caddyfile is the whole Caddyfile language of caddy-apitokens: the
// api_tokens global option, the api_token_auth, api_token_admin,
// api_token_scim and api_token_revoke directives, and where those
// directives run among Caddy's. Each parser fills the plain JSON fields of a
// module (caddymodule.App, caddymodule.Auth, tokenadmin.Handler,
// caddymodule.SCIM, caddymodule.Revoke), so a Caddyfile adapts to the JSON
// a user could have written; the modules themselves know nothing of the
// Caddyfile, as Caddy keeps its standard modules' adaptation in
// caddyconfig/httpcaddyfile.
//
// The folder is named for what it holds; Caddy's own caddyfile package
// (the lexer and Dispenser) is imported as cf in every file here.
//
// testdata/*.caddyfiletest are golden adapt tests: a Caddyfile, a line of
// ten dashes, the JSON it adapts to.
package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("api_tokens", parseGlobalOption)     // global.go
	httpcaddyfile.RegisterHandlerDirective("api_token_auth", parseAuth)     // auth.go
	httpcaddyfile.RegisterHandlerDirective("api_token_admin", parseAdmin)   // admin.go
	httpcaddyfile.RegisterHandlerDirective("api_token_scim", parseSCIM)     // scim.go
	httpcaddyfile.RegisterHandlerDirective("api_token_revoke", parseRevoke) // revoke.go

	// The guard runs after Caddy's authentication directives (basic_auth,
	// forward_auth).
	httpcaddyfile.RegisterDirectiveOrder("api_token_auth", httpcaddyfile.After, "forward_auth")
	// The management routes act for the caller that Caddy's authentication
	// (basic_auth, forward_auth) has set, and answer before respond would.
	httpcaddyfile.RegisterDirectiveOrder("api_token_admin", httpcaddyfile.Before, "respond")
	// SCIM checks its own bearer secret and answers before respond would.
	httpcaddyfile.RegisterDirectiveOrder("api_token_scim", httpcaddyfile.Before, "respond")
	// The revocation endpoint is for whoever holds a JWT, with no other
	// credential: it answers on its path before Caddy's authentication and
	// the guard would, so `api_token_revoke /oauth/revoke` works in a site
	// that has them.
	httpcaddyfile.RegisterDirectiveOrder("api_token_revoke", httpcaddyfile.Before, "basic_auth")
}
