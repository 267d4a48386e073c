package caddymodule

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// The previous JWT of a generation with an overlap still opens the API, so
// reporting it (or sending it in a URL) must stop it; but the token's new
// JWT was never the one that leaked: whoever holds the old JWT must not
// kill it. The report ends the overlap only, logged UPDATE by where it was
// found, and the new JWT keeps working.
func TestRevoke_APreviousJWTReportedEndsItsOverlapOnly(t *testing.T) {
	e := newRevokeEnv(t)
	ctx := context.Background()
	for _, leak := range []struct {
		name   string
		report func(jwt string)
		by     string
	}{
		{"revocation endpoint", func(jwt string) { wantRevokeOK(t, "the previous JWT", e.post("203.0.113.60", "", form(jwt))) },
			apitoken.RevokedByEndpoint},
		{"URL", func(jwt string) { e.do("GET", "/meta?access_token="+jwt) }, apitoken.RevokedExposedInURL},
	} {
		tok, first := e.token("rotating by "+leak.name, apitoken.Expiry30d, apitoken.DefaultScopes)
		second, _, err := e.svc.GenerateOverlap(ctx, e.owner, tok.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		e.Secret(second)
		if res, _ := e.do("GET", "/meta", bearer(first)...); res.StatusCode != 200 {
			t.Fatalf("%s: control: the previous JWT during its overlap got %d", leak.name, res.StatusCode)
		}
		leak.report(first)
		if res, _ := e.do("GET", "/meta", bearer(second)...); res.StatusCode != 200 {
			t.Errorf("%s: the new JWT got %d after the previous one was reported, want 200", leak.name, res.StatusCode)
		}
		if res, _ := e.do("GET", "/meta", bearer(first)...); res.StatusCode != 401 {
			t.Errorf("%s: the reported previous JWT then got %d, want 401", leak.name, res.StatusCode)
		}
		if logs := e.revokes(tok.ID); len(logs) != 0 {
			t.Errorf("%s: REVOKE logs %+v, want none: the token's new JWT did not leak", leak.name, logs)
		}
		got, err := e.app.backend.store.GetToken(ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.RevokedAt != nil || got.PrevJTIHash != nil || got.PrevUntil != nil {
			t.Errorf("%s: stored token revoked %v, previous JWT until %v, want live with no previous JWT", leak.name, got.RevokedAt, got.PrevUntil)
		}
		logs, _, err := e.app.backend.store.ListLogs(ctx, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityUpdate,
			Page: apitoken.Page{Limit: 10}})
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) != 1 || logs[0].ActivityBy != leak.by {
			t.Errorf("%s: UPDATE logs %+v, want one by %q", leak.name, logs, leak.by)
		}
	}
	e.noSecretsInLogs(t)
}
