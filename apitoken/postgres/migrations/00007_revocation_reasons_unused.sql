-- Why a token was revoked, told in its revocation's notifications, and the
-- idle period of a token that revoke_unused_after is about to revoke or has
-- revoked; and the index by which the unused-token sweep finds the live
-- tokens idle the longest without reading the table.

-- +goose Up
-- apitoken.RevokeReason of a token.revoked notification ('' for others).
ALTER TABLE notifications ADD COLUMN reason text NOT NULL DEFAULT '';
-- token.unused, and token.revoked by unused: when the token was last used
-- or generated, and when it is (was) to be revoked.
ALTER TABLE notifications ADD COLUMN unused_since timestamptz;
ALTER TABLE notifications ADD COLUMN revoke_at timestamptz;

-- ListUnusedTokens: the generated, unrevoked tokens by the later of their
-- generation and last use (GREATEST ignores a NULL last_used_at);
-- expires_at is included so that expired ones are passed over from the
-- index. Indexing last_used_at makes the audit flush's update of it a
-- non-HOT update (one more index entry per token per flush).
CREATE INDEX tokens_unused ON tokens (GREATEST(generated_at, last_used_at), id) INCLUDE (expires_at)
    WHERE revoked_at IS NULL AND generated_at IS NOT NULL;

-- +goose Down
DROP INDEX tokens_unused;
ALTER TABLE notifications DROP COLUMN revoke_at;
ALTER TABLE notifications DROP COLUMN unused_since;
ALTER TABLE notifications DROP COLUMN reason;
