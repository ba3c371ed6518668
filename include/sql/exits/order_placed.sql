-- Exit condition "order_placed": a waiting message exits once its customer has ordered after
-- the trigger (e.g. a cart reminder after the cart was bought).
-- Parameters: :campaign_id, :steps (list of step numbers), :as_of.
UPDATE message_log
SET status = 'exited',
    reason = 'order placed after the trigger',
    decided_at = :as_of
WHERE campaign_id = :campaign_id
  AND status IN ('planned', 'deferred_quiet_hours')
  AND step IN :steps
  AND EXISTS (
        SELECT 1 FROM orders o
        WHERE o.customer_id = message_log.customer_id
          AND o.ordered_at > message_log.trigger_at
          AND o.ordered_at <= :as_of)
