-- The change sequence: one row per committed UpdateToken or UpdateUser, so
-- that every instance of the deployment drops what it has cached of that
-- token or user within a second, and catches up on what it missed while
-- its connection was down. Rows are numbered in commit order (the writer
-- holds an advisory lock from numbering to commit), and the table, unlike
-- a NOTIFY payload, is readable only by roles granted it.

-- +goose Up
CREATE TABLE changes (
    seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id text        NOT NULL DEFAULT '',
    user_id  text        NOT NULL DEFAULT '',
    -- Rows older than apitoken.ChangeRetention are pruned.
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_by_at ON changes (at);

-- +goose Down
DROP TABLE changes;
