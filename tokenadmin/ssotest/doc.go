// Package ssotest holds the end-to-end test of sign-in through a real
// identity layer: the oauth2-proxy binary (go install
// github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6) in front of
// api_token_admin, a real OpenID Connect provider (mockoidc) and a real SMTP
// server, with the deployment of examples/sso loaded as written.
package ssotest
