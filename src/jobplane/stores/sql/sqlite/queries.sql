-- Queries of the SQLite store (jobplane.stores.sqlite), loaded once.
-- Parameters are named (:name). Lists of ids or statuses travel as one JSON
-- array read with json_each, so every statement keeps a fixed text.
-- The final statuses ('success', 'error', 'canceled') are jobs.FINAL.

-- name: use_wal
PRAGMA journal_mode = WAL

-- name: writer_autocheckpoint
-- The writer's own checkpoint, at 20,000 WAL pages instead of SQLite's 1,000:
-- the checkpointer thread copies the WAL long before (SQLiteStore, CHECKPOINT_EVERY),
-- so a commit does not pay for it; this is for when that thread falls behind.
PRAGMA wal_autocheckpoint = 20000

-- name: checkpoint_passive
-- Copy what the WAL holds into the database without waiting for readers or writers.
PRAGMA wal_checkpoint(PASSIVE)

-- name: synchronous_normal
PRAGMA synchronous = NORMAL

-- name: synchronous_full
PRAGMA synchronous = FULL

-- name: query_only
PRAGMA query_only = 1

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
)

-- name: schema_version
SELECT COALESCE(MAX(version), 0) FROM schema_migrations

-- name: record_migration
INSERT INTO schema_migrations (version, applied_at) VALUES (:version, :applied_at)

-- name: queue_state
-- The drain flag and the highest id handed out. (The store counts the
-- unarchived jobs in memory: see SQLiteStore._count.)
SELECT
    (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'drained'),
    MAX(
        COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0),
        COALESCE((SELECT MAX(id) FROM jobs), 0)
    )

-- name: job_exists
SELECT 1 FROM jobs WHERE id = :id

-- name: insert_job
-- :owner is NULL, or the daemon that claims the job with its insert (fence 1).
INSERT INTO jobs (id, status, priority, archived, received_at, ended_at, version, doc,
                  deps_left, ready_at, sched_key, owner, fence)
VALUES (:id, :status, :priority, 0, :received_at, :ended_at, 1, :doc,
        :deps_left, :ready_at, :sched_key, :owner, :fence)

-- name: job_status
SELECT status FROM jobs WHERE id = :id

-- name: insert_dependency
INSERT OR IGNORE INTO job_deps (dep_id, job_id) VALUES (:dep_id, :job_id)

-- name: has_dependents
SELECT EXISTS (SELECT 1 FROM job_deps WHERE dep_id = :id)

-- name: count_dependencies
SELECT COUNT(*) FROM job_deps

-- name: counted_columns
SELECT status, priority, archived FROM jobs WHERE id = :id

-- name: release_dependents
-- A job became final: each job waiting for it waits for one job less. One
-- whose count reaches 0 is ready but not yet filed in the schedule (no
-- key): the next claim files it (jobs_unfiled), with the store's clock.
UPDATE jobs SET deps_left = deps_left - 1
WHERE id IN (SELECT job_id FROM job_deps WHERE dep_id = :id)

-- name: forget_dependents
DELETE FROM job_deps WHERE dep_id = :id

-- name: save_job
-- One statement: compare-and-set on the version, the fence (an owned job is
-- saved only by its owner; SQLiteStore.save has checked that the owner's
-- lease is live by the store's clock: this process alone writes the
-- daemons table, and keeps its leases in memory), and the schedule:
-- :unown gives the job up (released, or final); the job's key is set exactly
-- while it is ready, kept while it stays ready unless :restart (released,
-- or a new priority), else :new_key from :now. The store keeps the counts
-- and releases the dependents (see SQLiteStore.save). Changes nothing if a
-- check fails; save_diagnosis says why. :next_version is :version + 1, or
-- + 2 when the save absorbs an uncommitted earlier one (SQLiteStore.save).
UPDATE jobs
SET status = :status, priority = :priority, ended_at = :ended_at, doc = :doc,
    version = :next_version, unreadable = 0,
    owner = CASE WHEN :unown THEN NULL ELSE owner END,
    ready_at = CASE
        WHEN NOT (:pending AND archived = 0 AND deps_left = 0 AND (:unown OR owner IS NULL))
            THEN ready_at
        WHEN :release OR priority != :priority OR sched_key IS NULL THEN :now
        ELSE ready_at END,
    sched_key = CASE
        WHEN NOT (:pending AND archived = 0 AND deps_left = 0 AND (:unown OR owner IS NULL))
            THEN NULL
        WHEN :release OR priority != :priority OR sched_key IS NULL THEN :new_key
        ELSE sched_key END
WHERE id = :id AND version = :version
  AND ((:owner IS NULL AND owner IS NULL) OR (owner = :owner AND fence = :fence))

-- name: save_job_in_place
-- save_job for a job that stays out of the schedule and keeps its owner
-- (SQLiteStore.save knows when): the same checks, without the schedule's
-- columns, so the write leaves the indexes on owner and schedule alone.
UPDATE jobs
SET status = :status, priority = :priority, ended_at = :ended_at, doc = :doc,
    version = :next_version, unreadable = 0
WHERE id = :id AND version = :version
  AND ((:owner IS NULL AND owner IS NULL) OR (owner = :owner AND fence = :fence))

-- name: save_job_unscheduled
-- save_job for a job that leaves the schedule (if it was in it) and keeps
-- its owner: the same checks; ready_at stays.
UPDATE jobs
SET status = :status, priority = :priority, ended_at = :ended_at, doc = :doc,
    version = :next_version, unreadable = 0, sched_key = NULL
WHERE id = :id AND version = :version
  AND ((:owner IS NULL AND owner IS NULL) OR (owner = :owner AND fence = :fence))

-- name: save_job_released
-- save_job for an owned job given up while not pending (final, say): unowned,
-- and out of the schedule as an owned job always is (sched_key NULL: not
-- assigned, so the write leaves the schedule's indexes alone); the same checks.
UPDATE jobs
SET status = :status, priority = :priority, ended_at = :ended_at, doc = :doc,
    version = :next_version, unreadable = 0, owner = NULL
WHERE id = :id AND version = :version
  AND ((:owner IS NULL AND owner IS NULL) OR (owner = :owner AND fence = :fence))

-- name: save_diagnosis
-- Why save_job changed nothing.
SELECT version, owner, fence FROM jobs WHERE id = :id

-- name: register_daemon
INSERT INTO daemons (name, epoch, started_at, lease_until)
SELECT :name, COALESCE(MAX(epoch), 0) + 1, :now, :lease_until FROM daemons WHERE name = :name
RETURNING id, epoch

-- name: end_all_leases
-- On open: this process holds the database's lock, so no other daemon lives.
UPDATE daemons SET ended = 1 WHERE ended = 0

-- name: heartbeat
UPDATE daemons SET lease_until = :lease_until
WHERE id = :daemon AND ended = 0 AND lease_until > :now

-- name: unregister_daemon
UPDATE daemons SET ended = 1 WHERE id = :daemon

-- name: unfiled_jobs
-- Ready jobs not in the schedule yet (see jobs_unfiled in migration 0003).
SELECT id, priority FROM jobs INDEXED BY jobs_unfiled
WHERE sched_key IS NULL AND deps_left = 0 AND owner IS NULL AND archived = 0
    AND status IN ('queued', 'waiting')
LIMIT :batch

-- name: file_job
UPDATE jobs SET ready_at = :now, sched_key = :sched_key WHERE id = :id

-- name: clamp_aged
-- File under CLAMPED (-1e300) the ready jobs whose aging reached HIGHEST by
-- now (key <= :limit_key); each job once in its life, at most :batch a claim.
UPDATE jobs SET sched_key = -1.0e300
WHERE id IN (
    SELECT id FROM jobs INDEXED BY jobs_schedule
    WHERE sched_key > -1.0e300 AND sched_key <= :limit_key
    ORDER BY sched_key
    LIMIT :batch
)

-- name: next_ready
-- The claim: ready jobs in schedule order (stores/schedule.py).
SELECT id, version, archived, doc, unreadable, received_at, ended_at,
       owner, fence, req_serial, req_cancel, req_priority,
       ready_at, status, priority
FROM jobs INDEXED BY jobs_schedule
WHERE sched_key IS NOT NULL
ORDER BY sched_key, id
LIMIT :limit

-- name: take_jobs
-- The claim, for the jobs whose aging changed nothing: one statement for all
-- of them (:ids, a JSON array), looked up by id.
UPDATE jobs NOT INDEXED
SET owner = :owner, fence = fence + 1, version = version + 1, sched_key = NULL
WHERE id IN (SELECT value FROM json_each(:ids))

-- name: take_aged_job
-- The claim, for a job whose aging raised its ops' priority: the new document.
UPDATE jobs
SET owner = :owner, fence = fence + 1, version = version + 1, sched_key = NULL,
    priority = :priority, doc = :doc
WHERE id = :id

-- name: end_expired_leases
UPDATE daemons SET ended = 1 WHERE id != :daemon AND ended = 0 AND lease_until <= :now

-- name: reclaim_jobs
-- Every job of a daemon whose lease ended now belongs to :daemon, freshly fenced.
UPDATE jobs
SET owner = :daemon, fence = fence + 1, version = version + 1
WHERE owner IN (SELECT id FROM daemons WHERE ended = 1 AND id != :daemon)
RETURNING id, version, archived, doc, unreadable, received_at, ended_at,
       owner, fence, req_serial, req_cancel, req_priority

-- name: request_control
-- Records a request for an owned job; the version stays (the owner's next save goes through).
UPDATE jobs
SET req_serial = req_serial + 1,
    req_cancel = MAX(req_cancel, :cancel),
    req_priority = COALESCE(:priority, req_priority)
WHERE id = :id AND owner IS NOT NULL

-- name: job_fence
SELECT owner, fence FROM jobs WHERE id = :id

-- name: clear_requests
UPDATE jobs SET req_cancel = 0, req_priority = NULL WHERE id = :id AND req_serial = :serial

-- name: append_log
-- Inserts nothing (and returns no row) when the job does not exist.
INSERT INTO job_log (job_id, serial, op_index, time, message)
SELECT id,
       (SELECT COALESCE(MAX(serial), 0) + 1 FROM job_log WHERE job_id = :job_id),
       :op_index, :time, :message
FROM jobs WHERE id = :job_id
RETURNING serial

-- name: archive_jobs
UPDATE jobs NOT INDEXED SET archived = 1, version = version + 1
WHERE id IN (SELECT value FROM json_each(:ids))
  AND archived = 0
  AND status IN ('success', 'error', 'canceled')
RETURNING id, status, priority

-- name: archive_finished_before
-- A finished job without an end time counts from the time it was received.
UPDATE jobs INDEXED BY jobs_unarchived SET archived = 1, version = version + 1
WHERE archived = 0
  AND status IN ('success', 'error', 'canceled')
  AND COALESCE(ended_at, received_at) < :ended_before
RETURNING id, status, priority

-- name: set_drained
UPDATE meta SET value = :value WHERE key = 'drained'

-- name: is_drained
SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'drained'

-- name: load_job
-- Every query that reads jobs returns these columns, in this order.
SELECT id, version, archived, doc, unreadable, received_at, ended_at,
       owner, fence, req_serial, req_cancel, req_priority
FROM jobs WHERE id = :id

-- name: mark_unreadable
-- Quarantine a row whose document cannot be read (see migration 0002). The
-- version check leaves alone a row saved since it was read; the version
-- stays, so a copy read before the damage can still be saved over it.
UPDATE jobs SET unreadable = 1, status = :status, priority = :priority,
    owner = NULL, sched_key = NULL
WHERE id = :id AND version = :version AND unreadable = 0

-- name: mark_readable
-- A row marked unreadable whose document reads again (repaired by hand): its
-- columns follow the document once more.
UPDATE jobs SET unreadable = 0, status = :status, priority = :priority
WHERE id = :id AND version = :version AND unreadable = 1

-- name: list_unreadable
SELECT id, version, archived, doc, unreadable, received_at, ended_at,
       owner, fence, req_serial, req_cancel, req_priority
FROM jobs INDEXED BY jobs_unreadable
WHERE unreadable = 1
ORDER BY id

-- name: delete_job
DELETE FROM jobs WHERE id = :id RETURNING archived, status, priority

-- name: delete_log
DELETE FROM job_log WHERE job_id = :id

-- name: read_log
SELECT serial, op_index, time, message FROM job_log
WHERE job_id = :job_id AND serial > :since
ORDER BY serial

-- name: list_unarchived_jobs
-- The list queries share their filters. :statuses is a JSON array, or NULL for
-- any status; :lowest..:highest an inclusive priority range, or NULL; :op a
-- text some op name must contain (ASCII case ignored), or NULL, with :op_like the same
-- text as a LIKE pattern (a cheap first test on the whole document, ASCII
-- case-insensitive like lower()). Keyset paging: ids above :after and up to
-- :upto. Unarchived jobs are read in id order from the table itself (NOT
-- INDEXED), so a page costs the same at any depth; sorting the matches of the
-- jobs_unarchived index took ~20 ms per page at 100,000 jobs.
SELECT id, version, archived, doc, unreadable, received_at, ended_at,
       owner, fence, req_serial, req_cancel, req_priority
FROM jobs NOT INDEXED
WHERE archived = 0 AND id > :after AND id <= :upto
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:lowest IS NULL OR priority BETWEEN :lowest AND :highest)
  AND (:op IS NULL OR (doc LIKE :op_like ESCAPE '\' AND CASE WHEN json_valid(doc) THEN EXISTS (
      SELECT 1 FROM json_each(doc, '$.ops') AS o
      WHERE instr(lower(json_extract(o.value, '$.op')), lower(:op)) > 0) ELSE 0 END))
ORDER BY id
LIMIT :limit

-- name: list_unarchived_jobs_desc
-- The filters of list_unarchived_jobs.
SELECT id, version, archived, doc, unreadable, received_at, ended_at,
       owner, fence, req_serial, req_cancel, req_priority
FROM jobs NOT INDEXED
WHERE archived = 0 AND id > :after AND id <= :upto
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:lowest IS NULL OR priority BETWEEN :lowest AND :highest)
  AND (:op IS NULL OR (doc LIKE :op_like ESCAPE '\' AND CASE WHEN json_valid(doc) THEN EXISTS (
      SELECT 1 FROM json_each(doc, '$.ops') AS o
      WHERE instr(lower(json_extract(o.value, '$.op')), lower(:op)) > 0) ELSE 0 END))
ORDER BY id DESC
LIMIT :limit

-- name: list_archived_jobs
-- The filters of list_unarchived_jobs.
SELECT id, version, archived, doc, unreadable, received_at, ended_at,
       owner, fence, req_serial, req_cancel, req_priority
FROM jobs INDEXED BY jobs_archived
WHERE archived = 1 AND id > :after AND id <= :upto
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:lowest IS NULL OR priority BETWEEN :lowest AND :highest)
  AND (:op IS NULL OR (doc LIKE :op_like ESCAPE '\' AND CASE WHEN json_valid(doc) THEN EXISTS (
      SELECT 1 FROM json_each(doc, '$.ops') AS o
      WHERE instr(lower(json_extract(o.value, '$.op')), lower(:op)) > 0) ELSE 0 END))
ORDER BY id
LIMIT :limit

-- name: list_archived_jobs_desc
-- The filters of list_unarchived_jobs.
SELECT id, version, archived, doc, unreadable, received_at, ended_at,
       owner, fence, req_serial, req_cancel, req_priority
FROM jobs INDEXED BY jobs_archived
WHERE archived = 1 AND id > :after AND id <= :upto
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:lowest IS NULL OR priority BETWEEN :lowest AND :highest)
  AND (:op IS NULL OR (doc LIKE :op_like ESCAPE '\' AND CASE WHEN json_valid(doc) THEN EXISTS (
      SELECT 1 FROM json_each(doc, '$.ops') AS o
      WHERE instr(lower(json_extract(o.value, '$.op')), lower(:op)) > 0) ELSE 0 END))
ORDER BY id DESC
LIMIT :limit

-- name: list_jobs
-- The filters of list_unarchived_jobs.
SELECT id, version, archived, doc, unreadable, received_at, ended_at,
       owner, fence, req_serial, req_cancel, req_priority
FROM jobs
WHERE id > :after AND id <= :upto
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:lowest IS NULL OR priority BETWEEN :lowest AND :highest)
  AND (:op IS NULL OR (doc LIKE :op_like ESCAPE '\' AND CASE WHEN json_valid(doc) THEN EXISTS (
      SELECT 1 FROM json_each(doc, '$.ops') AS o
      WHERE instr(lower(json_extract(o.value, '$.op')), lower(:op)) > 0) ELSE 0 END))
ORDER BY id
LIMIT :limit

-- name: list_jobs_desc
-- The filters of list_unarchived_jobs.
SELECT id, version, archived, doc, unreadable, received_at, ended_at,
       owner, fence, req_serial, req_cancel, req_priority
FROM jobs
WHERE id > :after AND id <= :upto
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:lowest IS NULL OR priority BETWEEN :lowest AND :highest)
  AND (:op IS NULL OR (doc LIKE :op_like ESCAPE '\' AND CASE WHEN json_valid(doc) THEN EXISTS (
      SELECT 1 FROM json_each(doc, '$.ops') AS o
      WHERE instr(lower(json_extract(o.value, '$.op')), lower(:op)) > 0) ELSE 0 END))
ORDER BY id DESC
LIMIT :limit

-- name: unfinished_jobs
-- Archived jobs are always finished, so only unarchived ones are read.
SELECT id, version, archived, doc, unreadable, received_at, ended_at,
       owner, fence, req_serial, req_cancel, req_priority
FROM jobs INDEXED BY jobs_unarchived
WHERE archived = 0 AND status NOT IN ('success', 'error', 'canceled')
ORDER BY id

-- name: count_jobs
-- Once, when the store opens: it keeps the counts from then on. Reads only
-- the (covering) index.
SELECT status, priority, COUNT(*) FROM jobs INDEXED BY jobs_unarchived
WHERE archived = 0
GROUP BY status, priority

-- name: oldest_queued
-- :priorities (a JSON array) are those with queued jobs (the store's counts):
-- the first job of each is one seek in jobs_unarchived (status, priority).
SELECT received_at FROM jobs
WHERE id = (
    SELECT MIN((SELECT MIN(id) FROM jobs INDEXED BY jobs_unarchived
                WHERE archived = 0 AND status = 'queued' AND priority = p.value))
    FROM json_each(:priorities) AS p
)
