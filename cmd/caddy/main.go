// Command caddy is Caddy with the caddy-apitokens plugin built in.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// The standard Caddy modules.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// caddy-apitokens.
	_ "github.com/caddy-apitokens/caddy-apitokens"
)

func main() {
	caddycmd.Main()
}
