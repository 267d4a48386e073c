-- One row per RecordAuth batch, written in the batch's transaction: a batch
-- written again under its id (the Auditor retries a failed batch unchanged)
-- is not applied twice. SQLite cannot lose a COMMIT answer as a network can,
-- but the store keeps the contract of every apitoken.Store. Rows older than
-- apitoken.AuditBatchRetention are deleted.

-- +goose Up
CREATE TABLE audit_batches (
    id         TEXT    NOT NULL PRIMARY KEY,
    created_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE audit_batches;
