-- Claims one queued row of a batch right before calling SES (status guard = no double send).
-- Parameters: :send_key, :batch_id, :claimed_at (wall clock).
UPDATE message_log
SET status = 'sending', claimed_at = :claimed_at, attempts = attempts + 1
WHERE send_key = :send_key
  AND batch_id = :batch_id
  AND status = 'queued'
