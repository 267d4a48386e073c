package caddymodule

import (
	"context"
	"errors"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// leakTimeout bounds the check and revocation of one leaked JWT. They run
// without the request's cancellation: a client that hangs up does not
// stop a revocation.
const leakTimeout = 10 * time.Second

// revokeLeaked revokes the token of raw, a JWT found where others may read
// it (a URL, a report to api_token_revoke), logged REVOKE by `by` from
// clientIP, with the owner notified. Only a JWT that can still open
// something acts: one that authenticates, or fails for a reason that may
// pass (the owner's role, view-only, disabled). When it is the token's
// previous JWT, still in a regeneration's overlap, only that overlap ends
// (ReportLeaked). A JWT dead for good (bad signature, another deployment's,
// expired, superseded, revoked, of an unknown token) revokes nothing: the
// token's current JWT, if any, is not the one that leaked, and an old
// leaked JWT must not let its holder kill the new one. It answers the
// token revoked or whose overlap ended ("" when none), or an error, with
// the token when it is known, when the store could not say or do it: then
// the JWT may still be live.
//
// Verified JWTs and token state come from the caches, so a dead JWT sent
// again and again costs no store write.
func (a *App) revokeLeaked(ctx context.Context, raw, by, clientIP string) (tokenID string, err error) {
	if raw == "" || len(raw) > apitoken.MaxJWTLen {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leakTimeout)
	defer cancel()
	p, fail := a.auth.Authenticate(ctx, raw)
	switch {
	case fail == nil:
		tokenID = p.Token.ID
	case fail.Unavailable:
		// Whether the JWT is its token's current one is unknown.
		return fail.TokenID, fail.Err
	case deadForGood(fail.Reason):
		return "", nil
	default:
		tokenID = fail.TokenID
	}
	if tokenID == "" {
		return "", nil
	}
	// Authenticate verified raw: this check of its signature again only
	// reads the jti. The store decides, by the jti, between revoking the
	// token and ending the overlap of its previous JWT.
	v, err := a.signer.Verify(raw)
	if err != nil {
		return "", nil
	}
	_, err = a.service.ReportLeaked(ctx, tokenID, v.JTIHash[:], by, clientIP)
	switch {
	case err == nil:
		return tokenID, nil
	case errors.Is(err, apitoken.ErrConflict), errors.Is(err, apitoken.ErrNotFound):
		return "", nil // revoked meanwhile, or deleted
	}
	return tokenID, err
}

// deadForGood says whether a JWT refused for reason can never open
// anything again, whatever is later done to its token or owner.
func deadForGood(reason string) bool {
	switch reason {
	case apitoken.ReasonMalformed, apitoken.ReasonExpired, apitoken.ReasonRevoked, apitoken.ReasonSuperseded,
		apitoken.ReasonUnknownToken, apitoken.ReasonOwnerMismatch, apitoken.ReasonNotGenerated:
		return true
	}
	return false
}
