-- Consent (SPEC §7.5): no marketing email without email_opt_in = true (unknown = no).
-- Parameters: :as_of.
UPDATE message_log
SET status = 'no_consent', reason = 'no email marketing consent (email_opt_in not true)', decided_at = :as_of
WHERE status = 'planned'
  AND category = 'marketing'
  AND due_at <= :as_of
  AND NOT EXISTS (
        SELECT 1 FROM customers c
        WHERE c.customer_id = message_log.customer_id AND c.email_opt_in = TRUE)
