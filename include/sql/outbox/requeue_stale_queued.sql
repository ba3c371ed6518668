-- Returns to 'planned' the rows a dispatcher run put in a batch but never started sending
-- (its send tasks never ran). Safe: SES was not called for a 'queued' row.
-- Parameters: :stale_before (wall clock).
UPDATE message_log
SET status = 'planned', batch_id = NULL, queued_at = NULL
WHERE status = 'queued'
  AND queued_at < :stale_before
