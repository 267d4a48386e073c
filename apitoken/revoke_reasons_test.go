package apitoken_test

import (
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// revokedNote is the token.revoked notification of token id: it fails the
// test unless there is exactly one per destination, all alike.
func (e *env) revokedNote(id string) apitoken.Notification {
	e.tb.Helper()
	ns, _, err := e.store.ListNotifications(e.ctx, apitoken.NotificationFilter{TokenID: id, Page: apitoken.Page{Limit: 100}})
	if err != nil {
		e.tb.Fatal(err)
	}
	var out []apitoken.Notification
	for _, n := range ns {
		if n.Event == apitoken.EventRevoked {
			out = append(out, n)
		}
	}
	if len(out) != len(e.svc.Config().Notify) || len(out) == 0 {
		e.tb.Fatalf("%d token.revoked notifications of %s, want one per destination", len(out), id)
	}
	for _, n := range out[1:] {
		if n.Reason != out[0].Reason || n.Actor != out[0].Actor {
			e.tb.Errorf("destinations told apart: %+v and %+v", n, out[0])
		}
	}
	return out[0]
}

// Every way a token is revoked tells its owner who did it and why, in the
// notification written with the revocation.
func TestRevoke_NotificationsSayWhoAndWhy(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	e.reconfigure(func(c *apitoken.ServiceConfig) {
		c.Notify = []string{apitoken.DestinationEmail, "webhook:https://h.example/…#1"}
	})
	root := e.holder(rootAdmin)
	for _, tc := range []struct {
		name   string
		owner  string
		revoke func(id string) error
		actor  string
		reason apitoken.RevokeReason
	}{
		{"the owner", "alice", func(id string) error { _, err := e.svc.Revoke(e.ctx, e.caller("alice"), id); return err }, "alice", apitoken.RevokeByOwner},
		{"a system admin", "bob", func(id string) error { _, err := e.svc.RevokeFor(e.ctx, e.admin, id); return err }, rootAdmin, apitoken.RevokeByAdmin},
		{"an admin, of their own token", rootAdmin, func(id string) error { _, err := e.svc.RevokeFor(e.ctx, root, id); return err }, rootAdmin, apitoken.RevokeByOwner},
		{"a JWT in a URL", "carol", func(id string) error {
			_, err := e.svc.RevokeLeaked(e.ctx, id, apitoken.RevokedExposedInURL, "203.0.113.7")
			return err
		}, apitoken.RevokedExposedInURL, apitoken.RevokeExposedInURL},
		{"the revocation endpoint", "dave", func(id string) error {
			_, err := e.svc.RevokeLeaked(e.ctx, id, apitoken.RevokedByEndpoint, "203.0.113.8")
			return err
		}, apitoken.RevokedByEndpoint, apitoken.RevokeAtEndpoint},
		{"SCIM", "erin", func(string) error { return e.svc.Deprovision(e.ctx, "erin") }, apitoken.ByScim, apitoken.RevokeBySCIM},
	} {
		c := e.holder(tc.owner)
		tok := e.create(c, "token of "+tc.name, apitoken.DefaultScopes, apitoken.Expiry30d)
		e.generate(c, tok.ID)
		if err := tc.revoke(tok.ID); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		n := e.revokedNote(tok.ID)
		if n.Actor != tc.actor || n.Reason != tc.reason || n.UnusedSince != nil || n.RevokeAt != nil {
			t.Errorf("%s: notification by %q for %q (unused since %v, revoke at %v), want by %q for %q",
				tc.name, n.Actor, n.Reason, n.UnusedSince, n.RevokeAt, tc.actor, tc.reason)
		}
	}
}

// RevokeLeaked knows the places a JWT is found: any other is refused and
// revokes nothing, so that a notification never gives a reason it cannot
// explain.
func TestRevokeLeaked_RefusesAnUnknownPlace(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	_, err := e.svc.RevokeLeaked(e.ctx, tok.ID, "a pastebin", "203.0.113.9")
	wantKind(t, err, apitoken.ErrInvalid)
	e.accepted(jwt)
}
