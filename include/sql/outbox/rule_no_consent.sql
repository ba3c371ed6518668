-- Consent (SPEC §7.5): no marketing email without email_opt_in = true (unknown = no), except
-- a message the shopper explicitly requested (consent_basis = 'request', e.g. a back-in-stock
-- "notify me" left by a guest) to someone who never opted out. No marketing SMS without
-- sms_opt_in = true (no exception: a request for an email is not one for an SMS).
-- Parameters: :as_of, :campaign_ids (the campaigns this dispatcher run decides).
UPDATE message_log
SET status = 'no_consent',
    reason = CASE WHEN channel = 'sms' THEN 'no SMS marketing consent (sms_opt_in not true)'
                  ELSE 'no email marketing consent (email_opt_in not true)' END,
    decided_at = :as_of
WHERE status IN ('planned', 'deferred_quiet_hours')
  AND category = 'marketing'
  AND COALESCE(send_after, due_at) <= :as_of
  AND campaign_id IN :campaign_ids
  AND NOT EXISTS (
        SELECT 1 FROM customers c
        WHERE c.customer_id = message_log.customer_id
          AND ((message_log.channel = 'sms' AND c.sms_opt_in = TRUE)
               OR (message_log.channel <> 'sms'
                   AND (c.email_opt_in = TRUE
                        -- a message the shopper asked for (a guest's "notify me"), unless they opted out
                        OR (message_log.consent_basis = 'request' AND c.email_opt_in IS NULL)))))
