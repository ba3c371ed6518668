-- Records the outcome of a row this task is sending.
-- Parameters: :send_key, :status, :reason, :decided_at, :sent_at, :provider_message_id.
UPDATE message_log
SET status = :status, reason = :reason, decided_at = :decided_at,
    sent_at = :sent_at, provider_message_id = :provider_message_id
WHERE send_key = :send_key
  AND status = 'sending'
