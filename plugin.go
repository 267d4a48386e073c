// Package apitokens is caddy-apitokens: personal API access tokens for report
// APIs, enforced by Caddy. Importing it registers every module:
//
//	xcaddy build --with github.com/caddy-apitokens/caddy-apitokens
//
// The app `api_tokens` holds the token store, caches, audit writer and signer;
// `api_token_auth` guards a report API; `api_token_admin` serves the
// management routes. Their Caddyfile syntax is in caddyfile/.
package apitokens

import (
	// Register the Caddyfile syntax: the api_tokens global option and the
	// api_token_auth and api_token_admin directives.
	_ "github.com/caddy-apitokens/caddy-apitokens/caddyfile"
	// Register the api_tokens app and the api_token_auth middleware.
	_ "github.com/caddy-apitokens/caddy-apitokens/caddymodule"
	// Register the management routes: the api_token_admin handler and the
	// admin API module (admin.api.api_tokens).
	_ "github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
	// Register the `caddy api-tokens` commands, the admin API's client.
	_ "github.com/caddy-apitokens/caddy-apitokens/apitokencmd"
)
