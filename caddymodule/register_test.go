package caddymodule_test

// The Caddyfile syntax lives in caddyfile/, which imports this package, so
// the tests of this package (many start Caddy from a Caddyfile) cannot
// import it themselves; this external test file links it into the same
// test binary, and its init registers the global option and directives
// before any test runs.
import _ "github.com/caddy-apitokens/caddy-apitokens/caddyfile"
