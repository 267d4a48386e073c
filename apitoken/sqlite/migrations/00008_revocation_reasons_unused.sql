-- Why a token was revoked, told in its revocation's notifications, and the
-- idle period of a token that revoke_unused_after is about to revoke or has
-- revoked; and the index by which the unused-token sweep finds the live
-- tokens idle the longest without reading the table.

-- +goose Up
-- apitoken.RevokeReason of a token.revoked notification ('' for others).
ALTER TABLE notifications ADD COLUMN reason TEXT NOT NULL DEFAULT '';
-- token.unused, and token.revoked by unused: when the token was last used
-- or generated, and when it is (was) to be revoked.
ALTER TABLE notifications ADD COLUMN unused_since INTEGER;
ALTER TABLE notifications ADD COLUMN revoke_at INTEGER;

-- ListUnusedTokens: the generated, unrevoked tokens by the later of their
-- generation and last use; expires_at is in the index so that expired ones
-- are passed over without reading their rows.
CREATE INDEX tokens_unused ON tokens (max(generated_at, coalesce(last_used_at, 0)), id, expires_at)
    WHERE revoked_at IS NULL AND generated_at IS NOT NULL;

-- +goose Down
DROP INDEX tokens_unused;
ALTER TABLE notifications DROP COLUMN revoke_at;
ALTER TABLE notifications DROP COLUMN unused_since;
ALTER TABLE notifications DROP COLUMN reason;
