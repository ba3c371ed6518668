-- Suppression (SPEC §7.5): nothing, not even a receipt, to a hard-bounced or complained
-- address, nor to an address an erasure request left on the list in hashed form ('sha256:…',
-- matched against the recipient's customers.email_hash: migration 0011). Email only: an SMS
-- is stopped by its own opt-out (rule_unsubscribed.sql).
-- Parameters: :as_of, :campaign_ids.
UPDATE message_log
SET status = 'suppressed',
    reason = 'address on the suppression list: ' || (
        SELECT MIN(s.reason) FROM suppressions s
        WHERE s.email = LOWER(message_log.email)
           OR s.email = (SELECT c.email_hash FROM customers c WHERE c.customer_id = message_log.customer_id)),
    decided_at = :as_of
WHERE status IN ('planned', 'deferred_quiet_hours')
  AND COALESCE(send_after, due_at) <= :as_of
  AND campaign_id IN :campaign_ids
  AND channel = 'email'
  AND EXISTS (SELECT 1 FROM suppressions s
              WHERE s.email = LOWER(message_log.email)
                 OR s.email = (SELECT c.email_hash FROM customers c WHERE c.customer_id = message_log.customer_id))
