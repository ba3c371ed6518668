-- No address, no message: due rows whose customer has no email (an SMS: no valid phone
-- number, E.164 at ingest) are 'suppressed'.
-- Parameters: :as_of, :campaign_ids (the campaigns this dispatcher run decides).
UPDATE message_log
SET status = 'suppressed',
    reason = CASE WHEN channel = 'sms' THEN 'customer has no valid phone number'
                  ELSE 'customer has no email address' END,
    decided_at = :as_of
WHERE status IN ('planned', 'deferred_quiet_hours')
  AND COALESCE(send_after, due_at) <= :as_of
  AND campaign_id IN :campaign_ids
  AND ((channel = 'sms' AND (phone IS NULL OR phone = ''))
       OR (channel <> 'sms' AND (email IS NULL OR email = '')))
