package caddymodule

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// An authentication that ran before the guard (basic_auth, forward_auth)
// may have set {http.auth.user.id}; after the guard it names the token's
// owner, and the token placeholders are set.
func TestIdentify_TheTokensOwnerReplacesAnEarlierIdentity(t *testing.T) {
	r := httptest.NewRequest("GET", "http://reports.test/data/x", nil)
	w := httptest.NewRecorder()
	repl := caddy.NewReplacer()
	r = caddyhttp.PrepareRequest(r, repl, w, &caddyhttp.Server{})
	repl.Set("http.auth.user.id", "mallory")

	h := &Auth{identities: new(identities)}
	tok := &apitoken.Token{ID: "tok_1", Name: "Excel", Owner: "alice"}
	h.identify(w, r, apitoken.Principal{Token: tok, Scopes: apitoken.DefaultScopes, ExpiresAt: time.Unix(1_800_000_000, 0)})

	for key, want := range map[string]string{
		"http.auth.user.id": "alice", "api_token.id": "tok_1", "api_token.name": "Excel", "api_token.scopes": "meta report",
	} {
		if got, _ := repl.GetString(key); got != want {
			t.Errorf("{%s} = %q, want %q", key, got, want)
		}
	}
	if got := caddyhttp.GetVar(r.Context(), VarTokenID); got != "tok_1" {
		t.Errorf("var %s = %v", VarTokenID, got)
	}
	if got := w.Header().Get("Api-Token-Expiration"); got != "Fri, 15 Jan 2027 08:00:00 GMT" {
		t.Errorf("Api-Token-Expiration = %q", got)
	}
}
