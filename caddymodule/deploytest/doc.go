// Package deploytest holds the tests of deployments of Caddy processes
// built from ./cmd/caddy (caddytesting.Process): two instances on one
// PostgreSQL schema or one SQLite file enforcing each other's changes,
// across database restarts and lost notification connections, and a
// kill -9 under load. They run in a test binary of their own, beside the
// in-process tests of caddymodule.
package deploytest
