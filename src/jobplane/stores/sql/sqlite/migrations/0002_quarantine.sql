-- 0002: records that cannot be read (stores/records.py) are quarantined.

-- 1 once the store met the row's document and could not read it. The store
-- then also sets `status` to 'error' (and `priority` to 0, a finished job's),
-- so counts, status filters and archiving treat the job as the error it
-- reads as. A save (of a copy read before the damage) writes a whole new
-- document and sets it back to 0.
ALTER TABLE jobs ADD COLUMN unreadable INTEGER NOT NULL DEFAULT 0;

-- Few rows, if any: `jobplane quarantine list` reads only these.
CREATE INDEX jobs_unreadable ON jobs (id) WHERE unreadable = 1;
