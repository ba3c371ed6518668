-- Puts due planned rows in one batch of this run. The status guard makes it a claim: a row
-- another dispatcher run already took is left alone. Parameters: :batch_id, :send_keys
-- (list), :queued_at (wall clock).
UPDATE message_log
SET status = 'queued', batch_id = :batch_id, queued_at = :queued_at
WHERE send_key IN :send_keys
  AND status = 'planned'
