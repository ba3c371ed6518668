-- Records SES's answer for a row this task claimed for sending. A row another task or run
-- marked 'unknown' meanwhile (this task looked dead: the claim was older than the sending
-- lease) still becomes 'sent' when this task holds SES's MessageId: the truth, learnt late.
-- Parameters: :send_key, :batch_id, :status, :reason, :decided_at, :sent_at, :provider_message_id.
UPDATE message_log
SET status = :status, reason = :reason, decided_at = :decided_at,
    sent_at = :sent_at, provider_message_id = :provider_message_id
WHERE send_key = :send_key
  AND batch_id = :batch_id
  AND (status = 'sending'
       OR (status = 'unknown' AND CAST(:provider_message_id AS TEXT) IS NOT NULL))
