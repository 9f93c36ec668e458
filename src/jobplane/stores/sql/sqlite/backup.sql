-- What `jobplane backup` reads from a copy it has made (see stores/backup.py).

-- name: backup_summary
-- The copy's schema version and how many jobs it holds; fails on a file that
-- is not a jobplane database (no such table).
SELECT
    (SELECT COALESCE(MAX(version), 0) FROM schema_migrations),
    (SELECT COUNT(*) FROM jobs)

-- name: quick_check
PRAGMA quick_check

-- name: single_file
-- A rollback journal instead of WAL: the copy is one self-contained file.
PRAGMA journal_mode = DELETE
