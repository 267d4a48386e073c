package apitoken_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Tests of CreateTokenFor and GenerateFor: a system admin making and
// generating another user's token (a service account's, from the command
// line), with every rule applied to the owner.

func TestServiceFor_OnlySystemAdminsCreateOrGenerateForOthers(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice := e.holder("alice")
	e.service("svc-export")
	in := apitoken.TokenInput{Name: "n", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry30d}
	if _, err := e.svc.CreateTokenFor(e.ctx, alice, "svc-export", in); !errors.Is(err, apitoken.ErrForbidden) {
		t.Errorf("CreateTokenFor by a holder of the token role = %v, want ErrForbidden", err)
	}
	tok := e.create(alice, "alice's", apitoken.DefaultScopes, apitoken.Expiry30d)
	if _, _, err := e.svc.GenerateFor(e.ctx, alice, tok.ID); !errors.Is(err, apitoken.ErrForbidden) {
		t.Errorf("GenerateFor by a holder of the token role = %v, want ErrForbidden", err)
	}
	if got, _ := e.store.GetToken(e.ctx, tok.ID); got.GeneratedAt != nil {
		t.Error("a refused GenerateFor generated the token")
	}
	list, _, _ := e.svc.ListAllTokens(e.ctx, e.admin, apitoken.TokenFilter{Owner: "svc-export"})
	if len(list) != 0 {
		t.Errorf("a refused CreateTokenFor left %d tokens", len(list))
	}
}

func TestServiceFor_TheOwnerMustExistAndHoldTheEffectiveTokenRole(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(e *env, id string)
		kind  error // nil for success
		msg   string
	}{
		{"a holder of the token role may have one", func(e *env, id string) { e.service(id) }, nil, ""},
		{"an unknown user is not found", func(e *env, id string) {}, apitoken.ErrNotFound, `no user "svc"`},
		{"a user without the role is refused", func(e *env, id string) { e.putUser(id, apitoken.UserPatch{Kind: ptr(apitoken.KindService)}) }, apitoken.ErrConflict, "does not have the api_tokens role"},
		{"a system admin by role without the token role is refused", func(e *env, id string) {
			e.putUser(id, apitoken.UserPatch{Kind: ptr(apitoken.KindService)})
			if _, err := e.svc.GrantRole(e.ctx, e.admin, id, apitoken.RoleAdmin); err != nil {
				t.Fatal(err)
			}
		}, apitoken.ErrConflict, "does not have the api_tokens role"},
		{"a holder made view-only is refused", func(e *env, id string) {
			e.service(id)
			e.putUser(id, apitoken.UserPatch{ViewOnly: ptr(true)})
		}, apitoken.ErrConflict, "view-only"},
		{"a disabled holder is refused", func(e *env, id string) {
			e.service(id)
			e.putUser(id, apitoken.UserPatch{Disabled: ptr(true)})
		}, apitoken.ErrConflict, "disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, apitoken.AuthConfig{})
			tc.setup(e, "svc")
			tok, err := e.svc.CreateTokenFor(e.ctx, e.admin, "svc", apitoken.TokenInput{Name: "export", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry30d})
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("CreateTokenFor: %v", err)
				}
				if tok.Owner != "svc" {
					t.Errorf("owner %q, want svc", tok.Owner)
				}
				return
			}
			wantKind(t, err, tc.kind)
			if msg := apitoken.Message(err); !strings.Contains(msg, tc.msg) || !strings.Contains(msg, `"svc"`) {
				t.Errorf("message %q, want it to name the user and contain %q", msg, tc.msg)
			}
			list, _, _ := e.svc.ListAllTokens(e.ctx, e.admin, apitoken.TokenFilter{})
			if len(list) != 0 {
				t.Errorf("a refused create left %d tokens", len(list))
			}
		})
	}
}

func TestServiceFor_CreateAppliesEveryRuleToTheOwner(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	e.reconfigure(func(c *apitoken.ServiceConfig) { c.MaxLifetime = apitoken.Expiry90d })
	e.service("svc")
	e.service("other")
	for _, tc := range []struct {
		in   apitoken.TokenInput
		kind error
		msg  string
	}{
		{apitoken.TokenInput{Name: " ", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry1d}, apitoken.ErrInvalid, "name"},
		{apitoken.TokenInput{Name: "n", Scopes: 0, Expires: apitoken.Expiry1d}, apitoken.ErrInvalid, "scopes"},
		{apitoken.TokenInput{Name: "n", Scopes: apitoken.DefaultScopes}, apitoken.ErrInvalid, "expires is required"},
		{apitoken.TokenInput{Name: "n", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry1y}, apitoken.ErrInvalid, "the longest allowed is 90d"},
	} {
		_, err := e.svc.CreateTokenFor(e.ctx, e.admin, "svc", tc.in)
		wantKind(t, err, tc.kind)
		if msg := apitoken.Message(err); !strings.Contains(msg, tc.msg) {
			t.Errorf("CreateTokenFor(%+v): message %q, want it to contain %q", tc.in, msg, tc.msg)
		}
	}

	tok, err := e.svc.CreateTokenFor(e.ctx, e.admin, "svc", apitoken.TokenInput{Name: "  Nightly Export ", Scopes: mustScopes(t, "report"), Expires: apitoken.Expiry90d})
	if err != nil {
		t.Fatalf("CreateTokenFor: %v", err)
	}
	if tok.Name != "Nightly Export" || tok.Owner != "svc" || tok.Scopes != mustScopes(t, "report") || tok.Expires != apitoken.Expiry90d {
		t.Errorf("created %+v", tok)
	}
	// Names are unique per owner, case-insensitively; the message names the owner.
	_, err = e.svc.CreateTokenFor(e.ctx, e.admin, "svc", apitoken.TokenInput{Name: "nightly EXPORT", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry1d})
	wantKind(t, err, apitoken.ErrConflict)
	if msg := apitoken.Message(err); !strings.Contains(msg, `user "svc" already has a token named "nightly EXPORT"`) {
		t.Errorf("duplicate message %q", msg)
	}
	// Another owner may use the name.
	if _, err := e.svc.CreateTokenFor(e.ctx, e.admin, "other", apitoken.TokenInput{Name: "Nightly Export", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry1d}); err != nil {
		t.Errorf("the same name for another owner: %v", err)
	}

	// The owner sees it as their own; the CREATE log names the admin.
	own, _, err := e.svc.ListTokens(e.ctx, e.caller("svc"), apitoken.TokenFilter{})
	if err != nil || len(own) != 1 || own[0].ID != tok.ID {
		t.Fatalf("the owner's list = %v, %v; want the created token", own, err)
	}
	logs, _, _ := e.store.ListLogs(e.ctx, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityCreate})
	if len(logs) != 1 || logs[0].ActivityBy != rootAdmin || !strings.Contains(logs[0].Reason, "created by system admin root") {
		t.Errorf("CREATE logs %+v, want one by %s saying so", logs, rootAdmin)
	}
}

func TestServiceFor_GenerateIssuesAJWTThatAuthenticatesAsTheOwner(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	e.service("svc")
	tok, err := e.svc.CreateTokenFor(e.ctx, e.admin, "svc", apitoken.TokenInput{Name: "export", Scopes: mustScopes(t, "meta"), Expires: apitoken.Expiry7d})
	if err != nil {
		t.Fatal(err)
	}
	first, gen, err := e.svc.GenerateFor(e.ctx, e.admin, tok.ID)
	if err != nil {
		t.Fatalf("GenerateFor: %v", err)
	}
	if gen.GeneratedAt == nil || gen.ExpiresAt() == nil || !gen.ExpiresAt().Equal(gen.GeneratedAt.Add(7*day)) {
		t.Errorf("generated token %+v, want generated_at and expires_at 7 days later", gen)
	}
	p := e.accepted(first)
	if p.Token.Owner != "svc" || p.Token.ID != tok.ID || p.Scopes != mustScopes(t, "meta") {
		t.Errorf("principal %+v, want svc's token with scope meta", p)
	}
	if _, claims := segments(t, first); claims["sub"] != "svc" {
		t.Errorf("sub claim %v, want svc", claims["sub"])
	}

	// Generating again supersedes the first JWT, as for the owner.
	e.clock.Advance(2e9)
	second, _, err := e.svc.GenerateFor(e.ctx, e.admin, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.refused(first, apitoken.ReasonSuperseded)
	e.accepted(second)

	logs, _, _ := e.store.ListLogs(e.ctx, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityGenerate})
	if len(logs) != 2 || logs[0].ActivityBy != rootAdmin || !strings.Contains(logs[0].Reason, "generated by system admin root") {
		t.Errorf("GENERATE logs %+v, want two by %s saying so", logs, rootAdmin)
	}
}

func TestServiceFor_GenerateRefusesMissingRevokedAndRoleLessTokens(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	svc := e.service("svc")
	tok := e.create(svc, "export", apitoken.DefaultScopes, apitoken.Expiry30d)

	_, _, err := e.svc.GenerateFor(e.ctx, e.admin, "tok_missing")
	wantKind(t, err, apitoken.ErrNotFound)

	if _, err := e.svc.RemoveRole(e.ctx, e.admin, "svc", apitoken.RoleAPITokens); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.GenerateFor(e.ctx, e.admin, tok.ID)
	wantKind(t, err, apitoken.ErrConflict)
	if msg := apitoken.Message(err); !strings.Contains(msg, `user "svc" does not have the api_tokens role`) {
		t.Errorf("message %q", msg)
	}
	if got, _ := e.store.GetToken(e.ctx, tok.ID); got.GeneratedAt != nil {
		t.Error("a refused GenerateFor generated the token")
	}

	e.service("svc")
	if _, err := e.svc.RevokeFor(e.ctx, e.admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.GenerateFor(e.ctx, e.admin, tok.ID)
	wantKind(t, err, apitoken.ErrConflict)
	if msg := apitoken.Message(err); !strings.Contains(msg, "revoked") {
		t.Errorf("message %q, want it to say the token is revoked", msg)
	}
}

func TestServiceFor_TheExpiryPolicyAppliesAtGenerate(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	e.service("svc")
	tok, err := e.svc.CreateTokenFor(e.ctx, e.admin, "svc", apitoken.TokenInput{Name: "export", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry1y})
	if err != nil {
		t.Fatal(err)
	}
	e.reconfigure(func(c *apitoken.ServiceConfig) { c.MaxLifetime = apitoken.Expiry30d }) // tightened by a reload
	_, _, err = e.svc.GenerateFor(e.ctx, e.admin, tok.ID)
	wantKind(t, err, apitoken.ErrInvalid)
	if msg := apitoken.Message(err); !strings.Contains(msg, "the longest allowed is 30d") {
		t.Errorf("message %q", msg)
	}
}

// A JWT that leaked (found in a URL) revokes its token whoever owns it:
// REVOKE by where it was found, and the owner is notified.
func TestServiceFor_RevokeLeakedRevokesAnyOwnersTokenAndNotifies(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	e.reconfigure(func(c *apitoken.ServiceConfig) { c.Notify = []string{apitoken.DestinationEmail} })
	_, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(jwt)
	revoked, err := e.svc.RevokeLeaked(e.ctx, tok.ID, apitoken.RevokedExposedInURL, "203.0.113.9")
	if err != nil {
		t.Fatal(err)
	}
	if revoked.RevokedAt == nil || revoked.RevokedBy != apitoken.RevokedExposedInURL {
		t.Errorf("revoked_at %v, revoked by %q", revoked.RevokedAt, revoked.RevokedBy)
	}
	e.refused(jwt, apitoken.ReasonRevoked)
	logs, _, err := e.store.ListLogs(e.ctx, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityRevoke, Page: apitoken.Page{Limit: 10}})
	if err != nil || len(logs) != 1 || logs[0].ActivityBy != apitoken.RevokedExposedInURL || logs[0].Reason != "" ||
		logs[0].ClientIP != "203.0.113.9" {
		t.Fatalf("REVOKE logs %+v (%v), want one by %q from 203.0.113.9", logs, err, apitoken.RevokedExposedInURL)
	}
	notes, _, err := e.store.ListNotifications(e.ctx, apitoken.NotificationFilter{TokenID: tok.ID, Page: apitoken.Page{Limit: 10}})
	var revokedNote bool
	for _, n := range notes {
		revokedNote = revokedNote || n.Event == apitoken.EventRevoked && n.Actor == apitoken.RevokedExposedInURL
	}
	if err != nil || !revokedNote {
		t.Errorf("notifications %+v (%v), want the owner told of the revocation by %q", notes, err, apitoken.RevokedExposedInURL)
	}
	if _, err := e.svc.RevokeLeaked(e.ctx, tok.ID, apitoken.RevokedExposedInURL, ""); !errors.Is(err, apitoken.ErrConflict) {
		t.Errorf("revoking again = %v, want ErrConflict", err)
	}
	if _, err := e.svc.RevokeLeaked(e.ctx, "tok_missing", apitoken.RevokedExposedInURL, ""); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("revoking a missing token = %v, want ErrNotFound", err)
	}
}
