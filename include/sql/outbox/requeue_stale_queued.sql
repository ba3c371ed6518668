-- Returns to the waiting set ('planned') the rows a dispatcher run put in a batch that no send
-- task is sending: the batch's lease is over (its task died, and its retries with it, or never
-- ran), or the batch belongs to an earlier attempt of this very run's prepare task (killed
-- after its commit: its batches were never handed to send tasks). Safe: SES was never called
-- for a 'queued' row, and a late send task claims only rows still queued in its own batch.
-- Rows queued before migration 0012 have no lease: theirs is over.
-- Parameters: :now (wall clock), :run_prefix ('<run id>#'), :run_prefix_len (its length).
UPDATE message_log
SET status = 'planned', batch_id = NULL, queued_at = NULL, lease_until = NULL,
    reason = 'taken back from batch ' || batch_id || ' (its send task stopped)'
WHERE status = 'queued'
  AND (COALESCE(lease_until, queued_at) < :now
       OR SUBSTR(batch_id, 1, :run_prefix_len) = :run_prefix)
