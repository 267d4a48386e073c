package caddymodule

import (
	"net/http"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Every existing config means what it meant: with no scopes block the
// scopes are meta and report, and both keep granting their paths.
func TestGuard_WithoutScopesBlockMetaAndReportAreDeclared(t *testing.T) {
	e := newGuardEnv(t)
	if got := e.svc.Scopes().List(); got != "meta, report" {
		t.Fatalf("declared scopes = %q, want meta, report", got)
	}
	_, jwt := e.token("both", apitoken.Expiry30d, apitoken.DefaultScopes)
	for _, p := range []string{"/meta", "/data/x"} {
		if res, body := e.do("GET", p, bearer(jwt)...); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, res.StatusCode, body)
		}
	}
}
