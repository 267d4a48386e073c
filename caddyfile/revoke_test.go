package caddyfile

import (
	"testing"

	cf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func TestCaddyfile_RevokeTakesNothing(t *testing.T) {
	for _, tc := range []struct {
		input string
		ok    bool
	}{
		{"api_token_revoke", true},
		{"api_token_revoke {\n}", true},
		{"api_token_revoke now", false},
		{"api_token_revoke {\n\tlimit 0\n}", false},
	} {
		h := httpcaddyfile.Helper{Dispenser: cf.NewTestDispenser(tc.input)}
		handler, err := parseRevoke(h)
		if tc.ok && (err != nil || handler == nil) {
			t.Errorf("%q: %v", tc.input, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("%q was accepted", tc.input)
		}
	}
}
