package caddyfile

import (
	"testing"

	cf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func TestCaddyfile_SCIMTakesOneBearer(t *testing.T) {
	for _, tc := range []struct {
		input string
		ok    bool
	}{
		{"api_token_scim {\n\tbearer {env.APITOKENS_SCIM_TOKEN}\n}", true},
		{"api_token_scim", false},
		{"api_token_scim {\n}", false},
		{"api_token_scim secret", false},
		{"api_token_scim {\n\tbearer\n}", false},
		{"api_token_scim {\n\tbearer a b\n}", false},
		{"api_token_scim {\n\tbearer a\n\tbearer b\n}", false},
		{"api_token_scim {\n\tbearer a\n\tuser b\n}", false},
	} {
		h := httpcaddyfile.Helper{Dispenser: cf.NewTestDispenser(tc.input)}
		handler, err := parseSCIM(h)
		if tc.ok && (err != nil || handler == nil) {
			t.Errorf("%q: %v", tc.input, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("%q was accepted", tc.input)
		}
	}
}
