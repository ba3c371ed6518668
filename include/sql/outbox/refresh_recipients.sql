-- Copies the customer's current address and locale onto the due rows just before deciding.
-- Parameters: :as_of, :campaign_ids (the campaigns this dispatcher run decides).
UPDATE message_log
SET email = (SELECT c.email FROM customers c WHERE c.customer_id = message_log.customer_id),
    locale = (SELECT c.locale FROM customers c WHERE c.customer_id = message_log.customer_id)
WHERE status IN ('planned', 'deferred_quiet_hours')
  AND COALESCE(send_after, due_at) <= :as_of
  AND campaign_id IN :campaign_ids
