package caddyfile

import (
	"testing"

	cf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
)

func TestCaddyfile_AuthParsesEveryOption(t *testing.T) {
	d := cf.NewTestDispenser(`api_token_auth {
		app "Reports API"
		scope meta /meta /meta/*
		scope report /data/*
		default_scope meta
		forward_authorization
	}`)
	var h caddymodule.Auth
	if err := unmarshalAuth(d, &h); err != nil {
		t.Fatal(err)
	}
	if h.App != "Reports API" || len(h.Scopes) != 2 || h.Scopes[0].Scope != "meta" || len(h.Scopes[0].Paths) != 2 ||
		h.Scopes[1].Paths[0] != "/data/*" || h.DefaultScope != "meta" || !h.ForwardAuthorization {
		t.Fatalf("parsed %+v", h)
	}
}
