-- Scopes kept by name, since the operator declares them (a bit set means
-- nothing outside one process), and the columns of the token lifecycle:
-- the scopes of the live JWT, the previous JWT while a regeneration's overlap
-- runs, and the networks a token may be used from.

-- +goose Up
ALTER TABLE tokens RENAME COLUMN scopes TO scope_bits;
-- apitoken.Scopes.String(): names, space-separated, in alphabetical order.
ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
UPDATE tokens SET scopes = CASE scope_bits WHEN 1 THEN 'meta' WHEN 2 THEN 'report' ELSE 'meta report' END;
ALTER TABLE tokens DROP COLUMN scope_bits;
-- The scope claim of the live JWT ('' before generation). Tokens generated
-- before this column was added are taken to carry the scopes of the record.
ALTER TABLE tokens ADD COLUMN generated_scopes TEXT NOT NULL DEFAULT '';
UPDATE tokens SET generated_scopes = scopes WHERE generated_at IS NOT NULL;
-- SHA-256 of the previous JWT's jti, which keeps working until prev_until
-- (a regeneration's overlap); NULL when none.
ALTER TABLE tokens ADD COLUMN prev_jti_hash BLOB;
ALTER TABLE tokens ADD COLUMN prev_until INTEGER;
-- The networks the token may be used from (CIDRs, space-separated); '' for
-- any.
ALTER TABLE tokens ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '';

ALTER TABLE notifications RENAME COLUMN scopes TO scope_bits;
ALTER TABLE notifications ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
UPDATE notifications SET scopes = CASE scope_bits WHEN 1 THEN 'meta' WHEN 2 THEN 'report' ELSE 'meta report' END;
ALTER TABLE notifications DROP COLUMN scope_bits;

-- +goose Down
ALTER TABLE notifications RENAME COLUMN scopes TO scope_names;
ALTER TABLE notifications ADD COLUMN scopes INTEGER NOT NULL DEFAULT 3;
UPDATE notifications SET scopes = CASE scope_names WHEN 'meta' THEN 1 WHEN 'report' THEN 2 ELSE 3 END;
ALTER TABLE notifications DROP COLUMN scope_names;
ALTER TABLE tokens DROP COLUMN allowed_ips;
ALTER TABLE tokens DROP COLUMN prev_until;
ALTER TABLE tokens DROP COLUMN prev_jti_hash;
ALTER TABLE tokens DROP COLUMN generated_scopes;
ALTER TABLE tokens RENAME COLUMN scopes TO scope_names;
ALTER TABLE tokens ADD COLUMN scopes INTEGER NOT NULL DEFAULT 3;
UPDATE tokens SET scopes = CASE scope_names WHEN 'meta' THEN 1 WHEN 'report' THEN 2 ELSE 3 END;
ALTER TABLE tokens DROP COLUMN scope_names;
