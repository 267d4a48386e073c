package caddyfile

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	cf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
)

// parseGlobalOption sets up the api_tokens app from the global option:
//
//	api_tokens {
//		issuer         <iss>
//		storage        sqlite <path>
//		signing_alg    HS512|EdDSA       # default HS512
//		signing_key    <base64>          # may be repeated; the first signs
//		verify_key     <base64>          # EdDSA only; may be repeated; verifies, never signs
//		admins         <user...>
//		groups { <group> api_tokens|admin ... }   # identity-provider group -> role
//		max_lifetime   1d|7d|30d|60d|90d|1y|never
//		max_tokens_per_user <n>          # tokens that are not revoked per user; default 50
//		audit_window   <duration>
//		cache_ttl      <duration>
//		stale_if_error <duration>
//		revoke_unused_after <period>|off # e.g. 90d; revoke tokens unused that long
//		manage_url     <http(s) URL>     # linked from every email
//		notify email { smtp <host:port>; from <address>; username ...; password ...; tls none|starttls|tls }
//		notify webhook <url> { secret <secret> }   # may be repeated
//		fail_limit     <n>               # failed attempts per client IP per minute; 0 = off
//		scopes {                         # default: meta and report
//			<name> [<description>]
//		}
//	}
func parseGlobalOption(d *cf.Dispenser, existing any) (any, error) {
	app := new(caddymodule.App)
	if existing != nil {
		return nil, d.Err("api_tokens may be given only once")
	}
	if err := unmarshalApp(d, app); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "api_tokens", Value: caddyconfig.JSON(app, nil)}, nil
}

// unmarshalApp parses the body of the api_tokens global option into a.
func unmarshalApp(d *cf.Dispenser, a *caddymodule.App) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "issuer":
			if !d.AllArgs(&a.Issuer) {
				return d.ArgErr()
			}
		case "storage":
			var driver, dsn string
			if !d.AllArgs(&driver, &dsn) {
				return d.Errf("storage takes a driver and its location, e.g. `storage sqlite /var/lib/caddy/apitokens.db`")
			}
			a.Storage = &caddymodule.Storage{Driver: driver, DSN: dsn}
		case "signing_key":
			var key string
			if !d.AllArgs(&key) {
				return d.ArgErr()
			}
			a.SigningKeys = append(a.SigningKeys, key)
		case "signing_alg":
			if !d.AllArgs(&a.SigningAlg) {
				return d.ArgErr()
			}
			if err := apitoken.CheckAlg(a.SigningAlg); err != nil {
				return d.Errf("signing_alg: %s", apitoken.Message(err))
			}
		case "verify_key":
			var key string
			if !d.AllArgs(&key) {
				return d.ArgErr()
			}
			a.VerifyKeys = append(a.VerifyKeys, key)
		case "fail_limit":
			if err := parseCount(d, &a.FailLimit, 0, "a whole number of attempts (0 turns it off)"); err != nil {
				return err
			}
		case "max_tokens_per_user":
			if err := parseCount(d, &a.MaxTokensPerUser, 1, "a whole number of tokens, at least 1"); err != nil {
				return err
			}
		case "admins":
			ids := d.RemainingArgs()
			if len(ids) == 0 {
				return d.ArgErr()
			}
			a.Admins = append(a.Admins, ids...)
		case "groups":
			if err := unmarshalGroups(d, a); err != nil {
				return err
			}
		case "max_lifetime":
			if !d.AllArgs(&a.MaxLifetime) {
				return d.ArgErr()
			}
		case "audit_window":
			if err := parseDuration(d, &a.AuditWindow); err != nil {
				return err
			}
		case "cache_ttl":
			if err := parseDuration(d, &a.CacheTTL); err != nil {
				return err
			}
		case "stale_if_error":
			if err := parseDuration(d, &a.StaleIfError); err != nil {
				return err
			}
		case "revoke_unused_after":
			var v string
			if !d.AllArgs(&v) {
				return d.Errf("revoke_unused_after takes one period, e.g. `revoke_unused_after 90d` (or off)")
			}
			if v != "off" {
				a.RevokeUnusedAfter = v
			}
		case "manage_url":
			if !d.AllArgs(&a.ManageURL) {
				return d.Errf("manage_url takes one URL, e.g. `manage_url https://manage.example.com/`")
			}
		case "notify":
			if err := unmarshalNotify(d, a); err != nil { // notify.go
				return err
			}
		case "scopes":
			if err := unmarshalScopes(d, a); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized api_tokens option %q", d.Val())
		}
	}
	return nil
}

// unmarshalScopes parses the scopes block: one declared scope a line, its
// name and what it grants in words.
func unmarshalScopes(d *cf.Dispenser, a *caddymodule.App) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if a.Scopes != nil {
		return d.Err("scopes may be given only once: declare every scope in one block")
	}
	a.Scopes = []caddymodule.ScopeDecl{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sc := caddymodule.ScopeDecl{Name: d.Val()}
		args := d.RemainingArgs()
		if len(args) > 1 {
			return d.Errf("scope %s: give its description as one quoted argument, e.g. %s \"Read the sales report\"", sc.Name, sc.Name)
		}
		if len(args) == 1 {
			sc.Description = args[0]
		}
		a.Scopes = append(a.Scopes, sc)
	}
	if len(a.Scopes) == 0 {
		return d.Err(`scopes declares no scope; declare at least one, e.g. scopes { report "Read report data" }`)
	}
	return nil
}

// unmarshalGroups parses the groups block: one identity-provider group and
// the role it gives per line.
//
//	groups {
//		report-users  api_tokens
//		report-admins admin
//	}
func unmarshalGroups(d *cf.Dispenser, a *caddymodule.App) error {
	if d.NextArg() {
		return d.Errf("groups takes a block of lines `<group> <role>`, not arguments")
	}
	if a.Groups == nil {
		a.Groups = map[string]string{}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		group := d.Val()
		var role string
		if !d.AllArgs(&role) {
			return d.Errf("groups: %q needs one role after it: api_tokens or admin", group)
		}
		if _, err := apitoken.ParseRole(role); err != nil {
			return d.Errf("groups: %q: %s", group, apitoken.Message(err))
		}
		if _, dup := a.Groups[group]; dup {
			return d.Errf("groups: %q is given twice", group)
		}
		a.Groups[group] = role
	}
	if len(a.Groups) == 0 {
		return d.Errf("groups needs at least one line `<group> <role>`")
	}
	return nil
}

// parseCount parses the one argument of the current option: a whole number
// of at least lowest, described by what in the error.
func parseCount(d *cf.Dispenser, dst *int, lowest int, what string) error {
	name := d.Val()
	var s string
	if !d.AllArgs(&s) {
		return d.ArgErr()
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lowest {
		return d.Errf("%s: %q is not %s", name, s, what)
	}
	*dst = n
	return nil
}

func parseDuration(d *cf.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if !d.AllArgs(&s) {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: %v (use a duration such as 30s or 1m)", name, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}
