package apitoken_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func TestService_CreatingATokenNeedsTheEffectiveTokenRole(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(e *env, id string)
		msg   string // "" for success
	}{
		{"a holder of the token role may", func(e *env, id string) { e.holder(id) }, ""},
		{"a user without a record may not", func(e *env, id string) {}, "api_tokens role"},
		{"a user with no role may not", func(e *env, id string) { e.putUser(id, apitoken.UserPatch{Email: ptr("u@example.com")}) }, "api_tokens role"},
		{"a system admin without the token role may not", func(e *env, id string) {
			if _, err := e.svc.GrantRole(e.ctx, e.admin, id, apitoken.RoleAdmin); err != nil {
				t.Fatal(err)
			}
		}, "api_tokens role"},
		{"a holder made view-only may not", func(e *env, id string) {
			e.holder(id)
			e.putUser(id, apitoken.UserPatch{ViewOnly: ptr(true)})
		}, "view-only"},
		{"a holder whose role was removed may not", func(e *env, id string) {
			e.holder(id)
			if _, err := e.svc.RemoveRole(e.ctx, e.admin, id, apitoken.RoleAPITokens); err != nil {
				t.Fatal(err)
			}
		}, "api_tokens role"},
		{"a disabled holder may not", func(e *env, id string) {
			e.holder(id)
			e.putUser(id, apitoken.UserPatch{Disabled: ptr(true)})
		}, "disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, apitoken.AuthConfig{})
			tc.setup(e, "alice")
			c, err := e.svc.Caller(e.ctx, "alice")
			if err == nil {
				_, err = e.svc.CreateToken(e.ctx, c, apitoken.TokenInput{Name: "n", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry30d})
			}
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("CreateToken: %v", err)
				}
				return
			}
			wantKind(t, err, apitoken.ErrForbidden)
			if msg := apitoken.Message(err); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q, want it to contain %q", msg, tc.msg)
			}
			list, _, lerr := e.svc.ListAllTokens(e.ctx, e.admin, apitoken.TokenFilter{Owner: "alice"})
			if lerr != nil || len(list) != 0 {
				t.Errorf("refused create left tokens %v (%v)", list, lerr)
			}
		})
	}
}

func TestService_TheTokenRoleCannotGoToAViewOnlyUser(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	e.putUser("viewer", apitoken.UserPatch{ViewOnly: ptr(true)})
	_, err := e.svc.GrantRole(e.ctx, e.admin, "viewer", apitoken.RoleAPITokens)
	wantKind(t, err, apitoken.ErrConflict)
	if u, _ := e.store.GetUser(e.ctx, "viewer"); u.HasRole(apitoken.RoleAPITokens) {
		t.Error("the refused role was recorded")
	}
}

func TestService_OnlySystemAdminsManageUsersAndRoles(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice := e.holder("alice")
	if _, err := e.svc.GrantRole(e.ctx, alice, "bob", apitoken.RoleAPITokens); !errors.Is(err, apitoken.ErrForbidden) {
		t.Errorf("GrantRole by a non-admin = %v, want ErrForbidden", err)
	}
	if _, err := e.svc.PutUser(e.ctx, alice, "alice", apitoken.UserPatch{Disabled: ptr(false)}); !errors.Is(err, apitoken.ErrForbidden) {
		t.Errorf("PutUser by a non-admin = %v, want ErrForbidden", err)
	}
	if _, _, err := e.svc.ListAllTokens(e.ctx, alice, apitoken.TokenFilter{}); !errors.Is(err, apitoken.ErrForbidden) {
		t.Errorf("ListTokens(all) by a non-admin = %v, want ErrForbidden", err)
	}
	// A user holding the admin role is an admin too.
	if _, err := e.svc.GrantRole(e.ctx, e.admin, "carol", apitoken.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GrantRole(e.ctx, e.caller("carol"), "bob", apitoken.RoleAPITokens); err != nil {
		t.Errorf("GrantRole by a holder of the admin role: %v", err)
	}
}

func TestService_ExpiryPolicyAppliesAtCreate(t *testing.T) {
	for _, tc := range []struct {
		max     apitoken.Expiry
		expires apitoken.Expiry
		msg     string // "" for accepted
	}{
		{"", apitoken.Expiry1y, ""},
		{"", apitoken.ExpiryNever, "the longest allowed is 1y"},
		{apitoken.Expiry1y, apitoken.ExpiryNever, "the longest allowed is 1y"},
		{apitoken.Expiry30d, apitoken.Expiry30d, ""},
		{apitoken.Expiry30d, apitoken.Expiry1d, ""},
		{apitoken.Expiry30d, apitoken.Expiry60d, "the longest allowed is 30d"},
		{apitoken.Expiry30d, apitoken.Expiry1y, "the longest allowed is 30d"},
		{apitoken.Expiry30d, apitoken.ExpiryNever, "the longest allowed is 30d"},
		{apitoken.ExpiryNever, apitoken.ExpiryNever, ""},
		{apitoken.ExpiryNever, apitoken.Expiry1y, ""},
		{apitoken.ExpiryNever, "2d", "choose one of 1d, 7d, 30d, 60d, 90d, 1y, never"},
		{apitoken.Expiry7d, "", "expires is required: choose one of 1d, 7d"},
	} {
		t.Run(string(tc.expires)+" under max "+string(tc.max), func(t *testing.T) {
			e := newEnv(t, apitoken.AuthConfig{})
			e.reconfigure(func(c *apitoken.ServiceConfig) { c.MaxLifetime = tc.max })
			_, err := e.svc.CreateToken(e.ctx, e.holder("alice"), apitoken.TokenInput{Name: "n", Scopes: apitoken.DefaultScopes, Expires: tc.expires})
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("CreateToken: %v", err)
				}
				return
			}
			wantKind(t, err, apitoken.ErrInvalid)
			if msg := apitoken.Message(err); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q, want it to contain %q", msg, tc.msg)
			}
		})
	}
}

func TestService_ExpiryRequiredMessageListsOnlyAllowedChoices(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	e.reconfigure(func(c *apitoken.ServiceConfig) { c.MaxLifetime = apitoken.Expiry30d })
	_, err := e.svc.CreateToken(e.ctx, e.holder("alice"), apitoken.TokenInput{Name: "n", Scopes: apitoken.DefaultScopes})
	if msg := apitoken.Message(err); !strings.HasSuffix(msg, "choose one of 1d, 7d, 30d") {
		t.Errorf("message %q, want the choices up to 30d", msg)
	}
}

func TestService_ExpiryPolicyAppliesAtUpdateAndGenerate(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice := e.holder("alice")
	tok := e.create(alice, "n", apitoken.DefaultScopes, apitoken.Expiry1y)

	e.reconfigure(func(c *apitoken.ServiceConfig) { c.MaxLifetime = apitoken.Expiry30d }) // the policy is tightened by a config reload
	_, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, apitoken.TokenPatch{Expires: ptr(apitoken.Expiry90d)})
	wantKind(t, err, apitoken.ErrInvalid)
	if msg := apitoken.Message(err); !strings.Contains(msg, "the longest allowed is 30d") {
		t.Errorf("update message %q does not name the longest allowed", msg)
	}
	_, _, err = e.svc.Generate(e.ctx, alice, tok.ID)
	wantKind(t, err, apitoken.ErrInvalid)
	if msg := apitoken.Message(err); !strings.Contains(msg, "the longest allowed is 30d") || !strings.Contains(msg, "change the token's expiry") {
		t.Errorf("generate message %q does not say what to do", msg)
	}
	if got, _ := e.store.GetToken(e.ctx, tok.ID); got.GeneratedAt != nil {
		t.Fatal("a refused generation was stored")
	}
	if _, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, apitoken.TokenPatch{Expires: ptr(apitoken.Expiry30d)}); err != nil {
		t.Fatalf("UpdateToken to an allowed expiry: %v", err)
	}
	e.generate(alice, tok.ID)
}

func TestService_CreateRefusesBadNamesAndScopes(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice := e.holder("alice")
	for _, in := range []apitoken.TokenInput{
		{Name: "  ", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry1d},
		{Name: strings.Repeat("x", 101), Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry1d},
		{Name: "a\nb", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry1d},
		{Name: "n", Scopes: 0, Expires: apitoken.Expiry1d},
	} {
		if _, err := e.svc.CreateToken(e.ctx, alice, in); !errors.Is(err, apitoken.ErrInvalid) {
			t.Errorf("CreateToken(%+v) = %v, want ErrInvalid", in, err)
		}
	}
	tok := e.create(alice, "  spaced  ", mustScopes(t, "meta"), apitoken.Expiry1d)
	if tok.Name != "spaced" || tok.Owner != "alice" || !strings.HasPrefix(tok.ID, "tok_") || len(tok.ID) != 30 {
		t.Errorf("created %+v", tok)
	}
	if st := tok.StatusAt(e.clock.Now()); st != apitoken.StatusNotGenerated {
		t.Errorf("new token status %q", st)
	}
}

func TestService_DuplicateNamesOfOneOwnerConflict(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice, bob := e.holder("alice"), e.holder("bob")
	first := e.create(alice, "Nightly Export", apitoken.DefaultScopes, apitoken.Expiry30d)

	_, err := e.svc.CreateToken(e.ctx, alice, apitoken.TokenInput{Name: " nightly EXPORT ", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry30d})
	wantKind(t, err, apitoken.ErrConflict)
	if msg := apitoken.Message(err); !strings.Contains(msg, `"nightly EXPORT"`) {
		t.Errorf("message %q does not name the clashing name", msg)
	}

	e.create(bob, "Nightly Export", apitoken.DefaultScopes, apitoken.Expiry30d) // another owner's namespace
	other := e.create(alice, "weekly", apitoken.DefaultScopes, apitoken.Expiry30d)
	_, err = e.svc.UpdateToken(e.ctx, alice, other.ID, apitoken.TokenPatch{Name: ptr("NIGHTLY export")})
	wantKind(t, err, apitoken.ErrConflict)

	// A revoked token frees its name.
	if _, err := e.svc.Revoke(e.ctx, alice, first.ID); err != nil {
		t.Fatal(err)
	}
	e.create(alice, "nightly export", apitoken.DefaultScopes, apitoken.Expiry30d)
}

func TestService_TokensThatAreNotRevokedAreLimitedPerOwner(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	e.reconfigure(func(c *apitoken.ServiceConfig) { c.MaxTokensPerUser = 2 })
	alice, svc := e.holder("alice"), e.service("svc-export")
	first := e.create(alice, "one", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.create(alice, "two", apitoken.DefaultScopes, apitoken.Expiry30d)
	in := apitoken.TokenInput{Name: "three", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry30d}

	_, err := e.svc.CreateToken(e.ctx, alice, in)
	wantKind(t, err, apitoken.ErrConflict)
	if msg := apitoken.Message(err); !strings.HasPrefix(msg, "you have reached the limit of 2 ") || !strings.Contains(msg, "max_tokens_per_user") {
		t.Errorf("message %q, want it to tell the owner the limit (2, max_tokens_per_user)", msg)
	}
	// A system admin creating for another owner meets the same limit, told
	// whose it is.
	e.create(svc, "a", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.create(svc, "b", apitoken.DefaultScopes, apitoken.Expiry30d)
	_, err = e.svc.CreateTokenFor(e.ctx, e.admin, "svc-export", in)
	wantKind(t, err, apitoken.ErrConflict)
	if msg := apitoken.Message(err); !strings.Contains(msg, `user "svc-export" has reached the limit of 2 `) {
		t.Errorf("admin's message %q, want it to name the user and the limit", msg)
	}
	// Revoking one makes room.
	if _, err := e.svc.Revoke(e.ctx, alice, first.ID); err != nil {
		t.Fatal(err)
	}
	e.create(alice, "three", apitoken.DefaultScopes, apitoken.Expiry30d)
}

func TestService_UpdatingARevokedTokenSaysItIsRevoked(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice := e.holder("alice")
	tok := e.create(alice, "n", apitoken.DefaultScopes, apitoken.Expiry30d)
	if _, err := e.svc.Revoke(e.ctx, alice, tok.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []apitoken.TokenPatch{{Name: ptr("renamed")}, {Scopes: ptr(mustScopes(t, "meta"))}} {
		_, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, p)
		wantKind(t, err, apitoken.ErrConflict)
		if msg := apitoken.Message(err); !strings.Contains(msg, "revoked") {
			t.Errorf("message %q, want it to say the token is revoked", msg)
		}
	}
}

func TestService_OtherUsersTokensLookMissing(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice, bob := e.holder("alice"), e.holder("bob")
	tok := e.create(alice, "n", apitoken.DefaultScopes, apitoken.Expiry30d)
	if _, err := e.svc.OwnedToken(e.ctx, bob, tok.ID); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("OwnedToken by another user = %v, want ErrNotFound", err)
	}
	if _, _, err := e.svc.Generate(e.ctx, bob, tok.ID); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("Generate by another user = %v, want ErrNotFound", err)
	}
	if _, err := e.svc.UpdateToken(e.ctx, bob, tok.ID, apitoken.TokenPatch{Name: ptr("mine")}); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("UpdateToken by another user = %v, want ErrNotFound", err)
	}
	if _, err := e.svc.Revoke(e.ctx, bob, tok.ID); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("Revoke by another user = %v, want ErrNotFound", err)
	}
	if got, _ := e.store.GetToken(e.ctx, tok.ID); got.RevokedAt != nil || got.GeneratedAt != nil || got.Name != "n" {
		t.Errorf("another user changed the token: %+v", got)
	}
	// A system admin may revoke anyone's token, and the log says so.
	if _, err := e.svc.RevokeFor(e.ctx, e.admin, tok.ID); err != nil {
		t.Fatalf("admin Revoke: %v", err)
	}
	logs, _, _ := e.store.ListLogs(e.ctx, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityRevoke})
	if len(logs) != 1 || logs[0].ActivityBy != rootAdmin || !strings.Contains(logs[0].Reason, "system admin") {
		t.Errorf("REVOKE logs = %+v", logs)
	}
}

func TestService_GeneratedJWTAuthenticates(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	if !tok.GeneratedAt.Equal(t0) || tok.ExpiresAt() == nil || !tok.ExpiresAt().Equal(t0.Add(30*day)) {
		t.Errorf("generated_at %v, expires_at %v; want %v and 30 days on", tok.GeneratedAt, tok.ExpiresAt(), t0)
	}
	if st := tok.StatusAt(e.clock.Now()); st != apitoken.StatusGeneratedInactive {
		t.Errorf("status after generation = %q", st)
	}
	e.clock.Advance(time.Hour)
	p := e.accepted(jwt)
	if p.Token.ID != tok.ID || p.Token.Owner != "alice" || p.Scopes != apitoken.DefaultScopes || !p.ExpiresAt.Equal(t0.Add(30*day)) {
		t.Errorf("principal = token %s of %s, scopes %v, expires %v", p.Token.ID, p.Token.Owner, p.Scopes, p.ExpiresAt)
	}
	logs, _, err := e.store.ListLogs(e.ctx, apitoken.LogFilter{TokenID: tok.ID})
	if err != nil {
		t.Fatal(err)
	}
	var activities []string
	for _, l := range logs {
		activities = append(activities, string(l.Activity))
	}
	if strings.Join(activities, " ") != "GENERATE CREATE" {
		t.Errorf("logs, newest first = %v, want GENERATE CREATE", activities)
	}
}

func TestService_GeneratedJWTIsNeverStored(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	_, claims := segments(t, jwt)
	jti, _ := claims["jti"].(string)
	if jti == "" {
		t.Fatal("JWT has no jti")
	}
	sig := jwt[strings.LastIndexByte(jwt, '.')+1:]
	if want := apitoken.HashJTI(jti); !bytes.Equal(tok.JTIHash, want[:]) {
		t.Errorf("stored JTIHash is not the SHA-256 of the jti")
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(e.path + "*")
	if len(files) == 0 {
		t.Fatal("no database files found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for what, secret := range map[string]string{"JWT signature": sig, "jti": jti, "signing key": string(e.key.Secret)} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the %s", filepath.Base(f), what)
			}
		}
	}
}

func TestService_RegeneratingSupersedesThePreviousJWT(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice, tok, old := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(old)
	e.clock.Advance(time.Minute)
	fresh, regen := e.generate(alice, tok.ID)
	if fresh == old || !regen.GeneratedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("regeneration gave the same JWT or kept generated_at %v", regen.GeneratedAt)
	}
	f := e.refused(old, apitoken.ReasonSuperseded)
	if f.TokenID != tok.ID || f.Unavailable {
		t.Errorf("failure = %+v, want it to name token %s", *f, tok.ID)
	}
	e.accepted(fresh)
}

func TestService_RevokeIsFinal(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(jwt)
	e.clock.Advance(time.Minute)
	revoked, err := e.svc.Revoke(e.ctx, alice, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if revoked.RevokedAt == nil || !revoked.RevokedAt.Equal(t0.Add(time.Minute)) || revoked.StatusAt(e.clock.Now()) != apitoken.StatusRevoked {
		t.Errorf("revoked token: revoked_at %v, status %q", revoked.RevokedAt, revoked.StatusAt(e.clock.Now()))
	}
	e.refused(jwt, apitoken.ReasonRevoked)

	if _, regen, err := e.svc.Generate(e.ctx, alice, tok.ID); !errors.Is(err, apitoken.ErrConflict) {
		t.Fatalf("Generate after revoke = %v, want ErrConflict; token %+v", err, regen)
	}
	if again, err := e.svc.Revoke(e.ctx, alice, tok.ID); !errors.Is(err, apitoken.ErrConflict) {
		t.Fatalf("second Revoke = %v, want ErrConflict; token %+v", err, again)
	}
	e.refused(jwt, apitoken.ReasonRevoked)
}

func TestService_NarrowingScopesAppliesToTheLiveJWTAtOnce(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	if p := e.accepted(jwt); p.Scopes != apitoken.DefaultScopes {
		t.Fatalf("scopes before = %v", p.Scopes)
	}
	report := mustScopes(t, "report")
	if _, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, apitoken.TokenPatch{Scopes: &report}); err != nil {
		t.Fatal(err)
	}
	if p := e.accepted(jwt); p.Scopes != report {
		t.Errorf("scopes after narrowing = %v, want %v", p.Scopes, report)
	}
}

func TestService_WideningScopesWaitsForTheNextGeneration(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	meta := mustScopes(t, "meta")
	alice, tok, jwt := e.live("alice", meta, apitoken.Expiry30d)
	if _, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, apitoken.TokenPatch{Scopes: ptr(apitoken.DefaultScopes)}); err != nil {
		t.Fatal(err)
	}
	if p := e.accepted(jwt); p.Scopes != meta {
		t.Errorf("scopes of the live JWT after widening = %v, want still %v", p.Scopes, meta)
	}
	fresh, _ := e.generate(alice, tok.ID)
	if p := e.accepted(fresh); p.Scopes != apitoken.DefaultScopes {
		t.Errorf("scopes after the next generation = %v, want %v", p.Scopes, apitoken.DefaultScopes)
	}
}

func TestService_ShorteningExpiryEndsTheLiveJWTEarlier(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	updated, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, apitoken.TokenPatch{Expires: ptr(apitoken.Expiry1d)})
	if err != nil {
		t.Fatal(err)
	}
	if end := updated.ExpiresAt(); end == nil || !end.Equal(t0.Add(day)) {
		t.Errorf("expires_at after shortening = %v, want %v", end, t0.Add(day))
	}
	e.clock.Advance(day - time.Second)
	if p := e.accepted(jwt); !p.ExpiresAt.Equal(t0.Add(day)) {
		t.Errorf("principal expires %v, want %v", p.ExpiresAt, t0.Add(day))
	}
	e.clock.Advance(time.Second)
	e.refused(jwt, apitoken.ReasonExpired)
	if st := updated.StatusAt(e.clock.Now()); st != apitoken.StatusExpired {
		t.Errorf("status = %q, want expired", st)
	}
}

func TestService_LengtheningExpiryWaitsForTheNextGeneration(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry1d)
	if _, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, apitoken.TokenPatch{Expires: ptr(apitoken.Expiry30d)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(day - time.Second)
	e.accepted(jwt)
	e.clock.Advance(time.Second)
	e.refused(jwt, apitoken.ReasonExpired)
	e.clock.Advance(time.Hour) // past the leeway: the signer itself calls it expired
	if f := e.refused(jwt, apitoken.ReasonExpired); f.TokenID != tok.ID {
		t.Errorf("expired failure names token %q, want %s", f.TokenID, tok.ID)
	}
	fresh, _ := e.generate(alice, tok.ID)
	if p := e.accepted(fresh); !p.ExpiresAt.Equal(e.clock.Now().Add(30 * day)) {
		t.Errorf("new generation expires %v, want 30 days on", p.ExpiresAt)
	}
}

func TestService_NeverExpiringTokenHasNoEnd(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	e.reconfigure(func(c *apitoken.ServiceConfig) { c.MaxLifetime = apitoken.ExpiryNever })
	_, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.ExpiryNever)
	if tok.ExpiresAt() != nil {
		t.Errorf("expires_at = %v, want none", tok.ExpiresAt())
	}
	e.clock.Advance(5 * 365 * day)
	if p := e.accepted(jwt); !p.ExpiresAt.IsZero() {
		t.Errorf("principal expires %v, want no expiry", p.ExpiresAt)
	}
}

func TestService_OwnerRightsGateAuthenticationAndComeBack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reason  string
		take    func(e *env)
		restore func(e *env)
	}{
		{"removing the token role", apitoken.ReasonRoleMissing,
			func(e *env) {
				if _, err := e.svc.RemoveRole(e.ctx, e.admin, "alice", apitoken.RoleAPITokens); err != nil {
					t.Fatal(err)
				}
			},
			func(e *env) { e.holder("alice") }},
		{"making the owner view-only", apitoken.ReasonViewOnly,
			func(e *env) { e.putUser("alice", apitoken.UserPatch{ViewOnly: ptr(true)}) },
			func(e *env) { e.putUser("alice", apitoken.UserPatch{ViewOnly: ptr(false)}) }},
		{"disabling the owner", apitoken.ReasonDisabled,
			func(e *env) { e.putUser("alice", apitoken.UserPatch{Disabled: ptr(true)}) },
			func(e *env) { e.putUser("alice", apitoken.UserPatch{Disabled: ptr(false)}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
			_, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
			e.accepted(jwt) // the owner's state is now cached
			tc.take(e)
			if f := e.refused(jwt, tc.reason); f.TokenID != tok.ID {
				t.Errorf("failure names token %q, want %s", f.TokenID, tok.ID)
			}
			tc.restore(e)
			e.accepted(jwt)
			if got, _ := e.store.GetToken(e.ctx, tok.ID); got.RevokedAt != nil {
				t.Error("taking the owner's rights revoked the token")
			}
		})
	}
}

func TestService_JWTWhoseSubIsNotTheOwnerIsRefused(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.holder("bob")
	// A JWT with a good signature and the token's id, but bob as subject.
	forged := tok
	forged.Owner = "bob"
	jwt, err := e.signer.Issue(&forged, apitoken.NewJTI(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if f := e.refused(jwt, apitoken.ReasonOwnerMismatch); f.TokenID != tok.ID {
		t.Errorf("failure names token %q, want %s", f.TokenID, tok.ID)
	}
}

func TestService_JWTOfAnotherDeploymentIsRefusedEvenWithTheSameKey(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	foreign := newSigner(t, "https://other.example.com", e.clock.Now, e.key)
	jwt, err := foreign.Issue(&tok, apitoken.NewJTI(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := e.refused(jwt, apitoken.ReasonMalformed)
	if f.TokenID != "" {
		t.Errorf("a foreign JWT was attributed to token %s", f.TokenID)
	}
}

func TestService_JWTOfADeletedOrUnknownTokenIsRefused(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	e.holder("alice")
	ghost := apitoken.Token{ID: apitoken.NewTokenID(), Owner: "alice", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry30d}
	jwt, err := e.signer.Issue(&ghost, apitoken.NewJTI(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if f := e.refused(jwt, apitoken.ReasonUnknownToken); f.TokenID != "" || f.Unavailable {
		t.Errorf("failure = %+v, want no token named and not unavailable", *f)
	}
}

func TestService_NotGeneratedTokenCannotBeUsedWithAGuessedJWT(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice := e.holder("alice")
	tok := e.create(alice, "n", apitoken.DefaultScopes, apitoken.Expiry30d)
	jwt, err := e.signer.Issue(&tok, apitoken.NewJTI(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, f := e.auth.Authenticate(e.ctx, jwt); f == nil {
		t.Fatal("a JWT was accepted for a token that was never generated")
	}
}

func TestService_AllowedIPsApplyAtOnceBothWaysAndAreLogged(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice := e.holder("alice")
	office, err := apitoken.ParseNetworks([]string{"198.51.100.0/24", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.svc.CreateToken(e.ctx, alice, apitoken.TokenInput{Name: "office", Scopes: apitoken.DefaultScopes,
		Expires: apitoken.Expiry30d, AllowedIPs: office})
	if err != nil {
		t.Fatal(err)
	}
	jwt, _ := e.generate(alice, tok.ID)
	allows := func(ip string) bool { return e.accepted(jwt).Token.AllowedIPs.Allow(ip) }
	if !allows("198.51.100.7") || allows("192.0.2.1") {
		t.Fatalf("a token created for 198.51.100.0/24: allows 198.51.100.7 %v, 192.0.2.1 %v", allows("198.51.100.7"), allows("192.0.2.1"))
	}

	home, _ := apitoken.ParseNetworks([]string{"192.0.2.1"})
	if _, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, apitoken.TokenPatch{AllowedIPs: &home}); err != nil {
		t.Fatal(err)
	}
	if allows("198.51.100.7") || !allows("192.0.2.1") {
		t.Errorf("after moving the token to 192.0.2.1 (no new JWT): allows 198.51.100.7 %v, 192.0.2.1 %v", allows("198.51.100.7"), allows("192.0.2.1"))
	}
	none := apitoken.Networks{}
	if _, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, apitoken.TokenPatch{AllowedIPs: &none}); err != nil {
		t.Fatal(err)
	}
	if got := e.accepted(jwt).Token.AllowedIPs; got != nil || !allows("203.0.113.1") {
		t.Errorf("after clearing allowed_ips the token has %v", got)
	}
	// The same list again changes nothing, and logs nothing.
	if _, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, apitoken.TokenPatch{AllowedIPs: &none}); err != nil {
		t.Fatal(err)
	}

	logs, _, err := e.svc.TokenLogs(e.ctx, alice, tok.ID, apitoken.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range logs {
		if l.Activity != apitoken.ActivityGenerate {
			got = append(got, string(l.Activity)+": "+l.Reason)
		}
	}
	want := []string{
		"UPDATE: allowed_ips 192.0.2.1/32 -> any",
		"UPDATE: allowed_ips 198.51.100.0/24, 2001:db8::/32 -> 192.0.2.1/32",
		"CREATE: scopes meta report, expires 30d, allowed_ips 198.51.100.0/24, 2001:db8::/32",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("logs, newest first:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
