-- The notification outbox: what is to be told to token owners (email) and
-- webhooks, written in the transaction of the change it tells of, and kept
-- until it is delivered or given up. Times are INTEGER unix microseconds, UTC.

-- +goose Up
CREATE TABLE notifications (
    id              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    -- apitoken.Notification.Key: names the event; unique with destination.
    event_key       TEXT    NOT NULL,
    -- "email", or "webhook:<apitoken notify webhook destination>".
    destination     TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    reminder        TEXT    NOT NULL DEFAULT '',
    token_id        TEXT    NOT NULL,
    token_name      TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    -- apitoken.Scopes bit set.
    scopes          INTEGER NOT NULL,
    expires_at      INTEGER,
    actor           TEXT    NOT NULL DEFAULT '',
    event_at        INTEGER NOT NULL,
    -- pending, sent, failed, skipped.
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    next_attempt_at INTEGER NOT NULL,
    -- The claim that holds the row until lease_until ('' when none).
    lease           TEXT    NOT NULL DEFAULT '',
    lease_until     INTEGER,
    -- When the row left pending.
    done_at         INTEGER
) STRICT;

-- An event is enqueued once per destination, however often it is offered.
CREATE UNIQUE INDEX notifications_key ON notifications (event_key, destination);
-- ClaimNotifications: the pending rows, earliest due first.
CREATE INDEX notifications_due ON notifications (next_attempt_at, id) WHERE state = 'pending';
-- ListNotifications of one token, and of one state: newest first.
CREATE INDEX notifications_by_token ON notifications (token_id, id DESC);
CREATE INDEX notifications_by_state ON notifications (state, id DESC);
-- PruneNotifications.
CREATE INDEX notifications_done ON notifications (done_at) WHERE done_at IS NOT NULL;

-- ListExpiringTokens: the reminder scan walks the live tokens by expiry.
CREATE INDEX tokens_by_expires ON tokens (expires_at, id) WHERE revoked_at IS NULL AND expires_at IS NOT NULL;

-- +goose Down
DROP INDEX tokens_by_expires;
DROP TABLE notifications;
