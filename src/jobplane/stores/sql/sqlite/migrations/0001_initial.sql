-- 0001: jobs, their log lines and the queue's own state.

-- One row per job. `doc` is the job's JSON document (Job.to_doc()); `status`,
-- `priority` and `ended_at` repeat what the document says so SQL can filter
-- on them. AUTOINCREMENT: an id is never handed out twice, even after the
-- job holding the highest id is gone.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL,
    ended_at REAL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);

-- Unarchived jobs are few (the queue caps them) while archived ones pile up,
-- and only unarchived jobs change. So one index serves every query about
-- unarchived jobs: counts() (it covers it, hence `archived` in it, though
-- always 0), unfinished() (archived jobs are always finished), archiving by
-- age, and listing them. Archived jobs get a listing index of their own,
-- which submissions and saves never touch.
CREATE INDEX jobs_unarchived ON jobs (status, priority, archived)
    WHERE archived = 0;
CREATE INDEX jobs_archived ON jobs (id)
    WHERE archived = 1;

-- Log lines; `serial` counts from 1 per job.
CREATE TABLE job_log (
    job_id INTEGER NOT NULL,
    serial INTEGER NOT NULL,
    op_index INTEGER NOT NULL,
    time REAL NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (job_id, serial)
) WITHOUT ROWID;

-- The drain flag ('0' or '1') and the number of unarchived jobs, kept up to
-- date by the same transactions that insert and archive jobs.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

INSERT INTO meta (key, value) VALUES ('drained', '0'), ('unarchived', '0');
