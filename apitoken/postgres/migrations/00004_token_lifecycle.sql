-- Scopes kept by name, since the operator declares them (a bit set means
-- nothing outside one process), and the columns of the token lifecycle:
-- the scopes of the live JWT, the previous JWT while a regeneration's overlap
-- runs, and the networks a token may be used from.

-- +goose Up
-- apitoken.Scopes.String(): names, space-separated, in alphabetical order.
ALTER TABLE tokens ALTER COLUMN scopes TYPE text
    USING CASE scopes WHEN 1 THEN 'meta' WHEN 2 THEN 'report' ELSE 'meta report' END;
-- The scope claim of the live JWT ('' before generation). Tokens generated
-- before this column was added are taken to carry the scopes of the record.
ALTER TABLE tokens ADD COLUMN generated_scopes text NOT NULL DEFAULT '';
UPDATE tokens SET generated_scopes = scopes WHERE generated_at IS NOT NULL;
-- SHA-256 of the previous JWT's jti, which keeps working until prev_until
-- (a regeneration's overlap); NULL when none.
ALTER TABLE tokens ADD COLUMN prev_jti_hash bytea;
ALTER TABLE tokens ADD COLUMN prev_until timestamptz;
-- The networks the token may be used from (CIDRs, space-separated); '' for
-- any.
ALTER TABLE tokens ADD COLUMN allowed_ips text NOT NULL DEFAULT '';
ALTER TABLE notifications ALTER COLUMN scopes TYPE text
    USING CASE scopes WHEN 1 THEN 'meta' WHEN 2 THEN 'report' ELSE 'meta report' END;

-- +goose Down
ALTER TABLE notifications ALTER COLUMN scopes TYPE integer
    USING CASE scopes WHEN 'meta' THEN 1 WHEN 'report' THEN 2 ELSE 3 END;
ALTER TABLE tokens DROP COLUMN allowed_ips;
ALTER TABLE tokens DROP COLUMN prev_until;
ALTER TABLE tokens DROP COLUMN prev_jti_hash;
ALTER TABLE tokens DROP COLUMN generated_scopes;
ALTER TABLE tokens ALTER COLUMN scopes TYPE integer
    USING CASE scopes WHEN 'meta' THEN 1 WHEN 'report' THEN 2 ELSE 3 END;
