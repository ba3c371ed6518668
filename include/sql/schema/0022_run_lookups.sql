-- Migration 0022 (issue 9, item 4): what one dispatcher run decided, found through an index.
--
-- The run's report (outbox/run_summary, held_in_run) selects the rows decided at the run's
-- as-of: without an index on decided_at that was a scan of all of message_log every hour (the
-- run's batches, matched with LIKE 'run#%' until now, are now passed as a list and found
-- through message_log_batch). SQLite and PostgreSQL.
CREATE INDEX IF NOT EXISTS message_log_decided_at ON message_log (decided_at);
