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

-- Ready jobs without a schedule key: their last dependency just became
-- final (the save that made it final lowered deps_left and removed its
-- job_deps rows), or a damaged record was repaired. Claims file them first.
CREATE INDEX jobs_unfiled ON jobs (id)
WHERE sched_key IS NULL AND deps_left = 0 AND owner IS NULL AND archived = 0
    AND status IN ('queued', 'waiting');

-- Fill the new columns for the jobs already there: dependencies still
-- open, and the schedule of ready jobs (with the default aging interval,
-- 60 s, from when they were received; HIGHEST is -20).
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

-- The number of unarchived jobs is the sum of the counts the store keeps in
-- memory from now on; a counter row written by every insert cost a page in
-- each of their commits.
DELETE FROM meta WHERE key = 'unarchived';
