package caddymodule

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// salesScopes declares a scope beside the defaults.
const salesScopes = `scopes {
			meta   "List reports and their parameters"
			report "Read report data"
			sales  "Read the sales report only"
		}`

// salesRule lets either report or sales read the sales report (after the
// guard's meta and report rules).
const salesRule = `scope report sales /sales /sales/*`

func (e *guardEnv) scopes(names ...string) apitoken.Scopes {
	e.T.Helper()
	s, err := e.svc.Scopes().Parse(names)
	if err != nil {
		e.T.Fatal(err)
	}
	return s
}

// A scope the operator declares can be given to tokens, and a rule that
// names several scopes lets any of them in; a token lacking all of them is
// told every scope that would do.
func TestGuard_DeclaredScopeGrantsItsRuleAndAnyScopeOfARuleGrantsIt(t *testing.T) {
	e := newGuardEnvWith(t, salesScopes)
	e.guard = salesRule
	e.reload()
	sales, salesJWT := e.token("sales only", apitoken.Expiry30d, e.scopes("sales"))
	_, reportJWT := e.token("all reports", apitoken.Expiry30d, e.scopes("report"))

	for _, tc := range []struct {
		jwt, path string
		status    int
		scope     string // the scope= of a 403
	}{
		{salesJWT, "/sales", 200, ""},
		{salesJWT, "/sales/2026", 200, ""},
		{reportJWT, "/sales", 200, ""},
		{reportJWT, "/data/stock", 200, ""},
		{salesJWT, "/data/stock", 403, "report"},
		{salesJWT, "/meta", 403, "meta"},
	} {
		before := e.up.Hits.Load()
		res, body := e.do("GET", tc.path, bearer(tc.jwt)...)
		if res.StatusCode != tc.status {
			t.Errorf("GET %s: %d %s, want %d", tc.path, res.StatusCode, body, tc.status)
			continue
		}
		if reached := e.up.Hits.Load() != before; reached != (tc.status == 200) {
			t.Errorf("GET %s: upstream reached = %v", tc.path, reached)
		}
		if tc.status == 403 {
			if h := res.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="`+tc.scope+`"`) {
				t.Errorf("GET %s: WWW-Authenticate %q, want insufficient_scope naming %q", tc.path, h, tc.scope)
			}
		}
	}
	if got := e.up.LastHeaders().Get("X-Api-Token-Scopes"); got != "report" {
		t.Errorf("upstream saw X-Api-Token-Scopes %q, want report", got)
	}
	// A token that has neither scope of a rule is told both.
	_, metaJWT := e.token("meta only", apitoken.Expiry30d, e.scopes("meta"))
	res, body := e.do("GET", "/sales", bearer(metaJWT)...)
	if h := res.Header.Get("WWW-Authenticate"); res.StatusCode != 403 || !strings.Contains(h, `scope="report sales"`) ||
		!strings.Contains(body, "none of the scopes report sales") {
		t.Errorf("meta token on /sales: %d %q %s, want 403 naming report and sales", res.StatusCode, h, body)
	}

	// The operator stops declaring sales: the token keeps its record, but
	// the scope grants nothing, even on the rule that still names report.
	e.options, e.guard = "", "scope report /sales /sales/*"
	e.reload()
	e.settle()
	if res, body := e.do("GET", "/sales", bearer(salesJWT)...); res.StatusCode != 403 {
		t.Errorf("sales token after sales was undeclared: %d %s, want 403", res.StatusCode, body)
	}
	got, err := e.svc.OwnedToken(context.Background(), e.owner, sales.ID)
	if err != nil || got.Scopes.String() != "sales" {
		t.Errorf("the record after sales was undeclared: scopes %q, %v; want sales kept", got.Scopes, err)
	}
	// And a new token cannot be given it; the message names the declared ones.
	_, err = e.svc.CreateToken(context.Background(), e.owner, apitoken.TokenInput{Name: "x", Expires: apitoken.Expiry1d, Scopes: got.Scopes})
	if err == nil || apitoken.Message(err) != "scopes must name at least one of the declared scopes: meta, report" {
		t.Errorf("creating a token of an undeclared scope: %v", err)
	}
}

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
