-- Completed orders of some customers placed in [:since, :until) (the outcome of the holdout
-- comparison). Parameters: :customer_ids (list), :since, :until. Grain: one row per order.
SELECT customer_id, ordered_at, revenue
FROM orders
WHERE customer_id IN :customer_ids
  AND ordered_at >= :since AND ordered_at < :until
  AND status = 'completed'
