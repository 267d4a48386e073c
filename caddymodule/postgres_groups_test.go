package caddymodule

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
)

// twoInstances is the guard of one instance on a PostgreSQL database (its
// cache TTL an hour) and the service of another instance on the same
// database, with the group map report-users -> api_tokens.
func twoInstances(t *testing.T) (*apitoken.Authenticator, *apitoken.Service) {
	t.Helper()
	dsn, _ := pgtest.Schema(t)
	b := pgBackend(t, dsn)
	t.Cleanup(func() { _ = b.Destruct() })
	other, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
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
	return auth, apitoken.NewService(apitoken.ServiceConfig{Store: other, Signer: signer, Groups: groups})
}

// liveJWT creates and generates a token of c's and checks that auth lets
// its JWT through.
func liveJWT(t *testing.T, auth *apitoken.Authenticator, svc *apitoken.Service, c apitoken.Caller) string {
	t.Helper()
	ctx := context.Background()
	tok, err := svc.CreateToken(ctx, c, apitoken.TokenInput{Name: "excel", Expires: apitoken.Expiry30d, Scopes: apitoken.DefaultScopes})
	if err != nil {
		t.Fatal(err)
	}
	jwt, _, err := svc.Generate(ctx, c, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, f := auth.Authenticate(ctx, jwt); f != nil {
		t.Fatalf("the guard refused a fresh JWT: %+v", f)
	}
	return jwt
}

// refusedWithin1s waits until auth refuses jwt for reason, failing after
// 1s from since, and logs the lag.
func refusedWithin1s(t *testing.T, auth *apitoken.Authenticator, jwt, reason string, since time.Time, after string) {
	t.Helper()
	for {
		if _, f := auth.Authenticate(context.Background(), jwt); f != nil && f.Reason == reason {
			break
		}
		if time.Since(since) > time.Second {
			t.Fatalf("the guard of another instance still lets the token through 1s after %s", after)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("refused (%s) on the other instance %s after %s", reason, time.Since(since).Round(time.Millisecond), after)
}

// A user who leaves the group that gave the token role, seen at sign-in on
// one instance, is refused at the guard of another instance on the same
// database within 1s (through the change sequence), with a cache TTL of an
// hour; the lag is logged.
func TestBackend_AGroupLeftAtSignInOnAnotherInstanceStopsTheTokensWithin1s(t *testing.T) {
	auth, signIn := twoInstances(t)
	ctx := context.Background()
	in := apitoken.Identity{ID: "alice", Email: "alice@example.com", HasGroups: true, Groups: []string{"report-users"}}
	alice, err := signIn.SignIn(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	jwt := liveJWT(t, auth, signIn, alice)

	in.Groups = []string{"staff"}
	if _, err := signIn.SignIn(ctx, in); err != nil {
		t.Fatal(err)
	}
	refusedWithin1s(t, auth, jwt, apitoken.ReasonRoleMissing, time.Now(), "the sign-in that left the group")
}

// A user made inactive over SCIM on one instance is refused at the guard of
// another instance within 1s, as above.
func TestBackend_SCIMInactiveOnAnotherInstanceStopsTheTokensWithin1s(t *testing.T) {
	auth, svc := twoInstances(t)
	ctx := context.Background()
	active := true
	if _, err := svc.Provision(ctx, "erin", apitoken.Provision{Active: &active, Join: []string{"report-users"}}, apitoken.ProvisionCreate); err != nil {
		t.Fatal(err)
	}
	erin, err := svc.Caller(ctx, "erin")
	if err != nil {
		t.Fatal(err)
	}
	jwt := liveJWT(t, auth, svc, erin)

	active = false
	if _, err := svc.Provision(ctx, "erin", apitoken.Provision{Active: &active}, apitoken.ProvisionChange); err != nil {
		t.Fatal(err)
	}
	refusedWithin1s(t, auth, jwt, apitoken.ReasonDisabled, time.Now(), "SCIM's active: false")
}
