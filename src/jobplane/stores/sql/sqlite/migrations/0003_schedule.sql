-- 0003: the schedule lives in the store: claims, fencing, leases, control
-- requests, dependency counts and status counters (see stores/base.py).

-- Who owns a job (a daemons.id, NULL while unowned) and the fencing token of
-- its current claim; how many of its dependencies are not final yet; when
-- it last became ready and its schedule key (stores/schedule.py), which is
-- set exactly while the job is ready; and the control requests its owner
-- has not applied yet (req_serial counts them).
ALTER TABLE jobs ADD COLUMN owner INTEGER;
ALTER TABLE jobs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN deps_left INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN ready_at REAL;
ALTER TABLE jobs ADD COLUMN sched_key REAL;
ALTER TABLE jobs ADD COLUMN req_serial INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN req_cancel INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN req_priority INTEGER;

-- The claim walks this index in order: O(limit log n) however long the
-- backlog. Only ready jobs are in it, so submissions of blocked jobs and
-- saves of running ones never touch it.
CREATE INDEX jobs_schedule ON jobs (sched_key, id) WHERE sched_key IS NOT NULL;

-- Reclaim finds a lost daemon's jobs here; few jobs are owned at any time.
CREATE INDEX jobs_owner ON jobs (owner) WHERE owner IS NOT NULL;

-- Unarchived jobs by status then id: unfinished(), the oldest queued job,
-- listing by status, archiving by age. Counting moves to job_counts, so
-- the index no longer needs the priority. Listing every unarchived job by
-- id walks jobs_unarchived_id, never the archived ones.
DROP INDEX jobs_unarchived;
CREATE INDEX jobs_unarchived ON jobs (status, id) WHERE archived = 0;
CREATE INDEX jobs_unarchived_id ON jobs (id) WHERE archived = 0;

-- The dependencies a job still waits for; a row goes when its dependency
-- becomes final (in the same transaction that lowers deps_left).
CREATE TABLE job_deps (
    dep_id INTEGER NOT NULL,
    job_id INTEGER NOT NULL,
    PRIMARY KEY (dep_id, job_id)
) WITHOUT ROWID;

-- Daemons and their leases (wall-clock seconds of the store's clock).
CREATE TABLE daemons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    started_at REAL NOT NULL,
    lease_until REAL NOT NULL,
    ended INTEGER NOT NULL DEFAULT 0
);

-- Unarchived jobs by (status, priority), kept in the transaction that
-- changes a job, so status() reads a few rows: by the trigger job_counted
-- for changes, job_counts_delete for deletions, and by insert_jobs for a
-- whole batch at once (count_inserted).
CREATE TABLE job_counts (
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (status, priority)
) WITHOUT ROWID;

CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs WHEN old.archived = 0
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE status = old.status AND priority = old.priority;
END;

-- The counters follow each job's status, priority and archived flag, in
-- the statement that changes them (one statement: triggers cost per
-- statement they run).
CREATE TRIGGER job_counted AFTER UPDATE OF status, priority, archived ON jobs
WHEN old.status IS NOT new.status OR old.priority IS NOT new.priority
    OR old.archived IS NOT new.archived
BEGIN
    INSERT INTO job_counts (status, priority, n)
    SELECT old.status, old.priority, -1 WHERE old.archived = 0
    UNION ALL
    SELECT new.status, new.priority, 1 WHERE new.archived = 0
    ON CONFLICT (status, priority) DO UPDATE SET n = n + excluded.n;
END;

-- A job that becomes final while others wait for it: each waits for one
-- job less, in the statement that made it final (so a save stays one
-- statement). One whose count reaches 0 is ready but not yet filed in the
-- schedule (no key): the next claim files it (jobs_unfiled), with the
-- store's clock. Plain SQL, so any connection may change a job's status.
CREATE TRIGGER job_final AFTER UPDATE OF status ON jobs
WHEN new.status IN ('success', 'error', 'canceled')
    AND old.status NOT IN ('success', 'error', 'canceled')
    AND EXISTS (SELECT 1 FROM job_deps WHERE dep_id = new.id)
BEGIN
    UPDATE jobs SET deps_left = deps_left - 1
    WHERE id IN (SELECT job_id FROM job_deps WHERE dep_id = new.id);
    DELETE FROM job_deps WHERE dep_id = new.id;
END;

-- Ready jobs without a schedule key: their last dependency just became
-- final (or a damaged record was repaired). Claims file them first.
CREATE INDEX jobs_unfiled ON jobs (id)
WHERE sched_key IS NULL AND deps_left = 0 AND owner IS NULL AND archived = 0
    AND status IN ('queued', 'waiting');

-- Fill the new columns for the jobs already there: counters, dependencies
-- still open, and the schedule of ready jobs (with the default aging
-- interval, 60 s, from when they were received; HIGHEST is -20).
INSERT INTO job_counts (status, priority, n)
SELECT status, priority, COUNT(*) FROM jobs WHERE archived = 0 GROUP BY status, priority;

INSERT OR IGNORE INTO job_deps (dep_id, job_id)
SELECT json_extract(d.value, '$.job'), jobs.id
FROM jobs, json_each(jobs.doc, '$.depends') AS d
WHERE jobs.archived = 0 AND jobs.status NOT IN ('success', 'error', 'canceled')
  AND NOT EXISTS (
      SELECT 1 FROM jobs AS dep
      WHERE dep.id = json_extract(d.value, '$.job')
        AND dep.status IN ('success', 'error', 'canceled')
  );

UPDATE jobs SET deps_left = (SELECT COUNT(*) FROM job_deps WHERE job_deps.job_id = jobs.id)
WHERE id IN (SELECT job_id FROM job_deps);

UPDATE jobs
SET ready_at = received_at,
    sched_key = CASE WHEN priority <= -20 THEN -1.0e300 ELSE received_at + priority * 60.0 END
WHERE archived = 0 AND deps_left = 0 AND status IN ('queued', 'waiting');
