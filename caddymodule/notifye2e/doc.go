// Package notifye2e holds the end-to-end tests of notifications: a real
// Caddy (caddytest, admin port 2998, HTTP port 9113) with the api_tokens
// app's notify email and webhook, driven through api_token_admin, sending to
// a real SMTP server and a real HTTP receiver.
package notifye2e
