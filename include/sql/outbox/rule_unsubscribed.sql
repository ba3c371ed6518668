-- Unsubscribes (SPEC §7.5): marketing to a customer who is opted out now and once said so
-- explicitly — any opt-out but an ordinary identify's trait: the Email Unsubscribed event, an
-- SES subscription event or complaint, a dated consent update (a preference centre) — is
-- 'unsubscribed' (rather than 'no_consent'). An SMS looks at the SMS consent instead, and a
-- STOP (SMS Unsubscribed, an inbound STOP reply) stops every SMS, transactional too: the
-- operators and SNS block the number for the sender anyway. Parameters: :as_of, :campaign_ids.
UPDATE message_log
SET status = 'unsubscribed',
    reason = CASE WHEN channel = 'sms' THEN 'customer opted out of SMS (STOP)'
                  ELSE 'customer unsubscribed from marketing email' END,
    decided_at = :as_of
WHERE status IN ('planned', 'deferred_quiet_hours')
  AND (category = 'marketing' OR channel = 'sms')
  AND COALESCE(send_after, due_at) <= :as_of
  AND campaign_id IN :campaign_ids
  AND EXISTS (
        SELECT 1 FROM customers c
        WHERE c.customer_id = message_log.customer_id
          AND ((message_log.channel = 'sms' AND c.sms_opt_in = FALSE)
               OR (message_log.channel <> 'sms' AND c.email_opt_in = FALSE)))
  AND EXISTS (
        SELECT 1 FROM consent_changes cc
        WHERE cc.customer_id = message_log.customer_id AND cc.channel = message_log.channel AND cc.opt_in = FALSE
          AND cc.source <> 'identify')
