package caddyfile

import (
	"strings"
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

// A rule names its scopes, then its paths: a path is the first argument with
// a / or *, and the last argument is always a path.
func TestCaddyfile_ScopeRuleSplitsScopesFromPaths(t *testing.T) {
	for _, tc := range []struct{ rule, scope, paths string }{
		{"scope report /data/*", "report", "/data/*"},
		{"scope report sales /data/sales /data/sales/*", "report sales", "/data/sales /data/sales/*"},
		{"scope a b c /x", "a b c", "/x"},
		{"scope report data", "report", "data"},             // refused at load: must start with /
		{"scope report sales data", "report sales", "data"}, // likewise
		{"scope report *", "report", "*"},
	} {
		h := new(caddymodule.Auth)
		if err := unmarshalAuth(cf.NewTestDispenser("api_token_auth {\n"+tc.rule+"\n}"), h); err != nil {
			t.Fatalf("%s: %v", tc.rule, err)
		}
		if len(h.Scopes) != 1 || h.Scopes[0].Scope != tc.scope || strings.Join(h.Scopes[0].Paths, " ") != tc.paths {
			t.Errorf("%s: %+v, want scope %q paths %q", tc.rule, h.Scopes, tc.scope, tc.paths)
		}
	}
}
