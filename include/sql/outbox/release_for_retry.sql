-- SES refused for now (throttled after every retry): the row goes back to 'planned' for the
-- next run, never lost. Parameters: :send_key, :reason.
UPDATE message_log
SET status = 'planned', batch_id = NULL, queued_at = NULL, lease_until = NULL, reason = :reason
WHERE send_key = :send_key
  AND status = 'sending'
