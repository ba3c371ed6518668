-- No address, no message: due rows whose customer has no email are 'suppressed'.
-- Parameters: :as_of, :campaign_ids (the campaigns this dispatcher run decides).
UPDATE message_log
SET status = 'suppressed', reason = 'customer has no email address', decided_at = :as_of
WHERE status IN ('planned', 'deferred_quiet_hours')
  AND COALESCE(send_after, due_at) <= :as_of
  AND campaign_id IN :campaign_ids
  AND (email IS NULL OR email = '')
