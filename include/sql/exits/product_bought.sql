-- Exit condition "product_bought": a waiting message about one product exits once its
-- customer has ordered that product after the trigger (back in stock, price drop, low stock,
-- browse). Product triggers name their instance '<product_id>|…' (trigger_id), so the product
-- is the prefix of trigger_id up to the first '|'.
-- Parameters: :campaign_id, :steps (list of step numbers), :as_of.
UPDATE message_log
SET status = 'exited',
    reason = 'product bought after the trigger',
    decided_at = :as_of
WHERE campaign_id = :campaign_id
  AND status IN ('planned', 'deferred_quiet_hours')
  AND step IN :steps
  AND EXISTS (
        SELECT 1
        FROM orders o
        JOIN order_items oi ON oi.order_id = o.order_id
        WHERE o.customer_id = message_log.customer_id
          AND o.ordered_at > message_log.trigger_at
          AND o.ordered_at <= :as_of
          AND SUBSTR(message_log.trigger_id, 1, LENGTH(oi.product_id) + 1) = oi.product_id || '|')
