-- Orders placed in [:start, :end) that are still completed (refunded and cancelled orders are
-- never credited to a message). Parameters: :start, :end. Grain: one row per order.
SELECT order_id, customer_id, ordered_at, revenue
FROM orders
WHERE ordered_at >= :start AND ordered_at < :end
  AND status = 'completed'
ORDER BY ordered_at, order_id
