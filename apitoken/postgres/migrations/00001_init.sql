-- Schema of the PostgreSQL token store, created in the first schema of the
-- connection's search_path. Times are timestamptz (microseconds, UTC); NULL
-- where the domain has no value (*time.Time nil). Ids compare byte-wise
-- (COLLATE "C"), as in the SQLite store, so that list order and cursors do
-- not depend on the database's locale.

-- +goose Up
CREATE TABLE users (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    email      text        NOT NULL DEFAULT '',
    view_only  boolean     NOT NULL DEFAULT false,
    disabled   boolean     NOT NULL DEFAULT false,
    -- Sorted, without duplicates.
    roles      text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL
);

-- ListUsers: newest first, keyset-paginated.
CREATE INDEX users_by_created ON users (created_at DESC, id DESC);

CREATE TABLE tokens (
    id            text COLLATE "C" NOT NULL PRIMARY KEY,
    owner         text COLLATE "C" NOT NULL REFERENCES users (id),
    name          text        NOT NULL,
    -- apitoken.NameKey(name): the form names are compared in.
    name_key      text        NOT NULL,
    -- apitoken.Scopes bit set.
    scopes        integer     NOT NULL,
    expires       text        NOT NULL,
    created_at    timestamptz NOT NULL,
    generated_at  timestamptz,
    generated_exp timestamptz,
    -- SHA-256 of the live JWT's jti. The JWT itself is never stored.
    jti_hash      bytea,
    -- Token.ExpiresAt(): the effective end of the live JWT, kept so that
    -- status filters run in SQL.
    expires_at    timestamptz,
    last_used_at  timestamptz,
    last_used_ip  text        NOT NULL DEFAULT '',
    revoked_at    timestamptz,
    revoked_by    text        NOT NULL DEFAULT ''
);

-- A name is unique per owner among tokens that are not revoked.
CREATE UNIQUE INDEX tokens_live_name ON tokens (owner, name_key) WHERE revoked_at IS NULL;
-- ListTokens, of one owner and of everyone: newest first, keyset-paginated.
CREATE INDEX tokens_by_owner_created ON tokens (owner, created_at DESC, id DESC);
CREATE INDEX tokens_by_created ON tokens (created_at DESC, id DESC);

CREATE TABLE logs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL for user and role changes.
    token_id     text COLLATE "C" REFERENCES tokens (id),
    -- The token's name when the row was written, from the tokens table.
    token_name   text        NOT NULL DEFAULT '',
    -- The user a USER_UPDATE or ROLE_* row is about.
    subject      text        NOT NULL DEFAULT '',
    activity     text        NOT NULL,
    activity_on  timestamptz NOT NULL,
    activity_by  text        NOT NULL DEFAULT '',
    result       text        NOT NULL DEFAULT '',
    reason       text        NOT NULL DEFAULT '',
    client_ip    text        NOT NULL DEFAULT '',
    user_agent   text        NOT NULL DEFAULT '',
    count        bigint      NOT NULL DEFAULT 1,
    last_on      timestamptz NOT NULL,
    -- Start of the audit window of an AUTHENTICATE row; NULL for the others.
    window_start timestamptz
);

-- ListLogs of one token, and of one activity: newest first.
CREATE INDEX logs_by_token ON logs (token_id, id DESC);
CREATE INDEX logs_by_activity ON logs (activity, id DESC);
-- The coalescing key of AUTHENTICATE rows: RecordAuth upserts on it, and
-- counts a token's rows in a window with its prefix.
CREATE UNIQUE INDEX logs_auth_key ON logs (token_id, window_start, activity_by, result, reason, client_ip, user_agent)
    WHERE activity = 'AUTHENTICATE';

-- One row per RecordAuth batch, written in the batch's transaction, so that
-- a batch whose COMMIT was sent but not acknowledged (a connection lost at
-- that moment) can be found committed or not, and is never counted twice.
-- Rows older than apitoken.AuditBatchRetention are deleted.
CREATE TABLE audit_batches (
    id         uuid        NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE audit_batches;
DROP TABLE logs;
DROP TABLE tokens;
DROP TABLE users;
