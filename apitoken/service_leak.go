package apitoken

import (
	"bytes"
	"context"
	"errors"
)

// errNotCurrent refuses the revocation of a token whose current JWT is not
// the one reported.
var errNotCurrent = Errorf(ErrConflict, "the reported JWT is not the token's current one")

// ReportLeaked acts on a leaked JWT of token id, the one whose jti hashes
// to jtiHash, found by `by` (as for RevokeLeaked) from clientIP. The
// token's current JWT revokes the token (RevokeLeaked). Its previous JWT,
// still working during a regeneration's overlap, only ends the overlap,
// logged UPDATE by `by`: the new JWT is not the one that leaked, and
// whoever holds the old one must not kill it. Any other JWT opens nothing
// and is ErrConflict, as is an already revoked token. The JWT is compared
// with the token as it is in the store, so that a generation made
// meanwhile on another instance is seen. It answers whether the token was
// revoked (false: its overlap was ended).
func (s *Service) ReportLeaked(ctx context.Context, id string, jtiHash []byte, by, clientIP string) (revoked bool, err error) {
	reason, ok := leakReasons[by]
	if !ok {
		return false, Errorf(ErrInvalid, "unknown place of a leak %q", by)
	}
	_, err = s.revoke(ctx, id, revocation{by: by, may: anyToken, reason: reason, clientIP: clientIP,
		check: func(t *Token) error {
			if !bytes.Equal(t.JTIHash, jtiHash) {
				return errNotCurrent
			}
			return nil
		}})
	if !errors.Is(err, errNotCurrent) {
		return err == nil, err
	}
	now := s.Now()
	_, err = s.updateToken(ctx, id, anyToken, func(t *Token) (Log, error) {
		if !bytes.Equal(t.PrevJTIHash, jtiHash) || t.PreviousValidUntil(now) == nil {
			return Log{}, Errorf(ErrConflict, "the reported JWT no longer works")
		}
		t.PrevJTIHash, t.PrevUntil = nil, nil
		return Log{TokenID: t.ID, TokenName: t.Name, Activity: ActivityUpdate, ActivityOn: now, ActivityBy: by,
			ClientIP: clientIP, Reason: "previous JWT " + by + ": its overlap ended, the current JWT still works"}, nil
	})
	return false, err
}
