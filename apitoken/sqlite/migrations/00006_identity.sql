-- Users as the identity layer knows them (sign-in, SCIM): a display name, a
-- kind (person or service account), where the record came from, the
-- identity-provider groups last seen and the roles they give (kept apart
-- from user_roles, the roles granted by hand), and when the user was last
-- seen at the management routes.

-- +goose Up
ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person';
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'manual';
-- apitoken.Role names, space-separated, sorted.
ALTER TABLE users ADD COLUMN group_roles TEXT NOT NULL DEFAULT '';
-- Group names, one per line, sorted.
ALTER TABLE users ADD COLUMN groups TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_seen_at INTEGER;

-- +goose Down
ALTER TABLE users DROP COLUMN last_seen_at;
ALTER TABLE users DROP COLUMN groups;
ALTER TABLE users DROP COLUMN group_roles;
ALTER TABLE users DROP COLUMN source;
ALTER TABLE users DROP COLUMN kind;
ALTER TABLE users DROP COLUMN name;
