-- Users as the identity layer knows them (sign-in, SCIM): a display name, a
-- kind (person or service account), where the record came from, the
-- identity-provider groups last seen and the roles they give (kept apart
-- from roles, the roles granted by hand), and when the user was last seen at
-- the management routes.

-- +goose Up
ALTER TABLE users
    ADD COLUMN name         text        NOT NULL DEFAULT '',
    ADD COLUMN kind         text        NOT NULL DEFAULT 'person',
    ADD COLUMN source       text        NOT NULL DEFAULT 'manual',
    -- Sorted, without duplicates.
    ADD COLUMN group_roles  text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN groups       text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN last_seen_at timestamptz;

-- +goose Down
ALTER TABLE users
    DROP COLUMN last_seen_at,
    DROP COLUMN groups,
    DROP COLUMN group_roles,
    DROP COLUMN source,
    DROP COLUMN kind,
    DROP COLUMN name;
