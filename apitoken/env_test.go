package apitoken_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
)

// env is one deployment over a real SQLite store in a temporary folder: a
// service and an authenticator sharing a signer and an injected clock, wired
// as the app wires them (service changes drop the authenticator's cache).
type env struct {
	tb     testing.TB
	ctx    context.Context
	clock  *clock
	path   string
	store  *sqlite.Store
	key    apitoken.Key
	signer *apitoken.Signer
	svc    *apitoken.Service
	auth   *apitoken.Authenticator
	admin  apitoken.Caller
}

// rootAdmin is the system admin named in the config.
const rootAdmin = "root"

func newEnv(tb testing.TB, cfg apitoken.AuthConfig) *env {
	tb.Helper()
	e := &env{tb: tb, ctx: context.Background(), clock: newClock(), key: testKey(tb, 1)}
	e.path = filepath.Join(tb.TempDir(), "tokens.db")
	var err error
	if e.store, err = sqlite.Open(e.ctx, e.path); err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() { e.store.Close() })
	e.signer = newSigner(tb, issuer, e.clock.Now, e.key)
	cfg.Signer, cfg.Store, cfg.Now = e.signer, e.store, e.clock.Now
	if e.auth, err = apitoken.NewAuthenticator(cfg); err != nil {
		tb.Fatalf("NewAuthenticator: %v", err)
	}
	e.sync() // the first read of the change sequence, as State.Follow makes at start
	e.svc = apitoken.NewService(apitoken.ServiceConfig{Store: e.store, Signer: e.signer, Admins: map[string]bool{rootAdmin: true}, Now: e.clock.Now,
		Changed: func(tokenID, userID string) {
			if tokenID != "" {
				e.auth.InvalidateToken(tokenID)
			}
			if userID != "" {
				e.auth.InvalidateUser(userID)
			}
		}})
	e.admin = e.caller(rootAdmin)
	return e
}

// reconfigure builds the service anew with change applied to its config,
// as a config reload does.
func (e *env) reconfigure(change func(c *apitoken.ServiceConfig)) {
	cfg := e.svc.Config()
	change(&cfg)
	e.svc = apitoken.NewService(cfg)
}

// sync reads the change sequence, as State.Follow does every poll.
func (e *env) sync() {
	e.tb.Helper()
	if err := e.auth.State().Sync(e.ctx); err != nil {
		e.tb.Fatalf("Sync: %v", err)
	}
}

// caller loads a caller, failing the test when it is refused.
func (e *env) caller(id string) apitoken.Caller {
	e.tb.Helper()
	c, err := e.svc.Caller(e.ctx, id)
	if err != nil {
		e.tb.Fatalf("Caller(%q): %v", id, err)
	}
	return c
}

// holder grants the token role to id and returns id as a caller.
func (e *env) holder(id string) apitoken.Caller {
	e.tb.Helper()
	if _, err := e.svc.GrantRole(e.ctx, e.admin, id, apitoken.RoleAPITokens); err != nil {
		e.tb.Fatalf("GrantRole(%q): %v", id, err)
	}
	return e.caller(id)
}

// service makes id a service account holding the token role.
func (e *env) service(id string) apitoken.Caller {
	e.tb.Helper()
	e.putUser(id, apitoken.UserPatch{Kind: ptr(apitoken.KindService)})
	return e.holder(id)
}

func (e *env) create(c apitoken.Caller, name string, scopes apitoken.Scopes, expires apitoken.Expiry) apitoken.Token {
	e.tb.Helper()
	t, err := e.svc.CreateToken(e.ctx, c, apitoken.TokenInput{Name: name, Scopes: scopes, Expires: expires})
	if err != nil {
		e.tb.Fatalf("CreateToken(%q): %v", name, err)
	}
	return t
}

func (e *env) generate(c apitoken.Caller, id string) (string, apitoken.Token) {
	e.tb.Helper()
	jwt, t, err := e.svc.Generate(e.ctx, c, id)
	if err != nil {
		e.tb.Fatalf("Generate(%s): %v", id, err)
	}
	return jwt, t
}

// live creates and generates a token for a new holder named owner.
func (e *env) live(owner string, scopes apitoken.Scopes, expires apitoken.Expiry) (apitoken.Caller, apitoken.Token, string) {
	e.tb.Helper()
	c := e.holder(owner)
	t := e.create(c, "token of "+owner, scopes, expires)
	jwt, t := e.generate(c, t.ID)
	return c, t, jwt
}

func (e *env) putUser(id string, p apitoken.UserPatch) {
	e.tb.Helper()
	if _, err := e.svc.PutUser(e.ctx, e.admin, id, p); err != nil {
		e.tb.Fatalf("PutUser(%q): %v", id, err)
	}
}

// accepted fails unless jwt authenticates, and returns the principal.
func (e *env) accepted(jwt string) apitoken.Principal {
	e.tb.Helper()
	p, f := e.auth.Authenticate(e.ctx, jwt)
	if f != nil {
		e.tb.Fatalf("Authenticate refused the JWT: reason %q (%v)", f.Reason, f.Err)
	}
	return p
}

// refused fails unless jwt is refused for reason, and returns the failure.
func (e *env) refused(jwt, reason string) *apitoken.Failure {
	e.tb.Helper()
	p, f := e.auth.Authenticate(e.ctx, jwt)
	if f == nil {
		e.tb.Fatalf("Authenticate accepted the JWT of token %s, want reason %q", p.Token.ID, reason)
	}
	if f.Reason != reason {
		e.tb.Fatalf("Authenticate reason = %q (%v), want %q", f.Reason, f.Err, reason)
	}
	return f
}

const day = 24 * time.Hour
