package caddymodule

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
)

// Every instance of a PostgreSQL deployment must share one key: a key
// generated into one instance's data directory would make the others
// refuse its JWTs. SPEC section 3: refused at start, saying what to do.
func TestApp_PostgresWithoutSigningKeyIsRefused(t *testing.T) {
	a := &App{MaxLifetime: "1y", Storage: &Storage{Driver: "postgres", DSN: "postgres://db/apitokens"}}
	err := a.Validate()
	if err == nil {
		t.Fatal("a postgres storage without signing_key was accepted")
	}
	for _, want := range []string{"signing_key", "every instance", "openssl rand -base64 64"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	a.SigningKeys = []string{testKey}
	if err := a.Validate(); err != nil {
		t.Errorf("with a signing_key: %v", err)
	}
	a.Storage.DSN = ""
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "DSN") {
		t.Errorf("an empty DSN: %v, want an error naming the DSN", err)
	}
	a.Storage.Driver = "mysql"
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "sqlite or postgres") {
		t.Errorf("an unknown driver: %v, want an error naming the drivers", err)
	}
}

// pgBackend opens the backend of a PostgreSQL schema as Provision does.
func pgBackend(t *testing.T, dsn string) *backend {
	t.Helper()
	b, err := openBackend(context.Background(), &Storage{Driver: "postgres", DSN: dsn, dsn: dsn}, zap.NewNop(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// One backend serves every live config of an instance (the old and the new
// during a reload): they share its state, so a change made on another
// instance reaches both within 1s, and what is cached survives the reload.
// Destruct ends the following of the change sequence.
func TestBackend_ChangesOnAnotherInstanceReachEveryLiveConfig(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	b := pgBackend(t, dsn)
	destructed := false
	t.Cleanup(func() {
		if !destructed {
			b.Destruct()
		}
	})
	other, err := postgres.Open(context.Background(), dsn) // another instance
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
	newAuth := func() *apitoken.Authenticator {
		a, err := apitoken.NewAuthenticator(apitoken.AuthConfig{Signer: signer, State: b.state, CacheTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	oldCfg, newCfg := newAuth(), newAuth()

	ctx := context.Background()
	svc := apitoken.NewService(apitoken.ServiceConfig{Store: b.store, Signer: signer, Admins: map[string]bool{"root": true}})
	otherSvc := apitoken.NewService(apitoken.ServiceConfig{Store: other, Signer: signer, Admins: map[string]bool{"root": true}})
	root, err := svc.Caller(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GrantRole(ctx, root, "alice", apitoken.RoleAPITokens); err != nil {
		t.Fatal(err)
	}
	alice, err := svc.Caller(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	newJWT := func(name string) (apitoken.Token, string) {
		tok, err := svc.CreateToken(ctx, alice, apitoken.TokenInput{Name: name, Expires: apitoken.Expiry30d, Scopes: apitoken.DefaultScopes})
		if err != nil {
			t.Fatal(err)
		}
		jwt, tok, err := svc.Generate(ctx, alice, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		return tok, jwt
	}
	// refusedWithin polls until auth refuses jwt for reason, or d passes.
	refusedWithin := func(auth *apitoken.Authenticator, jwt, reason string, d time.Duration) bool {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			if _, f := auth.Authenticate(ctx, jwt); f != nil && f.Reason == reason {
				return true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return false
	}
	warm := func(jwt string, auths ...*apitoken.Authenticator) {
		t.Helper()
		for _, a := range auths {
			if _, f := a.Authenticate(ctx, jwt); f != nil {
				t.Fatalf("a fresh JWT was refused: %+v", f)
			}
		}
	}

	tok, jwt := newJWT("first")
	warm(jwt, oldCfg, newCfg)
	if _, err := otherSvc.Revoke(ctx, alice, tok.ID); err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]*apitoken.Authenticator{"old config": oldCfg, "new config": newCfg} {
		if !refusedWithin(a, jwt, apitoken.ReasonRevoked, time.Second) {
			t.Errorf("%s: a token revoked on another instance still works after 1s (cache TTL 1h)", name)
		}
	}

	// A role removed on another instance applies too.
	_, jwt2 := newJWT("second")
	warm(jwt2, newCfg)
	otherRoot, _ := otherSvc.Caller(ctx, "root")
	if _, err := otherSvc.RemoveRole(ctx, otherRoot, "alice", apitoken.RoleAPITokens); err != nil {
		t.Fatal(err)
	}
	if !refusedWithin(newCfg, jwt2, apitoken.ReasonRoleMissing, time.Second) {
		t.Errorf("a role removed on another instance still lets the token through after 1s")
	}
	if _, err := otherSvc.GrantRole(ctx, otherRoot, "alice", apitoken.RoleAPITokens); err != nil {
		t.Fatal(err)
	}

	// What the old config cached, the new one finds: no store query.
	_, jwt3 := newJWT("third")
	if err := b.state.Sync(ctx); err != nil { // past the changes that made it
		t.Fatal(err)
	}
	warm(jwt3, oldCfg)
	lookups := b.state.Stats().Lookups
	warm(jwt3, newCfg)
	if n := b.state.Stats().Lookups - lookups; n != 0 {
		t.Errorf("the new config asked the store %d times for state the old one had cached", n)
	}

	done := b.followDone
	if err := b.Destruct(); err != nil {
		t.Errorf("Destruct: %v", err)
	}
	destructed = true
	select {
	case <-done:
	default:
		t.Errorf("the change sequence is still followed after Destruct")
	}
}
