-- The change sequence: one row per committed UpdateToken or UpdateUser, so
-- that every process on this file (an old and a new Caddy during an
-- upgrade) drops what it has cached of that token or user within a second.
-- AUTOINCREMENT: a number is never reused, even once older rows are pruned.

-- +goose Up
CREATE TABLE changes (
    seq      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    token_id TEXT    NOT NULL DEFAULT '',
    user_id  TEXT    NOT NULL DEFAULT '',
    -- Unix microseconds, UTC; rows older than apitoken.ChangeRetention are pruned.
    at       INTEGER NOT NULL
);
CREATE INDEX changes_by_at ON changes (at);

-- +goose Down
DROP TABLE changes;
