-- Copies the customer's current address and locale onto the due rows just before deciding.
-- Parameters: :as_of.
UPDATE message_log
SET email = (SELECT c.email FROM customers c WHERE c.customer_id = message_log.customer_id),
    locale = (SELECT c.locale FROM customers c WHERE c.customer_id = message_log.customer_id)
WHERE status = 'planned'
  AND due_at <= :as_of
