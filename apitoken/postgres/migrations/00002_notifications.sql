-- The notification outbox: what is to be told to token owners (email) and
-- webhooks, written in the transaction of the change it tells of, and kept
-- until it is delivered or given up. Instances claim rows with
-- SELECT ... FOR UPDATE SKIP LOCKED and hold them by a lease.

-- +goose Up
CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- apitoken.Notification.Key: names the event; unique with destination.
    event_key       text COLLATE "C" NOT NULL,
    -- "email", or "webhook:<apitoken notify webhook destination>".
    destination     text COLLATE "C" NOT NULL,
    event           text        NOT NULL,
    reminder        text        NOT NULL DEFAULT '',
    token_id        text COLLATE "C" NOT NULL,
    token_name      text        NOT NULL,
    owner           text COLLATE "C" NOT NULL,
    -- apitoken.Scopes bit set.
    scopes          integer     NOT NULL,
    expires_at      timestamptz,
    actor           text        NOT NULL DEFAULT '',
    event_at        timestamptz NOT NULL,
    -- pending, sent, failed, skipped.
    state           text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text        NOT NULL DEFAULT '',
    next_attempt_at timestamptz NOT NULL,
    -- The claim that holds the row until lease_until ('' when none).
    lease           text        NOT NULL DEFAULT '',
    lease_until     timestamptz,
    -- When the row left pending.
    done_at         timestamptz
);

-- An event is enqueued once per destination, however often and by however
-- many instances it is offered.
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
