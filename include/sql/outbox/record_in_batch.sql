-- Records a decision the send task took without calling SES (nothing to show, a template or
-- header error, an undefined campaign, stale by now) on a row still queued in its batch. A row
-- another run took back meanwhile is not touched (0 rows).
-- Parameters: :send_key, :batch_id, :status, :reason, :decided_at.
UPDATE message_log
SET status = :status, reason = :reason, decided_at = :decided_at
WHERE send_key = :send_key
  AND batch_id = :batch_id
  AND status = 'queued'
