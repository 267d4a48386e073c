-- The pruning of old batch ids (DELETE ... WHERE created_at < ..., every
-- 5 minutes, inside a flush's transaction) reads them by age: by this index
-- it reads only the rows it deletes, not the 48 hours of ids the table holds.

-- +goose Up
CREATE INDEX audit_batches_by_created ON audit_batches (created_at);

-- +goose Down
DROP INDEX audit_batches_by_created;
