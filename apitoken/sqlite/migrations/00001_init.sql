-- Schema of the SQLite token store. Times are INTEGER unix microseconds, UTC;
-- NULL where the domain has no value (*time.Time nil).

-- +goose Up
CREATE TABLE users (
    id         TEXT    NOT NULL PRIMARY KEY,
    email      TEXT    NOT NULL DEFAULT '',
    view_only  INTEGER NOT NULL DEFAULT 0,
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) STRICT;

-- ListUsers: newest first, keyset-paginated.
CREATE INDEX users_by_created ON users (created_at DESC, id DESC);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
) STRICT, WITHOUT ROWID;

CREATE TABLE tokens (
    id            TEXT    NOT NULL PRIMARY KEY,
    owner         TEXT    NOT NULL REFERENCES users (id),
    name          TEXT    NOT NULL,
    -- apitoken.NameKey(name): the form names are compared in.
    name_key      TEXT    NOT NULL,
    -- apitoken.Scopes bit set.
    scopes        INTEGER NOT NULL,
    expires       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    generated_at  INTEGER,
    generated_exp INTEGER,
    -- SHA-256 of the live JWT's jti. The JWT itself is never stored.
    jti_hash      BLOB,
    -- Token.ExpiresAt(): the effective end of the live JWT, kept so that
    -- status filters run in SQL.
    expires_at    INTEGER,
    last_used_at  INTEGER,
    last_used_ip  TEXT    NOT NULL DEFAULT '',
    revoked_at    INTEGER,
    revoked_by    TEXT    NOT NULL DEFAULT ''
) STRICT;

-- A name is unique per owner among tokens that are not revoked.
CREATE UNIQUE INDEX tokens_live_name ON tokens (owner, name_key) WHERE revoked_at IS NULL;
-- ListTokens, of one owner and of everyone: newest first, keyset-paginated.
CREATE INDEX tokens_by_owner_created ON tokens (owner, created_at DESC, id DESC);
CREATE INDEX tokens_by_created ON tokens (created_at DESC, id DESC);

CREATE TABLE logs (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    -- NULL for user and role changes.
    token_id     TEXT    REFERENCES tokens (id),
    -- The token's name when the row was written, from the tokens table.
    token_name   TEXT    NOT NULL DEFAULT '',
    -- The user a USER_UPDATE or ROLE_* row is about.
    subject      TEXT    NOT NULL DEFAULT '',
    activity     TEXT    NOT NULL,
    activity_on  INTEGER NOT NULL,
    activity_by  TEXT    NOT NULL DEFAULT '',
    result       TEXT    NOT NULL DEFAULT '',
    reason       TEXT    NOT NULL DEFAULT '',
    client_ip    TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT '',
    count        INTEGER NOT NULL DEFAULT 1,
    last_on      INTEGER NOT NULL,
    -- Start of the audit window of an AUTHENTICATE row; NULL for the others.
    window_start INTEGER
) STRICT;

-- ListLogs of one token, and of one activity: newest first.
CREATE INDEX logs_by_token ON logs (token_id, id DESC);
CREATE INDEX logs_by_activity ON logs (activity, id DESC);
-- The coalescing key of AUTHENTICATE rows: RecordAuth upserts on it, and
-- counts a token's rows in a window with its prefix.
CREATE UNIQUE INDEX logs_auth_key ON logs (token_id, window_start, activity_by, result, reason, client_ip, user_agent)
    WHERE activity = 'AUTHENTICATE';

-- +goose Down
DROP TABLE logs;
DROP TABLE tokens;
DROP TABLE user_roles;
DROP TABLE users;
