package caddymodule

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
)

// A user who leaves the group that gave the token role, seen at sign-in on
// one instance, is refused at the guard of another instance on the same
// database within 1s (through the change sequence), with a cache TTL of an
// hour; the lag is logged.
func TestBackend_AGroupLeftAtSignInOnAnotherInstanceStopsTheTokensWithin1s(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	b := pgBackend(t, dsn)
	t.Cleanup(func() { _ = b.Destruct() })
	other, err := postgres.Open(context.Background(), dsn) // the instance the user signs in on
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	key, err := apitoken.ParseKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := apitoken.NewSigner("https://reports.test", []apitoken.Key{key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := apitoken.NewAuthenticator(apitoken.AuthConfig{Signer: signer, State: b.state, CacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	groups := apitoken.GroupMap{"report-users": apitoken.RoleAPITokens}
	signIn := apitoken.NewService(apitoken.ServiceConfig{Store: other, Signer: signer, Groups: groups})

	ctx := context.Background()
	in := apitoken.Identity{ID: "alice", Email: "alice@example.com", HasGroups: true, Groups: []string{"report-users"}}
	alice, err := signIn.SignIn(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signIn.CreateToken(ctx, alice, apitoken.TokenInput{Name: "excel", Expires: apitoken.Expiry30d, Scopes: apitoken.AllScopes})
	if err != nil {
		t.Fatal(err)
	}
	jwt, _, err := signIn.Generate(ctx, alice, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, f := auth.Authenticate(ctx, jwt); f != nil {
		t.Fatalf("the guard refused a fresh JWT: %+v", f)
	}

	in.Groups = []string{"staff"}
	if _, err := signIn.SignIn(ctx, in); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	for {
		if _, f := auth.Authenticate(ctx, jwt); f != nil && f.Reason == apitoken.ReasonRoleMissing {
			break
		}
		if time.Since(left) > time.Second {
			t.Fatal("the guard of another instance still lets the token through 1s after its owner left the group")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("refused on the other instance %s after the sign-in that left the group", time.Since(left).Round(time.Millisecond))
}
